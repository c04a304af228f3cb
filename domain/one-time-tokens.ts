/**
 * One-time tokens (`one_time_tokens`, this module is its writer): e-mailed links and codes of the
 * e-mail verification, password reset and step-up flows. Only the SHA-256 of a token is stored
 * (crypto/opaque-tokens.ts). A token is live while unused, not superseded by a newer one of the
 * same purpose and not expired; issuing one supersedes the user's live ones, spending one marks it
 * used and supersedes the rest, and a flow that ends supersedes its own.
 */
import { randomUUID } from 'node:crypto';
import { Op, QueryTypes, Sequelize, Transaction } from 'sequelize';
import { OneTimeToken } from '../platform/db/models';
import { hashOpaque, numericCode, randomOpaque } from '../crypto/opaque-tokens';
import { NotificationTemplate, render } from './mail-templates';
import { greetingName, mailRecipient, Outbox } from './outbox';

export type TokenPurpose = OneTimeToken['purpose'];

export interface NewToken {
  userId: string;
  purpose: TokenPurpose;
  tokenHash: Buffer;
  flowId: string;
  expiresAt: Date;
  id?: string;
  /** Supersede only the live tokens whose flow id starts with this (default: every live one of the purpose). */
  supersedeFlowPrefix?: string;
}

/** Stores a new token's hash and supersedes the user's earlier live tokens of its purpose, in one transaction. */
export async function storeToken(sequelize: Sequelize, n: NewToken): Promise<string> {
  const id = n.id ?? randomUUID();
  // One statement (one round trip, atomic): supersede the live tokens of the purpose (of the flow
  // prefix, when given), then insert the new one.
  await sequelize.query(
    `WITH superseded AS (
       UPDATE one_time_tokens SET superseded_at = now()
        WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL AND superseded_at IS NULL AND ($7::text IS NULL OR flow_id LIKE $7 || '%')
     )
     INSERT INTO one_time_tokens (id, user_id, purpose, token_hash, flow_id, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, now())`,
    { bind: [id, n.userId, n.purpose, n.tokenHash, n.flowId ?? null, n.expiresAt, n.supersedeFlowPrefix ?? null], type: QueryTypes.INSERT },
  );
  return id;
}

/** The newest token a flow issued to the user (a retried issue returns it). */
export async function latestFlowToken(userId: string, purpose: TokenPurpose, flowId: string): Promise<OneTimeToken | null> {
  return OneTimeToken.findOne({ where: { flow_id: flowId, purpose, user_id: userId }, order: [['created_at', 'DESC']] });
}

/** The expiry of the user's newest live token of `purpose`, if any. */
export async function liveTokenExpiry(userId: string, purpose: TokenPurpose): Promise<Date | null> {
  const live = await OneTimeToken.findOne({
    where: { user_id: userId, purpose, used_at: null, superseded_at: null, expires_at: { [Op.gt]: new Date() } },
    order: [['created_at', 'DESC']],
  });
  return live ? live.expires_at : null;
}

/** When the user was last issued a token of `purpose`, and how many in the last 24 hours. */
export async function issueCounts(sequelize: Sequelize, userId: string, purpose: TokenPurpose): Promise<{ last: Date | null; today: number }> {
  const [stats] = await sequelize.query<{ last: Date | null; today: number }>(
    `SELECT max(created_at) AS last, count(*) FILTER (WHERE created_at > now() - interval '24 hours')::int AS today
       FROM one_time_tokens WHERE user_id = $1 AND purpose = $2`,
    { bind: [userId, purpose], type: QueryTypes.SELECT },
  );
  return { last: stats?.last ?? null, today: stats?.today ?? 0 };
}

/** Marks a flow's unused tokens superseded when the flow ends (expired or cancelled). */
export async function expireFlowTokens(userId: string, purpose: TokenPurpose, flowId: string): Promise<number> {
  const [n] = await OneTimeToken.update(
    { superseded_at: new Date() },
    { where: { user_id: userId, purpose, flow_id: flowId, used_at: null, superseded_at: { [Op.is]: null } } },
  );
  return n;
}

/** The live token with this hash (in `t`, locked FOR UPDATE, when given). */
export async function findLiveToken(hash: Buffer, purpose: TokenPurpose, t?: Transaction): Promise<OneTimeToken | null> {
  const where = { token_hash: hash, purpose, used_at: null, superseded_at: null, expires_at: { [Op.gt]: new Date() } };
  return t ? OneTimeToken.findOne({ where, transaction: t, lock: t.LOCK.UPDATE }) : OneTimeToken.findOne({ where });
}

/** Supersedes every live token of the user's `purpose` in `t`. */
export async function supersedeLiveTokens(t: Transaction, userId: string, purpose: TokenPurpose, now = new Date()): Promise<void> {
  await OneTimeToken.update({ superseded_at: now }, { where: { user_id: userId, purpose, used_at: null, superseded_at: null }, transaction: t });
}

/** Spends a token found live (under its row lock) and supersedes the user's other live ones of its purpose. */
export async function spendToken(t: Transaction, token: OneTimeToken, now = new Date()): Promise<void> {
  await token.update({ used_at: now }, { transaction: t });
  await supersedeLiveTokens(t, token.user_id, token.purpose, now);
}

export interface OneTimeCodeRequest {
  userId: string;
  purpose: TokenPurpose;
  flowId: string;
  ttlSeconds: number;
  template: NotificationTemplate;
  params?: Record<string, string>;
}

/**
 * A flow's e-mailed single-use code: generated here, stored as its hash (superseding earlier codes
 * of the purpose), e-mailed once per outbox key. Returns ids and times only: the code is never
 * returned. A key whose e-mail went out already reports the flow's newest token and `sent: false`.
 */
export class OneTimeCodes {
  constructor(
    private readonly sequelize: Sequelize,
    private readonly outbox: Outbox,
    /** EMAIL_VERIFY_LINK: the verification link's template (platform/config.ts). */
    private readonly s: { verifyLink: string },
  ) {}

  async issue(key: string, input: OneTimeCodeRequest): Promise<{ tokenId: string; expiresAt: string; sent: boolean }> {
    if (await this.outbox.isSent(key)) {
      const tok = await latestFlowToken(input.userId, input.purpose, input.flowId);
      return { tokenId: tok?.id ?? '', expiresAt: (tok?.expires_at ?? new Date()).toISOString(), sent: false };
    }
    const user = await mailRecipient(input.userId);
    const code = input.purpose === 'email_verification' ? randomOpaque(24) : numericCode(8);
    const expiresAt = new Date(Date.now() + input.ttlSeconds * 1000);
    const tokenId = await storeToken(this.sequelize, {
      userId: input.userId,
      purpose: input.purpose,
      tokenHash: hashOpaque(code),
      flowId: input.flowId,
      expiresAt,
    });
    // Only the verification mail has a link; a step-up code is typed into the app that asked for it.
    const link = input.purpose === 'email_verification' ? emailLink(this.s.verifyLink, code) : undefined;
    const sent = await this.outbox.sendOnce(key, input.userId, input.template, () =>
      Promise.resolve({
        to: user.email!,
        // A contested registration kept no password: the mail says the click will ask for one.
        ...render(input.template, {
          ...(input.params ?? {}),
          name: greetingName(user),
          code,
          ...(link ? { link } : {}),
          expiresAt: expiresAt.toISOString(),
          ...(input.purpose === 'email_verification' && user.registration_contested_at ? { choosePassword: 'yes' } : {}),
        }),
      }),
    );
    return { tokenId, expiresAt: expiresAt.toISOString(), sent };
  }
}

/** An e-mail link: the configured template (EMAIL_VERIFY_LINK, PASSWORD_RESET_LINK) with the token in place of `{token}`. */
export function emailLink(template: string, token: string): string {
  return template.replace('{token}', encodeURIComponent(token));
}

/** Deletes every token of the user in `t` (erasure). */
export async function deleteUserTokens(t: Transaction, userId: string): Promise<void> {
  await OneTimeToken.destroy({ where: { user_id: userId }, transaction: t });
}

/**
 * Password reset, the database half (the flow itself is workflows/password-reset.ts).
 *
 * `recordForgot` commits a forgot request as a flow outbox row before the answer, the same work for
 * any address (so the answer and its timing never depend on the account); the relay asks
 * `acceptForgot` whether the account may be e-mailed (`RESET_ELIGIBLE`), audits it and starts or
 * signals the flow once Temporal answers, so a request made while it is down, or just before a
 * crash, is not lost. `reset` spends a
 * token: only the SHA-256 of the e-mailed token is stored, and a token is valid while unused, not
 * superseded by a newer one and not expired. Applying the new password, spending the token,
 * superseding the others, ending every session of the user and the audit event are one
 * transaction; the flow is told inside it (`notify`), so if Temporal cannot be told nothing
 * changes and the client gets a 503 it can retry with the same token.
 *
 * `ResetTokenMailer` is the flow's activity half: it issues a token and e-mails it, within the
 * anti-spam limits. `RESET_ELIGIBLE` is the one statement of who may get a reset e-mail.
 */
import { Op, Sequelize } from 'sequelize';
import type { AccountService } from './accounts';
import { audit } from '../audit';
import type { FlowOutbox } from '../flow-outbox';
import { mapDbError } from '../../platform/db';
import { AuditEvent, OneTimeToken, User, UserStatus } from '../../platform/db/models';
import type { Logger } from '../../platform/logger';
import { AppError } from '../../platform/errors';
import { Argon2Params, hashPassword } from '../../crypto/argon2';
import type { RequestMeta, SessionService } from '../sessions/sessions';
import { hashOpaque, randomOpaque } from '../../crypto/opaque-tokens';
import { emailLink, findLiveToken, issueCounts, liveTokenExpiry, spendToken, storeToken } from '../one-time-tokens';
import { userMessage, type Outbox } from '../outbox';
import { normaliseEmail } from './users';

/**
 * Which accounts may receive a password-reset e-mail. `self`: users who ask themselves (a lockout
 * is a classic reason to). `admin`: an administrator's reset reaches any account that still
 * exists; accounts on their way out (`pending_deletion`, `deleted`) never take a new password.
 */
export const RESET_ELIGIBLE: { readonly self: ReadonlySet<UserStatus>; readonly admin: ReadonlySet<UserStatus> } = {
  self: new Set<UserStatus>(['active', 'locked']),
  admin: new Set<UserStatus>(['active', 'locked', 'suspended', 'pending_verification']),
};

const invalidToken = () => new AppError('invalid_token', 'the reset token is invalid, expired or already used');

export class PasswordResetService {
  constructor(
    private readonly sequelize: Sequelize,
    private readonly sessions: SessionService,
    private readonly accounts: AccountService,
    private readonly argon2: Argon2Params,
    private readonly flowOutbox: FlowOutbox,
  ) {}

  /** The id of the account a forgot request may e-mail, or undefined (unknown, unverified, suspended...). */
  async accountFor(email: string): Promise<string | undefined> {
    const user = await User.findOne({ where: { email: normaliseEmail(email) }, attributes: ['id', 'status'] }).catch((err) => Promise.reject(mapDbError(err)));
    return user && RESET_ELIGIBLE.self.has(user.status) ? user.id : undefined;
  }

  /**
   * A forgot request, committed before the answer: one flow outbox row for any address (the id of
   * the account the address names, or null), so the answer costs the same lookup and insert
   * whoever asks and a crash after the answer loses nothing. The relay decides (`acceptForgot`).
   */
  async recordForgot(email: string, meta: RequestMeta): Promise<void> {
    await this.sequelize
      .transaction(async (t) => {
        const user = await User.findOne({ where: { email: normaliseEmail(email) }, attributes: ['id'], transaction: t });
        await this.flowOutbox.enqueue(t, {
          kind: 'password_reset.forgot',
          userId: user?.id ?? null,
          ...(meta.requestId ? { requestId: meta.requestId } : {}),
          ...(meta.ip ? { ip: meta.ip } : {}),
        });
      })
      .catch((err) => Promise.reject(mapDbError(err)));
  }

  /**
   * The relay's half of a forgot request (flow outbox row `rowId`): whether the account may get a
   * reset e-mail now; if so, its audit event is written once per row (a relay retry finds it).
   */
  async acceptForgot(userId: string, rowId: string, meta: RequestMeta): Promise<boolean> {
    const user = await User.findByPk(userId, { attributes: ['id', 'status'] }).catch((err) => Promise.reject(mapDbError(err)));
    if (!user || !RESET_ELIGIBLE.self.has(user.status)) return false;
    await this.sequelize
      .transaction(async (t) => {
        const seen = await AuditEvent.count({
          where: { type: 'password.reset_requested', user_id: userId, data: { flow_event: rowId } },
          transaction: t,
        });
        if (!seen) await audit(t, 'password.reset_requested', userId, meta, { flow_event: rowId });
      })
      .catch((err) => Promise.reject(mapDbError(err)));
    return true;
  }

  /**
   * Whether the user's reset flow issued a token after `since` (a request of that time or later was
   * served). The flow outbox relay asks before repeating a request's signal, so a relay crash
   * between Temporal's acceptance and the row's mark does not e-mail a second token.
   */
  async requestServedSince(userId: string, since: Date): Promise<boolean> {
    const n = await OneTimeToken.count({ where: { user_id: userId, purpose: 'password_reset', created_at: { [Op.gte]: since } } });
    return n > 0;
  }

  /**
   * Sets a new password with a reset token. Wrong, used, superseded or expired tokens are 400
   * `invalid_token`; a password the policy refuses is 400 `validation_failed` and leaves the token
   * usable. `notify(userId)` runs inside the transaction (tell the workflow); if it throws, nothing
   * is changed.
   */
  async reset(
    token: string,
    newPassword: string,
    meta: RequestMeta,
    notify: (userId: string) => Promise<void>,
  ): Promise<{ userId: string; sessionsEnded: number }> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(token)) throw invalidToken();
    const hash = hashOpaque(token);
    const found = await findLiveToken(hash, 'password_reset').catch((err) => Promise.reject(mapDbError(err)));
    if (!found) throw invalidToken();
    const user = await User.findByPk(found.user_id).catch((err) => Promise.reject(mapDbError(err)));
    if (!user || !RESET_ELIGIBLE.admin.has(user.status)) throw invalidToken();
    this.accounts.policyCheck(newPassword, user.email ?? undefined, user.name ?? undefined, 'new_password');
    const passwordHash = await hashPassword(newPassword, this.argon2);
    try {
      return await this.sequelize.transaction(async (t) => {
        // Again under a row lock: of two concurrent resets with one token exactly one proceeds.
        const ott = await findLiveToken(hash, 'password_reset', t);
        if (!ott) throw invalidToken();
        const now = new Date();
        await spendToken(t, ott, now);
        await User.update({ password_hash: passwordHash, password_changed_at: now, updated_at: now }, { where: { id: user.id }, transaction: t });
        const sessionsEnded = await this.sessions.revokeAllForUser(t, user.id, 'password_reset');
        await audit(t, 'password.reset', user.id, meta, { sessions_ended: sessionsEnded });
        await notify(user.id);
        return { userId: user.id, sessionsEnded };
      });
    } catch (err) {
      throw mapDbError(err);
    }
  }
}

export type ResetIssueResult = { sent: boolean; reason?: 'not_eligible' | 'interval' | 'daily_cap'; expiresAt: string | null };

export interface ResetMailSettings {
  /** Seconds a reset token stays valid. */
  ttl: number;
  /** Seconds between two reset e-mails to one user. */
  interval: number;
  /** Reset e-mails per user and rolling day. */
  perDay: number;
  /** PASSWORD_RESET_LINK: the reset link's template (platform/config.ts). */
  resetLink: string;
}

/**
 * Issues a password-reset token (256 random bits, only its SHA-256 stored; earlier ones are
 * superseded) and e-mails it once per outbox key, unless the anti-spam rules say no: one e-mail
 * per interval and N per rolling day, counted from the tokens table so they hold across runs.
 * `force` (an administrator's reset) skips them. A retry of an attempt that already claimed its
 * outbox row skips them too (it counts as the same e-mail).
 */
export class ResetTokenMailer {
  constructor(
    private readonly sequelize: Sequelize,
    private readonly outbox: Outbox,
    private readonly s: ResetMailSettings,
    private readonly logger: Logger,
  ) {}

  /** The user's newest live reset token's expiry, if any (it keeps the flow waiting). */
  private async liveExpiry(userId: string): Promise<string | null> {
    return (await liveTokenExpiry(userId, 'password_reset'))?.toISOString() ?? null;
  }

  async issue(key: string, input: { userId: string; flowId: string; force: boolean }): Promise<ResetIssueResult> {
    const user = await User.findByPk(input.userId, { attributes: ['id', 'email', 'status', 'name', 'email_verified_at', 'password_hash'] });
    if (!user?.email || !(input.force ? RESET_ELIGIBLE.admin : RESET_ELIGIBLE.self).has(user.status)) {
      return { sent: false, reason: 'not_eligible', expiresAt: null };
    }
    const { row: claim, created } = await this.outbox.claim(key, input.userId, 'password_reset');
    if (claim.status === 'sent') return { sent: true, expiresAt: await this.liveExpiry(input.userId) };
    if (created && !input.force) {
      const stats = await issueCounts(this.sequelize, input.userId, 'password_reset');
      const reason =
        stats.last && Date.now() - new Date(stats.last).getTime() < this.s.interval * 1000
          ? 'interval'
          : stats.today >= this.s.perDay
            ? 'daily_cap'
            : undefined;
      if (reason) {
        await this.outbox.release(claim);
        this.logger.info({ userId: input.userId, reason }, 'password reset e-mail not sent (anti-spam)');
        return { sent: false, reason, expiresAt: await this.liveExpiry(input.userId) };
      }
    }
    const token = randomOpaque(32);
    const expiresAt = new Date(Date.now() + this.s.ttl * 1000);
    await storeToken(this.sequelize, { userId: input.userId, purpose: 'password_reset', tokenHash: hashOpaque(token), flowId: input.flowId, expiresAt });
    // The row claimed above is the one this send completes (a retry that finds it sent returned above).
    const link = emailLink(this.s.resetLink, token);
    await this.outbox.sendClaimed(
      key,
      claim,
      userMessage(user, 'password_reset', {
        code: token,
        link,
        expiresAt: expiresAt.toISOString(),
        // After an administrator's account reset there is no password: the mail must not say "unchanged".
        ...(user.password_hash === null ? { passwordInvalidated: 'yes' } : {}),
      }),
    );
    this.logger.info({ userId: input.userId, template: 'password_reset' }, 'notification sent');
    return { sent: true, expiresAt: expiresAt.toISOString() };
  }
}

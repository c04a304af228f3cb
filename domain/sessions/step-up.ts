/**
 * Step-up challenges (table `step_up_challenges`): the verification id handed to the client, the
 * e-mailed code's hash, the answer that asks for a step-up, ending a session's pending challenges,
 * the port through which the device check starts the step-up workflow, and the e-mailed code
 * (8 digits, stored as a hash salted with the challenge id, sent once per outbox key). The device check that
 * opens challenges and the outcome that trusts the new device are domain/sessions/devices.ts.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { hashOpaque, numericCode } from '../../crypto/opaque-tokens';
import { storeToken } from '../one-time-tokens';
import type { Outbox } from '../outbox';
import { AppError } from '../../platform/errors';

export type StepUpMethod = 'email' | 'totp';

export type StepUpFailure = 'too_many_attempts' | 'expired';

/** The Temporal side of step-up (platform/temporal/flows.ts implements it). Every method throws
 * when Temporal is unreachable, so the caller's transaction rolls back. */
export interface StepUpFlows {
  /** Starts `step-up:<sessionId>` or hands the running flow a newer challenge. */
  challenge(input: { sessionId: string; userId: string; challengeId: string; method: StepUpMethod }): Promise<void>;
  /** E-mails the user that a session was ended (`session_revoked`). */
  notifySessionRevoked(input: { userId: string; sessionId: string; reason: string }): Promise<void>;
  /** Tells a running step-up flow that its session ended; a flow that is not running is fine. */
  cancel(sessionId: string, reason: string): Promise<void>;
}

export interface ChallengeRow {
  id: string;
  public_id: string;
  session_id: string;
  user_id: string;
  refresh_token_id: string;
  fingerprint: Buffer;
  label: string | null;
  /** The DPoP key of a key-bound session's challenge: the verification_id works only with a proof of it. */
  jkt: string | null;
  method: StepUpMethod;
  status: string;
  expires_at: Date;
  live: boolean;
}

/** The workflow-facing flow id of a challenge's code in `one_time_tokens.flow_id`. */
export const stepUpFlowId = (sessionId: string, challengeId: string) => `step-up:${sessionId}/${challengeId}`;

/** A step-up code is hashed with its challenge id, so equal codes of two challenges never collide. */
export function stepUpCodeHash(challengeId: string, code: string): Buffer {
  return hashOpaque(`${challengeId}:${code.replace(/\s+/g, '')}`);
}

/** The verification_id handed to the client: 256 random bits. */
export const newVerificationId = () => `vf_${randomBytes(32).toString('base64url')}`;

export const looksLikeVerificationId = (s: string) => /^vf_[A-Za-z0-9_-]{43}$/.test(s);

export const sameBytes = (a: Buffer, b: Buffer) => a.length === b.length && timingSafeEqual(a, b);

export function stepUpRequired(verificationId: string, method: StepUpMethod, expiresAt: Date): AppError {
  return new AppError(
    'step_up_required',
    method === 'totp' ? 'this device is new: confirm with a code from your authenticator app' : 'this device is new: confirm with the code we e-mailed you',
    {
      verification_id: verificationId,
      method,
      expires_at: new Date(expiresAt).toISOString(),
    },
  );
}

/** Ends a session's pending challenges and voids their codes. */
export async function endChallenges(sequelize: Sequelize, t: Transaction, sessionId: string, status: 'failed' | 'expired'): Promise<void> {
  await sequelize.query(`UPDATE step_up_challenges SET status = $2, finished_at = now() WHERE session_id = $1 AND status = 'pending'`, {
    bind: [sessionId, status],
    transaction: t,
  });
  await sequelize.query(
    `UPDATE one_time_tokens SET superseded_at = now()
      WHERE purpose = 'step_up' AND flow_id LIKE $1 AND used_at IS NULL AND superseded_at IS NULL`,
    { bind: [`step-up:${sessionId}/%`], transaction: t },
  );
}

/** The challenge row is not there (yet): the refresh transaction commits just after starting the flow. */
export class ChallengeNotCommittedError extends Error {
  constructor() {
    super('the step-up challenge is not committed (yet)');
    this.name = 'ChallengeNotCommittedError';
  }
}

export class StepUpCodes {
  constructor(
    private readonly sequelize: Sequelize,
    private readonly outbox: Outbox,
  ) {}

  /** Issues and e-mails the code; a challenge that is no longer pending (or expired) gets none. */
  async issue(key: string, input: { userId: string; sessionId: string; challengeId: string }): Promise<{ sent: boolean }> {
    if (await this.outbox.isSent(key)) return { sent: false };
    const [ch] = await this.sequelize.query<{ status: string; label: string | null; expires_at: Date }>(
      `SELECT status, label, expires_at FROM step_up_challenges WHERE id = $1`,
      { bind: [input.challengeId], type: QueryTypes.SELECT },
    );
    if (!ch) throw new ChallengeNotCommittedError();
    if (ch.status !== 'pending' || new Date(ch.expires_at).getTime() <= Date.now()) return { sent: false };
    const code = numericCode(8);
    await storeToken(this.sequelize, {
      userId: input.userId,
      purpose: 'step_up',
      tokenHash: stepUpCodeHash(input.challengeId, code),
      flowId: stepUpFlowId(input.sessionId, input.challengeId),
      expiresAt: new Date(ch.expires_at),
      supersedeFlowPrefix: `step-up:${input.sessionId}/`,
    });
    const sent = await this.outbox.sendToUser(key, {
      userId: input.userId,
      template: 'step_up_code',
      params: { code, device: ch.label ?? 'unknown device', expiresAt: new Date(ch.expires_at).toISOString() },
    });
    return { sent };
  }
}

/**
 * The e-mailed code of a step-up challenge (the step-up flow's activity half; the challenge
 * itself and its verification are domain/sessions/devices.ts). 8 digits, stored as a hash salted
 * with the challenge id; earlier codes of the session are superseded; e-mailed once per outbox key
 * with the device's label.
 */
import { QueryTypes, Sequelize } from 'sequelize';
import { numericCode } from '../../crypto/opaque-tokens';
import { storeToken } from '../one-time-tokens';
import type { Outbox } from '../outbox';
import { stepUpCodeHash, stepUpFlowId } from './devices';

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
      userId: input.userId, purpose: 'step_up', tokenHash: stepUpCodeHash(input.challengeId, code),
      flowId: stepUpFlowId(input.sessionId, input.challengeId), expiresAt: new Date(ch.expires_at),
      supersedeFlowPrefix: `step-up:${input.sessionId}/`,
    });
    const sent = await this.outbox.sendToUser(key, { userId: input.userId, template: 'step_up_code', params: { code, device: ch.label ?? 'unknown device', expiresAt: new Date(ch.expires_at).toISOString() } });
    return { sent };
  }
}

/**
 * Activities of the password-reset and step-up flows. Tokens and codes are generated here, stored
 * as hashes, and e-mailed through the notification outbox (once per workflow run + activity, even
 * when Temporal retries); what returns to the workflow is ids, times and outcomes.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { Op, QueryTypes } from 'sequelize';
import { completeStepUp, failStepUp } from '../domain/sessions/devices';
import { stepUpCodeHash, stepUpFlowId, StepUpFailure } from '../domain/sessions/step-up';
import { EmailOutbox, OneTimeToken, User } from '../platform/db/models';
import type { ActivityDeps } from './index';
import { createNotificationActivities, hashToken, idempotencyKey, numericCode } from './notification';

/** Statuses whose users may receive a reset e-mail on their own request. */
const RESETTABLE = new Set(['active', 'locked']);
/** An administrator's reset reaches any account that still exists. */
const ADMIN_RESETTABLE = new Set(['active', 'locked', 'suspended', 'pending_verification']);

export type ResetIssueResult = { sent: boolean; reason?: 'not_eligible' | 'interval' | 'daily_cap'; expiresAt: string | null };

export function createResetStepUpActivities(deps: ActivityDeps) {
  const { sequelize, config, logger } = deps;
  const { sendNotification } = createNotificationActivities(deps);

  /** The user's newest live reset token, if any (its expiry keeps the flow waiting). */
  async function liveResetExpiry(userId: string): Promise<string | null> {
    const live = await OneTimeToken.findOne({
      where: { user_id: userId, purpose: 'password_reset', used_at: null, superseded_at: null, expires_at: { [Op.gt]: new Date() } },
      order: [['created_at', 'DESC']],
    });
    return live ? live.expires_at.toISOString() : null;
  }

  return {
    /**
     * Issues a password-reset token (256 random bits, only its SHA-256 stored; earlier ones are
     * superseded) and e-mails it, unless the anti-spam rules say no: one e-mail per interval and
     * N per rolling day, counted from the tokens table so they hold across runs. `force` (an
     * administrator's reset) skips them. A retry of an attempt that already claimed its outbox
     * row skips them too (it counts as the same e-mail).
     */
    async issueResetToken(input: { userId: string; flowId: string; force: boolean; sequence: number }): Promise<ResetIssueResult> {
      const user = await User.findByPk(input.userId, { attributes: ['id', 'email', 'status'] });
      if (!user?.email || !(input.force ? ADMIN_RESETTABLE : RESETTABLE).has(user.status)) {
        return { sent: false, reason: 'not_eligible', expiresAt: null };
      }
      const key = idempotencyKey();
      const [claim, created] = await EmailOutbox.findOrCreate({ where: { idempotency_key: key }, defaults: { idempotency_key: key, user_id: input.userId, template: 'password_reset', status: 'pending' } });
      if (claim.status === 'sent') return { sent: true, expiresAt: await liveResetExpiry(input.userId) };
      if (created && !input.force) {
        const [stats] = await sequelize.query<{ last: Date | null; today: number }>(
          `SELECT max(created_at) AS last, count(*) FILTER (WHERE created_at > now() - interval '24 hours')::int AS today
             FROM one_time_tokens WHERE user_id = $1 AND purpose = 'password_reset'`,
          { bind: [input.userId], type: QueryTypes.SELECT },
        );
        const reason = stats?.last && Date.now() - new Date(stats.last).getTime() < config.PASSWORD_RESET_EMAIL_INTERVAL * 1000
          ? 'interval'
          : (stats?.today ?? 0) >= config.PASSWORD_RESET_EMAILS_PER_DAY ? 'daily_cap' : undefined;
        if (reason) {
          await claim.destroy();
          logger.info({ userId: input.userId, reason }, 'password reset e-mail not sent (anti-spam)');
          return { sent: false, reason, expiresAt: await liveResetExpiry(input.userId) };
        }
      }
      const token = randomBytes(32).toString('base64url');
      const expiresAt = new Date(Date.now() + config.PASSWORD_RESET_TTL * 1000);
      await sequelize.transaction(async (transaction) => {
        await OneTimeToken.update({ superseded_at: new Date() }, { where: { user_id: input.userId, purpose: 'password_reset', used_at: null, superseded_at: null }, transaction });
        await OneTimeToken.create({ id: randomUUID(), user_id: input.userId, purpose: 'password_reset', token_hash: hashToken(token), flow_id: input.flowId, expires_at: expiresAt }, { transaction });
      });
      // Same activity context, so the outbox row claimed above is the one this send completes.
      await sendNotification({ userId: input.userId, template: 'password_reset', params: {
        code: token,
        link: `${config.PUBLIC_BASE_URL}/reset-password?token=${encodeURIComponent(token)}`,
        expiresAt: expiresAt.toISOString(),
      } });
      return { sent: true, expiresAt: expiresAt.toISOString() };
    },

    /**
     * Generates the e-mailed code of a step-up challenge (8 digits), stores its hash (salted with
     * the challenge id; earlier codes of the session are superseded) and e-mails it with the
     * device's label. A challenge row that is not there yet (the refresh transaction commits just
     * after starting the flow) is retried; one that is no longer pending gets no code.
     */
    async issueStepUpCode(input: { userId: string; sessionId: string; challengeId: string }): Promise<{ sent: boolean }> {
      const key = idempotencyKey();
      const done = await EmailOutbox.findByPk(key);
      if (done?.status === 'sent') return { sent: false };
      const [ch] = await sequelize.query<{ status: string; label: string | null; expires_at: Date }>(
        `SELECT status, label, expires_at FROM step_up_challenges WHERE id = $1`,
        { bind: [input.challengeId], type: QueryTypes.SELECT },
      );
      if (!ch) throw ApplicationFailure.retryable('the step-up challenge is not committed (yet)', 'ChallengeMissing');
      if (ch.status !== 'pending' || new Date(ch.expires_at).getTime() <= Date.now()) return { sent: false };
      const code = numericCode(8);
      await sequelize.transaction(async (transaction) => {
        await OneTimeToken.update({ superseded_at: new Date() }, {
          where: { user_id: input.userId, purpose: 'step_up', used_at: null, superseded_at: null, flow_id: { [Op.like]: `step-up:${input.sessionId}/%` } },
          transaction,
        });
        await OneTimeToken.create({
          id: randomUUID(), user_id: input.userId, purpose: 'step_up', token_hash: stepUpCodeHash(input.challengeId, code),
          flow_id: stepUpFlowId(input.sessionId, input.challengeId), expires_at: new Date(ch.expires_at),
        }, { transaction });
      });
      const r = await sendNotification({ userId: input.userId, template: 'step_up_code', params: { code, device: ch.label ?? 'unknown device', expiresAt: new Date(ch.expires_at).toISOString() } });
      return { sent: r.sent };
    },

    async completeStepUp(input: { challengeId: string; newTokenId: string; newTokenHash: string }) {
      if (!/^[0-9a-f]{64}$/.test(input.newTokenHash)) throw ApplicationFailure.nonRetryable('bad token hash', 'InvalidInput');
      return completeStepUp(sequelize, input, config.REFRESH_TOKEN_TTL);
    },

    async failStepUp(input: { challengeId: string; reason: StepUpFailure }) {
      return failStepUp(sequelize, input);
    },
  };
}

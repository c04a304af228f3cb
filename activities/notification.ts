/**
 * Notification activities: read the recipient from Postgres, send through the mailer, and do it
 * once per (workflow run, activity) key even when Temporal retries the activity.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { Op } from 'sequelize';
import { EmailOutbox, OneTimeToken, User } from '../platform/db/models';
import type { ActivityDeps } from './index';
import { NotificationTemplate, render } from '../domain/mail-templates';

export function idempotencyKey(): string {
  const info = Context.current().info;
  const wf = info.workflowExecution;
  return `${wf?.workflowId ?? "standalone"}/${wf?.runId ?? info.activityId}/${info.activityId}`;
}

export const hashToken = (token: string) => createHash('sha256').update(token).digest();

type Purpose = 'email_verification' | 'password_reset' | 'step_up';

export function createNotificationActivities(deps: ActivityDeps) {
  const { mailer, config, logger } = deps;

  async function recipient(userId: string) {
    const user = await User.findByPk(userId, { attributes: ['id', 'email', 'name', 'status', 'registration_contested_at'] });
    if (!user || !user.email) throw ApplicationFailure.nonRetryable(`user ${userId} has no address`, 'NotFound');
    return user;
  }

  /** Sends once per key: an outbox row marks the send; a retry after success does nothing. */
  async function sendOnce(key: string, userId: string, template: NotificationTemplate, build: () => Promise<{ to: string; subject: string; text: string }>): Promise<boolean> {
    const [row] = await EmailOutbox.findOrCreate({ where: { idempotency_key: key }, defaults: { idempotency_key: key, user_id: userId, template, status: 'pending' } });
    if (row.status === 'sent') {
      logger.info({ key, template }, 'notification already sent; skipping retry');
      return false;
    }
    const msg = await build();
    const messageId = `<${createHash('sha256').update(key).digest('hex').slice(0, 32)}@authflow>`;
    try {
      await mailer.send({ ...msg, messageId });
    } catch (err) {
      // A permanent SMTP rejection (5xx) will not change on retry: fail the activity for good.
      // The text names the status only (the server's reply may quote the address).
      const code = (err as { responseCode?: number }).responseCode;
      if (code && code >= 500 && code < 600) throw ApplicationFailure.nonRetryable(`the mail server rejected the message (${code})`, 'MailRejected');
      throw err;
    }
    await row.update({ status: 'sent', message_id: messageId, sent_at: new Date() });
    logger.info({ userId, template }, 'notification sent');
    return true;
  }

  return {
    async sendNotification(input: { userId: string; template: NotificationTemplate; params?: Record<string, string> }): Promise<{ sent: boolean }> {
      const key = idempotencyKey();
      const sent = await sendOnce(key, input.userId, input.template, async () => {
        const user = await recipient(input.userId);
        const r = render(input.template, { ...(input.params ?? {}), name: user.name ?? '' });
        return { to: user.email!, ...r };
      });
      return { sent };
    },

    /**
     * Generates a single-use code, stores only its hash (superseding earlier codes of the same
     * purpose), and e-mails it. Returns ids and times only: the code never reaches history.
     */
    async issueOneTimeCode(input: { userId: string; purpose: Purpose; flowId: string; ttlSeconds: number; template: NotificationTemplate; sequence: number; params?: Record<string, string> }): Promise<{ tokenId: string; expiresAt: string; sent: boolean }> {
      const key = idempotencyKey();
      const existing = await EmailOutbox.findByPk(key);
      if (existing?.status === 'sent') {
        const tok = await OneTimeToken.findOne({ where: { flow_id: input.flowId, purpose: input.purpose, user_id: input.userId }, order: [['created_at', 'DESC']] });
        return { tokenId: tok?.id ?? '', expiresAt: (tok?.expires_at ?? new Date()).toISOString(), sent: false };
      }
      const user = await recipient(input.userId);
      const code = input.purpose === 'email_verification' ? randomBytes(24).toString('base64url') : numericCode(8);
      const tokenId = randomUUID();
      const expiresAt = new Date(Date.now() + input.ttlSeconds * 1000);
      await deps.sequelize.transaction(async (transaction) => {
        await OneTimeToken.update({ superseded_at: new Date() }, { where: { user_id: input.userId, purpose: input.purpose, used_at: null, superseded_at: null }, transaction });
        await OneTimeToken.create({ id: tokenId, user_id: input.userId, purpose: input.purpose, token_hash: hashToken(code), flow_id: input.flowId, expires_at: expiresAt }, { transaction });
      });
      const path = input.purpose === 'email_verification' ? 'verify-email' : input.purpose === 'password_reset' ? 'reset-password' : 'step-up';
      const link = `${config.PUBLIC_BASE_URL}/${path}?token=${encodeURIComponent(code)}`;
      const sent = await sendOnce(key, input.userId, input.template, async () => ({
        to: user.email!,
        // A contested registration kept no password: the mail says the click will ask for one.
        ...render(input.template, { ...(input.params ?? {}), name: user.name ?? '', code, link, expiresAt: expiresAt.toISOString(), ...(input.purpose === 'email_verification' && user.registration_contested_at ? { choosePassword: 'yes' } : {}) }),
      }));
      return { tokenId, expiresAt: expiresAt.toISOString(), sent };
    },

    /** Marks a flow's unused codes as superseded when the flow ends (expired or cancelled). */
    async expireOneTimeCodes(input: { userId: string; purpose: Purpose; flowId: string }): Promise<number> {
      const [n] = await OneTimeToken.update({ superseded_at: new Date() }, { where: { user_id: input.userId, purpose: input.purpose, flow_id: input.flowId, used_at: null, superseded_at: { [Op.is]: null } } });
      return n;
    },
  };
}

/** A uniformly random decimal code of `digits` digits. */
export function numericCode(digits: number): string {
  const max = 10 ** digits;
  const limit = Math.floor(0x1_0000_0000 / max) * max;
  for (;;) {
    const n = randomBytes(4).readUInt32BE(0);
    if (n < limit || max > 0x1_0000_0000) return String(n % max).padStart(digits, '0');
  }
}

/**
 * The e-mail outbox (`email_outbox`, this module is its one writer): every e-mail a flow sends is
 * claimed under an idempotency key (workflow run + activity), sent with a Message-ID derived from
 * that key, and marked `sent`, so a retried activity sends nothing twice and a duplicate that
 * slips through (crash between send and mark) carries the same Message-ID.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../platform/logger';
import type { MailMessage } from '../platform/mailer';
import { QueryTypes, type InferAttributes } from 'sequelize';
import { EmailOutbox, User } from '../platform/db/models';
import { AppError } from '../platform/errors';
import { NotificationTemplate, render } from './mail-templates';

/** The Message-ID of the e-mail sent under `key`: the same on every attempt. */
export function outboxMessageId(key: string): string {
  return `<${createHash('sha256').update(key).digest('hex').slice(0, 32)}@authflow>`;
}

/** A permanent SMTP rejection (5xx): it will not change on retry. The message names the status
 * only (the server's reply may quote the address). */
export class MailRejectedError extends Error {
  constructor(readonly responseCode: number) {
    super(`the mail server rejected the message (${responseCode})`);
    this.name = 'MailRejectedError';
  }
}

/** What the outbox needs of the mailer. */
export interface MailSender {
  send(msg: MailMessage): Promise<unknown>;
}

export type OutboxMessage = Omit<MailMessage, 'messageId'>;

/** The user an e-mail goes to, or 404 `not_found` when there is no such user or no address. */
export async function mailRecipient(userId: string): Promise<User> {
  const user = await User.findByPk(userId, { attributes: ['id', 'email', 'name', 'status', 'registration_contested_at', 'email_verified_at'] });
  if (!user || !user.email) throw new AppError('not_found', `user ${userId} has no address`);
  return user;
}

/** The name a mail may greet with: none until the address is verified, since whoever registered
 * an unverified address chose it (it may be a stranger's text aimed at the address's owner). */
export function greetingName(user: Pick<User, 'name' | 'email_verified_at'>): string {
  return user.email_verified_at ? (user.name ?? '') : '';
}

/** The templated e-mail to `user` (their name filled in, when it may be shown). */
export function userMessage(
  user: Pick<User, 'email' | 'name' | 'email_verified_at'>,
  template: NotificationTemplate,
  params?: Record<string, string>,
): OutboxMessage {
  return { to: user.email!, ...render(template, { ...(params ?? {}), name: greetingName(user) }) };
}

export class Outbox {
  constructor(
    private readonly mailer: MailSender,
    private readonly logger: Logger,
  ) {}

  /** The key's outbox row, created `pending` when new: one INSERT … ON CONFLICT DO NOTHING (a
   * second statement only when the key was claimed before, i.e. on a retry). */
  async claim(key: string, userId: string, template: string): Promise<{ row: EmailOutbox; created: boolean }> {
    const [inserted] = (await EmailOutbox.sequelize!.query(
      `INSERT INTO email_outbox (idempotency_key, user_id, template, status, created_at) VALUES ($1, $2, $3, 'pending', now())
       ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key, user_id, template, status, message_id, created_at, sent_at`,
      { bind: [key, userId, template], type: QueryTypes.SELECT },
    )) as Array<InferAttributes<EmailOutbox>>;
    if (inserted) return { row: EmailOutbox.build(inserted, { isNewRecord: false, raw: true }), created: true };
    const row = await EmailOutbox.findByPk(key);
    // Gone between the two statements (a concurrent release): claim afresh.
    if (!row) return this.claim(key, userId, template);
    return { row, created: false };
  }

  /** Whether the e-mail of `key` went out already. */
  async isSent(key: string): Promise<boolean> {
    return (await EmailOutbox.findByPk(key))?.status === 'sent';
  }

  /** Gives a claim up (nothing was sent under it; a later attempt may claim the key afresh). */
  async release(row: EmailOutbox): Promise<void> {
    await row.destroy();
  }

  /** Sends `msg` under `key` (whose row `row` is) and marks the row sent. Errors pass through as they are. */
  async deliver(key: string, row: EmailOutbox, msg: OutboxMessage): Promise<void> {
    await this.sendAndMark(key, row, msg, false);
  }

  /** Sends `msg` under a claim the caller made (and checked is not sent yet) and marks it sent; a
   * permanent rejection is a `MailRejectedError`, as in `sendOnce`. */
  async sendClaimed(key: string, row: EmailOutbox, msg: OutboxMessage): Promise<void> {
    await this.sendAndMark(key, row, msg, true);
  }

  /**
   * Sends once per key: an outbox row marks the send; a retry after success does nothing and
   * returns false. A permanent rejection is a `MailRejectedError`.
   */
  async sendOnce(key: string, userId: string, template: NotificationTemplate, build: () => Promise<OutboxMessage>): Promise<boolean> {
    const { row } = await this.claim(key, userId, template);
    if (row.status === 'sent') {
      this.logger.info({ key, template }, 'notification already sent; skipping retry');
      return false;
    }
    const msg = await build();
    await this.sendAndMark(key, row, msg, true);
    this.logger.info({ userId, template }, 'notification sent');
    return true;
  }

  /** A templated e-mail to the user (their name filled in), once per key. */
  async sendToUser(key: string, input: { userId: string; template: NotificationTemplate; params?: Record<string, string> }): Promise<boolean> {
    return this.sendOnce(key, input.userId, input.template, async () => userMessage(await mailRecipient(input.userId), input.template, input.params));
  }

  private async sendAndMark(key: string, row: EmailOutbox, msg: OutboxMessage, rejectPermanently: boolean): Promise<void> {
    const messageId = outboxMessageId(key);
    try {
      await this.mailer.send({ ...msg, messageId });
    } catch (err) {
      const code = (err as { responseCode?: number }).responseCode;
      if (rejectPermanently && code && code >= 500 && code < 600) throw new MailRejectedError(code);
      throw err;
    }
    await row.update({ status: 'sent', message_id: messageId, sent_at: new Date() });
  }
}

/**
 * Activities of the notification flow (and the plain e-mails of the other flows): a templated
 * e-mail to a user, sent once per (workflow run, activity) key even when Temporal retries.
 */
import type { NotificationTemplate } from '../domain/mail-templates';
import type { ActivityDeps } from './deps';
import { createOutbox, idempotencyKey, mailFailure } from './outbox';

export function createNotificationActivities(deps: ActivityDeps) {
  const outbox = createOutbox(deps);
  return {
    async sendNotification(input: { userId: string; template: NotificationTemplate; params?: Record<string, string> }): Promise<{ sent: boolean }> {
      const sent = await outbox.sendToUser(idempotencyKey(), input).catch(mailFailure);
      return { sent };
    },
  };
}

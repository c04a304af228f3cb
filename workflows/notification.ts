/**
 * The notification workflow: one e-mail to one user, sent by an idempotent activity that reads
 * the recipient from Postgres (the address never enters workflow history). Other flows reuse the
 * same activity; this workflow is for one-off notices the API sends.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { mailActivity } from './options';

/** The templates the notification activity renders (domain/mail-templates.ts). */
type NotificationTemplate = Parameters<Activities['sendNotification']>[0]['template'];

const { sendNotification } = proxyActivities<Activities>(mailActivity);

export interface NotificationInput {
  userId: string;
  template: NotificationTemplate;
  /** Non-secret values shown in the message (never codes, tokens or passwords). */
  params?: Record<string, string>;
}

export async function notificationWorkflow(input: NotificationInput): Promise<{ sent: boolean }> {
  const result = await sendNotification(input);
  return { sent: result.sent };
}

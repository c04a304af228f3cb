/**
 * Webhook delivery (`webhook-delivery:<deliveryId>`): one event to one subscription. Tries the
 * signed POST until a 2xx, with backoff for `retryForSeconds` (WEBHOOK_RETRY_SECONDS, a day);
 * then, or at once for a refused target, parks the delivery as failed and fails the run
 * (`WebhookParked`), so it shows as Failed in the Temporal UI and as `failed` in the admin API.
 * The body and the secret never enter history: the activity reads them by the delivery id.
 */
import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { dbActivity, webhookActivity } from './options';

export interface WebhookDeliveryInput {
  deliveryId: string;
  retryForSeconds: number;
  initialRetrySeconds: number;
}

export interface WebhookDeliveryResult {
  status: 'delivered' | 'gone';
  httpStatus?: number;
}

const { parkWebhookDelivery } = proxyActivities<Activities>(dbActivity);

export async function webhookDeliveryWorkflow(input: WebhookDeliveryInput): Promise<WebhookDeliveryResult> {
  const { deliverWebhook } = proxyActivities<Activities>(webhookActivity(input.retryForSeconds, input.initialRetrySeconds));
  try {
    return await deliverWebhook({ deliveryId: input.deliveryId });
  } catch (err) {
    const cause = err instanceof ActivityFailure ? err.cause : err;
    const reason = cause instanceof Error ? cause.message : String(cause);
    await parkWebhookDelivery({ deliveryId: input.deliveryId, reason });
    throw ApplicationFailure.nonRetryable(`webhook delivery parked as failed: ${reason}`, 'WebhookParked');
  }
}

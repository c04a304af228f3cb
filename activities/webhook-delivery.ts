/**
 * Activities of the webhook delivery flow: one signed POST per try (Standard Webhooks headers,
 * the delivery id as `webhook-id`), and parking a delivery that ran out of tries. The rules are
 * domain/webhooks.ts; the HTTP and its target guard platform/webhook-http.ts.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { signWebhook } from '../crypto/standard-webhooks';
import { WebhookService } from '../domain/webhooks';
import { postWebhook, WebhookTargetRefused } from '../platform/webhook-http';
import { VaultWebhookSecrets } from '../platform/webhook-secrets';
import type { ActivityDeps } from './deps';

export function createWebhookDeliveryActivities(deps: ActivityDeps) {
  const { config } = deps;
  const webhooks = new WebhookService(deps.sequelize, new VaultWebhookSecrets(deps.vault), config.WEBHOOK_PRIVATE_HOSTS, config.WEBHOOK_SECRET_OVERLAP_SECONDS);
  const http = { timeoutMs: config.WEBHOOK_TIMEOUT_MS, privateHosts: config.WEBHOOK_PRIVATE_HOSTS, caFile: config.WEBHOOK_CA_FILE };
  return {
    /** One try: 2xx → delivered; anything else is thrown (the workflow's retry policy tries again). */
    async deliverWebhook(input: { deliveryId: string }): Promise<{ status: 'delivered' | 'gone'; httpStatus?: number }> {
      const d = await webhooks.forDelivery(input.deliveryId);
      if (!d) return { status: 'gone' };
      const timestamp = Math.floor(Date.now() / 1000);
      // One signature per live secret (during a rotation's overlap the old one too), space-separated.
      const signature = d.secrets.map((secret) => signWebhook(secret, d.id, timestamp, d.body)).join(' ');
      const headers = { 'webhook-id': d.id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signature };
      let status: number;
      try {
        ({ status } = await postWebhook(d.url, headers, d.body, http));
      } catch (err) {
        const message = (err as Error).message;
        await webhooks.failedTry(d.id, message);
        if (err instanceof WebhookTargetRefused) throw ApplicationFailure.nonRetryable(message, 'WebhookTargetRefused');
        throw ApplicationFailure.retryable(message, 'WebhookUnreachable');
      }
      if (status >= 200 && status < 300) {
        await webhooks.finish(d.id, 'delivered');
        return { status: 'delivered', httpStatus: status };
      }
      await webhooks.failedTry(d.id, `HTTP ${status}`);
      throw ApplicationFailure.retryable(`the endpoint answered HTTP ${status}`, 'WebhookRejected');
    },

    /** Parks a delivery as failed (the tries are over); idempotent. */
    async parkWebhookDelivery(input: { deliveryId: string; reason: string }): Promise<void> {
      await webhooks.finish(input.deliveryId, 'failed', input.reason);
    },
  };
}

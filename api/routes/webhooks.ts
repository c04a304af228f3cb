/**
 * Webhook subscriptions (admin, live session with a second factor): subscribe an HTTPS endpoint
 * to event types (the signing secret is answered once), list, remove, and read a subscription's
 * deliveries with their status (pending, delivered, failed after a day of retries). The rules:
 * domain/webhooks.ts; the delivery flow: workflows/webhook-delivery.ts.
 */
import Router from '@koa/router';
import { z } from 'zod';
import { WEBHOOK_EVENT_TYPES, type WebhookDelivery, type WebhookSubscription } from '../../domain/webhooks';
import type { AppDeps } from '../context';
import { requestMeta, requireAuth, requireLiveAdmin, requireRole } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { describe } from '../openapi';
import { chars } from '../schemas';

const EventType = z.enum(WEBHOOK_EVENT_TYPES as [string, ...string[]]);
const SubscribeBody = z
  .object({
    url: chars(9, 2000)
      .regex(/^https:\/\/[^\s@#/?]+(?:[/?][^\s@#]*)?$/, 'an https:// URL without credentials or fragment')
      .describe(
        'an https:// URL without credentials or fragment whose host is a public address or name (WEBHOOK_PRIVATE_HOSTS allows named exceptions): others are 400',
      ),
    event_types: z.array(EventType).min(1).max(WEBHOOK_EVENT_TYPES.length),
  })
  .strict();
const Id = z.object({ id: z.string().uuid() });
const DeliveriesQuery = z
  .object({ status: z.enum(['pending', 'delivered', 'failed']).optional(), limit: z.coerce.number().int().min(1).max(100).default(20) })
  .strict();
const SubscriptionSchema = z.object({ id: z.string().uuid(), url: z.string(), event_types: z.array(z.string()), created_at: z.string() });
const DeliverySchema = z.object({
  id: z.string().describe('the webhook-id header of every try'),
  event_type: z.string(),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number().int(),
  last_error: z.string().nullable(),
  created_at: z.string(),
  finished_at: z.string().nullable(),
});

const subscriptionOut = (s: WebhookSubscription) => ({ id: s.id, url: s.url, event_types: s.event_types, created_at: new Date(s.created_at).toISOString() });
const deliveryOut = (d: WebhookDelivery) => ({
  id: d.id,
  event_type: d.event_type,
  status: d.status,
  attempts: d.attempts,
  last_error: d.last_error,
  created_at: new Date(d.created_at).toISOString(),
  finished_at: d.finished_at ? new Date(d.finished_at).toISOString() : null,
});

export function webhooksRouter(deps: AppDeps): Router {
  const r = new Router({ prefix: '/v1/admin/webhooks' });
  r.use(requireAuth(deps.tokens), requireRole('admin'), requireLiveAdmin(deps));

  describe('post', '/v1/admin/webhooks', {
    summary: 'Subscribe an HTTPS endpoint to event types; the signing secret (Standard Webhooks, whsec_…) is in this answer only',
    description:
      `Event types: ${WEBHOOK_EVENT_TYPES.join(', ')}. Each event is POSTed with the headers webhook-id (stable across retries: deduplicate by it), ` +
      'webhook-timestamp and webhook-signature, body {type, timestamp, data: {user_id, audit_event_id}}; a non-2xx answer is retried with backoff for WEBHOOK_RETRY_SECONDS, then the delivery is parked as failed.',
    tags: ['admin'],
    auth: 'admin',
    body: SubscribeBody,
    responses: {
      201: { description: 'subscribed', schema: z.object({ webhook: SubscriptionSchema, secret: z.string().describe('shown once') }) },
    },
  });
  r.post('/', async (ctx) => {
    const body = parse(SubscribeBody, ctx.request.body);
    const { subscription, secret } = await deps.webhooks.subscribe({ url: body.url, eventTypes: body.event_types }, requestMeta(ctx));
    ctx.status = 201;
    ctx.body = { webhook: subscriptionOut(subscription), secret };
  });

  describe('get', '/v1/admin/webhooks', {
    summary: 'The live subscriptions, newest first',
    tags: ['admin'],
    auth: 'admin',
    responses: { 200: { description: 'subscriptions', schema: z.object({ webhooks: z.array(SubscriptionSchema) }) } },
  });
  r.get('/', async (ctx) => {
    ctx.body = { webhooks: (await deps.webhooks.list()).map(subscriptionOut) };
  });

  describe('delete', '/v1/admin/webhooks/:id', {
    summary: 'Remove a subscription: no new deliveries, pending ones end as failed, its secret leaves Vault',
    tags: ['admin'],
    auth: 'admin',
    params: Id,
    responses: { 204: { description: 'removed' }, 404: { description: 'no such live subscription' } },
  });
  r.delete('/:id', async (ctx) => {
    const { id } = parse(Id, ctx.params, 'path');
    await deps.webhooks.remove(id, requestMeta(ctx));
    ctx.status = 204;
  });

  describe('post', '/v1/admin/webhooks/:id/secret', {
    summary: 'Rotate the signing secret: the new one is in this answer only; the old one signs beside it until previous_valid_until',
    description:
      'During the overlap (WEBHOOK_SECRET_OVERLAP_SECONDS, a day) every delivery carries two signatures in webhook-signature, one per secret, so a receiver verifies with either and can switch without losing a message.',
    tags: ['admin'],
    auth: 'admin',
    params: Id,
    responses: {
      200: { description: 'rotated', schema: z.object({ secret: z.string().describe('shown once'), previous_valid_until: z.string() }) },
      404: { description: 'no such live subscription' },
    },
  });
  r.post('/:id/secret', async (ctx) => {
    const { id } = parse(Id, ctx.params, 'path');
    const { secret, previousValidUntil } = await deps.webhooks.rotateSecret(id, requestMeta(ctx));
    ctx.body = { secret, previous_valid_until: previousValidUntil.toISOString() };
  });

  describe('get', '/v1/admin/webhooks/:id/deliveries', {
    summary: "A subscription's deliveries, newest first, by status (failed: parked after the retries)",
    tags: ['admin'],
    auth: 'admin',
    params: Id,
    query: DeliveriesQuery,
    responses: { 200: { description: 'deliveries', schema: z.object({ deliveries: z.array(DeliverySchema) }) }, 404: { description: 'no such subscription' } },
  });
  r.get('/:id/deliveries', async (ctx) => {
    const { id } = parse(Id, ctx.params, 'path');
    const q = parse(DeliveriesQuery, ctx.query, 'query');
    ctx.body = { deliveries: (await deps.webhooks.deliveries(id, q)).map(deliveryOut) };
  });

  return r;
}

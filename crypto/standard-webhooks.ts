/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): a secret `whsec_<base64>`,
 * and for each message the `webhook-signature` header `v1,<base64 HMAC-SHA256(key,
 * "<webhook-id>.<webhook-timestamp>.<body>")>`. Receivers verify with any library of the spec
 * (the `standardwebhooks` package in webhooks.test.ts). Pure: no I/O, imports nothing of ours.
 */
import { createHmac, randomBytes } from 'node:crypto';

export const WEBHOOK_SECRET_PREFIX = 'whsec_';

/** A new signing secret: 32 random bytes. */
export function newWebhookSecret(): string {
  return WEBHOOK_SECRET_PREFIX + randomBytes(32).toString('base64');
}

/** The `webhook-signature` value of one message. */
export function signWebhook(secret: string, id: string, timestampSeconds: number, body: string): string {
  if (!secret.startsWith(WEBHOOK_SECRET_PREFIX)) throw new Error('not a whsec_ secret');
  const key = Buffer.from(secret.slice(WEBHOOK_SECRET_PREFIX.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64')}`;
}

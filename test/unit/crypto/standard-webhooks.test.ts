import { Webhook } from 'standardwebhooks';
import { newWebhookSecret, signWebhook } from '../../../crypto/standard-webhooks';

test('signatures verify with the standardwebhooks library, and only for the same id, timestamp, body and secret', () => {
  const secret = newWebhookSecret();
  const ts = Math.floor(Date.now() / 1000);
  const body = JSON.stringify({ type: 'user.registered', timestamp: new Date().toISOString(), data: { user_id: 'u1' } });
  const headers = { 'webhook-id': 'msg_1_abc', 'webhook-timestamp': String(ts), 'webhook-signature': signWebhook(secret, 'msg_1_abc', ts, body) };
  expect(new Webhook(secret).verify(body, headers)).toMatchObject({ type: 'user.registered' });
  expect(() => new Webhook(secret).verify(body, { ...headers, 'webhook-id': 'msg_2_abc' })).toThrow();
  expect(() => new Webhook(secret).verify(`${body} `, headers)).toThrow();
  expect(() => new Webhook(newWebhookSecret()).verify(body, headers)).toThrow();
  expect(() => signWebhook('not-a-secret', 'x', ts, body)).toThrow(/whsec_/);
});

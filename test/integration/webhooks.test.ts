/**
 * Durable webhooks (issue 19 item 11) over the real stack, with a local HTTPS receiver that fails
 * and recovers: events leave through the flow outbox in the change's transaction, are delivered
 * by a workflow, signed per Standard Webhooks (verified here with the `standardwebhooks` package),
 * retried with backoff under one stable webhook-id, parked as failed after WEBHOOK_RETRY_SECONDS
 * (15 s in test/env/webhooks.json; a day by default), visible in the admin API and as a Failed run
 * in Temporal. Targets on private addresses are refused; secrets live in Vault only; erasure
 * drops a deleted user's pending deliveries.
 */
import type { Client } from '@temporalio/client';
import { Webhook } from 'standardwebhooks';
import { makeAdmin } from '../helpers/ops';
import { api, query, stackInfo, until, uniqueEmail, vaultRoot } from '../helpers/stack';
import { login, registerAndVerify } from '../helpers/users';
import { startReceiver } from '../helpers/webhook-tls';
import { WEBHOOK_EVENTS, WEBHOOK_EVENT_TYPES } from '../../domain/webhooks';
import { stackClients, type StackClients } from '../replay/stack-codec';

jest.setTimeout(120_000);

let token: () => Promise<string>;
let clients: StackClients;
let temporal: Client;
const cleanups: Array<() => Promise<unknown>> = [];
beforeAll(async () => {
  const a = await makeAdmin();
  token = () => a.token();
  clients = await stackClients(stackInfo());
  temporal = clients.client;
});
afterAll(async () => {
  for (const c of cleanups) await c().catch(() => undefined);
  await clients?.close();
});

const admin = async (method: string, path: string, body?: unknown) => api(method, `/v1/admin/webhooks${path}`, { token: await token(), body });
async function subscribe(url: string, eventTypes: string[]) {
  const r = await admin('POST', '', { url, event_types: eventTypes });
  expect(r.status).toBe(201);
  cleanups.push(() => admin('DELETE', `/${r.body.webhook.id}`));
  return r.body as { webhook: { id: string; url: string; event_types: string[] }; secret: string };
}
async function receiver(status?: (n: number) => number) {
  const rcv = await startReceiver(stackInfo().dataDir, status);
  cleanups.push(() => rcv.close());
  return rcv;
}
const register = async (email: string) => api('POST', '/v1/auth/register', { body: { email, password: 'marble-falcon-harvest-39' } });
const deliveriesOf = async (subId: string, status = '') =>
  (await admin('GET', `/${subId}/deliveries${status ? `?status=${status}` : ''}`)).body.deliveries as any[];

test('an event reaches a receiver that fails twice and recovers: three tries under one webhook-id, each signed, then delivered', async () => {
  const rcv = await receiver((n) => (n <= 2 ? 503 : 204));
  const sub = await subscribe(rcv.url, ['user.registered']);
  expect(sub.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
  const email = uniqueEmail('hooked');
  const reg = await register(email);
  await until('three tries', async () => rcv.received.length >= 3, 30_000);
  const ids = new Set(rcv.received.map((r) => r.headers['webhook-id']));
  expect(ids.size).toBe(1);
  const wh = new Webhook(sub.secret);
  for (const r of rcv.received) {
    const payload = wh.verify(r.body, r.headers) as any;
    expect(payload).toMatchObject({ type: 'user.registered', data: { user_id: reg.body.user.id } });
    // Ids only: the address never leaves in a webhook.
    expect(r.body).not.toContain(email);
  }
  // A tampered body or another secret does not verify.
  const last = rcv.received[2];
  expect(() => wh.verify(last.body.replace('user.registered', 'user.deleted'), last.headers)).toThrow();
  expect(() => new Webhook('whsec_' + Buffer.alloc(32, 7).toString('base64')).verify(last.body, last.headers)).toThrow();
  // Backoff: the second wait is longer than the first.
  const [a, b, c] = rcv.received.map((r) => r.at);
  expect(c - b).toBeGreaterThan(b - a);
  const [d] = await until('the delivery to be delivered', async () => {
    const list = await deliveriesOf(sub.webhook.id, 'delivered');
    return list.length ? list : undefined;
  });
  expect(d).toMatchObject({ id: [...ids][0], event_type: 'user.registered', status: 'delivered', attempts: 3, finished_at: expect.any(String) });
  expect((await temporal.workflow.getHandle(`webhook-delivery:${d.id}`).describe()).status.name).toBe('COMPLETED');
});

test('a receiver that never recovers: the delivery is parked as failed after the retry period, and the run is Failed in Temporal', async () => {
  const rcv = await receiver(() => 500);
  const sub = await subscribe(rcv.url, ['user.password_changed']);
  const u = await registerAndVerify();
  const t = await login(u.email, u.password);
  expect(
    (await api('PUT', '/v1/me/password', { token: t.access_token, body: { current_password: u.password, new_password: 'glacier-tulip-kestrel-58' } })).status,
  ).toBeLessThan(300);
  const [d] = await until(
    'the delivery to be parked',
    async () => {
      const list = await deliveriesOf(sub.webhook.id, 'failed');
      return list.length ? list : undefined;
    },
    60_000,
  );
  expect(d.attempts).toBeGreaterThanOrEqual(3);
  expect(d.last_error).toMatch(/HTTP 500/);
  const desc = await temporal.workflow.getHandle(`webhook-delivery:${d.id}`).describe();
  expect(desc.status.name).toBe('FAILED');
  expect(rcv.received.every((r) => r.headers['webhook-id'] === d.id)).toBe(true);
});

test('only subscribed types leave: a sign-in writes no outbox row, and a removed subscription gets nothing more; its secret leaves Vault', async () => {
  const rcv = await receiver();
  const sub = await subscribe(rcv.url, ['user.registered']);
  const secretPath = `authflow/webhooks/${sub.webhook.id}`;
  expect((await vaultRoot().kvGet(secretPath))?.secret).toBe(sub.secret);
  // Not in Postgres.
  expect(JSON.stringify(await query('SELECT * FROM webhook_subscriptions WHERE id = $1', [sub.webhook.id]))).not.toContain(sub.secret.slice(6, 30));
  const u = await registerAndVerify();
  const before = Number((await query(`SELECT count(*) AS n FROM flow_outbox WHERE kind = 'webhook.event'`))[0].n);
  await login(u.email, u.password);
  expect(Number((await query(`SELECT count(*) AS n FROM flow_outbox WHERE kind = 'webhook.event'`))[0].n)).toBe(before);
  expect((await admin('GET', '')).body.webhooks.map((w: any) => w.id)).toContain(sub.webhook.id);
  expect((await admin('DELETE', `/${sub.webhook.id}`)).status).toBe(204);
  expect((await admin('DELETE', `/${sub.webhook.id}`)).status).toBe(404);
  expect(await vaultRoot().kvGet(secretPath)).toBeNull();
  const got = rcv.received.length;
  await register(uniqueEmail('after-removal'));
  await new Promise((r) => setTimeout(r, 2500));
  expect(rcv.received.length).toBe(got);
});

test('a rotated secret: during the overlap every delivery is signed with both, after it with the new one only', async () => {
  const rcv = await receiver();
  const sub = await subscribe(rcv.url, ['user.registered']);
  const rot = await admin('POST', `/${sub.webhook.id}/secret`);
  expect(rot.status).toBe(200);
  expect(rot.body.secret).toMatch(/^whsec_/);
  expect(rot.body.secret).not.toBe(sub.secret);
  const until_ = Date.parse(rot.body.previous_valid_until);
  expect(until_ - Date.now()).toBeGreaterThan(2000);
  await register(uniqueEmail('rotation-overlap'));
  await until('a delivery during the overlap', async () => rcv.received.length >= 1, 30_000);
  const during = rcv.received[0];
  expect(during.headers['webhook-signature'].split(' ')).toHaveLength(2);
  expect(new Webhook(sub.secret).verify(during.body, during.headers)).toMatchObject({ type: 'user.registered' });
  expect(new Webhook(rot.body.secret).verify(during.body, during.headers)).toMatchObject({ type: 'user.registered' });
  await until('the overlap to end', async () => Date.now() > until_ + 200, 30_000);
  await register(uniqueEmail('rotation-after'));
  await until('a delivery after the overlap', async () => rcv.received.length >= 2, 30_000);
  const after = rcv.received[1];
  expect(after.headers['webhook-signature'].split(' ')).toHaveLength(1);
  expect(new Webhook(rot.body.secret).verify(after.body, after.headers)).toMatchObject({ type: 'user.registered' });
  expect(() => new Webhook(sub.secret).verify(after.body, after.headers)).toThrow();
  expect((await admin('POST', '/00000000-0000-4000-8000-000000000000/secret')).status).toBe(404);
  expect(await query(`SELECT 1 FROM audit_events WHERE type = 'webhook.secret_rotated' AND data->>'subscription_id' = $1`, [sub.webhook.id])).toHaveLength(1);
});

test('targets on private, loopback and link-local addresses, plain http, credentials and unknown types are refused', async () => {
  for (const url of [
    'https://127.0.0.1/hook',
    'https://10.1.2.3/hook',
    'https://192.168.1.1/hook',
    'https://169.254.169.254/latest/meta-data',
    'https://[::1]/hook',
    'https://[fd00::1]/hook',
    'https://100.64.0.1/hook',
    'https://localhost.localdomain.localhost/hook',
    'https://vault/hook',
    'http://hooks.example.com/hook',
    'https://user:pw@hooks.example.com/hook',
    'ftp://hooks.example.com/hook',
  ]) {
    const r = await admin('POST', '', { url, event_types: ['user.registered'] });
    expect([url, r.status, r.body.code]).toEqual([url, 400, 'validation_failed']);
  }
  const bad = await admin('POST', '', { url: 'https://hooks.example.com/hook', event_types: ['user.everything'] });
  expect(bad.status).toBe(400);
  const plain = await registerAndVerify();
  const userToken = (await login(plain.email, plain.password)).access_token;
  expect(
    (await api('POST', '/v1/admin/webhooks', { token: userToken, body: { url: 'https://hooks.example.com/x', event_types: ['user.registered'] } })).status,
  ).toBe(403);
});

test("erasure drops a deleted user's pending deliveries", async () => {
  const rcv = await receiver(() => 500);
  const sub = await subscribe(rcv.url, ['user.verified']);
  const u = await registerAndVerify();
  await until('a first failed try', async () => rcv.received.length >= 1, 30_000);
  const [pending] = await deliveriesOf(sub.webhook.id, 'pending');
  expect(pending).toBeDefined();
  expect((await api('DELETE', `/v1/admin/users/${u.user.id}`, { token: await makeAdmin().then((a) => a.token()) })).status).toBe(202);
  await until('the account to be erased', async () => (await query('SELECT status FROM users WHERE id = $1', [u.user.id]))[0].status === 'deleted', 30_000);
  expect(await query('SELECT 1 FROM webhook_deliveries WHERE id = $1', [pending.id])).toHaveLength(0);
  // The delivery's flow then finds nothing to send and ends.
  expect(await temporal.workflow.getHandle(`webhook-delivery:${pending.id}`).result()).toMatchObject({ status: 'gone' });
});

test("the database's audit → event mapping (the trigger's) is the one domain/webhooks.ts states", async () => {
  const types = [...Object.keys(WEBHOOK_EVENTS), 'login.succeeded', 'logout', 'role.granted', 'codec.decode'];
  const rows = await query<{ t: string; ev: string | null }>('SELECT t, authflow_webhook_event_type(t) AS ev FROM unnest($1::text[]) t', [types]);
  expect(Object.fromEntries(rows.map((r) => [r.t, r.ev]))).toEqual({
    ...WEBHOOK_EVENTS,
    'login.succeeded': null,
    logout: null,
    'role.granted': null,
    'codec.decode': null,
  });
  expect(WEBHOOK_EVENT_TYPES).toEqual([
    'session.new_device',
    'session.step_up_failed',
    'session.token_reused',
    'user.deleted',
    'user.locked',
    'user.mfa_changed',
    'user.password_changed',
    'user.registered',
    'user.suspended',
    'user.verified',
  ]);
});

/** Forgotten password over the real stack (issue 6): forgot → e-mail (maildev) → reset, the
 * workflow `password-reset:<userId>`, anti-spam caps, token reuse/expiry/supersession.
 * test/env/reset-stepup.json: token TTL 12 s, one e-mail per 2 s, 2 per day. */
import { Client, Connection } from '@temporalio/client';
import { createHash } from 'node:crypto';
import { api, mailsTo, sleep, stackInfo, uniqueEmail, waitForMail, query } from '../helpers/stack';
import { codeFrom, login, registerAndVerify } from '../helpers/users';

const NEW_PASSWORD = 'copper-saffron-windmill-81';
const TTL_MS = 12_000;
const INTERVAL_MS = 2_000;

let temporal: Client;
let connection: Connection;
beforeAll(async () => {
  connection = await Connection.connect({ address: stackInfo().urls.temporal });
  temporal = new Client({ connection, namespace: 'default' });
});
afterAll(async () => {
  await connection?.close();
});

const forgot = (email: string) => api('POST', '/v1/auth/password/forgot', { body: { email } });
const reset = (token: string, new_password = NEW_PASSWORD) => api('POST', '/v1/auth/password/reset', { body: { token, new_password } });
const resetMails = (email: string) => mailsTo(email, /Reset your password/);

async function workflowStatus(workflowId: string): Promise<string> {
  return (await temporal.workflow.getHandle(workflowId).describe()).status.name;
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = await fn();
  while (!ok(v) && Date.now() < deadline) {
    await sleep(250);
    v = await fn();
  }
  return v;
}

/** Every string and byte field of a history (payload bytes decoded as UTF-8), to search for secrets. */
function historyText(node: unknown, out: string[] = []): string {
  if (node instanceof Uint8Array) out.push(Buffer.from(node).toString('utf8'));
  else if (typeof node === 'string') out.push(node);
  else if (node && typeof node === 'object') for (const v of Object.values(node)) historyText(v, out);
  return out.join('\n');
}

async function timed<T>(fn: () => Promise<T>): Promise<{ r: T; ms: number }> {
  const t0 = performance.now();
  const r = await fn();
  return { r, ms: performance.now() - t0 };
}

describe('forgot password', () => {
  test('answers 202 with the same body and comparable time for known, unknown and unverified addresses; only the account holder gets mail', async () => {
    const { email } = await registerAndVerify();
    const unknown = uniqueEmail('nobody');
    const pending = uniqueEmail('pending');
    await api('POST', '/v1/auth/register', { body: { email: pending, password: 'lantern-orchard-cobalt-17' } });
    await timed(() => forgot(uniqueEmail('warmup')));
    const known = await timed(() => forgot(email));
    const none = await timed(() => forgot(unknown));
    const unverified = await timed(() => forgot(pending));
    for (const a of [known, none, unverified]) {
      expect(a.r.status).toBe(202);
      expect(a.r.body).toEqual(known.r.body);
      expect(a.r.headers.get('content-type')).toBe(known.r.headers.get('content-type'));
    }
    expect(known.r.body).toEqual({ status: 'accepted' });
    // No lookup or workflow start happens before the answer: comparable times whatever the account.
    for (const other of [none, unverified]) {
      expect(other.ms).toBeLessThan(known.ms * 3 + 25);
      expect(known.ms).toBeLessThan(other.ms * 3 + 25);
    }

    const mail = await waitForMail(email, /Reset your password/);
    expect(mail.text).toMatch(/reset-password\?token=/);
    await sleep(1000);
    expect(await mailsTo(unknown)).toHaveLength(0);
    expect(await resetMails(pending)).toHaveLength(0);
  });

  test('the OpenAPI document describes the reset, step-up and device endpoints', async () => {
    const doc = (await api('GET', '/openapi.json')).body;
    expect(doc.paths['/v1/auth/password/forgot'].post.responses['202']).toBeDefined();
    expect(doc.paths['/v1/auth/password/reset'].post.requestBody).toBeDefined();
    expect(doc.paths['/v1/auth/step-up/{verification_id}'].post.parameters[0]).toMatchObject({ name: 'verification_id', in: 'path' });
    expect(doc.paths['/v1/me/devices'].get.responses['200']).toBeDefined();
    expect(doc.paths['/v1/me/devices/{id}'].delete.responses['204']).toBeDefined();
  });

  test('malformed bodies are 400 problem+json', async () => {
    for (const body of [{}, { email: 'not-an-email' }, { email: 'a@b.test', extra: 1 }, { email: 42 }]) {
      const r = await forgot(body as never);
      expect(r.status).toBe(400);
      expect(r.body.code).toBe('validation_failed');
    }
  });
});

describe('password reset', () => {
  test('the full reset by e-mail: new password set, every session ended, "password changed" e-mailed, workflow completed', async () => {
    const { email, password, user } = await registerAndVerify();
    const a = await login(email, password);
    const b = await login(email, password);
    expect((await forgot(email)).status).toBe(202);
    const token = codeFrom((await waitForMail(email, /Reset your password/)).text);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // Only the hash is stored, under the flow's id.
    const rows = await query('SELECT token_hash, flow_id, used_at FROM one_time_tokens WHERE user_id = $1 AND purpose = $2', [user.id, 'password_reset']);
    expect(rows).toHaveLength(1);
    expect((rows[0].token_hash as Buffer).equals(createHash('sha256').update(token).digest())).toBe(true);
    expect(JSON.stringify(rows)).not.toContain(token);
    expect(rows[0].flow_id).toBe(`password-reset:${user.id}`);
    expect(await workflowStatus(`password-reset:${user.id}`)).toBe('RUNNING');

    // The policy applies, and a refused password leaves the token usable.
    const weak = await reset(token, 'password');
    expect(weak.status).toBe(400);
    expect(weak.body.code).toBe('validation_failed');

    // Two resets with one token at once: exactly one wins.
    const [r1, r2] = await Promise.all([reset(token), reset(token)]);
    expect([r1.status, r2.status].sort()).toEqual([204, 400]);
    expect([r1, r2].find((r) => r.status === 400)!.body.code).toBe('invalid_token');

    // Used: the token is dead.
    const again = await reset(token, 'another-fresh-passphrase-5');
    expect(again.status).toBe(400);
    expect(again.body.code).toBe('invalid_token');

    // Every session ended; the old password is refused, the new one works.
    for (const t of [a, b]) expect((await api('POST', '/v1/auth/refresh', { body: { refresh_token: t.refresh_token } })).status).toBe(401);
    expect((await api('POST', '/v1/auth/login', { body: { email, password } })).status).toBe(401);
    await login(email, NEW_PASSWORD);

    await waitForMail(email, /password was changed/);
    expect(
      await eventually(
        () => workflowStatus(`password-reset:${user.id}`),
        (s) => s === 'COMPLETED',
      ),
    ).toBe('COMPLETED');
    const ev = await query("SELECT data FROM audit_events WHERE user_id = $1 AND type = 'password.reset'", [user.id]);
    expect(ev).toHaveLength(1);
    expect(ev[0].data.sessions_ended).toBe(2);
    const sessions = await query('SELECT revoke_reason FROM sessions WHERE id = ANY($1::uuid[])', [
      [a, b].map((t) => JSON.parse(Buffer.from(t.access_token.split('.')[1], 'base64url').toString()).sid),
    ]);
    expect(sessions.map((s) => s.revoke_reason)).toEqual(['password_reset', 'password_reset']);
  });

  test('wrong and malformed tokens are 400 invalid_token; bad bodies are validation errors', async () => {
    for (const token of ['x', 'A'.repeat(43), '!'.repeat(43), 'B'.repeat(200)]) {
      const r = await reset(token);
      expect([token, r.status, r.body.code]).toEqual([token, 400, 'invalid_token']);
    }
    expect((await api('POST', '/v1/auth/password/reset', { body: { token: 'A'.repeat(43) } })).body.code).toBe('validation_failed');
    expect((await api('POST', '/v1/auth/password/reset', { body: { token: 5, new_password: NEW_PASSWORD } })).body.code).toBe('validation_failed');
  });

  test('a second request supersedes the first token; requests inside the interval and beyond the daily cap send nothing', async () => {
    const { email, user } = await registerAndVerify();
    expect((await forgot(email)).status).toBe(202);
    const first = codeFrom((await waitForMail(email, /Reset your password/)).text);
    // Inside the interval: accepted, nothing sent.
    expect((await forgot(email)).status).toBe(202);
    await sleep(INTERVAL_MS + 300);
    expect(await resetMails(email)).toHaveLength(1);
    // After the interval: a new token that supersedes the first.
    expect((await forgot(email)).status).toBe(202);
    const second = codeFrom((await waitForMail(email, /Reset your password/, 20000, 1)).text);
    expect(second).not.toBe(first);
    await sleep(INTERVAL_MS + 300);
    // Daily cap (2 in tests): accepted, nothing sent, and the second token stays valid.
    expect((await forgot(email)).status).toBe(202);
    await sleep(1500);
    expect(await resetMails(email)).toHaveLength(2);

    const old = await reset(first);
    expect(old.status).toBe(400);
    expect(old.body.code).toBe('invalid_token');
    const tokens = await query(
      'SELECT superseded_at IS NOT NULL AS superseded, used_at IS NOT NULL AS used FROM one_time_tokens WHERE user_id = $1 AND purpose = $2 ORDER BY created_at',
      [user.id, 'password_reset'],
    );
    expect(tokens).toEqual([
      { superseded: true, used: false },
      { superseded: false, used: false },
    ]);
    expect((await reset(second)).status).toBe(204);
    await waitForMail(email, /password was changed/);
    // One flow handled every request of this user.
    const runs = [];
    for await (const wf of temporal.workflow.list({ query: `WorkflowId = 'password-reset:${user.id}'` })) runs.push(wf);
    expect(runs.length).toBe(1);
  });

  test('an expired token is 400 invalid_token and the workflow ends at its timer', async () => {
    const { email, password, user } = await registerAndVerify();
    expect((await forgot(email)).status).toBe(202);
    const mail = await waitForMail(email, /Reset your password/);
    const token = codeFrom(mail.text);
    const issued = (await query('SELECT created_at, expires_at FROM one_time_tokens WHERE user_id = $1 AND purpose = $2', [user.id, 'password_reset']))[0];
    expect(new Date(issued.expires_at).getTime() - new Date(issued.created_at).getTime()).toBeGreaterThanOrEqual(TTL_MS - 1000);
    await sleep(Math.max(0, new Date(issued.expires_at).getTime() - Date.now()) + 500);
    const r = await reset(token);
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('invalid_token');
    expect(
      await eventually(
        () => workflowStatus(`password-reset:${user.id}`),
        (s) => s === 'COMPLETED',
      ),
    ).toBe('COMPLETED');
    // Nothing changed.
    await login(email, password);
    expect(await mailsTo(email, /password was changed/)).toHaveLength(0);
  });

  test('reset workflows are found under their business-key ids and by the UserId and Flow search attributes', async () => {
    const { email, user } = await registerAndVerify();
    expect((await forgot(email)).status).toBe(202);
    await waitForMail(email, /Reset your password/);
    const found = await eventually(
      async () => {
        const ids: Array<{ id: string; type: string }> = [];
        for await (const wf of temporal.workflow.list({
          query: `WorkflowId STARTS_WITH 'password-reset:' AND UserId = '${user.id}' AND Flow = 'password-reset'`,
        }))
          ids.push({ id: wf.workflowId, type: wf.type });
        return ids;
      },
      (ids) => ids.length > 0,
    );
    expect(found).toEqual([{ id: `password-reset:${user.id}`, type: 'passwordResetWorkflow' }]);
    // The history carries no token and no e-mail address.
    const history = historyText(await temporal.workflow.getHandle(`password-reset:${user.id}`).fetchHistory());
    expect(history).toContain('passwordResetWorkflow');
    const token = codeFrom((await resetMails(email))[0].text);
    expect(history).not.toContain(token);
    expect(history).not.toContain(email);
  });
});

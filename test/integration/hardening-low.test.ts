/**
 * Issue 14, finding 10 (the low items), each played as the attacker against the real stack: the
 * codec endpoint with a dead admin session or a demoted admin's still-valid JWT, the services'
 * Vault policies, /metrics without its token, a client-chosen request id, a stranger's text in the
 * name of an unverified registration, and the client_id claim of access tokens.
 */
import { decodeJwt } from 'jose';
import { api, mailsTo, metricsText, query, sleep, stackInfo, uniqueEmail, vaultRoot, waitForMail } from '../helpers/stack';
import { adminAccount, codeFrom, GOOD_PASSWORD, login, loginWithTotp, registerAndVerify } from '../helpers/users';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function adminSession() {
  const a = await adminAccount({ name: 'Low Items Operator' });
  return { userId: a.user.id, ...(await loginWithTotp(a.email, a.password, a.app)) };
}

const decode = (token: string) => api('POST', '/codec/decode', { body: { payloads: [] }, token, headers: { 'X-Namespace': 'default' } });

describe('codec endpoint: the admin check is live, like the admin routes', () => {
  test('an admin whose session was ended is refused while the JWT is still valid', async () => {
    const s = await adminSession();
    expect((await decode(s.access_token)).status).toBe(200);
    expect((await api('POST', '/v1/auth/logout', { body: { refresh_token: s.refresh_token } })).status).toBe(204);
    const r = await decode(s.access_token);
    expect(r.status).toBe(401);
    expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(r.body.code).toBe('unauthorized');
  });

  test('a demoted admin is refused while the JWT still says admin', async () => {
    const s = await adminSession();
    expect((await decode(s.access_token)).status).toBe(200);
    await query("UPDATE users SET roles = ARRAY['user'] WHERE id = $1", [s.userId]);
    // A removed role revokes the access tokens issued before (migration 012): the token that still
    // says admin opens nothing, not even as a user's.
    const r = await decode(s.access_token);
    expect([r.status, r.body.code]).toEqual([401, 'unauthorized']);
  });
});

describe('Vault policies grant what each service uses, nothing more', () => {
  const root = vaultRoot();
  /** A token with exactly the service's policy (what its AppRole login yields). */
  async function serviceToken(policy: 'authflow-api' | 'authflow-worker'): Promise<string> {
    const r = await root.req('POST', 'auth/token/create', { policies: [policy], no_default_policy: true, ttl: '10m' });
    return r.auth.client_token as string;
  }
  async function call(token: string, method: string, path: string, body?: unknown): Promise<number> {
    const res = await fetch(`${stackInfo().urls.vault}/v1/${path}`, {
      method,
      headers: { 'X-Vault-Token': token, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    await res.arrayBuffer();
    return res.status;
  }
  const plaintext = Buffer.from('JBSWY3DPEHPK3PXP').toString('base64');

  test('the worker cannot decrypt (or encrypt) TOTP secrets; what it uses still works', async () => {
    const api = await serviceToken('authflow-api');
    const enc = await root.req('POST', 'transit/encrypt/authflow-totp', { plaintext });
    const ciphertext = enc.data.ciphertext as string;
    const worker = await serviceToken('authflow-worker');
    expect(await call(worker, 'POST', 'transit/decrypt/authflow-totp', { ciphertext })).toBe(403);
    expect(await call(worker, 'POST', 'transit/encrypt/authflow-totp', { plaintext })).toBe(403);
    // The worker's own work: mail credentials, the key sets, backup data keys, the raft snapshot path.
    expect(await call(worker, 'GET', 'secret/data/authflow/smtp')).toBe(200);
    expect(await call(worker, 'GET', 'secret/data/authflow/codec-keys')).toBe(200);
    expect(await call(worker, 'POST', 'transit/datakey/plaintext/authflow-backups', { bits: 256 })).toBe(200);
    // The API enrols and checks TOTP: both directions work with its policy.
    expect(await call(api, 'POST', 'transit/encrypt/authflow-totp', { plaintext })).toBe(200);
    expect(await call(api, 'POST', 'transit/decrypt/authflow-totp', { ciphertext })).toBe(200);
    expect(await call(api, 'POST', 'transit/datakey/plaintext/authflow-backups', { bits: 256 })).toBe(403);
  });

  test('no `authflow-payloads` transit key: the codec keys are the KV secret, nothing wraps them', async () => {
    const res = await fetch(`${stackInfo().urls.vault}/v1/transit/keys/authflow-payloads`, { headers: { 'X-Vault-Token': root.token } });
    expect(res.status).toBe(404);
  });
});

describe('/metrics needs the metrics token', () => {
  test('without it, or with an access token, the public port does not serve metrics', async () => {
    const none = await api('GET', '/metrics');
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(String(none.body)).not.toMatch(/authflow_/);
    const { email, password } = await registerAndVerify();
    const user = await login(email, password);
    expect((await api('GET', '/metrics', { token: user.access_token })).status).toBe(401);
    expect((await api('GET', '/metrics', { headers: { Authorization: 'Bearer not-the-metrics-token-0123456789abcdef' } })).status).toBe(401);
    expect(await metricsText()).toMatch(/authflow_dependency_calls_total/);
  });
});

describe("request ids are the server's", () => {
  test('a client-sent X-Request-Id is neither echoed nor written to the audit trail', async () => {
    const chosen = 'attacker-chosen-id:00000000';
    const email = uniqueEmail('reqid');
    const r = await api('POST', '/v1/auth/register', { body: { email, password: GOOD_PASSWORD }, headers: { 'X-Request-Id': chosen } });
    expect(r.status).toBe(201);
    const id = r.headers.get('x-request-id')!;
    expect(id).not.toBe(chosen);
    expect(id).toMatch(UUID_RE);
    const events = await query<{ request_id: string | null }>('SELECT request_id FROM audit_events WHERE user_id = $1', [r.body.user.id]);
    expect(events.length).toBeGreaterThan(0);
    expect(events.map((e) => e.request_id)).not.toContain(chosen);
    expect(events.map((e) => e.request_id)).toContain(id);
    // Two requests with the same client id get two server ids.
    const again = await api('GET', '/healthz', { headers: { 'X-Request-Id': chosen } });
    expect(again.headers.get('x-request-id')).not.toBe(id);
  });
});

describe('user names', () => {
  test.each([
    ['a newline', 'Eve\nClick http://evil.example'],
    ['a carriage return', 'Eve\r\nBcc: x@evil.example'],
    ['a bidi override', 'Eve\u202Elpmaxe.live'],
    ['a zero-width joiner', 'E\u200Dve'],
    ['a line separator', 'Eve\u2028http://evil.example'],
    ['a NUL', 'Eve\u0000'],
    ['101 characters', 'x'.repeat(101)],
  ])('one printable line: a name with %s is refused with 400 problem+json', async (_what, name) => {
    const r = await api('POST', '/v1/auth/register', { body: { email: uniqueEmail('name'), password: GOOD_PASSWORD, name } });
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(r.body.code).toBe('validation_failed');
  });

  test('mail to an unverified address leaves the registrant-chosen name out; a verified account is greeted by name', async () => {
    const victim = uniqueEmail('victim');
    const bait = 'Your account is blocked, call +1 555 0100 or visit http://evil.example';
    const first = await api('POST', '/v1/auth/register', { body: { email: victim, password: GOOD_PASSWORD, name: bait } });
    expect(first.status).toBe(201);
    expect(first.body.user.name).toBe(bait);
    const mail = await waitForMail(victim, /Verify/);
    expect(mail.text).toMatch(/^Hello,/);
    // A second registration of the still-unverified address (contested): its mail has no name either.
    const second = await api('POST', '/v1/auth/register', { body: { email: victim, password: GOOD_PASSWORD, name: 'Another http://evil.example' } });
    expect(second.status).toBe(201);
    await sleep(1500);
    for (const m of await mailsTo(victim)) expect(m.text).not.toMatch(/evil\.example|555 0100/);

    const { email } = await registerAndVerify({ name: 'Ada Lovelace' });
    expect((await api('POST', '/v1/auth/password/forgot', { body: { email } })).status).toBe(202);
    const reset = await waitForMail(email, /Reset/);
    expect(reset.text).toMatch(/^Hello Ada Lovelace,/);
    expect(codeFrom(reset.text)).toBeTruthy();
  });
});

describe('access tokens carry client_id (RFC 9068)', () => {
  test('the issued token names the configured client and the API accepts it', async () => {
    const { email, password } = await registerAndVerify();
    const t = await login(email, password);
    expect(decodeJwt(t.access_token)).toMatchObject({ client_id: 'authflow-api' });
    expect((await api('GET', '/v1/me', { token: t.access_token })).status).toBe(200);
  });
});

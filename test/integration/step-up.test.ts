/** Device-bound refresh with step-up verification over the real stack (issue 6): known devices,
 * `401 step_up_required` from a new device, the `step-up:<sessionId>` workflow with an e-mailed
 * code (maildev) or a TOTP code, attempts, expiry, the many-devices rule, device list/forget, and
 * Temporal down. test/env/reset-stepup.json: step-up TTL 10 s, 3 attempts, K = 2 devices. */
import { ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { decodeJwt } from 'jose';
import { authenticator } from 'otplib';
import { api, mailsTo, sleep, stackInfo, vaultRoot, waitForMail, query } from '../helpers/stack';
import { codeFrom, login, registerAndVerify } from '../helpers/users';

const STEP_UP_TTL_MS = 10_000;
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';

let n = 0;
/** Request headers of one device (a client app install with its own X-Device-Id). */
function device(ua = FIREFOX, lang = 'en-US,en;q=0.9'): Record<string, string> {
  return { 'User-Agent': ua, 'Accept-Language': lang, 'X-Device-Id': `install-${Date.now().toString(36)}-${n++}` };
}

let temporal: Client;
let connection: Connection;
beforeAll(async () => {
  connection = await Connection.connect({ address: stackInfo().urls.temporal });
  temporal = new Client({ connection, namespace: 'default' });
});
afterAll(async () => {
  await connection?.close();
});

const refresh = (refresh_token: string, headers: Record<string, string> = {}) => api('POST', '/v1/auth/refresh', { body: { refresh_token }, headers });
const submit = (verificationId: string, code: string, headers: Record<string, string> = {}) =>
  api('POST', `/v1/auth/step-up/${verificationId}`, { body: { code }, headers });
const sid = (accessToken: string) => decodeJwt(accessToken).sid as string;
const stepUpMails = (email: string) => mailsTo(email, /Confirm a sign-in from a new device/);

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = await fn();
  while (!ok(v) && Date.now() < deadline) {
    await sleep(250);
    v = await fn();
  }
  return v;
}

async function workflowStatus(workflowId: string): Promise<string> {
  return (await temporal.workflow.getHandle(workflowId).describe()).status.name;
}

function historyText(node: unknown, out: string[] = []): string {
  if (node instanceof Uint8Array) out.push(Buffer.from(node).toString('utf8'));
  else if (typeof node === 'string') out.push(node);
  else if (node && typeof node === 'object') for (const v of Object.values(node)) historyText(v, out);
  return out.join('\n');
}

/** A user signed in from device A (a known device from then on). */
async function signedIn(headers = device()) {
  const u = await registerAndVerify();
  const tokens = await login(u.email, u.password, headers);
  return { ...u, tokens, headers };
}

/** A refresh from a new device: 401 step_up_required. */
async function stepUpFrom(refreshToken: string, headers: Record<string, string>) {
  const r = await refresh(refreshToken, headers);
  expect([r.status, r.body.code]).toEqual([401, 'step_up_required']);
  expect(r.headers.get('content-type')).toMatch(/problem\+json/);
  return r.body as { verification_id: string; method: 'email' | 'totp'; expires_at: string };
}

describe('known devices', () => {
  test('a client without device headers logs in and refreshes as before; its device is recorded and listed', async () => {
    const { email, password, user } = await registerAndVerify();
    const t1 = await login(email, password);
    const r2 = await refresh(t1.refresh_token);
    expect(r2.status).toBe(200);
    expect((await refresh(r2.body.refresh_token)).status).toBe(200);
    const list = await api('GET', '/v1/me/devices', { token: t1.access_token });
    expect(list.status).toBe(200);
    expect(list.body.devices).toHaveLength(1);
    expect(list.body.devices[0]).toMatchObject({ trusted: true, current: true, label: 'Node.js' });
    const rows = await query('SELECT fingerprint, label FROM device_fingerprints WHERE user_id = $1', [user.id]);
    expect(rows).toHaveLength(1);
    expect((rows[0].fingerprint as Buffer).length).toBe(32);
    const session = await query('SELECT device_id FROM sessions WHERE id = $1', [sid(t1.access_token)]);
    expect(session[0].device_id).toBe(list.body.devices[0].id);
  });

  test('the fingerprint ignores minor browser versions and language weights, but not the device id', async () => {
    const a = device(FIREFOX);
    const { tokens } = await signedIn(a);
    const minor = await refresh(tokens.refresh_token, { ...a, 'User-Agent': FIREFOX.replace(/128\.0/g, '128.5'), 'Accept-Language': 'en-US,en;q=0.5' });
    expect(minor.status).toBe(200);
    const other = await refresh(minor.body.refresh_token, { ...a, 'X-Device-Id': 'someone-else' });
    expect(other.body.code).toBe('step_up_required');
  });
});

describe('step-up by e-mail code', () => {
  test('a refresh from a new device passes step-up with the e-mailed code: fresh tokens, device trusted, old token spent', async () => {
    const { email, user, tokens } = await signedIn();
    const b = device(CHROME, 'de-DE');
    const first = await stepUpFrom(tokens.refresh_token, b);
    expect(first.method).toBe('email');
    expect(first.verification_id).toMatch(/^vf_[A-Za-z0-9_-]{43}$/);
    // The token was not spent; the refresh was audited; the challenge holds a hash, not headers.
    const rt = await query('SELECT spent_at FROM refresh_tokens WHERE session_id = $1', [sid(tokens.access_token)]);
    expect(rt).toEqual([{ spent_at: null }]);
    expect((await query("SELECT data FROM audit_events WHERE user_id = $1 AND type = 'refresh.unknown_device'", [user.id]))[0].data).toMatchObject({
      session_id: sid(tokens.access_token),
      device: 'Chrome 126 on Windows',
    });
    const ch = (await query('SELECT * FROM step_up_challenges WHERE session_id = $1', [sid(tokens.access_token)]))[0];
    expect(ch.fingerprint.length).toBe(32);
    expect(JSON.stringify(ch)).not.toContain(b['X-Device-Id']);

    const mail = await waitForMail(email, /Confirm a sign-in from a new device/);
    expect(mail.text).toContain('Chrome 126 on Windows');
    const code = codeFrom(mail.text);
    expect(code).toMatch(/^\d{8}$/);

    // The same device retrying gets the same verification and no second e-mail.
    const retry = await stepUpFrom(tokens.refresh_token, b);
    expect(retry.verification_id).toBe(first.verification_id);

    const wrongCode = code === '00000000' ? '11111111' : '00000000';
    const wrong = await submit(first.verification_id, wrongCode, b);
    expect([wrong.status, wrong.body.code, wrong.body.attempts_left]).toEqual([401, 'invalid_mfa_code', 2]);

    const ok = await submit(first.verification_id, code, b);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ token_type: 'Bearer', expires_in: 900 });
    expect(sid(ok.body.access_token)).toBe(sid(tokens.access_token));
    expect(await stepUpMails(email)).toHaveLength(1);

    // The new device is known now: its refresh rotates.
    const fromB = await refresh(ok.body.refresh_token, b);
    expect(fromB.status).toBe(200);
    const list = await api('GET', '/v1/me/devices', { token: fromB.body.access_token });
    expect(list.body.devices).toHaveLength(2);
    expect(list.body.devices.find((d: { current: boolean }) => d.current).label).toBe('Chrome 126 on Windows');

    // Finished verifications and unknown ids are 404; nothing about the code is in the history.
    expect((await submit(first.verification_id, code, b)).status).toBe(404);
    expect((await submit(`vf_${'A'.repeat(43)}`, code)).status).toBe(404);
    expect((await submit('nope', code)).status).toBe(404);
    expect((await api('POST', `/v1/auth/step-up/${first.verification_id}`, { body: {} })).status).toBe(400);
    const wfId = `step-up:${sid(tokens.access_token)}`;
    expect(
      await eventually(
        () => workflowStatus(wfId),
        (s) => s === 'COMPLETED',
      ),
    ).toBe('COMPLETED');
    const history = historyText(await temporal.workflow.getHandle(wfId).fetchHistory());
    expect(history).toContain('stepUpWorkflow');
    for (const secret of [code, ok.body.refresh_token, tokens.refresh_token, first.verification_id, email]) expect(history).not.toContain(secret);
    const listed = [];
    for await (const wf of temporal.workflow.list({ query: `UserId = '${user.id}' AND Flow = 'step-up'` })) listed.push(wf.workflowId);
    expect(listed).toEqual([wfId]);

    // The refresh token spent by the step-up cannot be replayed: reuse ends the session.
    const replay = await refresh(tokens.refresh_token, b);
    expect([replay.status, replay.body.code]).toEqual([401, 'token_reused']);
    expect((await refresh(fromB.body.refresh_token, b)).status).toBe(401);
  });

  test('a refresh token spent from the known device while a step-up is pending cannot complete it', async () => {
    const { email, tokens, headers } = await signedIn();
    const v = await stepUpFrom(tokens.refresh_token, device(CHROME));
    const code = codeFrom((await waitForMail(email, /Confirm a sign-in from a new device/)).text);
    const rotated = await refresh(tokens.refresh_token, headers);
    expect(rotated.status).toBe(200);
    const late = await submit(v.verification_id, code);
    expect([late.status, late.body.code]).toEqual([401, 'token_reused']);
    expect((await refresh(rotated.body.refresh_token, headers)).status).toBe(401);
    const s = await query('SELECT revoke_reason FROM sessions WHERE id = $1', [sid(tokens.access_token)]);
    expect(s[0].revoke_reason).toBe('token_reused');
  });

  test('a failed step-up (too many wrong codes) ends the session and e-mails the user', async () => {
    const { email, user, tokens, headers } = await signedIn();
    const v = await stepUpFrom(tokens.refresh_token, device(CHROME));
    const code = codeFrom((await waitForMail(email, /Confirm a sign-in from a new device/)).text);
    const wrongCode = code === '12345678' ? '87654321' : '12345678';
    const left = [];
    for (let i = 0; i < 3; i++) {
      const r = await submit(v.verification_id, wrongCode);
      expect([r.status, r.body.code]).toEqual([401, 'invalid_mfa_code']);
      left.push(r.body.attempts_left);
    }
    expect(left).toEqual([2, 1, 0]);
    // Even the right code is too late now, and the session is over for the known device too.
    expect((await submit(v.verification_id, code)).status).toBe(404);
    const r = await refresh(tokens.refresh_token, headers);
    expect([r.status, r.body.code]).toEqual([401, 'invalid_grant']);
    const s = await query('SELECT revoke_reason FROM sessions WHERE id = $1', [sid(tokens.access_token)]);
    expect(s[0].revoke_reason).toBe('step_up_failed');
    await waitForMail(email, /A session of your account was ended/);
    expect((await query("SELECT count(*)::int AS n FROM audit_events WHERE user_id = $1 AND type = 'step_up.failed'", [user.id]))[0].n).toBe(1);
    expect(
      await eventually(
        () => workflowStatus(`step-up:${sid(tokens.access_token)}`),
        (st) => st === 'COMPLETED',
      ),
    ).toBe('COMPLETED');
  });

  test('an unanswered step-up expires at its timer: the session ends and the user is e-mailed', async () => {
    const { email, tokens, headers } = await signedIn();
    const v = await stepUpFrom(tokens.refresh_token, device(CHROME));
    const code = codeFrom((await waitForMail(email, /Confirm a sign-in from a new device/)).text);
    await sleep(Math.max(0, Date.parse(v.expires_at) - Date.now()) + 500);
    await waitForMail(email, /A session of your account was ended/, STEP_UP_TTL_MS);
    expect((await submit(v.verification_id, code)).status).toBe(404);
    expect((await refresh(tokens.refresh_token, headers)).status).toBe(401);
    const s = await query('SELECT revoke_reason FROM sessions WHERE id = $1', [sid(tokens.access_token)]);
    expect(s[0].revoke_reason).toBe('step_up_expired');
    expect((await query('SELECT status FROM step_up_challenges WHERE session_id = $1', [sid(tokens.access_token)]))[0].status).toBe('expired');
  });
});

describe('many devices', () => {
  test('more than K different unknown devices on one session end it at once, audited and e-mailed', async () => {
    const { email, user, tokens, headers } = await signedIn();
    const b = await stepUpFrom(tokens.refresh_token, device(CHROME));
    const c = await stepUpFrom(tokens.refresh_token, device(CHROME, 'fr-FR'));
    expect(c.verification_id).not.toBe(b.verification_id);
    // The newer challenge supersedes the older one.
    expect((await submit(b.verification_id, '00000000')).status).toBe(404);
    const d = await refresh(tokens.refresh_token, device(FIREFOX, 'pt-BR'));
    expect([d.status, d.body.code]).toEqual([401, 'invalid_grant']);
    const s = await query('SELECT revoke_reason, revoked_at FROM sessions WHERE id = $1', [sid(tokens.access_token)]);
    expect(s[0].revoke_reason).toBe('too_many_devices');
    const ev = await query("SELECT data FROM audit_events WHERE user_id = $1 AND type = 'session.revoked'", [user.id]);
    expect(ev[0].data).toMatchObject({ reason: 'too_many_devices', unknown_devices: 3 });
    await waitForMail(email, /A session of your account was ended/);
    expect((await submit(c.verification_id, '00000000')).status).toBe(404);
    expect((await refresh(tokens.refresh_token, headers)).status).toBe(401);
    expect(
      await eventually(
        () => workflowStatus(`step-up:${sid(tokens.access_token)}`),
        (st) => st === 'COMPLETED',
      ),
    ).toBe('COMPLETED');
  });
});

describe('devices', () => {
  test('forgetting a device ends its sessions; others stay; unknown ids are 404', async () => {
    const a = device(FIREFOX);
    const b = device(CHROME);
    const { email, password, tokens } = await signedIn(a);
    const onB = await login(email, password, b);
    const list = await api('GET', '/v1/me/devices', { token: tokens.access_token });
    expect(list.body.devices).toHaveLength(2);
    const devB = list.body.devices.find((d: { current: boolean }) => !d.current);
    expect(devB.label).toBe('Chrome 126 on Windows');
    expect((await api('DELETE', `/v1/me/devices/${devB.id}`, { token: tokens.access_token })).status).toBe(204);
    expect((await refresh(onB.refresh_token, b)).status).toBe(401);
    expect((await refresh(tokens.refresh_token, a)).status).toBe(200);
    const after = await api('GET', '/v1/me/devices', { token: tokens.access_token });
    expect(after.body.devices.map((d: { id: string }) => d.id)).not.toContain(devB.id);
    for (const id of [devB.id, 'not-a-uuid', '00000000-0000-4000-8000-000000000000']) {
      const r = await api('DELETE', `/v1/me/devices/${id}`, { token: tokens.access_token });
      expect([id, r.status, r.body.code]).toEqual([id, 404, 'not_found']);
    }
    // Someone else's device is not found either.
    const other = await signedIn();
    const theirs = (await api('GET', '/v1/me/devices', { token: other.tokens.access_token })).body.devices[0].id;
    expect((await api('DELETE', `/v1/me/devices/${theirs}`, { token: tokens.access_token })).status).toBe(404);
    expect((await api('GET', '/v1/me/devices')).status).toBe(401);
  });
});

describe('step-up by TOTP', () => {
  test('an MFA user passes step-up from a new device with an authenticator code; no e-mail is sent', async () => {
    const { email, password, tokens } = await signedIn();
    const enrol = await api('POST', '/v1/me/mfa/totp', { token: tokens.access_token, body: { password } });
    expect(enrol.status).toBe(200);
    const secret = new URL(enrol.body.otpauth_url).searchParams.get('secret')!;
    const codeAt = (step: number) => authenticator.clone({ epoch: step * 30_000, step: 30, digits: 6, algorithm: 'sha1' as never, window: 0 }).generate(secret);
    const step = Math.floor(Date.now() / 30_000);
    expect((await api('POST', '/v1/me/mfa/totp/confirm', { token: tokens.access_token, body: { code: codeAt(step) } })).status).toBe(200);

    const b = device(CHROME);
    const v = await stepUpFrom(tokens.refresh_token, b);
    expect(v.method).toBe('totp');
    const wrong = await submit(v.verification_id, codeAt(step + 40), b);
    expect([wrong.status, wrong.body.code, wrong.body.attempts_left]).toEqual([401, 'invalid_mfa_code', 2]);
    // The next step (the server accepts ±1): not a replay of the confirmation code.
    const ok = await submit(v.verification_id, codeAt(Math.max(step + 1, Math.floor(Date.now() / 30_000) - 1)), b);
    expect(ok.status).toBe(200);
    expect((await refresh(ok.body.refresh_token, b)).status).toBe(200);
    await sleep(500);
    expect(await stepUpMails(email)).toHaveLength(0);
  });
});

describe('Temporal unreachable', () => {
  let child: ChildProcess | undefined;
  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  });

  test('a refresh that needs a step-up answers 503 and does not spend the token', async () => {
    const info = stackInfo();
    const port = await freePort();
    const secretId = await vaultRoot().secretId('authflow-api');
    child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, '..', '..', 'api', 'main.ts')], {
      cwd: join(__dirname, '..', '..'),
      env: {
        ...process.env,
        ...info.serviceEnv,
        API_PORT: String(port),
        TEMPORAL_ADDRESS: '127.0.0.1:1',
        VAULT_ROLE_ID: info.roleIds.api,
        VAULT_SECRET_ID: secretId,
        LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    });
    const base = `http://127.0.0.1:${port}`;
    const up = await eventually(
      () =>
        fetch(`${base}/healthz`).then(
          (r) => r.ok,
          () => false,
        ),
      (v) => v,
      60000,
    );
    expect(up).toBe(true);

    const { user, tokens, headers } = await signedIn();
    const r = await fetch(`${base}/v1/auth/refresh`, {
      method: 'POST',
      headers: { ...device(CHROME), 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh_token: tokens.refresh_token }),
    });
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBeTruthy();
    expect(((await r.json()) as { code: string }).code).toBe('dependency_unavailable');
    // Rolled back: no challenge, no audit event, the token unspent and still good on the known device.
    expect(await query('SELECT id FROM step_up_challenges WHERE session_id = $1', [sid(tokens.access_token)])).toEqual([]);
    expect(await query("SELECT id FROM audit_events WHERE user_id = $1 AND type = 'refresh.unknown_device'", [user.id])).toEqual([]);
    expect(await query('SELECT spent_at FROM refresh_tokens WHERE session_id = $1', [sid(tokens.access_token)])).toEqual([{ spent_at: null }]);
    const known = await fetch(`${base}/v1/auth/refresh`, {
      method: 'POST',
      headers: { ...headers, 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh_token: tokens.refresh_token }),
    });
    expect(known.status).toBe(200);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

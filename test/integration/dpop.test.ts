/**
 * DPoP (RFC 9449) device-bound sessions over the real stack, attacker style: a thief who holds a
 * bound refresh token, mfa_token, verification_id or access token and copies every header, but
 * not the device's private key, gets nothing; proofs are accepted once, for one method and URL,
 * within the iat window; a sign-in with a new key on an account with known keys is a new device.
 */
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { authenticator } from 'otplib';
import { api, apiUrl, mailsTo, query, sleep, stackInfo, waitForMail } from '../helpers/stack';
import { startService, stopPid } from '../helpers/ops';
import { registerAndVerify } from '../helpers/users';
import { ath, deviceKey, dpopGet, dpopPost, proof, type DeviceKey } from '../helpers/dpop';

jest.setTimeout(120_000);

const HEADERS = {
  'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  'Accept-Language': 'en-US,en;q=0.9',
  'X-Device-Id': 'install-dpop-laptop',
};

async function boundLogin(email: string, password: string, key: DeviceKey, headers: Record<string, string> = HEADERS) {
  const r = await dpopPost('/v1/auth/login', { email, password }, key, headers);
  expect([r.status, r.body.token_type]).toEqual([200, 'DPoP']);
  return r.body as { access_token: string; refresh_token: string; token_type: string };
}

const auditTypes = async (userId: string, type: string) =>
  (await query('SELECT data FROM audit_events WHERE user_id = $1 AND type = $2 ORDER BY id', [userId, type])).map((r) => r.data);

function expectDpopRefused(r: { status: number; body: any; headers: Headers }) {
  expect([r.status, r.body.code]).toEqual([401, 'invalid_dpop_proof']);
  expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
  expect(r.body.access_token).toBeUndefined();
}

describe('binding a session to a key', () => {
  test('a login with a proof binds the session: token_type DPoP, cnf.jkt, the device row records the key', async () => {
    const u = await registerAndVerify();
    const key = await deviceKey('EdDSA');
    const t = await boundLogin(u.email, u.password, key);
    const claims = decodeJwt(t.access_token);
    expect(claims.cnf).toEqual({ jkt: key.jkt });
    const [s] = await query('SELECT s.jkt, d.jkt AS device_jkt FROM sessions s JOIN device_fingerprints d ON d.id = s.device_id WHERE s.id = $1', [claims.sid]);
    expect(s).toEqual({ jkt: key.jkt, device_jkt: key.jkt });
    const r = await dpopPost('/v1/auth/refresh', { refresh_token: t.refresh_token }, key, HEADERS);
    expect([r.status, r.body.token_type]).toEqual([200, 'DPoP']);
    expect(decodeJwt(r.body.access_token).cnf).toEqual({ jkt: key.jkt });
  });

  test("a stolen bound refresh token with every header copied but no proof, or another key's proof: 401 invalid_dpop_proof, audited, no e-mail, nothing spent", async () => {
    const u = await registerAndVerify();
    const key = await deviceKey();
    const t = await boundLogin(u.email, u.password, key);
    await sleep(1500);
    const mailsBefore = (await mailsTo(u.email)).length;

    const noProof = await api('POST', '/v1/auth/refresh', { body: { refresh_token: t.refresh_token }, headers: HEADERS });
    expectDpopRefused(noProof);
    const thiefKey = await deviceKey();
    const otherKey = await dpopPost('/v1/auth/refresh', { refresh_token: t.refresh_token }, thiefKey, HEADERS);
    expectDpopRefused(otherKey);

    expect((await auditTypes(u.user.id, 'refresh.dpop_refused')).map((d) => d.reason)).toEqual(['no_proof', 'other_key']);
    const sid = decodeJwt(t.access_token).sid as string;
    expect((await query('SELECT spent_at FROM refresh_tokens WHERE session_id = $1', [sid])).every((x) => x.spent_at === null)).toBe(true);
    expect((await query('SELECT revoked_at FROM sessions WHERE id = $1', [sid]))[0].revoked_at).toBeNull();
    expect(await query('SELECT 1 FROM step_up_challenges WHERE session_id = $1', [sid])).toHaveLength(0);
    await sleep(2000);
    expect((await mailsTo(u.email)).length).toBe(mailsBefore);

    // The device itself still refreshes.
    const own = await dpopPost('/v1/auth/refresh', { refresh_token: t.refresh_token }, key, HEADERS);
    expect([own.status, own.body.token_type]).toEqual([200, 'DPoP']);
  });
});

describe('what a proof must be', () => {
  test('a replayed proof (same jti) is refused at the token endpoint, even with a new refresh token', async () => {
    const u = await registerAndVerify();
    const key = await deviceKey();
    const t = await boundLogin(u.email, u.password, key);
    const p = await proof(key, 'POST', '/v1/auth/refresh');
    const first = await api('POST', '/v1/auth/refresh', { body: { refresh_token: t.refresh_token }, headers: { ...HEADERS, DPoP: p } });
    expect(first.status).toBe(200);
    const again = await api('POST', '/v1/auth/refresh', { body: { refresh_token: first.body.refresh_token }, headers: { ...HEADERS, DPoP: p } });
    expectDpopRefused(again);
    expect(again.body.detail).toMatch(/already used/);
    // A replayed login proof too.
    const lp = await proof(key, 'POST', '/v1/auth/login');
    expect((await api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password }, headers: { DPoP: lp } })).status).toBe(200);
    expectDpopRefused(await api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password }, headers: { DPoP: lp } }));
  });

  test('proofs for another method or URL, stale or future iat, a wrong typ or alg, a private jwk or garbage are refused with 401, never a 500', async () => {
    const u = await registerAndVerify();
    const key = await deviceKey();
    const t = await boundLogin(u.email, u.password, key);
    const now = Math.floor(Date.now() / 1000);
    const privateJwk = { ...key.jwk, d: 'AAAA' };
    const bad: Array<[string, string]> = [
      ['htm GET', await proof(key, 'GET', '/v1/auth/refresh')],
      ['htu of another endpoint', await proof(key, 'POST', '/v1/auth/login')],
      ['htu of another host', await proof(key, 'POST', '/v1/auth/refresh', { claims: { htu: 'https://evil.example/v1/auth/refresh' } })],
      ['stale iat', await proof(key, 'POST', '/v1/auth/refresh', { claims: { iat: now - 3600 } })],
      ['future iat', await proof(key, 'POST', '/v1/auth/refresh', { claims: { iat: now + 3600 } })],
      ['no jti', await proof(key, 'POST', '/v1/auth/refresh', { claims: { jti: undefined } })],
      ['typ JWT', await proof(key, 'POST', '/v1/auth/refresh', { header: { typ: 'JWT' } })],
      ['private jwk', await proof(key, 'POST', '/v1/auth/refresh', { header: { jwk: privateJwk } })],
      ['garbage', 'not-a-jwt'],
      ['alg none', `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'dpop+jwt', jwk: key.jwk })).toString('base64url')}.e30.`],
    ];
    for (const [what, p] of bad) {
      const r = await api('POST', '/v1/auth/refresh', { body: { refresh_token: t.refresh_token }, headers: { ...HEADERS, DPoP: p } });
      expect([what, r.status, r.body.code]).toEqual([what, 401, 'invalid_dpop_proof']);
    }
    // Signed by another key than its jwk says.
    const other = await deviceKey();
    const forged = await proof(other, 'POST', '/v1/auth/refresh', { header: { jwk: key.jwk } });
    expectDpopRefused(await api('POST', '/v1/auth/refresh', { body: { refresh_token: t.refresh_token }, headers: { ...HEADERS, DPoP: forged } }));
    // The token was never spent by any of these.
    expect((await dpopPost('/v1/auth/refresh', { refresh_token: t.refresh_token }, key, HEADERS)).status).toBe(200);
  });
});

describe('bound access tokens on resource requests', () => {
  test('only as Authorization: DPoP with a proof of the key carrying the right ath', async () => {
    const u = await registerAndVerify();
    const key = await deviceKey();
    const t = await boundLogin(u.email, u.password, key);

    const asBearer = await api('GET', '/v1/me', { token: t.access_token, headers: HEADERS });
    expect([asBearer.status, asBearer.body.code]).toEqual([401, 'unauthorized']);
    expect(asBearer.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_token"/);

    const noProof = await api('GET', '/v1/me', { headers: { Authorization: `DPoP ${t.access_token}` } });
    expect([noProof.status, noProof.body.code]).toEqual([401, 'invalid_dpop_proof']);
    expect(noProof.headers.get('www-authenticate')).toBe('DPoP error="invalid_dpop_proof", algs="ES256 EdDSA"');

    const noAth = await dpopGet('/v1/me', t.access_token, key, { claims: { ath: undefined } });
    expect([noAth.status, noAth.body.code]).toEqual([401, 'invalid_dpop_proof']);
    const wrongAth = await dpopGet('/v1/me', t.access_token, key, { claims: { ath: ath('another token') } });
    expect([wrongAth.status, wrongAth.body.code]).toEqual([401, 'invalid_dpop_proof']);
    const thief = await dpopGet('/v1/me', t.access_token, await deviceKey());
    expect([thief.status, thief.body.code]).toEqual([401, 'invalid_dpop_proof']);
    const wrongUrl = await api('GET', '/v1/me', {
      headers: { Authorization: `DPoP ${t.access_token}`, DPoP: await proof(key, 'GET', '/v1/me/devices', { accessToken: t.access_token }) },
    });
    expect([wrongUrl.status, wrongUrl.body.code]).toEqual([401, 'invalid_dpop_proof']);

    const p = await proof(key, 'GET', '/v1/me', { accessToken: t.access_token });
    const ok = await api('GET', '/v1/me', { headers: { Authorization: `DPoP ${t.access_token}`, DPoP: p } });
    expect([ok.status, ok.body.user?.id]).toEqual([200, u.user.id]);
    // The same proof again (this instance's cache).
    const replay = await api('GET', '/v1/me', { headers: { Authorization: `DPoP ${t.access_token}`, DPoP: p } });
    expect([replay.status, replay.body.code]).toEqual([401, 'invalid_dpop_proof']);
  });

  test('an unbound token sent with the DPoP scheme is refused; unbound sessions keep Bearer', async () => {
    const u = await registerAndVerify();
    const r = await api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password }, headers: HEADERS });
    expect([r.status, r.body.token_type]).toEqual([200, 'Bearer']);
    expect(decodeJwt(r.body.access_token).cnf).toBeUndefined();
    expect((await api('GET', '/v1/me', { token: r.body.access_token })).status).toBe(200);
    const asDpop = await dpopGet('/v1/me', r.body.access_token, await deviceKey());
    expect(asDpop.status).toBe(401);
  });
});

describe('the mfa_token and the step-up verification_id are bound to the key', () => {
  test('an mfa_token from a bound password step used with another key (or none) is refused; the right key signs in bound', async () => {
    const u = await registerAndVerify();
    const s = await api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password }, headers: HEADERS });
    const enrol = await api('POST', '/v1/me/mfa/totp', { token: s.body.access_token, body: { password: u.password } });
    const secret = new URL(enrol.body.otpauth_url as string).searchParams.get('secret')!;
    const confirm = await api('POST', '/v1/me/mfa/totp/confirm', { token: s.body.access_token, body: { code: authenticator.generate(secret) } });
    expect(confirm.status).toBe(200);
    const recovery = confirm.body.recovery_codes as string[];

    const key = await deviceKey();
    const step1 = await dpopPost('/v1/auth/login', { email: u.email, password: u.password }, key, HEADERS);
    expect([step1.status, step1.body.mfa_required]).toEqual([200, true]);
    const body = { mfa_token: step1.body.mfa_token, code: recovery[0] };
    expectDpopRefused(await dpopPost('/v1/auth/login/mfa', body, await deviceKey(), HEADERS));
    expectDpopRefused(await dpopPost('/v1/auth/login/mfa', body, undefined, HEADERS));
    const ok = await dpopPost('/v1/auth/login/mfa', body, key, HEADERS);
    expect([ok.status, ok.body.token_type]).toEqual([200, 'DPoP']);
    expect(decodeJwt(ok.body.access_token)).toMatchObject({ amr: ['pwd', 'otp'], cnf: { jkt: key.jkt } });
  });

  test('a verification_id of a bound session (its key unseen too long) is refused with another key; the key itself completes it', async () => {
    const u = await registerAndVerify();
    const key = await deviceKey();
    const t = await boundLogin(u.email, u.password, key);
    const sid = decodeJwt(t.access_token).sid as string;
    await query(`UPDATE device_fingerprints SET last_seen_at = now() - interval '100 days' WHERE user_id = $1`, [u.user.id]);
    const r = await dpopPost('/v1/auth/refresh', { refresh_token: t.refresh_token }, key, HEADERS);
    expect([r.status, r.body.code]).toEqual([401, 'step_up_required']);
    const mail = await waitForMail(u.email, /Confirm a sign-in from a new device/);
    const code = /code is: (\S+)/.exec(mail.text)![1];
    const path = `/v1/auth/step-up/${r.body.verification_id}`;
    expectDpopRefused(await dpopPost(path, { code }, await deviceKey(), HEADERS));
    expectDpopRefused(await dpopPost(path, { code }, undefined, HEADERS));
    expect((await auditTypes(u.user.id, 'step_up.dpop_refused')).map((d) => d.reason)).toEqual(['other_key', 'no_proof']);
    const ok = await dpopPost(path, { code }, key, HEADERS);
    expect([ok.status, ok.body.token_type]).toEqual([200, 'DPoP']);
    expect(decodeJwt(ok.body.access_token)).toMatchObject({ sid, cnf: { jkt: key.jkt } });
  });
});

describe('a new key is a new device', () => {
  test('a login from a new key on an account with known keys: audited, e-mailed; its session is its own device', async () => {
    const u = await registerAndVerify();
    const laptop = await deviceKey();
    const first = await boundLogin(u.email, u.password, laptop);
    const thief = await deviceKey();
    // Every header copied, but another key: a new device.
    const second = await boundLogin(u.email, u.password, thief);
    const mail = await waitForMail(u.email, /A sign-in from a new device/);
    expect(mail.text).toMatch(/new device/);
    const events = await auditTypes(u.user.id, 'device.new_key');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ known_keys: 1 });
    const devices = await query('SELECT jkt FROM device_fingerprints WHERE user_id = $1 ORDER BY first_seen_at', [u.user.id]);
    expect(devices.map((d) => d.jkt)).toEqual([laptop.jkt, thief.jkt]);
    // The first sign-in (no known key yet) sent no such mail, and the laptop signing in again sends none.
    await boundLogin(u.email, u.password, laptop);
    await sleep(1500);
    expect(await mailsTo(u.email, /A sign-in from a new device/)).toHaveLength(1);
    // Neither session's refresh token works with the other's key.
    expectDpopRefused(await dpopPost('/v1/auth/refresh', { refresh_token: first.refresh_token }, thief, HEADERS));
    expectDpopRefused(await dpopPost('/v1/auth/refresh', { refresh_token: second.refresh_token }, laptop, HEADERS));
  });
});

describe('server nonces (DPOP_NONCE_REQUIRED)', () => {
  // Two more API instances that require nonces, behind the same public URL (proofs name it).
  let b: Awaited<ReturnType<typeof startService>>;
  let c: Awaited<ReturnType<typeof startService>>;
  beforeAll(async () => {
    const env = (n: number) => ({ API_PORT: String(stackInfo().ports.api + n), DPOP_NONCE_REQUIRED: 'true' });
    [b, c] = await Promise.all([startService('api', env(61), 'api-dpop-nonce-b'), startService('api', env(62), 'api-dpop-nonce-c')]);
  }, 180_000);
  afterAll(async () => {
    await Promise.all([b, c].filter(Boolean).map((s) => stopPid(s.pid)));
  });

  async function post(base: string, path: string, body: unknown, key: DeviceKey, nonce?: string) {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...HEADERS, DPoP: await proof(key, 'POST', path, { claims: nonce === undefined ? {} : { nonce } }) },
      body: JSON.stringify(body),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as any };
  }

  test('a proof without the nonce gets 401 use_dpop_nonce and a nonce; any instance accepts any instance’s nonce; a made-up one is refused', async () => {
    const u = await registerAndVerify();
    const key = await deviceKey();
    const creds = { email: u.email, password: u.password };

    const first = await post(b.url!, '/v1/auth/login', creds, key);
    expect([first.status, first.body.code]).toEqual([401, 'use_dpop_nonce']);
    expect(first.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const nonce = first.headers.get('dpop-nonce');
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(first.body.access_token).toBeUndefined();

    const made = await post(b.url!, '/v1/auth/login', creds, key, 'A'.repeat(43));
    expect([made.status, made.body.code]).toEqual([401, 'use_dpop_nonce']);

    // B's nonce at C: the nonces of every instance come from the same Vault-held secret.
    const ok = await post(c.url!, '/v1/auth/login', creds, key, nonce!);
    expect([ok.status, ok.body.token_type]).toEqual([200, 'DPoP']);
    expect(ok.headers.get('dpop-nonce')).toBeTruthy();

    const refreshed = await post(b.url!, '/v1/auth/refresh', { refresh_token: ok.body.refresh_token }, key, nonce!);
    expect([refreshed.status, refreshed.body.token_type]).toEqual([200, 'DPoP']);

    // A resource request without the nonce: the DPoP challenge names use_dpop_nonce.
    const at = refreshed.body.access_token as string;
    const me = await fetch(`${c.url}/v1/me`, { headers: { Authorization: `DPoP ${at}`, DPoP: await proof(key, 'GET', '/v1/me', { accessToken: at }) } });
    expect(me.status).toBe(401);
    expect(me.headers.get('www-authenticate')).toMatch(/^DPoP error="use_dpop_nonce"/);
    const withNonce = await fetch(`${c.url}/v1/me`, {
      headers: { Authorization: `DPoP ${at}`, DPoP: await proof(key, 'GET', '/v1/me', { accessToken: at, claims: { nonce: me.headers.get('dpop-nonce') } }) },
    });
    expect(withNonce.status).toBe(200);
  });
});

describe('the public URL', () => {
  test('is http://localhost:<port> (WebAuthn refuses IP origins), and the API answers on both loopback addresses', async () => {
    const info = stackInfo();
    expect(info.urls.api).toBe(`http://localhost:${info.ports.api}`);
    expect(info.serviceEnv.PUBLIC_BASE_URL).toBe(info.urls.api);
    for (const host of ['127.0.0.1', '[::1]']) expect((await fetch(`http://${host}:${info.ports.api}/healthz`)).status).toBe(200);
  });
});

describe('the resource-server recipe of docs/security.md', () => {
  test('run as written against the real API: accepts the bound token with its proof, refuses a thief and a replay', async () => {
    // The recipe's code block, compiled and loaded as a module of its own (what a reader copies).
    const doc = readFileSync(join(__dirname, '..', '..', 'docs', 'security.md'), 'utf8');
    const block = /### A resource server of your own, with jose[\s\S]*?```ts\n([\s\S]*?)```/.exec(doc)![1];
    const dir = mkdtempSync(join(tmpdir(), 'authflow-recipe-'));
    const file = join(dir, 'recipe.ts');
    writeFileSync(file, block.replace("'http://localhost:3000'", JSON.stringify(apiUrl())));
    // Resolve 'jose' from this checkout.
    symlinkSync(join(__dirname, '..', '..', 'node_modules'), join(dir, 'node_modules'));
    const { authenticate } = (await import(file)) as {
      authenticate: (r: { method: string; url: string; authorization?: string; dpop?: string }) => Promise<{ sub?: string }>;
    };
    const u = await registerAndVerify();
    const key = await deviceKey();
    const t = await boundLogin(u.email, u.password, key);
    const url = `${apiUrl()}/v1/things`;
    const good = { method: 'GET', url, authorization: `DPoP ${t.access_token}`, dpop: await proof(key, 'GET', '/v1/things', { accessToken: t.access_token }) };
    await expect(authenticate(good)).resolves.toMatchObject({ sub: u.user.id });
    await expect(authenticate(good)).rejects.toThrow(/replayed/);
    const thief = await deviceKey();
    await expect(authenticate({ ...good, dpop: await proof(thief, 'GET', '/v1/things', { accessToken: t.access_token }) })).rejects.toThrow(/another key/);
    await expect(authenticate({ ...good, authorization: `Bearer ${t.access_token}` })).rejects.toThrow(/DPoP/);
    rmSync(dir, { recursive: true, force: true });
  });
});

/** TOTP MFA over the real stack (issue 5): enrolment, MFA login, replay and lockout, recovery
 * codes, amr across refresh, sensitive operations, Vault down. Codes come from otplib used
 * directly (an authenticator app's view), never from crypto/totp.ts. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { api, sleep, stackInfo, unsealKeys, vaultRoot, waitForMail, query } from '../helpers/stack';
import { authenticatorApp } from '../helpers/totp-app';
import { GOOD_PASSWORD, login, registerAndVerify } from '../helpers/users';

jest.setTimeout(180_000);

/** Everything secret the tests handle, to check the service logs at the end. */
const secretsSeen: string[] = [];
const App = authenticatorApp(secretsSeen);
type App = InstanceType<typeof App>;

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

async function passwordStep(email: string, password = GOOD_PASSWORD, headers: Record<string, string> = {}): Promise<string> {
  const r = await api('POST', '/v1/auth/login', { body: { email, password }, headers });
  expect([r.status, r.body.mfa_required]).toEqual([200, true]);
  expect(r.body.access_token).toBeUndefined();
  secretsSeen.push(r.body.mfa_token);
  return r.body.mfa_token as string;
}

async function mfaLogin(mfa_token: string, code: string, headers: Record<string, string> = {}) {
  return api('POST', '/v1/auth/login/mfa', { body: { mfa_token, code }, headers });
}

/** A verified user who enrolled and confirmed TOTP (with the session used to do it). */
async function enrolledUser() {
  const { email, password, user } = await registerAndVerify();
  const session = await login(email, password);
  const enrol = await api('POST', '/v1/me/mfa/totp', { token: session.access_token, body: { password } });
  expect(enrol.status).toBe(200);
  const app = App.fromUrl(enrol.body.otpauth_url);
  const confirm = await api('POST', '/v1/me/mfa/totp/confirm', { token: session.access_token, body: { code: await app.fresh() } });
  expect(confirm.status).toBe(200);
  const recovery = confirm.body.recovery_codes as string[];
  secretsSeen.push(...recovery);
  return { email, password, user, app, recovery, session };
}

const failedLogins = async (userId: string) => (await query('SELECT failed_logins FROM users WHERE id = $1', [userId]))[0].failed_logins as number;

describe('TOTP enrolment', () => {
  test('returns a pending 160-bit secret, an otpauth URI and a QR code; the secret is stored only as Vault ciphertext', async () => {
    const { email, password, user } = await registerAndVerify();
    const session = await login(email, password);
    const r = await api('POST', '/v1/me/mfa/totp', { token: session.access_token, body: { password } });
    expect(r.status).toBe(200);
    const { secret, otpauth_url, qr_code } = r.body;
    secretsSeen.push(secret);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/); // base32 of 20 bytes
    const url = new URL(otpauth_url);
    expect(url.protocol).toBe('otpauth:');
    expect(url.host).toBe('totp');
    expect(decodeURIComponent(url.pathname)).toBe(`/Authflow Test:${email}`);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({ secret, issuer: 'Authflow Test', algorithm: 'SHA1', digits: '6', period: '30' });
    expect(qr_code).toMatch(/^data:image\/png;base64,/);
    expect(Buffer.from(qr_code.split(',')[1], 'base64').subarray(1, 4).toString('ascii')).toBe('PNG');

    const [row] = await query('SELECT mfa_enabled, totp_secret_enc, totp_pending_enc FROM users WHERE id = $1', [user.id]);
    expect(row.mfa_enabled).toBe(false);
    expect(row.totp_secret_enc).toBeNull();
    expect(row.totp_pending_enc).toMatch(/^vault:v1:[A-Za-z0-9+/=]+$/);
    expect(row.totp_pending_enc).not.toContain(secret);
    expect(row.totp_pending_enc).not.toContain(Buffer.from(secret).toString('base64'));
    // Not on until confirmed: the password alone still signs in.
    expect((await login(email, password)).access_token).toBeTruthy();
  });

  test('a code from an independent TOTP implementation confirms it: MFA on, hashed one-time recovery codes, a notice e-mail', async () => {
    const { email, password, user } = await registerAndVerify();
    const session = await login(email, password);
    const enrol = await api('POST', '/v1/me/mfa/totp', { token: session.access_token, body: { password } });
    const app = App.fromUrl(enrol.body.otpauth_url);
    const [pending] = await query('SELECT totp_pending_enc FROM users WHERE id = $1', [user.id]);

    const r = await api('POST', '/v1/me/mfa/totp/confirm', { token: session.access_token, body: { code: await app.fresh() } });
    expect(r.status).toBe(200);
    const codes: string[] = r.body.recovery_codes;
    secretsSeen.push(...codes);
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const c of codes) expect(c).toMatch(/^[a-z2-9]{5}-[a-z2-9]{5}-[a-z2-9]{5}$/);

    const [row] = await query('SELECT mfa_enabled, totp_secret_enc, totp_pending_enc, totp_last_step FROM users WHERE id = $1', [user.id]);
    expect(row).toMatchObject({ mfa_enabled: true, totp_pending_enc: null, totp_secret_enc: pending.totp_pending_enc });
    expect(row.totp_secret_enc).toMatch(/^vault:v1:/);
    expect(row.totp_secret_enc).not.toContain(app.secret);
    expect(row.totp_last_step).not.toBeNull();
    const stored = await query('SELECT code_hash, used_at FROM mfa_recovery_codes WHERE user_id = $1', [user.id]);
    expect(stored).toHaveLength(10);
    const hashes = stored.map((s) => (s.code_hash as Buffer).toString('hex')).sort();
    expect(hashes).toEqual(codes.map((c) => sha256(c.replace(/-/g, '')).toString('hex')).sort());
    expect(stored.every((s) => s.used_at === null)).toBe(true);

    expect((await api('GET', '/v1/me', { token: session.access_token })).body.user.mfa_enabled).toBe(true);
    expect((await query("SELECT count(*)::int AS n FROM audit_events WHERE user_id = $1 AND type = 'mfa.enabled'", [user.id]))[0].n).toBe(1);
    await waitForMail(email, /Two-factor authentication is on/);
  });

  test('confirming without a pending secret is 409; a wrong code is 401 and leaves MFA off; a second enrolment is 409', async () => {
    const { email, password, user } = await registerAndVerify();
    const session = await login(email, password);
    const t = session.access_token;
    const none = await api('POST', '/v1/me/mfa/totp/confirm', { token: t, body: { code: '123456' } });
    expect(none.status).toBe(409);
    expect(none.headers.get('content-type')).toMatch(/problem\+json/);
    expect(none.body.code).toBe('conflict');

    // A restarted enrolment replaces the pending secret: codes of the first no longer confirm.
    const first = App.fromUrl((await api('POST', '/v1/me/mfa/totp', { token: t, body: { password } })).body.otpauth_url);
    const second = App.fromUrl((await api('POST', '/v1/me/mfa/totp', { token: t, body: { password } })).body.otpauth_url);
    expect(second.secret).not.toBe(first.secret);
    for (const code of [first.codeAt(first.stepNow()), second.wrong(), 'abcdef', '1234567']) {
      const bad = await api('POST', '/v1/me/mfa/totp/confirm', { token: t, body: { code } });
      expect([code, bad.status, bad.body.code]).toEqual([code, 401, 'invalid_mfa_code']);
    }
    expect((await api('POST', '/v1/me/mfa/totp/confirm', { token: t, body: { code: 'x'.repeat(65) } })).status).toBe(400);
    expect((await query('SELECT mfa_enabled FROM users WHERE id = $1', [user.id]))[0].mfa_enabled).toBe(false);

    expect((await api('POST', '/v1/me/mfa/totp/confirm', { token: t, body: { code: await second.fresh() } })).status).toBe(200);
    const again = await api('POST', '/v1/me/mfa/totp', { token: t, body: { password } });
    expect([again.status, again.body.code]).toEqual([409, 'conflict']);
    expect((await api('POST', '/v1/me/mfa/totp/confirm', { token: t, body: { code: await second.fresh() } })).status).toBe(409);
    // Without a bearer token nothing happens.
    expect((await api('POST', '/v1/me/mfa/totp')).status).toBe(401);
  });
});

describe('MFA login', () => {
  test('password login returns a short-lived mfa_token (stored hashed); a TOTP code completes it with amr pwd+otp, once', async () => {
    const { email, user, app } = await enrolledUser();
    const r = await api('POST', '/v1/auth/login', { body: { email, password: GOOD_PASSWORD } });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ mfa_required: true, mfa_token: expect.stringMatching(/^mfa_[A-Za-z0-9_-]{43}$/), expires_in: 300 });
    const token = r.body.mfa_token;
    secretsSeen.push(token);
    const [ch] = await query('SELECT token_hash, expires_at, created_at, attempts, used_at FROM mfa_challenges WHERE user_id = $1', [user.id]);
    expect((ch.token_hash as Buffer).equals(sha256(token))).toBe(true);
    expect((new Date(ch.expires_at).getTime() - new Date(ch.created_at).getTime()) / 1000).toBeCloseTo(300, 0);

    const ok = await mfaLogin(token, await app.fresh());
    expect(ok.status).toBe(200);
    const jwks = createRemoteJWKSet(new URL(`${stackInfo().urls.api}/.well-known/jwks.json`));
    const { payload } = await jwtVerify(ok.body.access_token, jwks, { audience: 'authflow', issuer: stackInfo().urls.api });
    expect(payload).toMatchObject({ sub: user.id, amr: ['pwd', 'otp'] });
    expect((await query('SELECT amr FROM sessions WHERE id = $1', [payload.sid]))[0].amr).toEqual(['pwd', 'otp']);
    const ev = await query("SELECT data FROM audit_events WHERE user_id = $1 AND type = 'login.succeeded' ORDER BY id DESC LIMIT 1", [user.id]);
    expect(ev[0].data).toMatchObject({ amr: ['pwd', 'otp'], mfa_method: 'totp' });

    // Single use: the same token with another good code is refused.
    const again = await mfaLogin(token, await app.fresh());
    expect([again.status, again.body.code]).toEqual([401, 'invalid_grant']);
  });

  test('a code is accepted once: the same code and older steps are refused, a step ahead (clock drift) works', async () => {
    const { email, user, app } = await enrolledUser();
    const code = await app.fresh();
    expect((await mfaLogin(await passwordStep(email), code)).status).toBe(200);
    const usedStep = Number((await query('SELECT totp_last_step FROM users WHERE id = $1', [user.id]))[0].totp_last_step);

    const token = await passwordStep(email);
    const replay = await mfaLogin(token, code);
    expect([replay.status, replay.body.code]).toEqual([401, 'invalid_mfa_code']);
    expect(replay.headers.get('content-type')).toMatch(/problem\+json/);
    expect(replay.body.attempts_remaining).toBe(4);
    const older = await mfaLogin(token, app.codeAt(usedStep - 1));
    expect([older.status, older.body.code]).toEqual([401, 'invalid_mfa_code']);
    const far = await mfaLogin(token, app.codeAt(app.stepNow() + 3));
    expect([far.status, far.body.code]).toEqual([401, 'invalid_mfa_code']);
    expect(await failedLogins(user.id)).toBe(3);
    const reasons = await query("SELECT data->>'reason' AS reason FROM audit_events WHERE user_id = $1 AND type = 'mfa.code_rejected' ORDER BY id", [user.id]);
    expect(reasons.map((x) => x.reason)).toEqual(['replayed', 'replayed', 'invalid']);

    // One step ahead of the server's clock is inside the ±1 window.
    const ahead = await app.oneStepAhead();
    const drift = await mfaLogin(token, app.take(ahead));
    expect(drift.status).toBe(200);
    expect(decodeJwt(drift.body.access_token).amr).toEqual(['pwd', 'otp']);
    expect(Number((await query('SELECT totp_last_step FROM users WHERE id = $1', [user.id]))[0].totp_last_step)).toBe(ahead);
    expect(await failedLogins(user.id)).toBe(0); // a completed login resets the counter
  });

  test('a recovery code signs in exactly once (in any case, with or without dashes)', async () => {
    const { email, user, recovery } = await enrolledUser();
    const ok = await mfaLogin(await passwordStep(email), recovery[0]);
    expect(ok.status).toBe(200);
    expect(decodeJwt(ok.body.access_token).amr).toEqual(['pwd', 'otp']);
    const used = await query('SELECT code_hash FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NOT NULL', [user.id]);
    expect(used).toHaveLength(1);
    expect((used[0].code_hash as Buffer).equals(sha256(recovery[0].replace(/-/g, '')))).toBe(true);
    const ev = await query("SELECT data FROM audit_events WHERE user_id = $1 AND type = 'login.succeeded' ORDER BY id DESC LIMIT 1", [user.id]);
    expect(ev[0].data).toMatchObject({ mfa_method: 'recovery', recovery_codes_left: 9 });

    const again = await mfaLogin(await passwordStep(email), recovery[0]);
    expect([again.status, again.body.code]).toEqual([401, 'invalid_mfa_code']);
    const typed = recovery[1].replace(/-/g, ' ').toUpperCase();
    expect((await mfaLogin(await passwordStep(email), typed)).status).toBe(200);
    expect((await query('SELECT count(*)::int AS n FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL', [user.id]))[0].n).toBe(8);
  });

  test('refresh keeps the session amr; a session that began without MFA cannot claim it later', async () => {
    const { email, app, session } = await enrolledUser(); // `session` began with the password only
    const before = await api('POST', '/v1/auth/refresh', { body: { refresh_token: session.refresh_token } });
    expect(before.status).toBe(200);
    expect(decodeJwt(before.body.access_token).amr).toEqual(['pwd']);

    const mfa = await mfaLogin(await passwordStep(email), await app.fresh());
    let refresh = mfa.body.refresh_token as string;
    for (let i = 0; i < 2; i++) {
      const r = await api('POST', '/v1/auth/refresh', { body: { refresh_token: refresh } });
      expect(r.status).toBe(200);
      const claims = decodeJwt(r.body.access_token);
      expect(claims.amr).toEqual(['pwd', 'otp']);
      expect(claims.sid).toBe(decodeJwt(mfa.body.access_token).sid);
      refresh = r.body.refresh_token;
    }
  });

  test('the mfa_token is bound to its attempt: another device, an expired or a made-up token is refused', async () => {
    const { email, app } = await enrolledUser();
    const device = { 'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0', 'X-Device-Id': 'phone-1' };
    const token = await passwordStep(email, GOOD_PASSWORD, device);
    const code = await app.fresh();
    const elsewhere = await mfaLogin(token, code, { ...device, 'X-Device-Id': 'laptop-2' });
    expect([elsewhere.status, elsewhere.body.code]).toEqual([401, 'invalid_grant']);
    expect((await mfaLogin(token, code, device)).status).toBe(200);

    const expiring = await passwordStep(email);
    await query("UPDATE mfa_challenges SET created_at = now() - interval '10 minutes', expires_at = now() - interval '5 minutes' WHERE token_hash = $1", [
      sha256(expiring),
    ]);
    const expired = await mfaLogin(expiring, await app.fresh());
    expect([expired.status, expired.body.code]).toEqual([401, 'invalid_grant']);

    for (const made of ['mfa_' + 'A'.repeat(43), 'mfa_short', expiring.slice(0, -1) + (expiring.endsWith('A') ? 'B' : 'A')]) {
      const r = await mfaLogin(made, '123456');
      expect([made, r.status, r.body.code]).toEqual([made, 401, 'invalid_grant']);
    }
  });

  test('malformed input: non-numeric and over-long codes are 401 and counted; broken bodies are 400', async () => {
    const { email, user } = await enrolledUser();
    const token = await passwordStep(email);
    for (const code of ['abcdef', '1234567', '12 34 5']) {
      const r = await mfaLogin(token, code);
      expect([code, r.status, r.body.code]).toEqual([code, 401, 'invalid_mfa_code']);
    }
    expect(await failedLogins(user.id)).toBe(3);
    for (const body of [
      { mfa_token: token, code: 'x'.repeat(65) },
      { mfa_token: token, code: 123456 },
      { mfa_token: token },
      { mfa_token: token, code: '123456', extra: 1 },
      {},
    ]) {
      const r = await api('POST', '/v1/auth/login/mfa', { body });
      expect([JSON.stringify(body), r.status, r.body.code]).toEqual([JSON.stringify(body), 400, 'validation_failed']);
      expect(r.headers.get('content-type')).toMatch(/problem\+json/);
    }
  });

  test('repeated wrong codes lock the account, across new password logins', async () => {
    const { email, user, app } = await enrolledUser();
    const spare = await passwordStep(email); // a live token from before the lock
    let token = await passwordStep(email);
    let locked: any;
    let failures = 0;
    for (let i = 0; i < 25 && !locked; i++) {
      const r = await mfaLogin(token, app.wrong());
      if (r.status === 423) locked = r;
      else if (r.body.code === 'invalid_grant')
        token = await passwordStep(email); // out of attempts on this token
      else {
        expect([r.status, r.body.code]).toEqual([401, 'invalid_mfa_code']);
        failures++;
      }
    }
    expect(locked?.body.code).toBe('account_locked');
    expect(failures).toBeGreaterThan(0);
    expect((await query('SELECT status FROM users WHERE id = $1', [user.id]))[0].status).toBe('locked');
    // Locked: neither the password step (which answers like a wrong password) nor a good code gets through.
    const pw = await api('POST', '/v1/auth/login', { body: { email, password: GOOD_PASSWORD } });
    expect([pw.status, pw.body.code, pw.body.mfa_token]).toEqual([401, 'invalid_credentials', undefined]);
    const late = await mfaLogin(spare, await app.fresh());
    expect([late.status, late.body.code]).toEqual([423, 'account_locked']);
  });

  test('Vault sealed while decrypting: 503 and no tokens; after unseal the same token and code work', async () => {
    const { email, user, app } = await enrolledUser();
    const token = await passwordStep(email);
    const code = await app.fresh();
    const root = vaultRoot();
    await root.seal();
    let down;
    try {
      down = await mfaLogin(token, code);
    } finally {
      await root.unseal(unsealKeys());
    }
    expect(down.status).toBe(503);
    expect(down.body.code).toBe('dependency_unavailable');
    expect(down.body.access_token).toBeUndefined();
    expect(down.headers.get('retry-after')).toBeTruthy();
    expect((await query('SELECT count(*)::int AS n FROM sessions WHERE user_id = $1 AND $2 = ANY(amr)', [user.id, 'otp']))[0].n).toBe(0);
    expect((await query('SELECT attempts FROM mfa_challenges WHERE token_hash = $1', [sha256(token)]))[0].attempts).toBe(0);

    let ok = await mfaLogin(token, code);
    for (let i = 1; i < 50 && ok.status === 503; i++) {
      await sleep(200);
      ok = await mfaLogin(token, code);
    }
    expect(ok.status).toBe(200);
    expect(decodeJwt(ok.body.access_token).amr).toEqual(['pwd', 'otp']);
  });
});

describe('sensitive operations of an MFA user', () => {
  test('turning MFA off needs the password and a fresh code; afterwards the password alone signs in', async () => {
    const { email, user, app } = await enrolledUser();
    const loginCode = await app.fresh();
    const tokens = (await mfaLogin(await passwordStep(email), loginCode)).body;
    const t = tokens.access_token;
    expect((await api('DELETE', '/v1/me/mfa/totp', { token: t })).status).toBe(400);
    for (const code of [app.wrong(), loginCode]) {
      const r = await api('DELETE', '/v1/me/mfa/totp', { token: t, body: { password: GOOD_PASSWORD, code } });
      expect([r.status, r.body.code]).toEqual([401, 'invalid_mfa_code']);
    }
    expect(await failedLogins(user.id)).toBe(2);
    const off = await api('DELETE', '/v1/me/mfa/totp', { token: t, body: { password: GOOD_PASSWORD, code: await app.fresh() } });
    expect(off.status).toBe(204);
    const [row] = await query('SELECT mfa_enabled, totp_secret_enc, totp_pending_enc, totp_last_step FROM users WHERE id = $1', [user.id]);
    expect(row).toEqual({ mfa_enabled: false, totp_secret_enc: null, totp_pending_enc: null, totp_last_step: null });
    expect((await query('SELECT count(*)::int AS n FROM mfa_recovery_codes WHERE user_id = $1', [user.id]))[0].n).toBe(0);
    const plain = await login(email, GOOD_PASSWORD);
    expect(decodeJwt(plain.access_token).amr).toEqual(['pwd']);
    expect((await api('DELETE', '/v1/me/mfa/totp', { token: t, body: { password: GOOD_PASSWORD, code: app.wrong() } })).status).toBe(409);
    await waitForMail(email, /Two-factor authentication is off/);
  });

  test('changing the password needs a fresh code; a pending mfa_token dies with the old password', async () => {
    const { email, app, recovery } = await enrolledUser();
    const t = (await mfaLogin(await passwordStep(email), await app.fresh())).body.access_token;
    const pendingToken = await passwordStep(email);
    const next = 'amber-cobalt-harbour-77';
    const body = { current_password: GOOD_PASSWORD, new_password: next };
    const missing = await api('PUT', '/v1/me/password', { token: t, body });
    expect([missing.status, missing.body.code]).toEqual([401, 'mfa_required']);
    const wrong = await api('PUT', '/v1/me/password', { token: t, body: { ...body, code: app.wrong() } });
    expect([wrong.status, wrong.body.code]).toEqual([401, 'invalid_mfa_code']);
    expect((await api('PUT', '/v1/me/password', { token: t, body: { ...body, code: await app.fresh() } })).status).toBe(204);

    const stale = await mfaLogin(pendingToken, recovery[0]); // a good code: only the token is wrong
    expect([stale.status, stale.body.code]).toEqual([401, 'invalid_grant']);
    expect((await api('POST', '/v1/auth/login', { body: { email, password: GOOD_PASSWORD } })).status).toBe(401);
    await passwordStep(email, next); // still MFA: the new password gets an mfa_token, not tokens
  });

  test('deleting the account needs a fresh code besides the password', async () => {
    const { email, user, app } = await enrolledUser();
    const loginCode = await app.fresh();
    const t = (await mfaLogin(await passwordStep(email), loginCode)).body.access_token;
    const missing = await api('DELETE', '/v1/me', { token: t, body: { password: GOOD_PASSWORD } });
    expect([missing.status, missing.body.code]).toEqual([401, 'mfa_required']);
    const replayed = await api('DELETE', '/v1/me', { token: t, body: { password: GOOD_PASSWORD, code: loginCode } });
    expect([replayed.status, replayed.body.code]).toEqual([401, 'invalid_mfa_code']);
    expect((await query('SELECT status FROM users WHERE id = $1', [user.id]))[0].status).toBe('active');
    const ok = await api('DELETE', '/v1/me', { token: t, body: { password: GOOD_PASSWORD, code: await app.fresh() } });
    expect(ok.status).toBe(202);
    expect(ok.body.user.status).toBe('pending_deletion');
  });

  test('a user without MFA changes the password without a code', async () => {
    const { email, password } = await registerAndVerify();
    const t = (await login(email, password)).access_token;
    expect((await api('PUT', '/v1/me/password', { token: t, body: { current_password: password, new_password: 'amber-cobalt-harbour-78' } })).status).toBe(204);
  });
});

describe('the contract', () => {
  test('the OpenAPI document describes the MFA endpoints', async () => {
    const doc = (await api('GET', '/openapi.json')).body;
    expect(Object.keys(doc.paths['/v1/me/mfa/totp'])).toEqual(expect.arrayContaining(['post', 'delete']));
    expect(doc.paths['/v1/me/mfa/totp/confirm'].post).toBeDefined();
    expect(doc.paths['/v1/auth/login/mfa'].post.requestBody).toBeDefined();
    expect(doc.paths['/v1/me/password'].put.requestBody.content['application/json'].schema.properties.code).toBeDefined();
  });

  test('no TOTP secret, recovery code or mfa_token appears in the service logs', () => {
    const info = stackInfo();
    const logs = ['api.log', 'worker.log'].map((f) => readFileSync(join(info.logs, f), 'utf8')).join('\n');
    // Six-digit codes are left out: any six digits occur by chance in timestamps and ids.
    const checked = secretsSeen.filter((s) => !/^\d{6}$/.test(s));
    expect(checked.length).toBeGreaterThan(20);
    for (const s of checked) expect(logs.includes(s) ? s : null).toBeNull();
  });
});

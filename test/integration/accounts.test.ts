/** Accounts, sessions and tokens over the real stack (issue: register, verify, login, logout,
 * refresh, JWKS). */
import { createRemoteJWKSet, jwtVerify, SignJWT, generateKeyPair, decodeJwt, base64url } from 'jose';
import { api, pg, query, stackInfo, uniqueEmail, waitForMail, mailsTo } from '../helpers/stack';
import { codeFrom, GOOD_PASSWORD, login, registerAndVerify } from '../helpers/users';

describe('registration and e-mail verification', () => {
  test('registers a pending user, stores an argon2id hash and a normalised e-mail', async () => {
    const email = uniqueEmail('Mixed.Case').replace('mixed.case', 'Mixed.Case');
    const r = await api('POST', '/v1/auth/register', { body: { email: `  ${email.toUpperCase()} `, password: GOOD_PASSWORD, name: 'Ada' } });
    expect(r.status).toBe(201);
    expect(r.body.user).toMatchObject({
      email: email.toLowerCase(),
      name: 'Ada',
      status: 'pending_verification',
      email_verified: false,
      mfa_enabled: false,
      roles: ['user'],
    });
    const c = await pg();
    try {
      const row = (await c.query('SELECT email, password_hash FROM users WHERE id = $1', [r.body.user.id])).rows[0];
      expect(row.email).toBe(email.toLowerCase());
      expect(row.password_hash).toMatch(/^\$argon2id\$v=19\$/);
      expect(row.password_hash).toMatch(/[$,]m=19456[,$]/);
      const ev = await c.query("SELECT type FROM audit_events WHERE user_id = $1 AND type = 'user.registered'", [r.body.user.id]);
      expect(ev.rowCount).toBe(1);
    } finally {
      await c.end();
    }
  });

  test('rejects weak passwords after NIST rules, with field errors', async () => {
    const email = uniqueEmail('weakpw');
    for (const password of ['short', 'password1234', 'aaaaaaaaaaaaaaaa', `${email.split('@')[0]}-suffix`]) {
      const r = await api('POST', '/v1/auth/register', { body: { email, password } });
      expect([password, r.status]).toEqual([password, 400]);
      expect(r.body.code).toBe('validation_failed');
      expect(r.body.errors[0].field).toBe('password');
    }
    const long = await api('POST', '/v1/auth/register', { body: { email, password: 'x'.repeat(129) } });
    expect(long.status).toBe(400);
  });

  test('rejects malformed bodies with problem+json listing the fields', async () => {
    const r = await api('POST', '/v1/auth/register', { body: { email: 'not-an-email', password: 42, extra: true } });
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toMatch(/problem\+json/);
    const fields = r.body.errors.map((e: { field: string }) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['email', 'password']));
    expect((await api('POST', '/v1/auth/register', { raw: '{"email":' })).body.code).toBe('invalid_json');
    expect((await api('POST', '/v1/auth/register', { raw: 'email=a', headers: { 'Content-Type': 'text/plain' } })).status).toBe(415);
    expect((await api('POST', '/v1/auth/register', { raw: '[]' })).status).toBe(400);
    expect((await api('POST', '/v1/auth/register', { raw: 'null' })).status).toBe(400);
  });

  test('a taken e-mail answers exactly like a new one and does not create a second account', async () => {
    const { email } = await registerAndVerify();
    const again = await api('POST', '/v1/auth/register', { body: { email, password: 'another-fine-passphrase-9' } });
    const fresh = await api('POST', '/v1/auth/register', { body: { email: uniqueEmail(), password: 'another-fine-passphrase-9' } });
    expect(again.status).toBe(fresh.status);
    expect(Object.keys(again.body.user).sort()).toEqual(Object.keys(fresh.body.user).sort());
    expect(again.body.user.status).toBe('pending_verification');
    const c = await pg();
    try {
      expect((await c.query('SELECT count(*)::int AS n FROM users WHERE email = $1', [email])).rows[0].n).toBe(1);
    } finally {
      await c.end();
    }
  });

  test('an unverified account signs in like a wrong password, gets its verification e-mail again, and the e-mailed token verifies once', async () => {
    const email = uniqueEmail('unverified');
    await api('POST', '/v1/auth/register', { body: { email, password: GOOD_PASSWORD } });
    await waitForMail(email, /Verify/);
    const nobody = await api('POST', '/v1/auth/login', { body: { email: uniqueEmail('nobody'), password: GOOD_PASSWORD } });
    const blocked = await api('POST', '/v1/auth/login', { body: { email, password: GOOD_PASSWORD } });
    // Register-then-login cannot tell a taken address from a free one.
    expect({ status: blocked.status, body: blocked.body }).toEqual({ status: 401, body: nobody.body });
    expect(blocked.body.detail).toMatch(/not verified/);
    // The right password sends the verification e-mail again; its token works.
    const again = await waitForMail(email, /Verify/, 20000, 1);
    const token = codeFrom(again.text);
    const ok = await api('POST', '/v1/auth/verify-email', { body: { token } });
    expect(ok.status).toBe(200);
    expect(ok.body.user).toMatchObject({ status: 'active', email_verified: true });
    const reuse = await api('POST', '/v1/auth/verify-email', { body: { token } });
    expect(reuse.status).toBe(400);
    expect(reuse.body.code).toBe('invalid_token');
    const wrong = await api('POST', '/v1/auth/verify-email', { body: { token: 'x'.repeat(32) } });
    expect(wrong.body.code).toBe('invalid_token');
    await login(email, GOOD_PASSWORD);
  });

  test('a resend (workflow update) issues a new code and supersedes the old one, up to the limit', async () => {
    const email = uniqueEmail('resend');
    const reg = await api('POST', '/v1/auth/register', { body: { email, password: GOOD_PASSWORD } });
    const first = codeFrom((await waitForMail(email, /Verify/)).text);
    const resend = await api('POST', '/v1/auth/verify-email/resend', { body: { email } });
    expect(resend.status).toBe(202);
    const second = codeFrom((await waitForMail(email, /Verify/, 20000, 1)).text);
    expect(second).not.toBe(first);
    expect((await api('POST', '/v1/auth/verify-email', { body: { token: first } })).body.code).toBe('invalid_token');
    expect((await api('POST', '/v1/auth/verify-email', { body: { token: second } })).status).toBe(200);
    expect(reg.status).toBe(201);
    // Verified: further resends are accepted (same answer) but send nothing.
    expect((await api('POST', '/v1/auth/verify-email/resend', { body: { email } })).status).toBe(202);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await mailsTo(email, /Verify/)).length).toBe(2);
  });
});

describe('registrations competing for one unverified address', () => {
  const register = async (email: string, password: string, name: string) => {
    const r = await api('POST', '/v1/auth/register', { body: { email, password, name } });
    expect(r.status).toBe(201);
    return r;
  };
  const loginStatus = async (email: string, password: string) => (await api('POST', '/v1/auth/login', { body: { email, password } })).status;

  test('someone registers the address first; the mailbox owner registers later, clicks the newest e-mail and chooses the password; the first password never signs in', async () => {
    const email = uniqueEmail('squatted');
    const squatter = 'squatter-chosen-passphrase-31';
    const owner = 'owner-chosen-passphrase-58';
    const first = await register(email, squatter, 'Mallory');
    await waitForMail(email, /Verify/);
    const second = await register(email, owner, 'Olivia');
    // The second registration answers like a first one.
    expect(Object.keys(second.body.user).sort()).toEqual(Object.keys(first.body.user).sort());
    expect(second.body.user).toMatchObject({ email, status: 'pending_verification', email_verified: false, roles: ['user'] });
    const newest = await waitForMail(email, /Verify/, 20000, 1);
    expect(newest.text).toMatch(/choose your password/);
    // While the address is contested neither password opens anything.
    expect(await loginStatus(email, squatter)).toBe(401);
    expect(await loginStatus(email, owner)).toBe(401);

    const token = codeFrom(newest.text);
    const bare = await api('POST', '/v1/auth/verify-email', { body: { token } });
    expect({ status: bare.status, code: bare.body.code }).toEqual({ status: 409, code: 'password_required' });
    expect(bare.headers.get('content-type')).toMatch(/problem\+json/);
    const done = await api('POST', '/v1/auth/verify-email', { body: { token, password: owner } });
    expect(done.status).toBe(200);
    expect(done.body.user).toMatchObject({ email, status: 'active', email_verified: true });
    expect(done.body.user.name).not.toBe('Mallory');

    expect(await loginStatus(email, squatter)).toBe(401);
    await login(email, owner);
    const row = (await query('SELECT password_hash, registration_contested_at FROM users WHERE email = $1', [email]))[0];
    expect(row.password_hash).toMatch(/^\$argon2id\$/);
    expect(row.registration_contested_at).toBeNull();
  });

  test('the owner registers first; someone re-registers the address; the owner clicks the newest e-mail, sets a password, and the re-registered password never signs in', async () => {
    const email = uniqueEmail('rereg');
    const owner = 'owner-original-passphrase-64';
    const intruder = 'intruder-chosen-passphrase-27';
    await register(email, owner, 'Olivia');
    const ownersMail = await waitForMail(email, /Verify/);
    await register(email, intruder, 'Mallory');
    const newest = await waitForMail(email, /Verify/, 20000, 1);
    expect(await loginStatus(email, intruder)).toBe(401);

    const token = codeFrom(newest.text);
    // The newest e-mail supersedes the owner's first one.
    expect((await api('POST', '/v1/auth/verify-email', { body: { token: codeFrom(ownersMail.text) } })).body.code).toBe('invalid_token');
    expect((await api('POST', '/v1/auth/verify-email', { body: { token } })).body.code).toBe('password_required');
    // A password the policy refuses leaves the token usable.
    const weak = await api('POST', '/v1/auth/verify-email', { body: { token, password: 'password1234' } });
    expect({ status: weak.status, code: weak.body.code }).toEqual({ status: 400, code: 'validation_failed' });
    expect((await api('POST', '/v1/auth/verify-email', { body: { token, password: owner } })).status).toBe(200);

    expect(await loginStatus(email, intruder)).toBe(401);
    await login(email, owner);
    const uid = (await query('SELECT id FROM users WHERE email = $1', [email]))[0].id;
    const events = (await query<{ type: string }>('SELECT type FROM audit_events WHERE user_id = $1 ORDER BY id', [uid])).map((e) => e.type);
    expect(events).toEqual(expect.arrayContaining(['user.registered', 'user.registration_contested', 'user.email_verified', 'password.set_at_verification']));
  });

  test('the OpenAPI document describes the optional password of verify-email and its 409 password_required', async () => {
    const op = (await api('GET', '/openapi.json')).body.paths['/v1/auth/verify-email'].post;
    const schema = op.requestBody.content['application/json'].schema;
    expect(schema.required).toEqual(['token']);
    expect(schema.properties.password).toMatchObject({ type: 'string' });
    expect(op.responses['409'].description).toMatch(/password_required/);
  });

  test('an uncontested registration still verifies with the token alone; a password sent with it replaces the registered one', async () => {
    const email = uniqueEmail('single');
    await register(email, GOOD_PASSWORD, 'Una');
    const token = codeFrom((await waitForMail(email, /Verify/)).text);
    const ok = await api('POST', '/v1/auth/verify-email', { body: { token, password: 'replacement-passphrase-93' } });
    expect(ok.status).toBe(200);
    expect(await loginStatus(email, GOOD_PASSWORD)).toBe(401);
    await login(email, 'replacement-passphrase-93');
  });
});

describe('login', () => {
  test('issues EdDSA access tokens with the documented claims, verifiable from the JWKS URL alone', async () => {
    const { email, password, user } = await registerAndVerify();
    const tokens = await login(email, password);
    expect(tokens).toMatchObject({ token_type: 'Bearer', expires_in: 900 });
    // The session's idle timeout (14 days) caps the refresh token's 30 days.
    expect(tokens.refresh_expires_in).toBeGreaterThan(1209600 - 5);
    expect(tokens.refresh_expires_in).toBeLessThanOrEqual(1209600);
    const jwks = createRemoteJWKSet(new URL(`${stackInfo().urls.api}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, {
      algorithms: ['EdDSA'],
      audience: 'authflow',
      issuer: stackInfo().urls.api,
    });
    expect(protectedHeader.alg).toBe('EdDSA');
    expect(protectedHeader.kid).toBeTruthy();
    expect(payload).toMatchObject({ sub: user.id, amr: ['pwd'], roles: ['user'] });
    for (const claim of ['sid', 'jti', 'iat', 'exp', 'iss', 'aud']) expect(payload[claim]).toBeDefined();
    expect((payload.exp as number) - (payload.iat as number)).toBe(900);
    const c = await pg();
    try {
      const s = await c.query('SELECT user_id, amr, revoked_at FROM sessions WHERE id = $1', [payload.sid]);
      expect(s.rows[0]).toMatchObject({ user_id: user.id, amr: ['pwd'], revoked_at: null });
      const ev = await c.query("SELECT count(*)::int AS n FROM audit_events WHERE user_id = $1 AND type = 'login.succeeded'", [user.id]);
      expect(ev.rows[0].n).toBe(1);
    } finally {
      await c.end();
    }
  });

  test('the JWKS is cacheable and holds only public keys', async () => {
    const r = await api('GET', '/.well-known/jwks.json');
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toMatch(/max-age=\d+/);
    expect(r.body.keys.length).toBeGreaterThan(0);
    const shapes: Record<string, object> = {
      EdDSA: { kty: 'OKP', crv: 'Ed25519' },
      ES256: { kty: 'EC', crv: 'P-256' },
      RS256: { kty: 'RSA', e: 'AQAB' },
    };
    expect(new Set(r.body.keys.map((k: any) => k.alg))).toEqual(new Set(Object.keys(shapes)));
    for (const k of r.body.keys) {
      expect(k).toMatchObject({ ...shapes[k.alg], use: 'sig' });
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(k[secret]).toBeUndefined();
    }
  });

  test('wrong password, unknown e-mail and unverified account (even with its right password) look the same to a guesser', async () => {
    const { email } = await registerAndVerify();
    const pending = uniqueEmail('pending');
    await api('POST', '/v1/auth/register', { body: { email: pending, password: GOOD_PASSWORD } });
    const attempts = [
      await timed(() => api('POST', '/v1/auth/login', { body: { email: pending, password: GOOD_PASSWORD } })),
      await timed(() => api('POST', '/v1/auth/login', { body: { email, password: 'wrong-password-guess-1' } })),
      await timed(() => api('POST', '/v1/auth/login', { body: { email: uniqueEmail('nobody'), password: 'wrong-password-guess-1' } })),
      await timed(() => api('POST', '/v1/auth/login', { body: { email: pending, password: 'wrong-password-guess-1' } })),
    ];
    const strip = (b: Record<string, unknown>) => ({ ...b });
    for (const a of attempts) {
      expect(a.r.status).toBe(401);
      expect(strip(a.r.body)).toEqual(strip(attempts[0].r.body));
      expect(a.r.body.code).toBe('invalid_credentials');
    }
    // Comparable time: the unknown e-mail still pays for a full argon2id verification.
    const [known, unknown] = [attempts[1].ms, attempts[2].ms];
    expect(unknown).toBeGreaterThan(known * 0.3);
    expect(unknown).toBeLessThan(known * 3 + 50);
  });
});

async function timed<T>(fn: () => Promise<T>): Promise<{ r: T; ms: number }> {
  const t0 = performance.now();
  const r = await fn();
  return { r, ms: performance.now() - t0 };
}

describe('refresh tokens', () => {
  test('rotate on every use: the new pair works, the old refresh token is spent', async () => {
    const { email, password } = await registerAndVerify();
    const t1 = await login(email, password);
    const r2 = await api('POST', '/v1/auth/refresh', { body: { refresh_token: t1.refresh_token } });
    expect(r2.status).toBe(200);
    expect(r2.body.refresh_token).not.toBe(t1.refresh_token);
    expect(decodeJwt(r2.body.access_token).sid).toBe(decodeJwt(t1.access_token).sid);
    const r3 = await api('POST', '/v1/auth/refresh', { body: { refresh_token: r2.body.refresh_token } });
    expect(r3.status).toBe(200);
    const c = await pg();
    try {
      const rows = await c.query('SELECT token_hash FROM refresh_tokens WHERE session_id = $1', [decodeJwt(t1.access_token).sid]);
      expect(rows.rowCount).toBe(3);
      // Stored only as hashes.
      const raw = Buffer.from(t1.refresh_token);
      for (const row of rows.rows) expect((row.token_hash as Buffer).equals(raw)).toBe(false);
      expect(JSON.stringify(rows.rows)).not.toContain(t1.refresh_token.slice(3, 20));
    } finally {
      await c.end();
    }
  });

  test('a spent token presented again revokes the whole session and is audited', async () => {
    const { email, password, user } = await registerAndVerify();
    const t1 = await login(email, password);
    const r2 = await api('POST', '/v1/auth/refresh', { body: { refresh_token: t1.refresh_token } });
    expect(r2.status).toBe(200);
    const reuse = await api('POST', '/v1/auth/refresh', { body: { refresh_token: t1.refresh_token } });
    expect(reuse.status).toBe(401);
    expect(reuse.body.code).toBe('token_reused');
    // The legitimate holder's newer token is dead too: the whole session ended.
    const after = await api('POST', '/v1/auth/refresh', { body: { refresh_token: r2.body.refresh_token } });
    expect(after.status).toBe(401);
    expect(after.body.code).toBe('invalid_grant');
    const c = await pg();
    try {
      const ev = await c.query("SELECT data FROM audit_events WHERE user_id = $1 AND type = 'token_reused'", [user.id]);
      expect(ev.rowCount).toBe(1);
      const s = await c.query('SELECT revoke_reason FROM sessions WHERE id = $1', [decodeJwt(t1.access_token).sid]);
      expect(s.rows[0].revoke_reason).toBe('token_reused');
    } finally {
      await c.end();
    }
  });

  test('concurrent use of one refresh token yields exactly one success', async () => {
    const { email, password } = await registerAndVerify();
    const t1 = await login(email, password);
    const results = await Promise.all(Array.from({ length: 8 }, () => api('POST', '/v1/auth/refresh', { body: { refresh_token: t1.refresh_token } })));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 401)).toHaveLength(7);
    for (const r of results.filter((x) => x.status === 401)) expect(['token_reused', 'invalid_grant']).toContain(r.body.code);
  });

  test('expired refresh tokens are refused', async () => {
    const { email, password } = await registerAndVerify();
    const t1 = await login(email, password);
    const c = await pg();
    try {
      await c.query("UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE session_id = $1", [decodeJwt(t1.access_token).sid]);
    } finally {
      await c.end();
    }
    const r = await api('POST', '/v1/auth/refresh', { body: { refresh_token: t1.refresh_token } });
    expect(r.status).toBe(401);
    expect(r.body.code).toBe('invalid_grant');
  });

  test('garbage refresh tokens are 401/400, never 500', async () => {
    for (const refresh_token of ['x', 'rt_' + 'A'.repeat(43), 'rt_' + '!'.repeat(43), '\u0000'.repeat(10)]) {
      const r = await api('POST', '/v1/auth/refresh', { body: { refresh_token } });
      expect([refresh_token, r.status]).toEqual([refresh_token, 401]);
    }
    expect((await api('POST', '/v1/auth/refresh', { body: {} })).status).toBe(400);
    expect((await api('POST', '/v1/auth/refresh', { body: { refresh_token: 5 } })).status).toBe(400);
  });
});

describe('logout, logout-all, me, password change', () => {
  test('logout ends that session only', async () => {
    const { email, password } = await registerAndVerify();
    const a = await login(email, password);
    const b = await login(email, password);
    expect((await api('POST', '/v1/auth/logout', { body: { refresh_token: a.refresh_token } })).status).toBe(204);
    expect((await api('POST', '/v1/auth/refresh', { body: { refresh_token: a.refresh_token } })).status).toBe(401);
    expect((await api('POST', '/v1/auth/refresh', { body: { refresh_token: b.refresh_token } })).status).toBe(200);
    // Unknown tokens: nothing to end, same answer.
    expect((await api('POST', '/v1/auth/logout', { body: { refresh_token: 'rt_' + 'B'.repeat(43) } })).status).toBe(204);
  });

  test('logout-all ends every session of the user and is audited', async () => {
    const { email, password, user } = await registerAndVerify();
    const a = await login(email, password);
    const b = await login(email, password);
    expect((await api('POST', '/v1/auth/logout-all', { token: a.access_token })).status).toBe(204);
    for (const t of [a, b]) expect((await api('POST', '/v1/auth/refresh', { body: { refresh_token: t.refresh_token } })).status).toBe(401);
    const c = await pg();
    try {
      expect((await c.query("SELECT count(*)::int AS n FROM audit_events WHERE user_id = $1 AND type = 'logout_all'", [user.id])).rows[0].n).toBe(1);
    } finally {
      await c.end();
    }
  });

  test('GET /v1/me returns the user for a valid bearer token', async () => {
    const { email, password, user } = await registerAndVerify({ name: 'Grace' });
    const t = await login(email, password);
    const me = await api('GET', '/v1/me', { token: t.access_token });
    expect(me.status).toBe(200);
    expect(me.body.user).toMatchObject({ id: user.id, email, name: 'Grace', status: 'active', email_verified: true });
  });

  test('password change needs the current password, ends the other sessions, keeps this one, and e-mails the user', async () => {
    const { email, password } = await registerAndVerify();
    const mine = await login(email, password);
    const other = await login(email, password);
    const wrong = await api('PUT', '/v1/me/password', {
      token: mine.access_token,
      body: { current_password: 'not-the-password-1', new_password: 'brand-new-passphrase-77' },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.code).toBe('invalid_credentials');
    const weak = await api('PUT', '/v1/me/password', { token: mine.access_token, body: { current_password: password, new_password: 'password' } });
    expect(weak.status).toBe(400);
    const ok = await api('PUT', '/v1/me/password', { token: mine.access_token, body: { current_password: password, new_password: 'brand-new-passphrase-77' } });
    expect(ok.status).toBe(204);
    expect((await api('POST', '/v1/auth/refresh', { body: { refresh_token: other.refresh_token } })).status).toBe(401);
    expect((await api('POST', '/v1/auth/refresh', { body: { refresh_token: mine.refresh_token } })).status).toBe(200);
    expect((await api('POST', '/v1/auth/login', { body: { email, password } })).status).toBe(401);
    await login(email, 'brand-new-passphrase-77');
    await waitForMail(email, /password was changed/);
  });
});

describe('bearer token checks', () => {
  let good: string;
  beforeAll(async () => {
    const { email, password } = await registerAndVerify();
    good = (await login(email, password)).access_token;
  });

  test('malformed, tampered, alg none, wrong alg, unknown kid and expired tokens are 401', async () => {
    const [header, payload, sig] = good.split('.');
    const claims = decodeJwt(good);
    const hs = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'HS256', kid: JSON.parse(Buffer.from(header, 'base64url').toString()).kid })
      .sign(new TextEncoder().encode('x'.repeat(32)));
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const foreign = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'EdDSA', kid: 'attacker-key', typ: 'at+jwt' }).sign(privateKey);
    const sameKidForeign = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'EdDSA', kid: JSON.parse(Buffer.from(header, 'base64url').toString()).kid, typ: 'at+jwt' })
      .sign(privateKey);
    const none = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt' }))}.${payload}.`;
    const tamperedPayload = base64url.encode(JSON.stringify({ ...claims, roles: ['admin'] }));
    const expiredClaims = base64url.encode(JSON.stringify({ ...claims, exp: Math.floor(Date.now() / 1000) - 10 }));
    const cases: Record<string, string | undefined> = {
      missing: undefined,
      garbage: 'not-a-jwt',
      truncated: `${header}.${payload}`,
      tampered: `${header}.${tamperedPayload}.${sig}`,
      expiredForged: `${header}.${expiredClaims}.${sig}`,
      algNone: none,
      hs256: hs,
      unknownKid: foreign,
      foreignKeySameKid: sameKidForeign,
    };
    for (const [name, token] of Object.entries(cases)) {
      const r = await api('GET', '/v1/me', token ? { headers: { Authorization: `Bearer ${token}` } } : {});
      expect([name, r.status, r.body.code]).toEqual([name, 401, 'unauthorized']);
    }
    expect((await api('GET', '/v1/me', { headers: { Authorization: `Basic ${good}` } })).status).toBe(401);
    expect((await api('GET', '/v1/me', { token: good })).status).toBe(200);
  });
});

/**
 * Second factor and password changes an attacker with a stolen session cannot abuse (issue 14,
 * findings 4, 5 and 6), over the real stack. The stack locks an account after 5 consecutive
 * failed credentials (LOCKOUT_THRESHOLD in test/env/lifecycle.json), an mfa_token allows 5 codes,
 * and the per-user re-authentication limit is 60 a minute (test/env/limits.json).
 */
import { api, query, sleep } from '../helpers/stack';
import { authenticatorApp } from '../helpers/totp-app';
import { login, registerAndVerify } from '../helpers/users';

jest.setTimeout(180_000);

const App = authenticatorApp();
const THRESHOLD = 5;
const WRONG = 'not-the-password-9';
const NEW_PASSWORD = 'quartz-harbour-meridian-77';

const status = async (userId: string) => (await query('SELECT status FROM users WHERE id = $1', [userId]))[0].status as string;
const auditCount = async (userId: string, type: string, since: Date) =>
  (await query<{ n: number }>('SELECT count(*)::int AS n FROM audit_events WHERE user_id = $1 AND type = $2 AND created_at >= $3', [userId, type, since]))[0].n;

/** A verified user with TOTP on, and the session that enrolled it. */
async function mfaUser() {
  const u = await registerAndVerify();
  const session = await login(u.email, u.password);
  const enrol = await api('POST', '/v1/me/mfa/totp', { token: session.access_token, body: { password: u.password } });
  expect(enrol.status).toBe(200);
  const app = App.fromUrl(enrol.body.otpauth_url);
  const confirm = await api('POST', '/v1/me/mfa/totp/confirm', { token: session.access_token, body: { code: await app.fresh() } });
  expect(confirm.status).toBe(200);
  return { ...u, app, token: session.access_token };
}

async function passwordStep(email: string, password: string): Promise<string> {
  const r = await api('POST', '/v1/auth/login', { body: { email, password } });
  expect([r.status, r.body.mfa_required]).toEqual([200, true]);
  return r.body.mfa_token as string;
}

describe('finding 4: changing the second factor needs the password', () => {
  test('a stolen access token alone cannot enrol an attacker’s authenticator: no password 400, a wrong one 401, nothing pending', async () => {
    const u = await registerAndVerify();
    const { access_token: stolen } = await login(u.email, u.password);
    const none = await api('POST', '/v1/me/mfa/totp', { token: stolen });
    expect([none.status, none.body.code]).toEqual([400, 'validation_failed']);
    const wrong = await api('POST', '/v1/me/mfa/totp', { token: stolen, body: { password: WRONG } });
    expect([wrong.status, wrong.body.code]).toEqual([401, 'invalid_credentials']);
    expect(wrong.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(wrong.body.secret).toBeUndefined();
    const [row] = await query('SELECT totp_pending_enc, mfa_enabled FROM users WHERE id = $1', [u.user.id]);
    expect(row).toEqual({ totp_pending_enc: null, mfa_enabled: false });
  });

  test('wrong passwords there count like failed logins: one device is throttled, many devices lock the account and end the stolen session', async () => {
    const u = await registerAndVerify();
    const { access_token: stolen } = await login(u.email, u.password);
    // From one device: once past the free failures (3 in the tests) even the right password is refused.
    const one = { 'X-Device-Id': 'thief-laptop' };
    for (let i = 0; i < 4; i++) {
      const r = await api('POST', '/v1/me/mfa/totp', { token: stolen, headers: one, body: { password: `${WRONG}-${i}` } });
      expect([i, r.status]).toEqual([i, 401]);
    }
    const throttled = await api('POST', '/v1/me/mfa/totp', { token: stolen, headers: one, body: { password: u.password } });
    expect([throttled.status, throttled.body.code]).toEqual([401, 'invalid_credentials']);
    // From a new device each time: the account-wide cap (5) locks it.
    for (let i = 0; i < THRESHOLD; i++) {
      const r = await api('POST', '/v1/me/mfa/totp', { token: stolen, headers: { 'X-Device-Id': `thief-${i}` }, body: { password: `${WRONG}-${i}` } });
      expect([i, r.status]).toEqual([i, 401]);
    }
    expect(await status(u.user.id)).toBe('locked');
    // The lock ends the session: its access token is refused within the revocation lag.
    await sleep(2500);
    const after = await api('POST', '/v1/me/mfa/totp', { token: stolen, headers: { 'X-Device-Id': 'thief-9' }, body: { password: u.password } });
    expect(after.status).toBe(401);
    expect((await query('SELECT totp_pending_enc FROM users WHERE id = $1', [u.user.id]))[0].totp_pending_enc).toBeNull();
  });

  test('turning TOTP off needs the password and a current code; a code with a wrong password is not even looked at', async () => {
    const u = await mfaUser();
    const code = await u.app.fresh();
    const onlyCode = await api('DELETE', '/v1/me/mfa/totp', { token: u.token, body: { code } });
    expect([onlyCode.status, onlyCode.body.code]).toEqual([400, 'validation_failed']);
    const wrongPassword = await api('DELETE', '/v1/me/mfa/totp', { token: u.token, body: { password: WRONG, code } });
    expect([wrongPassword.status, wrongPassword.body.code]).toEqual([401, 'invalid_credentials']);
    expect((await query('SELECT mfa_enabled FROM users WHERE id = $1', [u.user.id]))[0].mfa_enabled).toBe(true);
    // The same code still works with the password: it was not spent by the refused request.
    const off = await api('DELETE', '/v1/me/mfa/totp', { token: u.token, body: { password: u.password, code } });
    expect(off.status).toBe(204);
  });
});

describe('finding 5: parallel codes cannot get past the account-wide cap', () => {
  test('40 parallel wrong codes over 8 mfa_tokens: at most the threshold are evaluated, then even the right code is refused', async () => {
    const u = await mfaUser();
    const tokens: string[] = [];
    for (let i = 0; i < 9; i++) tokens.push(await passwordStep(u.email, u.password));
    const spare = tokens.pop()!;
    const t0 = new Date(Date.now() - 1000);
    const wrong = u.app.wrong();
    const answers = await Promise.all(
      tokens.flatMap((mfa_token) => Array.from({ length: 5 }, () => api('POST', '/v1/auth/login/mfa', { body: { mfa_token, code: wrong } }))),
    );
    expect(answers.every((r) => [401, 423].includes(r.status))).toBe(true);
    expect(answers.some((r) => r.body.access_token)).toBe(false);
    // Evaluated codes are audited as rejected; the rest were refused before being looked at.
    const evaluated = await auditCount(u.user.id, 'mfa.code_rejected', t0);
    expect(evaluated).toBeLessThanOrEqual(THRESHOLD);
    expect(evaluated).toBeGreaterThan(0);
    expect(await status(u.user.id)).toBe('locked');
    const right = await api('POST', '/v1/auth/login/mfa', { body: { mfa_token: spare, code: await u.app.fresh() } });
    expect([right.status, right.body.code]).toEqual([423, 'account_locked']);
    expect(right.body.access_token).toBeUndefined();
  });
});

describe('finding 6: PUT /v1/me/password is no current-password oracle', () => {
  const change = (token: string, body: Record<string, unknown>) => api('PUT', '/v1/me/password', { token, body });

  test('with a new password the policy refuses, a right and a wrong current password get the same 400', async () => {
    const u = await registerAndVerify();
    const { access_token: t } = await login(u.email, u.password);
    const weak = 'password1234';
    const right = await change(t, { current_password: u.password, new_password: weak });
    const wrong = await change(t, { current_password: WRONG, new_password: weak });
    expect([right.status, right.body.code]).toEqual([400, 'validation_failed']);
    expect(wrong.status).toBe(400);
    const strip = (b: Record<string, unknown>) => ({ ...b, instance: undefined, request_id: undefined });
    expect(strip(wrong.body)).toEqual(strip(right.body));
    // Nothing was counted for either.
    expect((await query('SELECT failed_logins FROM users WHERE id = $1', [u.user.id]))[0].failed_logins).toBe(0);
  });

  test('wrong current passwords count like failed logins: the threshold-th (from several devices) locks the account', async () => {
    const u = await registerAndVerify();
    const { access_token: t } = await login(u.email, u.password);
    for (let i = 0; i < THRESHOLD; i++) {
      const r = await api('PUT', '/v1/me/password', {
        token: t,
        headers: { 'X-Device-Id': `oracle-${i}` },
        body: { current_password: `${WRONG}-${i}`, new_password: NEW_PASSWORD },
      });
      expect([i, r.status, r.body.code]).toEqual([i, 401, 'invalid_credentials']);
    }
    expect(await status(u.user.id)).toBe('locked');
    const signIn = await api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } });
    expect(signIn.status).toBe(401);
  });

  test('per-user limit: the 61st attempt within a minute is 429 with Retry-After, whatever it carries', async () => {
    const u = await registerAndVerify();
    const { access_token: t } = await login(u.email, u.password);
    for (let i = 0; i < 60; i++) {
      const r = await change(t, { current_password: u.password, new_password: 'password1234' });
      expect([i, r.status]).toEqual([i, 400]);
    }
    const limited = await change(t, { current_password: u.password, new_password: NEW_PASSWORD });
    expect([limited.status, limited.body.code]).toEqual([429, 'rate_limited']);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  test('an MFA user’s code is spent only by a change that happens', async () => {
    const u = await mfaUser();
    const code = await u.app.fresh();
    // A wrong current password, or a new password the policy refuses: the code stays good.
    const wrongCurrent = await change(u.token, { current_password: WRONG, new_password: NEW_PASSWORD, code });
    expect([wrongCurrent.status, wrongCurrent.body.code]).toEqual([401, 'invalid_credentials']);
    const weak = await change(u.token, { current_password: u.password, new_password: 'password1234', code });
    expect(weak.status).toBe(400);
    const ok = await change(u.token, { current_password: u.password, new_password: NEW_PASSWORD, code });
    expect(ok.status).toBe(204);
    // Spent by the change: the same code cannot authorise another one.
    const again = await change(u.token, { current_password: NEW_PASSWORD, new_password: 'cobalt-lantern-orchard-31', code });
    expect([again.status, again.body.code]).toEqual([401, 'invalid_mfa_code']);
  });
});

/**
 * Every e-mail says what happened (issue 19 item 3): each template's claims and instructions,
 * read from the real mail in maildev, checked against what the service then does. Stack settings
 * from test/env/lifecycle.json (lock 4 s after 5 failures, deletion grace 6 s).
 */
import { api, query, uniqueEmail, until, waitForMail, type Mail } from '../helpers/stack';
import { authenticatorApp } from '../helpers/totp-app';
import { adminAccount, codeFrom, enrolTotp, login, loginWithTotp, registerAndVerify } from '../helpers/users';

jest.setTimeout(120_000);

const NEW_PASSWORD = 'saffron-glacier-quill-903';
const WRONG = 'not-the-password-at-all';
let adminToken: string;

beforeAll(async () => {
  const a = await adminAccount();
  adminToken = (await loginWithTotp(a.email, a.password, a.app)).access_token;
});

const admin = (method: string, path: string, body?: unknown) => api(method, `/v1/admin${path}`, { token: adminToken, body });
const signIn = (email: string, password: string, headers: Record<string, string> = {}) => api('POST', '/v1/auth/login', { body: { email, password }, headers });
const forgot = (email: string) => api('POST', '/v1/auth/password/forgot', { body: { email } });
const reset = (token: string, new_password = NEW_PASSWORD) => api('POST', '/v1/auth/password/reset', { body: { token, new_password } });
const refresh = (token: string) => api('POST', '/v1/auth/refresh', { body: { refresh_token: token } });
/** The mail's text with its line breaks folded, so a claim can be matched across them. */
const said = (m: Mail) => m.text.replace(/\s+/g, ' ');

function expectCode(r: { status: number; body: any }, status: number, code: string) {
  expect([r.status, r.body?.code]).toEqual([status, code]);
}

describe('password reset mails', () => {
  test('a reset the user asked for: "your password is unchanged" holds until the code is used', async () => {
    const u = await registerAndVerify();
    expect((await forgot(u.email)).status).toBe(202);
    const mail = await waitForMail(u.email, /Reset your password/);
    expect(said(mail)).toContain('If you did not ask for this, ignore this message; your password is unchanged.');
    expect(said(mail)).not.toMatch(/administrator|no longer works/);
    expect((await signIn(u.email, u.password)).status).toBe(200);
    expect((await reset(codeFrom(mail.text))).status).toBe(204);
    expect((await signIn(u.email, NEW_PASSWORD)).status).toBe(200);
  });

  test("after an administrator's reset: the old password no longer works, two-step sign-in is gone, sessions are signed out; a new code comes from forgot password", async () => {
    const u = await registerAndVerify();
    const { app } = await enrolTotp((await login(u.email, u.password)).access_token, u.password, authenticatorApp());
    const before = await loginWithTotp(u.email, u.password, app);
    expect((await admin('POST', `/users/${u.user.id}/reset`)).status).toBe(200);
    const mail = await waitForMail(u.email, /Reset your password/);
    const text = said(mail);
    expect(text).toContain(
      'An administrator reset your account: your old password no longer works, two-step sign-in (if you used it) was removed and every session was signed out.',
    );
    expect(text).not.toContain('unchanged');
    // Each claim, checked.
    expectCode(await signIn(u.email, u.password), 401, 'invalid_credentials');
    expect((await refresh(before.refresh_token)).status).toBe(401);
    // "After that, ask for a new code with forgot password": let the code expire (and the anti-spam interval pass).
    await query(
      `UPDATE one_time_tokens SET created_at = created_at - interval '2 days', expires_at = now() - interval '1 second' WHERE user_id = $1 AND purpose = 'password_reset'`,
      [u.user.id],
    );
    expect((await reset(codeFrom(mail.text))).status).toBe(400);
    expect((await forgot(u.email)).status).toBe(202);
    const again = await until('a second reset mail', async () => {
      const m = await waitForMail(u.email, /Reset your password/);
      return codeFrom(m.text) !== codeFrom(mail.text) && m;
    });
    // Still no password: the second mail says so too.
    expect(said(again)).toContain('your old password no longer works');
    expect((await reset(codeFrom(again.text))).status).toBe(204);
    // The new password signs in without a second factor: the factor really was removed.
    const r = await signIn(u.email, NEW_PASSWORD);
    expect(r.status).toBe(200);
    expect(r.body.access_token).toBeDefined();
    expect(r.body.mfa_required).toBeUndefined();
  });
});

describe('the lock mail', () => {
  test('"locked until T; you can sign in again after that"; a reset sets a new password but the lock lasts until T', async () => {
    const u = await registerAndVerify();
    for (let i = 0; i < 5; i++) await signIn(u.email, WRONG, { 'X-Device-Id': `guesser-${Date.now()}-${i}`, 'User-Agent': `Guesser/${i}` });
    const mail = await waitForMail(u.email, /locked/);
    const text = said(mail);
    const until_ = Date.parse(/locked until (\S+?);/.exec(text)![1]);
    expect(until_).toBeGreaterThan(Date.now());
    expect(text).toContain('choose a new one with "forgot password" (the lock still lasts until then)');
    const owner = { 'X-Device-Id': 'owner-laptop', 'User-Agent': 'Owner/1' };
    const refused = (r: { status: number; body: any }) => expect([r.status >= 400, r.body.access_token]).toEqual([true, undefined]);
    refused(await signIn(u.email, u.password, owner));
    expect((await forgot(u.email)).status).toBe(202);
    const resetMail = await waitForMail(u.email, /Reset your password/);
    expect((await reset(codeFrom(resetMail.text))).status).toBe(204);
    if (Date.now() < until_ - 500) refused(await signIn(u.email, NEW_PASSWORD, owner));
    // After T: in with the new password.
    await until('the lock to end', async () => Date.now() > until_ + 100);
    expect((await signIn(u.email, NEW_PASSWORD, owner)).status).toBe(200);
  });
});

describe('suspension and reactivation mails', () => {
  test('"you cannot sign in, and every session was signed out"; then "you can sign in with your password"', async () => {
    const u = await registerAndVerify();
    const t = await login(u.email, u.password);
    expect((await admin('POST', `/users/${u.user.id}/suspend`)).status).toBe(200);
    expect(said(await waitForMail(u.email, /suspended/))).toContain('you cannot sign in, and every session was signed out');
    expectCode(await signIn(u.email, u.password), 403, 'account_suspended');
    expect((await refresh(t.refresh_token)).status).toBeGreaterThanOrEqual(401);
    expect((await admin('POST', `/users/${u.user.id}/reactivate`)).status).toBe(200);
    expect(said(await waitForMail(u.email, /active again/))).toContain('you can sign in with your password');
    expect((await signIn(u.email, u.password)).status).toBe(200);
  });
});

describe('the deletion mail', () => {
  const reactivate = (email: string, password: string) => api('POST', '/v1/me/reactivate', { body: { email, password } });

  test('asked for by the user: "until then you cannot sign in"; the reactivation it names keeps the account', async () => {
    const u = await registerAndVerify();
    const t = await login(u.email, u.password);
    expect((await api('DELETE', '/v1/me', { token: t.access_token, body: { password: u.password } })).status).toBe(202);
    const text = said(await waitForMail(u.email, /will be deleted/));
    expect(text).toContain('As you asked, your account is scheduled for deletion');
    expect(text).toContain('Until then you cannot sign in.');
    expect(text).toContain('POST /v1/me/reactivate');
    expect(text).not.toMatch(/sign in and reactivate/i);
    expectCode(await signIn(u.email, u.password), 401, 'invalid_credentials');
    const r = await reactivate(u.email, u.password);
    expect([r.status, r.body.user?.status]).toEqual([200, 'active']);
    expect((await signIn(u.email, u.password)).status).toBe(200);
  });

  test('scheduled by an administrator: says so, and the same reactivation works; a suspended account cannot, as the mail warns', async () => {
    const u = await registerAndVerify();
    expect((await admin('DELETE', `/users/${u.user.id}`)).status).toBe(202);
    const text = said(await waitForMail(u.email, /will be deleted/));
    expect(text).toContain('An administrator scheduled your account for deletion');
    expect(text).toContain('An account that was suspended cannot be reactivated this way: contact support.');
    expect((await reactivate(u.email, u.password)).status).toBe(200);

    const s = await registerAndVerify({ email: uniqueEmail('suspended') });
    expect((await admin('POST', `/users/${s.user.id}/suspend`)).status).toBe(200);
    expect((await admin('DELETE', `/users/${s.user.id}`)).status).toBe(202);
    await waitForMail(s.email, /will be deleted/);
    expectCode(await reactivate(s.email, s.password), 403, 'account_suspended');
  });
});

describe('the password-changed and erasure mails', () => {
  test('"if this was not you, reset it now": the reset works right after a change', async () => {
    const u = await registerAndVerify();
    const t = await login(u.email, u.password);
    const changed = await api('PUT', '/v1/me/password', { token: t.access_token, body: { current_password: u.password, new_password: NEW_PASSWORD } });
    expect(changed.status).toBeLessThan(300);
    expect(said(await waitForMail(u.email, /password was changed/))).toContain('If this was not you, reset it now');
    expect((await forgot(u.email)).status).toBe(202);
    const mail = await waitForMail(u.email, /Reset your password/);
    expect((await reset(codeFrom(mail.text), 'lantern-marigold-basalt-64')).status).toBe(204);
    expect((await signIn(u.email, 'lantern-marigold-basalt-64')).status).toBe(200);
  });

  test('"your account and its personal data were deleted": after the grace period nothing of it signs in or keeps the address', async () => {
    const u = await registerAndVerify({ name: 'Erased Person' });
    const t = await login(u.email, u.password);
    expect((await api('DELETE', '/v1/me', { token: t.access_token, body: { password: u.password } })).status).toBe(202);
    expect(said(await waitForMail(u.email, /was deleted/, 30_000))).toContain('Your account and its personal data were deleted.');
    const [row] = await query('SELECT status, email, name, password_hash FROM users WHERE id = $1', [u.user.id]);
    expect(row ?? { status: 'deleted', email: null, name: null, password_hash: null }).toMatchObject({
      status: 'deleted',
      email: null,
      name: null,
      password_hash: null,
    });
    expectCode(await signIn(u.email, u.password), 401, 'invalid_credentials');
  });
});

/**
 * Issue 19, item 7: the admin API needs a session signed in with a second factor. An admin
 * without one still gets tokens, but every admin endpoint (admin users, operations, the codec)
 * answers 403 mfa_enrolment_required with RFC 9470's insufficient_user_authentication challenge,
 * in both token schemes; enrolling mid-session does not upgrade that session; signing in with a
 * TOTP or a recovery code does. The rule is on in the test stack (its default).
 */
import { decodeJwt } from 'jose';
import { deviceKey, dpopGet, dpopPost } from '../helpers/dpop';
import { api, query } from '../helpers/stack';
import { authenticatorApp } from '../helpers/totp-app';
import { enrolTotp, login, loginWithTotp, registerAndVerify } from '../helpers/users';

jest.setTimeout(120_000);

const App = authenticatorApp();

async function promotedAdmin() {
  const u = await registerAndVerify({ name: 'MFA Rule Admin' });
  await query("UPDATE users SET roles = ARRAY['user','admin'] WHERE id = $1", [u.user.id]);
  return u;
}

const ADMIN_CALLS: Array<[string, string, unknown?]> = [
  ['GET', '/v1/admin/users?limit=1'],
  ['GET', '/v1/admin/audit-events?limit=1'],
  ['GET', '/v1/admin/ops'],
  ['POST', '/codec/decode', { payloads: [] }],
];

function expectNeedsSecondFactor(r: { status: number; body: any; headers: Headers }, scheme: 'Bearer' | 'DPoP' = 'Bearer') {
  expect([r.status, r.body.code]).toEqual([403, 'mfa_enrolment_required']);
  expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
  expect(r.body.detail).toMatch(/second factor/);
  const challenge = r.headers.get('www-authenticate') ?? '';
  expect(challenge.startsWith(`${scheme} `)).toBe(true);
  expect(challenge).toMatch(/error="insufficient_user_authentication"/);
}

const call = (token: string, [method, path, body]: [string, string, unknown?]) =>
  api(method, path, { token, body, headers: path.startsWith('/codec') ? { 'X-Namespace': 'default' } : {} });

test('an admin signed in with the password only gets tokens, but no admin endpoint; its own account routes work', async () => {
  const a = await promotedAdmin();
  const s = await login(a.email, a.password);
  expect(decodeJwt(s.access_token)).toMatchObject({ roles: ['user', 'admin'], amr: ['pwd'] });
  for (const c of ADMIN_CALLS) expectNeedsSecondFactor(await call(s.access_token, c));
  expect((await api('GET', '/v1/me', { token: s.access_token })).status).toBe(200);
  // Refreshing does not add a factor either.
  const refreshed = await api('POST', '/v1/auth/refresh', { body: { refresh_token: s.refresh_token } });
  expect(refreshed.status).toBe(200);
  expectNeedsSecondFactor(await call(refreshed.body.access_token, ADMIN_CALLS[0]));
});

test('enrolling TOTP does not upgrade the session that enrolled; a sign-in with a TOTP code or a recovery code opens the admin API', async () => {
  const a = await promotedAdmin();
  const s = await login(a.email, a.password);
  const { app, recoveryCodes } = await enrolTotp(s.access_token, a.password, App);
  for (const c of ADMIN_CALLS) expectNeedsSecondFactor(await call(s.access_token, c));
  const withTotp = await loginWithTotp(a.email, a.password, app);
  expect(decodeJwt(withTotp.access_token).amr).toEqual(['pwd', 'otp']);
  for (const c of ADMIN_CALLS) expect([c[1], (await call(withTotp.access_token, c)).status]).toEqual([c[1], 200]);
  // The MFA session keeps its amr across refresh.
  const refreshed = await api('POST', '/v1/auth/refresh', { body: { refresh_token: withTotp.refresh_token } });
  expect((await call(refreshed.body.access_token, ADMIN_CALLS[0])).status).toBe(200);
  const withRecovery = await loginWithTotp(a.email, a.password, { fresh: async () => recoveryCodes[0] });
  expect((await call(withRecovery.access_token, ADMIN_CALLS[0])).status).toBe(200);
});

test('a DPoP-bound admin session without a second factor gets the DPoP challenge', async () => {
  const a = await promotedAdmin();
  const key = await deviceKey();
  const s = await dpopPost('/v1/auth/login', { email: a.email, password: a.password }, key);
  expect([s.status, s.body.token_type]).toEqual([200, 'DPoP']);
  expectNeedsSecondFactor(await dpopGet('/v1/admin/users?limit=1', s.body.access_token, key), 'DPoP');
  expect((await dpopGet('/v1/me', s.body.access_token, key)).status).toBe(200);
});

test('the rule does not tell a non-admin anything: a plain user still gets 403 forbidden, with or without a factor', async () => {
  const u = await registerAndVerify();
  const s = await login(u.email, u.password);
  const r = await call(s.access_token, ADMIN_CALLS[0]);
  expect([r.status, r.body.code]).toEqual([403, 'forbidden']);
  const { app } = await enrolTotp(s.access_token, u.password, App);
  const mfa = await loginWithTotp(u.email, u.password, app);
  expect((await call(mfa.access_token, ADMIN_CALLS[0])).body.code).toBe('forbidden');
});

test('the OpenAPI document names mfa_enrolment_required on admin routes', async () => {
  const doc = (await api('GET', '/openapi.json')).body;
  expect(doc.paths['/v1/admin/users'].get.responses['403'].description).toMatch(/mfa_enrolment_required/);
  expect(doc.paths['/codec/decode'].post.responses['403'].description).toMatch(/mfa_enrolment_required/);
});

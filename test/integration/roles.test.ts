/**
 * Roles by API (issue 19 item 10): an admin grants and revokes roles; a granted role appears at
 * the next refresh, a revoked one leaves no usable access token behind; every account keeps
 * `user`; `admin` goes only to an active, verified account; audited; input checked like every
 * admin route. The last-admin rule for `admin`: last-admin.test.ts.
 */
import { decodeJwt } from 'jose';
import { makeAdmin } from '../helpers/ops';
import { api, query, sleep, uniqueEmail } from '../helpers/stack';
import { login, registerAndVerify } from '../helpers/users';

jest.setTimeout(120_000);

let adminToken: () => Promise<string>;
let adminId: string;
beforeAll(async () => {
  const a = await makeAdmin();
  adminToken = () => a.token();
  adminId = a.user.id;
});

const roles = async (method: 'PUT' | 'DELETE', userId: string, role: string, query_ = '') =>
  api(method, `/v1/admin/users/${userId}/roles/${role}${query_}`, { token: await adminToken() });
const auditRoles = async (userId: string) =>
  (
    await query<{ type: string; role: string }>(`SELECT type, data->>'role' AS role FROM audit_events WHERE user_id = $1 AND type LIKE 'role.%' ORDER BY id`, [
      userId,
    ])
  ).map((r) => `${r.type}:${r.role}`);
const refresh = (token: string) => api('POST', '/v1/auth/refresh', { body: { refresh_token: token } });

function expectProblem(r: { status: number; body: any; headers: Headers }, status: number, code: string) {
  expect([r.status, r.body?.code]).toEqual([status, code]);
  expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
}

test('a granted role appears at the next refresh; granting again changes nothing; audited once', async () => {
  const u = await registerAndVerify();
  const t = await login(u.email, u.password);
  const r = await roles('PUT', u.user.id, 'billing');
  expect([r.status, r.body.user.roles]).toEqual([200, ['user', 'billing']]);
  expect((await roles('PUT', u.user.id, 'billing')).body.user.roles).toEqual(['user', 'billing']);
  expect(await auditRoles(u.user.id)).toEqual(['role.granted:billing']);
  const next = await refresh(t.refresh_token);
  expect(decodeJwt(next.body.access_token).roles).toEqual(['user', 'billing']);
  const [ev] = await query(`SELECT actor_id FROM audit_events WHERE user_id = $1 AND type = 'role.granted'`, [u.user.id]);
  expect(ev.actor_id).toBe(adminId);
});

test('a revoked role: the access token that carried it is refused at once; the session refreshes to tokens without it', async () => {
  const u = await registerAndVerify();
  await roles('PUT', u.user.id, 'support');
  const t = await login(u.email, u.password);
  expect(decodeJwt(t.access_token).roles).toEqual(['user', 'support']);
  expect((await api('GET', '/v1/me', { token: t.access_token })).status).toBe(200);
  const r = await roles('DELETE', u.user.id, 'support');
  expect([r.status, r.body.user.roles]).toEqual([200, ['user']]);
  expect((await api('GET', '/v1/me', { token: t.access_token })).status).toBe(401);
  // Access tokens carry whole seconds: one from the same second as the revocation is refused too.
  await sleep(1100);
  const next = await refresh(t.refresh_token);
  expect(next.status).toBe(200);
  expect(decodeJwt(next.body.access_token).roles).toEqual(['user']);
  expect((await api('GET', '/v1/me', { token: next.body.access_token })).status).toBe(200);
  // Revoking a role the account does not hold changes nothing.
  expect((await roles('DELETE', u.user.id, 'support')).status).toBe(200);
  expect(await auditRoles(u.user.id)).toEqual(['role.granted:support', 'role.revoked:support']);
});

test('admin goes only to an active, verified account; an admin made by API can use the admin API only after a second factor; losing the role ends that at once', async () => {
  const email = uniqueEmail('unverified');
  const reg = await api('POST', '/v1/auth/register', { body: { email, password: 'copper-lantern-meadow-61' } });
  expectProblem(await roles('PUT', reg.body.user.id, 'admin'), 409, 'invalid_transition');
  expect((await roles('PUT', reg.body.user.id, 'reader')).status).toBe(200);

  const u = await registerAndVerify();
  expect((await roles('PUT', u.user.id, 'admin')).status).toBe(200);
  const t = await login(u.email, u.password);
  expectProblem(await api('GET', '/v1/admin/users', { token: t.access_token }), 403, 'mfa_enrolment_required');
  const peer = await makeAdmin();
  expect((await api('GET', '/v1/admin/users', { token: await peer.token() })).status).toBe(200);
  expect((await api('DELETE', `/v1/admin/users/${peer.user.id}/roles/admin`, { token: await adminToken() })).status).toBe(200);
  // The peer's token that was an admin's a moment ago opens nothing.
  expect((await api('GET', '/v1/admin/users', { token: await peer.token() })).status).toBe(401);
});

test('every account keeps user; bad role names, unknown users and non-admins are refused', async () => {
  const u = await registerAndVerify();
  expectProblem(await roles('DELETE', u.user.id, 'user'), 409, 'conflict');
  for (const bad of ['Admin', 'a%20b', 'x'.repeat(33), '9lives', '%F0%9F%94%91']) expectProblem(await roles('PUT', u.user.id, bad), 400, 'validation_failed');
  expectProblem(await roles('PUT', '00000000-0000-4000-8000-000000000000', 'billing'), 404, 'not_found');
  expectProblem(await roles('PUT', 'not-a-uuid', 'billing'), 400, 'validation_failed');
  const plain = await login(u.email, u.password);
  expectProblem(await api('PUT', `/v1/admin/users/${u.user.id}/roles/admin`, { token: plain.access_token }), 403, 'forbidden');
  expect((await query('SELECT roles FROM users WHERE id = $1', [u.user.id]))[0].roles).toEqual(['user']);
});

test('32 roles at most', async () => {
  const u = await registerAndVerify();
  await query(`UPDATE users SET roles = ARRAY['user'] || ARRAY(SELECT 'r' || g FROM generate_series(1, 31) g) WHERE id = $1`, [u.user.id]);
  expectProblem(await roles('PUT', u.user.id, 'one-more'), 409, 'conflict');
});

test("revoking one of one's own roles needs confirm_self, and then refuses one's own access token too", async () => {
  expect((await roles('PUT', adminId, 'auditor')).status).toBe(200);
  expectProblem(await roles('DELETE', adminId, 'auditor'), 409, 'self_action_not_confirmed');
  const token = await adminToken();
  expect((await roles('DELETE', adminId, 'auditor', '?confirm_self=true')).status).toBe(200);
  expect((await api('GET', '/v1/me', { token })).status).toBe(401);
});

/** Validation errors name the field the client sent (issue 19, bug 4): the policy's refusal of a
 * new password names `new_password`, an unknown member names itself, in bodies and queries. */
import { makeAdmin } from '../helpers/ops';
import { api, uniqueEmail } from '../helpers/stack';
import { login, registerAndVerify } from '../helpers/users';

const fields = (r: { body: { errors?: Array<{ field: string }> } }) => (r.body.errors ?? []).map((e) => e.field);

test('a new password the policy refuses is named new_password (change) and password (registration)', async () => {
  const u = await registerAndVerify();
  const { access_token } = await login(u.email, u.password);
  const change = await api('PUT', '/v1/me/password', { token: access_token, body: { current_password: u.password, new_password: 'password1234' } });
  expect([change.status, change.body.code, fields(change)]).toEqual([400, 'validation_failed', ['new_password']]);
  const reg = await api('POST', '/v1/auth/register', { body: { email: uniqueEmail('weak'), password: 'password1234' } });
  expect([reg.status, fields(reg)]).toEqual([400, ['password']]);
});

test('unknown members are named themselves, in a body and in a query', async () => {
  const body = await api('POST', '/v1/auth/register', {
    body: { email: uniqueEmail('extra'), password: 'violet-tangerine-lighthouse-42', nickname: 'x', role: 'admin' },
  });
  expect([body.status, body.body.code]).toEqual([400, 'validation_failed']);
  expect(fields(body).sort()).toEqual(['nickname', 'role']);
  expect(body.body.detail).toMatch(/nickname/);
  const admin = await makeAdmin();
  const q = await api('GET', '/v1/admin/users?limit=5&colour=blue', { token: await admin.token() });
  expect([q.status, fields(q)]).toEqual([400, ['colour']]);
});

/**
 * Nobody can leave the service without an active administrator (issue 19, bug 5): the last
 * active admin cannot be locked, suspended or deleted, by another admin or by itself (even with
 * `?confirm_self=true`, even through DELETE /v1/me), and two admins locking each other at the same
 * moment cannot both succeed. Other test files' admins are demoted for the file and restored.
 */
import { makeAdmin } from '../helpers/ops';
import { api, query } from '../helpers/stack';

jest.setTimeout(120_000);

let demoted: string[] = [];
beforeAll(async () => {
  demoted = (await query<{ id: string }>(`UPDATE users SET roles = ARRAY['user'] WHERE 'admin' = ANY(roles) RETURNING id`)).map((r) => r.id);
});
afterAll(async () => {
  await query(`UPDATE users SET roles = ARRAY['user','admin'] WHERE id = ANY($1)`, [demoted]);
});

const activeAdmins = async () => (await query<{ n: number }>(`SELECT count(*)::int AS n FROM users WHERE status = 'active' AND 'admin' = ANY(roles)`))[0].n;

function expectLastAdmin(r: { status: number; body: any; headers: Headers }) {
  expect([r.status, r.body.code]).toEqual([409, 'last_admin']);
  expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
}

test('the only admin cannot lock, suspend or delete itself, with confirm_self or through DELETE /v1/me', async () => {
  const a = await makeAdmin();
  expect(await activeAdmins()).toBe(1);
  const t = await a.token();
  expectLastAdmin(await api('POST', `/v1/admin/users/${a.user.id}/lock?confirm_self=true`, { token: t, body: {} }));
  expectLastAdmin(await api('POST', `/v1/admin/users/${a.user.id}/suspend?confirm_self=true`, { token: t, body: {} }));
  expectLastAdmin(await api('DELETE', `/v1/admin/users/${a.user.id}?confirm_self=true`, { token: t }));
  expectLastAdmin(await api('DELETE', '/v1/me', { token: t, body: { password: a.password, code: await a.app.fresh() } }));
  expect((await query('SELECT status FROM users WHERE id = $1', [a.user.id]))[0].status).toBe('active');
  // With a second admin, the first may go; then the second is the last.
  const b = await makeAdmin();
  const locked = await api('POST', `/v1/admin/users/${a.user.id}/lock`, { token: await b.token(), body: {} });
  expect(locked.status).toBe(200);
  expectLastAdmin(await api('POST', `/v1/admin/users/${b.user.id}/suspend?confirm_self=true`, { token: await b.token(), body: {} }));
  expect(await activeAdmins()).toBe(1);
  // Unlock the first again for the race below to start from two.
  expect((await api('POST', `/v1/admin/users/${a.user.id}/unlock`, { token: await b.token(), body: {} })).status).toBe(200);
});

test('two admins locking each other at once: one wins, one active admin is left', async () => {
  await query(`UPDATE users SET roles = ARRAY['user'] WHERE 'admin' = ANY(roles)`);
  for (let round = 0; round < 5; round++) {
    await query(`UPDATE users SET roles = ARRAY['user'] WHERE 'admin' = ANY(roles)`);
    const [c, d] = [await makeAdmin(), await makeAdmin()];
    const [tc, td] = [await c.token(), await d.token()];
    const [r1, r2] = await Promise.all([
      api('POST', `/v1/admin/users/${d.user.id}/lock`, { token: tc, body: {} }),
      api('POST', `/v1/admin/users/${c.user.id}/lock`, { token: td, body: {} }),
    ]);
    const statuses = [r1.status, r2.status].sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    // The loser is refused as the last admin, or (its own lock committed first) as no longer an admin in good standing.
    expect([401, 403, 409]).toContain(statuses.find((s) => s !== 200));
    expect(await activeAdmins()).toBe(1);
  }
});

test('the only admin cannot strip its own admin role, with confirm_self; with a second admin it can, and then the second keeps it', async () => {
  await query(`UPDATE users SET roles = ARRAY['user'] WHERE 'admin' = ANY(roles)`);
  const a = await makeAdmin();
  expect(await activeAdmins()).toBe(1);
  expectLastAdmin(await api('DELETE', `/v1/admin/users/${a.user.id}/roles/admin?confirm_self=true`, { token: await a.token() }));
  const b = await makeAdmin();
  const stripped = await api('DELETE', `/v1/admin/users/${a.user.id}/roles/admin`, { token: await b.token() });
  expect([stripped.status, stripped.body.user?.roles]).toEqual([200, ['user']]);
  expectLastAdmin(await api('DELETE', `/v1/admin/users/${b.user.id}/roles/admin?confirm_self=true`, { token: await b.token() }));
  expect(await activeAdmins()).toBe(1);
});

test('two admins stripping each other at once: one wins, one active admin is left', async () => {
  for (let round = 0; round < 5; round++) {
    await query(`UPDATE users SET roles = ARRAY['user'] WHERE 'admin' = ANY(roles)`);
    const [c, d] = [await makeAdmin(), await makeAdmin()];
    const [tc, td] = [await c.token(), await d.token()];
    const [r1, r2] = await Promise.all([
      api('DELETE', `/v1/admin/users/${d.user.id}/roles/admin`, { token: tc }),
      api('DELETE', `/v1/admin/users/${c.user.id}/roles/admin`, { token: td }),
    ]);
    const statuses = [r1.status, r2.status].sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect([401, 403, 409]).toContain(statuses.find((s) => s !== 200));
    expect(await activeAdmins()).toBe(1);
  }
});

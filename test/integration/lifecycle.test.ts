/** Account lifecycle and administration over the real stack: the first-admin command,
 * admin lock/unlock, suspension, reactivation, reset, deletion with a grace
 * period (cancelled and erased), audit listings and the state rules in the schema. Timers come
 * from test/env/lifecycle.json (grace 6 s). Password guessing and lockout: password-guessing.test.ts. */
import type { Client } from '@temporalio/client';
import { decodeJwt } from 'jose';
import { api, mailsTo, pg, sleep, stackInfo, uniqueEmail, waitForMail, query, until } from '../helpers/stack';
import { authenticatorApp } from '../helpers/totp-app';
import { codeFrom, enrolTotp, login, loginWithTotp, registerAndVerify } from '../helpers/users';
import { stackClients, type StackClients } from '../replay/stack-codec';
import { FlowAttr, UserIdAttr } from '../../platform/temporal/ids';
import { deletionStateQuery } from '../../workflows/account-deletion';
import { createAdminCli } from '../helpers/ops';

const ADMIN_PASSWORD = 'quartz-harbour-meridian-77';
let adminEmail: string;
let adminId: string;
let adminToken: string;
let clients: StackClients;
/** Temporal client with the production data converter (the stack's codec keys). */
let temporal: Client;

const createAdmin = createAdminCli;

const admin = (method: string, path: string, body?: unknown) => api(method, `/v1/admin${path}`, { token: adminToken, body });
const userRow = async (id: string) => (await query('SELECT * FROM users WHERE id = $1', [id]))[0];
const auditTypes = async (id: string) =>
  (await query<{ type: string }>('SELECT type FROM audit_events WHERE user_id = $1 ORDER BY id', [id])).map((r) => r.type);
const wfStatus = async (id: string) => (await temporal.workflow.getHandle(id).describe()).status.name;

function expectProblem(r: { status: number; headers: Headers; body: any }, status: number, code: string) {
  expect({ status: r.status, code: r.body?.code }).toEqual({ status, code });
  expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
}

beforeAll(async () => {
  clients = await stackClients(stackInfo());
  temporal = clients.client;
  adminEmail = uniqueEmail('admin');
  const r = await createAdmin(adminEmail, { ADMIN_PASSWORD });
  if (r.code !== 0) throw new Error(`create-admin failed (${r.code}): ${r.stderr}`);
  adminId = JSON.parse(r.stdout.trim().split('\n').pop()!).user_id;
  adminToken = await withSecondFactor(adminEmail);
});

/** An admin made by create-admin enrols TOTP and signs in with it (the admin API needs a second factor). */
async function withSecondFactor(email: string): Promise<string> {
  const { app } = await enrolTotp((await login(email, ADMIN_PASSWORD)).access_token, ADMIN_PASSWORD, authenticatorApp());
  return (await loginWithTotp(email, ADMIN_PASSWORD, app)).access_token;
}

afterAll(async () => {
  await clients?.close();
});

describe('first admin (npm run create-admin)', () => {
  test('creates an active, verified admin from ADMIN_PASSWORD who can use the admin API; audited', async () => {
    const row = await userRow(adminId);
    expect(row).toMatchObject({ email: adminEmail, status: 'active', roles: ['user', 'admin'] });
    expect(row.email_verified_at).not.toBeNull();
    expect(row.password_hash).toMatch(/^\$argon2id\$/);
    expect(decodeJwt(adminToken).roles).toEqual(['user', 'admin']);
    const list = await admin('GET', `/users?query=${encodeURIComponent(adminEmail)}`);
    expect(list.status).toBe(200);
    expect(list.body.users).toEqual([expect.objectContaining({ id: adminId, roles: ['user', 'admin'], status: 'active', email_verified: true })]);
    expect(await auditTypes(adminId)).toContain('admin.created');
  });

  test('has no default password: without ADMIN_PASSWORD and no terminal it refuses and creates nothing', async () => {
    const email = uniqueEmail('nopw');
    const r = await createAdmin(email);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/ADMIN_PASSWORD/);
    expect(await query('SELECT id FROM users WHERE email = $1', [email])).toHaveLength(0);
  });

  test('applies the password policy', async () => {
    const email = uniqueEmail('weakadmin');
    const r = await createAdmin(email, { ADMIN_PASSWORD: 'password1234' });
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/password rejected/);
    expect(await query('SELECT id FROM users WHERE email = $1', [email])).toHaveLength(0);
  });

  test('promotes an account in use without a flag, sets the given password and ends its sessions; a plain user gets 403', async () => {
    const { email, password, user } = await registerAndVerify();
    const before = await login(email, password);
    expectProblem(await api('GET', '/v1/admin/users', { token: before.access_token }), 403, 'forbidden');
    const r = await createAdmin(email, { ADMIN_PASSWORD });
    expect(r.code).toBe(0);
    // The registrant's password and session are gone; the given password is the one that works.
    expect((await api('POST', '/v1/auth/login', { body: { email, password } })).status).toBe(401);
    expect((await api('POST', '/v1/auth/refresh', { body: { refresh_token: before.refresh_token } })).status).toBe(401);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^promoted \S+ to admin .*; password set; 1 session ended$/);
    expect(JSON.parse(lines[1])).toEqual({ result: 'promoted', user_id: user.id, status: 'active', password_set: true, sessions_ended: 1 });
    // Signed in with the password only, the new admin holds the role but not yet the admin API.
    const after = await login(email, ADMIN_PASSWORD);
    expect(decodeJwt(after.access_token).roles).toEqual(['user', 'admin']);
    expectProblem(await api('GET', `/v1/admin/users/${user.id}`, { token: after.access_token }), 403, 'mfa_enrolment_required');
    const mfaToken = await withSecondFactor(email);
    expect((await api('GET', `/v1/admin/users/${user.id}`, { token: mfaToken })).body.user.roles).toEqual(['user', 'admin']);
    expect(await auditTypes(user.id)).toEqual(expect.arrayContaining(['admin.promoted', 'password.set_by_operator']));
    // An access token minted before the promotion belongs to an ended session: refused (docs/security.md, revocation feed).
    expectProblem(await api('GET', '/v1/admin/users', { token: before.access_token }), 401, 'unauthorized');
  });

  test("refuses an unverified account someone registered with the admin's address unless told --promote-existing; nothing changes", async () => {
    const email = uniqueEmail('squat.admin');
    const reg = await api('POST', '/v1/auth/register', { body: { email, password: 'squatter-passphrase-for-admin-11' } });
    expect(reg.status).toBe(201);
    const id = (await query('SELECT id FROM users WHERE email = $1', [email]))[0].id;
    const before = await userRow(id);
    const r = await createAdmin(email, { ADMIN_PASSWORD });
    expect(r.code).toBe(77);
    expect(r.stderr).toMatch(/unverified.*--promote-existing/s);
    expect(r.stdout).toBe('');
    expect(await userRow(id)).toEqual(before);
    expect(await auditTypes(id)).not.toContain('admin.promoted');
  });

  test("with --promote-existing an account someone registered with the admin's address keeps nothing of theirs: their password no longer works, the given one does", async () => {
    const email = uniqueEmail('squat.promote');
    const squatter = 'squatter-passphrase-for-admin-12';
    expect((await api('POST', '/v1/auth/register', { body: { email, password: squatter } })).status).toBe(201);
    const mailed = codeFrom((await waitForMail(email, /Verify/)).text);
    const r = await createAdmin(email, { ADMIN_PASSWORD }, ['--promote-existing']);
    expect(r.code).toBe(0);
    expect((await api('POST', '/v1/auth/login', { body: { email, password: squatter } })).status).toBe(401);
    const t = await login(email, ADMIN_PASSWORD);
    expect(decodeJwt(t.access_token).roles).toEqual(['user', 'admin']);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/promoted .*address marked verified; password set; 0 sessions ended/);
    const result = JSON.parse(lines.pop()!);
    expect(result).toMatchObject({ result: 'promoted', status: 'active', password_set: true, sessions_ended: 0 });
    // The codes mailed for that registration are spent.
    expect((await api('POST', '/v1/auth/verify-email', { body: { token: mailed } })).body.code).toBe('invalid_token');
    expect(await auditTypes(result.user_id)).toEqual(expect.arrayContaining(['user.email_verified', 'admin.promoted', 'password.set_by_operator']));
  });

  test('a verified account that never signed in counts as never used: refused without the flag, promoted with it', async () => {
    const { email, password, user } = await registerAndVerify();
    const refused = await createAdmin(email, { ADMIN_PASSWORD });
    expect(refused.code).toBe(77);
    expect(refused.stderr).toMatch(/never been used/);
    expect((await userRow(user.id)).roles).toEqual(['user']);
    const r = await createAdmin(email, { ADMIN_PASSWORD }, ['--promote-existing']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toMatchObject({ result: 'promoted', user_id: user.id, status: 'active', sessions_ended: 0 });
    expect((await api('POST', '/v1/auth/login', { body: { email, password } })).status).toBe(401);
    await login(email, ADMIN_PASSWORD);
  });

  test('--help explains --promote-existing and what happens to an existing account', async () => {
    const r = await createAdmin('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--promote-existing/);
    expect(r.stdout).toMatch(/never used/);
    expect(r.stdout).toMatch(/sessions? .*ends?/);
  });

  test('an admin whose session ended loses admin access although the JWT is unexpired', async () => {
    const email = uniqueEmail('admin2');
    expect((await createAdmin(email, { ADMIN_PASSWORD })).code).toBe(0);
    const { app } = await enrolTotp((await login(email, ADMIN_PASSWORD)).access_token, ADMIN_PASSWORD, authenticatorApp());
    const t = await loginWithTotp(email, ADMIN_PASSWORD, app);
    expect((await api('GET', '/v1/admin/users?limit=1', { token: t.access_token })).status).toBe(200);
    expect((await api('POST', '/v1/auth/logout', { body: { refresh_token: t.refresh_token } })).status).toBe(204);
    expectProblem(await api('GET', '/v1/admin/users?limit=1', { token: t.access_token }), 401, 'unauthorized');
  });
});

describe('admin lock, suspension and reactivation', () => {
  test('an admin lock ends sessions and holds until unlocked', async () => {
    const { email, password, user } = await registerAndVerify();
    const t = await login(email, password);
    const r = await admin('POST', `/users/${user.id}/lock`, { reason: 'investigating' });
    expect(r.status).toBe(200);
    expect(r.body.user.status).toBe('locked');
    expect((await api('POST', '/v1/auth/refresh', { body: { refresh_token: t.refresh_token } })).status).toBe(401);
    // The right password learns nothing of the lock (test/integration/password-guessing.test.ts has the rest).
    const login2 = await api('POST', '/v1/auth/login', { body: { email, password } });
    expectProblem(login2, 401, 'invalid_credentials');
    expect(login2.body.retry_at).toBeUndefined();
    expectProblem(await admin('POST', `/users/${user.id}/lock`), 409, 'invalid_transition');
    expect((await admin('POST', `/users/${user.id}/unlock`)).body.user.status).toBe('active');
    await login(email, password);
  });

  test('suspension ends sessions at once, blocks login and refresh, e-mails the user; reactivation restores', async () => {
    const { email, password, user } = await registerAndVerify();
    const t = await login(email, password);
    const r = await admin('POST', `/users/${user.id}/suspend`, { reason: 'abuse report' });
    expect(r.status).toBe(200);
    expect(r.body.user.status).toBe('suspended');
    const live = await query('SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL', [user.id]);
    expect(live).toHaveLength(0);
    const refresh = await api('POST', '/v1/auth/refresh', { body: { refresh_token: t.refresh_token } });
    expect(refresh.status).toBeGreaterThanOrEqual(401);
    expect(refresh.body.access_token).toBeUndefined();
    expectProblem(await api('POST', '/v1/auth/login', { body: { email, password } }), 403, 'account_suspended');
    // A wrong password still says nothing about the suspension.
    expectProblem(await api('POST', '/v1/auth/login', { body: { email, password: 'not-the-password-at-all' } }), 401, 'invalid_credentials');
    await waitForMail(email, /suspended/);
    expectProblem(await admin('POST', `/users/${user.id}/suspend`), 409, 'invalid_transition');
    expectProblem(await admin('POST', `/users/${user.id}/unlock`), 409, 'invalid_transition');

    const back = await admin('POST', `/users/${user.id}/reactivate`);
    expect(back.status).toBe(200);
    expect(back.body.user.status).toBe('active');
    await waitForMail(email, /active again/);
    await login(email, password);
    expectProblem(await admin('POST', `/users/${user.id}/reactivate`), 409, 'invalid_transition');
    const events = await query<{ type: string; actor_id: string; data: any }>(
      "SELECT type, actor_id, data FROM audit_events WHERE user_id = $1 AND type LIKE 'account.%' ORDER BY id",
      [user.id],
    );
    expect(events.map((e) => [e.type, e.actor_id, e.data.from, e.data.to])).toEqual([
      ['account.suspended', adminId, 'active', 'suspended'],
      ['account.reactivated', adminId, 'suspended', 'active'],
    ]);
    expect(events[0].data.sessions_ended).toBe(1);
  });

  test('an admin cannot suspend, lock, reset or delete themselves without confirm_self', async () => {
    for (const [method, path] of [
      ['POST', 'suspend'],
      ['POST', 'lock'],
      ['POST', 'reset'],
      ['DELETE', ''],
    ] as const) {
      const r = await admin(method, `/users/${adminId}${path ? `/${path}` : ''}`);
      expectProblem(r, 409, 'self_action_not_confirmed');
    }
    expect((await userRow(adminId)).status).toBe('active');
    expect((await admin('GET', '/users?limit=1')).status).toBe(200);
  });

  test('unknown ids are 404 and malformed ids 400, as problem+json', async () => {
    expectProblem(await admin('POST', '/users/00000000-0000-4000-8000-000000000000/suspend'), 404, 'not_found');
    expectProblem(await admin('GET', '/users/not-a-uuid'), 400, 'validation_failed');
    expectProblem(await admin('GET', '/users?status=sleeping'), 400, 'validation_failed');
    expectProblem(await admin('GET', '/users?cursor=bm90LWEtY3Vyc29y'), 400, 'validation_failed');
  });
});

describe('admin reset', () => {
  test('ends sessions, removes MFA, forgets devices, invalidates the password and starts the reset e-mail', async () => {
    const { email, password, user } = await registerAndVerify();
    const t = await login(email, password);
    const c = await pg();
    try {
      await c.query("UPDATE users SET mfa_enabled = true, totp_secret_enc = 'vault:v1:c2VjcmV0', totp_last_step = 1 WHERE id = $1", [user.id]);
      await c.query("INSERT INTO mfa_recovery_codes (id, user_id, code_hash) VALUES (gen_random_uuid(), $1, '\\x01'), (gen_random_uuid(), $1, '\\x02')", [
        user.id,
      ]);
      await c.query("INSERT INTO device_fingerprints (id, user_id, fingerprint, label) VALUES (gen_random_uuid(), $1, '\\x0102', 'laptop')", [user.id]);
    } finally {
      await c.end();
    }
    const devices = (await query('SELECT id FROM device_fingerprints WHERE user_id = $1', [user.id])).length;
    expect(devices).toBeGreaterThanOrEqual(1);
    const r = await admin('POST', `/users/${user.id}/reset`);
    expect(r.status).toBe(200);
    expect(r.body.user).toMatchObject({ id: user.id, status: 'active', mfa_enabled: false });
    const row = await userRow(user.id);
    expect(row).toMatchObject({ mfa_enabled: false, totp_secret_enc: null, totp_pending_enc: null, totp_last_step: null, password_hash: null });
    expect(await query('SELECT id FROM mfa_recovery_codes WHERE user_id = $1', [user.id])).toHaveLength(0);
    expect(await query('SELECT id FROM device_fingerprints WHERE user_id = $1', [user.id])).toHaveLength(0);
    expect(await query('SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL', [user.id])).toHaveLength(0);
    expect((await api('POST', '/v1/auth/refresh', { body: { refresh_token: t.refresh_token } })).status).toBe(401);
    expectProblem(await api('POST', '/v1/auth/login', { body: { email, password } }), 401, 'invalid_credentials');
    const desc = await temporal.workflow.getHandle(`password-reset:${user.id}`).describe();
    expect(desc.type).toBe('passwordResetWorkflow');
    await waitForMail(email, /Reset your password/);
    const ev = await query<{ data: any; actor_id: string }>("SELECT data, actor_id FROM audit_events WHERE user_id = $1 AND type = 'account.reset'", [user.id]);
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({ actor_id: adminId, data: { sessions_ended: 1, devices_forgotten: devices, recovery_codes_deleted: 2, mfa_removed: true } });
  });
});

describe('deletion with a grace period', () => {
  test('DELETE /v1/me needs the password; reactivation inside the grace period cancels the workflow and restores the account', async () => {
    const { email, password, user } = await registerAndVerify();
    const t = await login(email, password);
    expectProblem(await api('DELETE', '/v1/me', { token: t.access_token, body: { password: 'not-the-password-at-all' } }), 401, 'invalid_credentials');
    expectProblem(await api('DELETE', '/v1/me', { token: t.access_token, body: {} }), 400, 'validation_failed');
    const del = await api('DELETE', '/v1/me', { token: t.access_token, body: { password } });
    expect(del.status).toBe(202);
    expect(del.body.user.status).toBe('pending_deletion');
    const due = Date.parse(del.body.deletion.due_at);
    expect(due - Date.now()).toBeGreaterThan(3000);
    expect((await api('POST', '/v1/auth/refresh', { body: { refresh_token: t.refresh_token } })).status).toBe(401);
    expectProblem(await api('POST', '/v1/auth/login', { body: { email, password } }), 401, 'invalid_credentials');
    // The workflow is queryable: when erasure happens.
    const detail = await admin('GET', `/users/${user.id}`);
    expect(detail.body.deletion).toEqual({ due_at: new Date(due).toISOString(), workflow_status: 'scheduled' });
    expect(await wfStatus(`account-deletion:${user.id}`)).toBe('RUNNING');
    expect(await temporal.workflow.getHandle(`account-deletion:${user.id}`).query(deletionStateQuery)).toMatchObject({
      status: 'scheduled',
      due_at: new Date(due).toISOString(),
    });

    expectProblem(await api('POST', '/v1/me/reactivate', { body: { email, password: 'not-the-password-at-all' } }), 401, 'invalid_credentials');
    const re = await api('POST', '/v1/me/reactivate', { body: { email, password } });
    expect(re.status).toBe(200);
    expect(re.body.user.status).toBe('active');
    expect(await temporal.workflow.getHandle(`account-deletion:${user.id}`).result()).toMatchObject({ status: 'cancelled', erased_at: null });
    await waitForMail(email, /will be deleted/);
    await login(email, password);
    // An active account is not pending deletion: the answer is a wrong password's, not a 409 with its status.
    expectProblem(await api('POST', '/v1/me/reactivate', { body: { email, password } }), 401, 'invalid_credentials');
    // Past the original due time nothing was erased.
    await sleep(Math.max(0, due - Date.now()) + 1000);
    expect(await userRow(user.id)).toMatchObject({ status: 'active', email, deletion_due_at: null });
    expect(await mailsTo(email, /was deleted/)).toHaveLength(0);
    expect(await auditTypes(user.id)).toEqual(expect.arrayContaining(['account.deletion_requested', 'account.deletion_cancelled']));
  });

  test('an MFA user must also give a fresh code to delete the account', async () => {
    const { email, password, user } = await registerAndVerify();
    const t = await login(email, password);
    await query("UPDATE users SET mfa_enabled = true, totp_secret_enc = 'vault:v1:c2VjcmV0' WHERE id = $1", [user.id]);
    expectProblem(await api('DELETE', '/v1/me', { token: t.access_token, body: { password } }), 401, 'mfa_required');
    expect((await userRow(user.id)).status).toBe('active');
  });

  test('when the timer fires, personal data is erased, a tombstone and the audit trail remain', async () => {
    const { email, password, user } = await registerAndVerify({ name: 'Ada Lovelace' });
    const t = await login(email, password);
    const c = await pg();
    try {
      await c.query("INSERT INTO device_fingerprints (id, user_id, fingerprint, label) VALUES (gen_random_uuid(), $1, '\\x0a0b', 'phone')", [user.id]);
    } finally {
      await c.end();
    }
    const del = await api('DELETE', '/v1/me', { token: t.access_token, body: { password } });
    expect(del.status).toBe(202);
    await until('erasure', async () => (await userRow(user.id)).status === 'deleted', 40000);
    const row = await userRow(user.id);
    expect(row).toMatchObject({
      email: null,
      name: null,
      password_hash: null,
      totp_secret_enc: null,
      mfa_enabled: false,
      email_verified_at: null,
      deletion_due_at: null,
    });
    expect(await query('SELECT id FROM device_fingerprints WHERE user_id = $1', [user.id])).toHaveLength(0);
    expect(await query('SELECT id FROM sessions WHERE user_id = $1', [user.id])).toHaveLength(0);
    expect(await auditTypes(user.id)).toEqual(expect.arrayContaining(['user.registered', 'account.deletion_requested', 'account.erased']));
    await waitForMail(email, /was deleted/);
    expect(await temporal.workflow.getHandle(`account-deletion:${user.id}`).result()).toMatchObject({ status: 'erased', erased_at: expect.any(String) });

    // Erasure is idempotent: a second run for the same account finds the tombstone and changes nothing.
    const before = await userRow(user.id);
    const rerun = await temporal.workflow.start('accountDeletionWorkflow', {
      workflowId: `account-deletion-rerun:${user.id}`,
      taskQueue: stackInfo().serviceEnv.TEMPORAL_TASK_QUEUE ?? 'authflow',
      args: [{ userId: user.id, dueAt: new Date().toISOString(), requestedBy: 'admin' }],
      typedSearchAttributes: [
        { key: UserIdAttr, value: user.id },
        { key: FlowAttr, value: 'account-deletion' },
      ],
    });
    expect(await rerun.result()).toMatchObject({ status: 'erased', erased_at: null });
    expect(await userRow(user.id)).toEqual(before);
    expect((await auditTypes(user.id)).filter((t) => t === 'account.erased')).toHaveLength(1);
    expect(await mailsTo(email, /was deleted/)).toHaveLength(1);

    // No way back: the address is gone, and a tombstone cannot be reactivated or deleted again.
    expectProblem(await api('POST', '/v1/me/reactivate', { body: { email, password } }), 401, 'invalid_credentials');
    expectProblem(await admin('POST', `/users/${user.id}/reactivate`), 409, 'invalid_transition');
    expectProblem(await admin('DELETE', `/users/${user.id}`), 409, 'invalid_transition');
    expectProblem(await admin('POST', `/users/${user.id}/reset`), 409, 'invalid_transition');
    expect((await admin('GET', `/users/${user.id}`)).body.user).toMatchObject({ id: user.id, email: null, name: null, status: 'deleted' });
  });

  test('admin delete works for any live status, and an admin reactivation cancels it', async () => {
    const { email, password, user } = await registerAndVerify();
    await admin('POST', `/users/${user.id}/suspend`);
    const del = await admin('DELETE', `/users/${user.id}`);
    expect(del.status).toBe(202);
    expect(del.body.user.status).toBe('pending_deletion');
    // A user suspended before the deletion cannot lift the suspension by reactivating.
    expectProblem(await api('POST', '/v1/me/reactivate', { body: { email, password } }), 403, 'account_suspended');
    const back = await admin('POST', `/users/${user.id}/reactivate`);
    expect(back.status).toBe(200);
    expect(back.body.user.status).toBe('active');
    await login(email, password);
    await until('deletion workflow completes', async () => (await wfStatus(`account-deletion:${user.id}`)) === 'COMPLETED');
  });
});

describe('the schema refuses illegal states', () => {
  test.each([
    ["status = 'deleted'", 'a tombstone with personal data'],
    ["status = 'pending_deletion'", 'pending deletion without a due time'],
    ["locked_until = now() + interval '1 hour'", 'a lock time on an active account'],
    ["status = 'active', email_verified_at = NULL", 'an active account with an unverified address'],
    ["status_before = 'deleted'", 'a detour from deleted'],
    ['failed_logins = -1', 'a negative failure counter'],
  ])('%s (%s)', async (set) => {
    const { user } = await registerAndVerify();
    await expect(query(`UPDATE users SET ${set} WHERE id = $1`, [user.id])).rejects.toThrow(/violates check constraint/);
  });

  test('a deleted account stays deleted', async () => {
    const { user } = await registerAndVerify();
    await query("UPDATE users SET status = 'pending_deletion', deletion_due_at = now() WHERE id = $1", [user.id]);
    await query(
      "UPDATE users SET status = 'deleted', deletion_due_at = NULL, email = NULL, name = NULL, password_hash = NULL, email_verified_at = NULL WHERE id = $1",
      [user.id],
    );
    await expect(query("UPDATE users SET status = 'active', email = 'back@example.test', email_verified_at = now() WHERE id = $1", [user.id])).rejects.toThrow(
      /cannot change status/,
    );
  });
});

describe('admin read APIs', () => {
  test('user search filters by status and text and pages with a cursor', async () => {
    const tag = `pager${Date.now().toString(36)}`;
    const made = [];
    for (let i = 0; i < 3; i++) made.push((await registerAndVerify({ email: uniqueEmail(tag) })).user.id);
    await admin('POST', `/users/${made[1]}/suspend`);
    const p1 = await admin('GET', `/users?query=${tag}&limit=2`);
    expect(p1.status).toBe(200);
    expect(p1.body.users.map((u: any) => u.id)).toEqual([made[2], made[1]]);
    expect(p1.body.next_cursor).toEqual(expect.any(String));
    const p2 = await admin('GET', `/users?query=${tag}&limit=2&cursor=${encodeURIComponent(p1.body.next_cursor)}`);
    expect(p2.body.users.map((u: any) => u.id)).toEqual([made[0]]);
    expect(p2.body.next_cursor).toBeNull();
    const suspended = await admin('GET', `/users?query=${tag}&status=suspended`);
    expect(suspended.body.users.map((u: any) => u.id)).toEqual([made[1]]);
    expect((await admin('GET', `/users?query=${made[0]}`)).body.users.map((u: any) => u.id)).toEqual([made[0]]);
  });

  test('audit events by user and type, newest first, with a cursor', async () => {
    const { email, password, user } = await registerAndVerify();
    await login(email, password);
    await login(email, password);
    await login(email, password);
    const p1 = await admin('GET', `/audit-events?user_id=${user.id}&type=login.succeeded&limit=2`);
    expect(p1.status).toBe(200);
    expect(p1.body.events).toHaveLength(2);
    expect(p1.body.events[0]).toMatchObject({ type: 'login.succeeded', user_id: user.id, ip: expect.any(String) });
    expect(Number(p1.body.events[0].id)).toBeGreaterThan(Number(p1.body.events[1].id));
    const p2 = await admin('GET', `/audit-events?user_id=${user.id}&type=login.succeeded&limit=2&cursor=${encodeURIComponent(p1.body.next_cursor)}`);
    expect(p2.body.events).toHaveLength(1);
    expect(p2.body.next_cursor).toBeNull();
    const all = await admin('GET', `/audit-events?user_id=${user.id}&type=user.*`);
    expect(all.body.events.map((e: any) => e.type).sort()).toEqual(['user.email_verified', 'user.registered']);
    expectProblem(await admin('GET', '/audit-events?user_id=nope'), 400, 'validation_failed');
  });
});

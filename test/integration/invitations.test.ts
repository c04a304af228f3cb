/**
 * Invitations (issue 19 item 10) over the real stack: an admin invites an address; the account
 * exists at once (pending verification, no password, the given roles); the invitation flow
 * e-mails a code; the invitee accepts on the hosted page, choosing the password; the flow ends
 * accepted. Unaccepted, the code expires with the invitation (INVITATION_TTL 6 s in
 * test/env/invitations.json). Audited; an existing address, `admin` and non-admins are refused;
 * erasure removes the invitation.
 */
import type { Client } from '@temporalio/client';
import { makeAdmin } from '../helpers/ops';
import { api, query, stackInfo, uniqueEmail, until, waitForMail } from '../helpers/stack';
import { login, registerAndVerify } from '../helpers/users';
import { stackClients, type StackClients } from '../replay/stack-codec';
import { invitationStateQuery } from '../../workflows/invitation';

jest.setTimeout(120_000);

const PASSWORD = 'juniper-anvil-solstice-27';
let token: () => Promise<string>;
let adminId: string;
let clients: StackClients;
let temporal: Client;
beforeAll(async () => {
  const a = await makeAdmin();
  token = () => a.token();
  adminId = a.user.id;
  clients = await stackClients(stackInfo());
  temporal = clients.client;
});
afterAll(async () => {
  await clients?.close();
});

const invite = async (body: unknown) => api('POST', '/v1/admin/invitations', { token: await token(), body });
const auditTypes = async (id: string) =>
  (await query<{ type: string }>('SELECT type FROM audit_events WHERE user_id = $1 ORDER BY id', [id])).map((r) => r.type);
const invitationRow = async (id: string) => (await query('SELECT * FROM invitations WHERE user_id = $1', [id]))[0];
const linkIn = (text: string) => /Or open: (\S+)/.exec(text)![1];
const postForm = (url: string, fields: Record<string, string>) =>
  fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });

test('invite, accept on the hosted page with a chosen password, sign in with the roles; the flow ends accepted; audited', async () => {
  const email = uniqueEmail('invitee');
  const r = await invite({ email, name: 'Ivy Invitee', roles: ['reader', 'billing'] });
  expect(r.status).toBe(201);
  const inv = r.body.invitation;
  expect(inv).toMatchObject({ email, roles: ['user', 'reader', 'billing'], invited_by: adminId, status: 'pending' });
  expect(Date.parse(inv.expires_at) - Date.now()).toBeGreaterThan(3000);
  const [user] = await query('SELECT status, password_hash, roles FROM users WHERE id = $1', [inv.user_id]);
  expect(user).toEqual({ status: 'pending_verification', password_hash: null, roles: ['user', 'reader', 'billing'] });
  // Nobody can sign in to an invited account before acceptance.
  expect((await api('POST', '/v1/auth/login', { body: { email, password: PASSWORD } })).status).toBe(401);

  const mail = await waitForMail(email, /invited/);
  expect(mail.text).toContain('An administrator invited you to an account for this address.');
  const link = linkIn(mail.text);
  const page = await fetch(link);
  expect(page.status).toBe(200);
  const action = new URL('verify-email', link).toString();
  const tokenValue = new URL(link).searchParams.get('token')!;
  // The page asks for the password (the account has none), then accepts with it.
  expect((await postForm(action, { token: tokenValue })).status).toBe(409);
  const done = await postForm(action, { token: tokenValue, password: PASSWORD });
  expect(done.status).toBe(200);
  const t = await login(email, PASSWORD);
  expect(t.access_token).toBeDefined();

  const wf = temporal.workflow.getHandle(`invitation:${inv.user_id}`);
  expect(await wf.result()).toMatchObject({ status: 'accepted' });
  expect(await invitationRow(inv.user_id)).toMatchObject({ status: 'accepted' });
  expect(await auditTypes(inv.user_id)).toEqual(expect.arrayContaining(['invitation.created', 'user.email_verified', 'invitation.accepted']));
  const [created] = await query(`SELECT actor_id FROM audit_events WHERE user_id = $1 AND type = 'invitation.created'`, [inv.user_id]);
  expect(created.actor_id).toBe(adminId);
});

test('an invitation nobody accepts expires: the code stops working, the flow ends expired', async () => {
  const email = uniqueEmail('invitee-late');
  const r = await invite({ email });
  expect(r.status).toBe(201);
  const id = r.body.invitation.user_id;
  const mail = await waitForMail(email, /invited/);
  const wf = temporal.workflow.getHandle(`invitation:${id}`);
  expect(await wf.query(invitationStateQuery)).toMatchObject({ status: 'waiting' });
  expect(await wf.result()).toMatchObject({ status: 'expired' });
  expect(await invitationRow(id)).toMatchObject({ status: 'expired' });
  const late = await api('POST', '/v1/auth/verify-email', { body: { token: new URL(linkIn(mail.text)).searchParams.get('token'), password: PASSWORD } });
  expect([late.status, late.body.code]).toEqual([400, 'invalid_token']);
  expect(await auditTypes(id)).toContain('invitation.expired');
});

test('refused: an address that has an account, admin by invitation, bad input, non-admins', async () => {
  const u = await registerAndVerify();
  const taken = await invite({ email: u.email });
  expect([taken.status, taken.body.code]).toEqual([409, 'conflict']);
  const withAdmin = await invite({ email: uniqueEmail('would-be-admin'), roles: ['admin'] });
  expect([withAdmin.status, withAdmin.body.code]).toEqual([400, 'validation_failed']);
  for (const bad of [{}, { email: 'not-an-address' }, { email: uniqueEmail('x'), roles: ['Bad Role'] }, { email: uniqueEmail('x'), extra: 1 }]) {
    expect((await invite(bad)).status).toBe(400);
  }
  const plain = await login(u.email, u.password);
  const r = await api('POST', '/v1/admin/invitations', { token: plain.access_token, body: { email: uniqueEmail('x') } });
  expect(r.status).toBe(403);
  // Two invitations of one address at once: one account, one conflict.
  const email = uniqueEmail('twice');
  const both = await Promise.all([invite({ email }), invite({ email })]);
  expect(both.map((x) => x.status).sort()).toEqual([201, 409]);
  expect(await query('SELECT 1 FROM users WHERE email = $1', [email])).toHaveLength(1);
});

test('erasure removes the invitation', async () => {
  const email = uniqueEmail('invitee-erased');
  const r = await invite({ email });
  const id = r.body.invitation.user_id;
  await waitForMail(email, /invited/);
  expect((await api('DELETE', `/v1/admin/users/${id}`, { token: await token() })).status).toBe(202);
  await until('the invited account to be erased', async () => (await query('SELECT status FROM users WHERE id = $1', [id]))[0].status === 'deleted', 60_000);
  expect(await invitationRow(id)).toBeUndefined();
});

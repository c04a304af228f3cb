/**
 * Recording scenarios: one or more per workflow type (the happy path and the main alternative
 * paths). Each drives a real stack the way a user or the API would and returns the workflow it
 * produced; the recorder waits for that workflow to close and stores its history.
 *
 * To cover a new workflow type, add an entry here (copy the closest one) and run
 * `npx tsx test/replay/record.ts <workflowType>` against a running stack.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { FlowAttr, SYSTEM_USER, UserIdAttr } from '../../platform/temporal/ids';
import { adminAccount, codeFrom, GOOD_PASSWORD, login, loginWithTotp } from '../helpers/users';
import { api, mailsTo, sleep, stackInfo, uniqueEmail, waitForMail } from '../helpers/stack';
import { startReceiver } from '../helpers/webhook-tls';

export interface ScenarioContext {
  /** Temporal client with the production data converter and the stack's codec key. */
  client: Client;
  taskQueue: string;
  /** The stack's service environment (timer settings; the recorder's own stack has the short
   * ones of test/env/*.json). */
  env: Record<string, string>;
  /** Runs a query against the visibility store until it finds a workflow (search attributes). */
  findWorkflow(query: string, timeoutMs?: number): Promise<string>;
}

export interface Scenario {
  workflowType: string;
  name: string;
  description: string;
  /** Why this stack cannot run the scenario (a timer far too long, say), or undefined. */
  unsupported?(ctx: ScenarioContext): string | undefined;
  run(ctx: ScenarioContext): Promise<{ workflowId: string }>;
}

/** Registers through the API (which starts the verification flow) and returns the user. */
async function register(tag: string) {
  const email = uniqueEmail(tag);
  const reg = await api('POST', '/v1/auth/register', { body: { email, password: GOOD_PASSWORD, name: 'Replay Recorder' } });
  if (reg.status !== 201) throw new Error(`register failed: ${reg.status} ${JSON.stringify(reg.body)}`);
  return { email, password: GOOD_PASSWORD, userId: reg.body.user.id as string };
}

async function verify(email: string, nth = 1) {
  const mail = await waitForMail(email, /Verify/, 20000, nth - 1);
  const ver = await api('POST', '/v1/auth/verify-email', { body: { token: codeFrom(mail.text) } });
  if (ver.status !== 200) throw new Error(`verify failed: ${ver.status} ${JSON.stringify(ver.body)}`);
}

/** A subscription to user.registered at a local receiver answering `status`, then one registration: its delivery's workflow id. */
async function webhookDelivery(tag: string, status: (n: number) => number): Promise<string> {
  const a = await adminAccount();
  const token = (await loginWithTotp(a.email, a.password, a.app)).access_token;
  const rcv = await startReceiver(stackInfo().dataDir, status);
  const sub = await api('POST', '/v1/admin/webhooks', { token, body: { url: rcv.url, event_types: ['user.registered'] } });
  if (sub.status !== 201) throw new Error(`subscription failed: ${sub.status} ${JSON.stringify(sub.body)}`);
  await register(tag);
  for (let i = 0; i < 100 && rcv.received.length === 0; i++) await sleep(200);
  const id = rcv.received[0]?.headers['webhook-id'];
  if (!id) throw new Error('no delivery reached the receiver');
  // The receiver stays up while the recorder waits for the run to close (other scenarios' registrations may reach it too).
  setTimeout(() => void rcv.close(), 60_000).unref();
  return `webhook-delivery:${id}`;
}

/** An address invited by a throwaway admin through POST /v1/admin/invitations. */
async function invite(tag: string): Promise<{ address: string; userId: string }> {
  const a = await adminAccount();
  const token = (await loginWithTotp(a.email, a.password, a.app)).access_token;
  const address = uniqueEmail(tag);
  const r = await api('POST', '/v1/admin/invitations', { token, body: { email: address, roles: ['reader'] } });
  if (r.status !== 201) throw new Error(`invitation failed: ${r.status} ${JSON.stringify(r.body)}`);
  return { address, userId: r.body.invitation.user_id };
}

async function verifiedUser(tag: string) {
  const u = await register(tag);
  await verify(u.email);
  return u;
}

export const scenarios: Scenario[] = [
  {
    workflowType: 'emailVerificationWorkflow',
    name: 'verified',
    description: 'register, the code arrives by e-mail, the user verifies: the flow ends verified',
    async run() {
      const u = await register('replay.verify');
      await verify(u.email);
      return { workflowId: `email-verification:${u.userId}` };
    },
  },
  {
    workflowType: 'emailVerificationWorkflow',
    name: 'resend-then-verified',
    description: 'register, ask for a resend (update), verify with the second code',
    async run() {
      const u = await register('replay.resend');
      await waitForMail(u.email, /Verify/);
      const r = await api('POST', '/v1/auth/verify-email/resend', { body: { email: u.email } });
      if (r.status !== 202) throw new Error(`resend failed: ${r.status}`);
      await verify(u.email, 2);
      return { workflowId: `email-verification:${u.userId}` };
    },
  },
  {
    workflowType: 'emailVerificationWorkflow',
    name: 'expired',
    description: 'the code expires unused (2 s TTL, started directly): the flow supersedes the code and ends expired',
    async run(ctx) {
      const u = await register('replay.expire');
      const workflowId = `email-verification-replay-expired:${randomUUID()}`;
      await ctx.client.workflow.start('emailVerificationWorkflow', {
        workflowId,
        taskQueue: ctx.taskQueue,
        args: [{ userId: u.userId, ttlSeconds: 2, maxResends: 0 }],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
        typedSearchAttributes: [
          { key: UserIdAttr, value: u.userId },
          { key: FlowAttr, value: 'email-verification' },
        ],
      });
      return { workflowId };
    },
  },
  // ---- webhooks (issue 19 item 11): a subscription to user.registered, a local HTTPS receiver.
  {
    workflowType: 'webhookDeliveryWorkflow',
    name: 'delivered-after-retry',
    description: 'the receiver answers 503 once, then 204: two tries of the signed POST, the delivery ends delivered',
    async run() {
      return { workflowId: await webhookDelivery('replay.webhook-ok', (n) => (n === 1 ? 503 : 204)) };
    },
  },
  {
    workflowType: 'webhookDeliveryWorkflow',
    name: 'parked',
    description:
      'the receiver always answers 500: tries with backoff until WEBHOOK_RETRY_SECONDS, then the delivery is parked and the run fails (WebhookParked)',
    async run() {
      return { workflowId: await webhookDelivery('replay.webhook-parked', () => 500) };
    },
  },
  // ---- invitations (issue 19 item 10): through the admin API, with the test settings' 6 s TTL.
  {
    workflowType: 'invitationWorkflow',
    name: 'accepted',
    description: 'an admin invites an address, the code arrives by e-mail, the invitee verifies and chooses the password: the flow ends accepted',
    async run() {
      const email = await invite('replay.invite-accepted');
      const mail = await waitForMail(email.address, /invited/);
      const ver = await api('POST', '/v1/auth/verify-email', { body: { token: codeFrom(mail.text), password: GOOD_PASSWORD } });
      if (ver.status !== 200) throw new Error(`accept failed: ${ver.status} ${JSON.stringify(ver.body)}`);
      return { workflowId: `invitation:${email.userId}` };
    },
  },
  {
    workflowType: 'invitationWorkflow',
    name: 'expired',
    description: 'an admin invites an address and nobody accepts: the code expires, the flow expires it and ends expired',
    async run() {
      const email = await invite('replay.invite-expired');
      await waitForMail(email.address, /invited/);
      return { workflowId: `invitation:${email.userId}` };
    },
  },
  {
    workflowType: 'notificationWorkflow',
    name: 'password-changed',
    description: 'a password change through the API sends the "password changed" notice',
    async run(ctx) {
      const u = await verifiedUser('replay.notify');
      const tokens = await login(u.email, u.password);
      const requestId = `replay-${randomUUID()}`;
      const r = await api('PUT', '/v1/me/password', {
        token: tokens.access_token,
        headers: { 'X-Request-Id': requestId },
        body: { current_password: u.password, new_password: `${GOOD_PASSWORD}-changed` },
      });
      if (r.status !== 204) throw new Error(`password change failed: ${r.status} ${JSON.stringify(r.body)}`);
      const workflowId = await ctx.findWorkflow(`UserId = '${u.userId}' AND Flow = 'notification'`);
      for (let i = 0; i < 50 && (await mailsTo(u.email, /password was changed/)).length === 0; i++) await sleep(200);
      return { workflowId };
    },
  },
  // ---- password reset and step-up (issue 6). The expiry scenarios need the short timers of
  // test/env/reset-stepup.json (PASSWORD_RESET_TTL, STEP_UP_TTL) on the recording stack.
  {
    workflowType: 'passwordResetWorkflow',
    name: 'completed',
    description: 'forgot → the token arrives by e-mail → reset: the flow sends "password changed" and completes',
    async run() {
      const u = await verifiedUser('replay.reset');
      await forgot(u.email);
      const token = codeFrom((await waitForMail(u.email, /Reset your password/)).text);
      const r = await api('POST', '/v1/auth/password/reset', { body: { token, new_password: `${GOOD_PASSWORD}-reset` } });
      if (r.status !== 204) throw new Error(`reset failed: ${r.status} ${JSON.stringify(r.body)}`);
      return { workflowId: `password-reset:${u.userId}` };
    },
  },
  {
    workflowType: 'passwordResetWorkflow',
    name: 'repeated-then-expired',
    description: 'two forgot requests (the second inside the e-mail interval: a signal, nothing sent); the token expires unused',
    async run() {
      const u = await verifiedUser('replay.reset-expire');
      await forgot(u.email);
      await waitForMail(u.email, /Reset your password/);
      await forgot(u.email);
      return { workflowId: `password-reset:${u.userId}` };
    },
  },
  {
    workflowType: 'passwordResetWorkflow',
    name: 'admin-reset-expired',
    description: "an administrator's reset (started by name, TERMINATE_EXISTING, reason admin_reset): e-mail sent uncapped, token expires",
    async run(ctx) {
      const u = await verifiedUser('replay.reset-admin');
      const workflowId = `password-reset:${u.userId}`;
      await ctx.client.workflow.start('passwordResetWorkflow', {
        workflowId,
        taskQueue: ctx.taskQueue,
        args: [{ userId: u.userId, reason: 'admin_reset' }],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.TERMINATE_EXISTING,
        typedSearchAttributes: [
          { key: UserIdAttr, value: u.userId },
          { key: FlowAttr, value: 'password-reset' },
        ],
      });
      return { workflowId };
    },
  },
  {
    workflowType: 'stepUpWorkflow',
    name: 'verified-by-email',
    description: 'a refresh from a new device: the code arrives by e-mail, one wrong code, then the right one: fresh tokens, flow verified',
    async run() {
      const { u, tokens, verificationId } = await stepUpStarted('replay.stepup');
      const code = codeFrom((await waitForMail(u.email, /Confirm a sign-in from a new device/)).text);
      await submitStepUp(verificationId, code === '00000000' ? '11111111' : '00000000', 401);
      await submitStepUp(verificationId, code, 200);
      return { workflowId: `step-up:${sessionOf(tokens.access_token)}` };
    },
  },
  {
    workflowType: 'stepUpWorkflow',
    name: 'failed',
    description: 'wrong codes until none is left: the session ends and the user is e-mailed',
    async run() {
      const { u, tokens, verificationId } = await stepUpStarted('replay.stepup-fail');
      const code = codeFrom((await waitForMail(u.email, /Confirm a sign-in from a new device/)).text);
      for (let left = 1; left > 0;) {
        const r = await submitStepUp(verificationId, code === '00000000' ? '11111111' : '00000000', 401);
        left = r.body.attempts_left;
      }
      return { workflowId: `step-up:${sessionOf(tokens.access_token)}` };
    },
  },
  {
    workflowType: 'stepUpWorkflow',
    name: 'superseded-then-expired',
    description: 'a second new device supersedes the first challenge; nobody answers: the session ends at the timer',
    async run() {
      const { tokens } = await stepUpStarted('replay.stepup-expire');
      await refreshFrom(tokens.refresh_token, replayDevice(), 'step_up_required');
      return { workflowId: `step-up:${sessionOf(tokens.access_token)}` };
    },
  },
  {
    workflowType: 'stepUpWorkflow',
    name: 'cancelled-too-many-devices',
    description: 'new devices until the many-devices rule ends the session: the flow is cancelled',
    async run() {
      const { tokens } = await stepUpStarted('replay.stepup-many');
      for (let i = 0; i < 100; i++) {
        const r = await api('POST', '/v1/auth/refresh', { body: { refresh_token: tokens.refresh_token }, headers: replayDevice() });
        if (r.body.code === 'invalid_grant') return { workflowId: `step-up:${sessionOf(tokens.access_token)}` };
        if (r.body.code !== 'step_up_required') throw new Error(`refresh: ${r.status} ${JSON.stringify(r.body)}`);
      }
      throw new Error('the many-devices rule never ended the session');
    },
  },
  {
    workflowType: 'accountDeletionWorkflow',
    name: 'cancelled',
    description: 'DELETE /v1/me starts the grace timer; POST /v1/me/reactivate cancels it through the cancelDeletion update',
    async run() {
      const u = await verifiedUser('replay.delete-cancel');
      const tokens = await login(u.email, u.password);
      const del = await api('DELETE', '/v1/me', { token: tokens.access_token, body: { password: u.password } });
      if (del.status !== 202) throw new Error(`delete failed: ${del.status} ${JSON.stringify(del.body)}`);
      await waitForMail(u.email, /will be deleted/);
      const re = await api('POST', '/v1/me/reactivate', { body: { email: u.email, password: u.password } });
      if (re.status !== 200) throw new Error(`reactivate failed: ${re.status} ${JSON.stringify(re.body)}`);
      return { workflowId: `account-deletion:${u.userId}` };
    },
  },
  {
    workflowType: 'accountDeletionWorkflow',
    name: 'erased',
    description: 'DELETE /v1/me, then the flow restarted (TERMINATE_EXISTING) with a due time 2 s away: the timer fires and the account is erased',
    async run(ctx) {
      const u = await verifiedUser('replay.delete-erase');
      const tokens = await login(u.email, u.password);
      const del = await api('DELETE', '/v1/me', { token: tokens.access_token, body: { password: u.password } });
      if (del.status !== 202) throw new Error(`delete failed: ${del.status} ${JSON.stringify(del.body)}`);
      const workflowId = `account-deletion:${u.userId}`;
      await ctx.client.workflow.start('accountDeletionWorkflow', {
        workflowId,
        taskQueue: ctx.taskQueue,
        args: [{ userId: u.userId, dueAt: new Date(Date.now() + 2000).toISOString(), requestedBy: 'self' }],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.TERMINATE_EXISTING,
        typedSearchAttributes: [
          { key: UserIdAttr, value: u.userId },
          { key: FlowAttr, value: 'account-deletion' },
        ],
      });
      return { workflowId };
    },
  },
  // ---- Vault operations (issue 7): started directly, as the Schedules and the admin endpoints
  // do, with short timings; workflow ids in their own `replay` namespace of ids.
  {
    workflowType: 'keyRotationWorkflow',
    name: 'completed',
    description: 'publish a next key, switch after 1 s, retire the old key 2 s later, remove it',
    async run(ctx) {
      return { workflowId: await startOps(ctx, 'keyRotationWorkflow', 'key-rotation', [{ propagationDelaySeconds: 1, retireAfterSeconds: 2, actorId: null }]) };
    },
  },
  {
    workflowType: 'keyRotationWorkflow',
    name: 'cancelled',
    description: 'an operator cancels a rotation while it waits for propagation: the failure is recorded and the run ends cancelled',
    async run(ctx) {
      const workflowId = await startOps(ctx, 'keyRotationWorkflow', 'key-rotation', [{ propagationDelaySeconds: 300, retireAfterSeconds: 600, actorId: null }]);
      const h = ctx.client.workflow.getHandle(workflowId);
      for (let i = 0; i < 100; i++) {
        const st = await h.query<{ phase: string }>('keyRotationState').catch(() => ({ phase: 'starting' }));
        if (st.phase === 'propagating') break;
        await sleep(200);
      }
      await h.cancel();
      return { workflowId };
    },
  },
  {
    workflowType: 'restoreDrillWorkflow',
    name: 'no-backup',
    description: 'a restore drill before any backup exists: it fails (RestoreDrillFailed) and records the failure',
    unsupported: (ctx) => (completeBackups(ctx).length ? 'this stack already has backups' : undefined),
    async run(ctx) {
      return { workflowId: await startOps(ctx, 'restoreDrillWorkflow', 'restore-drill', [{ actorId: null }]) };
    },
  },
  {
    workflowType: 'backupWorkflow',
    name: 'completed',
    description: 'database dump and Vault snapshot, encrypted, sealed with a manifest, retention applied',
    async run(ctx) {
      return { workflowId: await startOps(ctx, 'backupWorkflow', 'backup', [{ retention: 3, actorId: null }]) };
    },
  },
  {
    workflowType: 'restoreDrillWorkflow',
    name: 'passed',
    description: 'a restore drill of the newest backup into the scratch database: counts match',
    async run(ctx) {
      if (!completeBackups(ctx).length) {
        await ctx.client.workflow.getHandle(await startOps(ctx, 'backupWorkflow', 'backup', [{ retention: 3, actorId: null }])).result();
      }
      return { workflowId: await startOps(ctx, 'restoreDrillWorkflow', 'restore-drill', [{ actorId: null }]) };
    },
  },
];

async function forgot(email: string) {
  const r = await api('POST', '/v1/auth/password/forgot', { body: { email } });
  if (r.status !== 202) throw new Error(`forgot failed: ${r.status} ${JSON.stringify(r.body)}`);
}

const replayDevice = () => ({
  'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  'X-Device-Id': `replay-${randomUUID()}`,
});
const sessionOf = (accessToken: string) => JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString()).sid as string;

async function refreshFrom(refreshToken: string, headers: Record<string, string>, expectCode: string) {
  const r = await api('POST', '/v1/auth/refresh', { body: { refresh_token: refreshToken }, headers });
  if (r.body.code !== expectCode) throw new Error(`refresh: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as { verification_id: string };
}

/** A signed-in user whose refresh from a second device needs a step-up. */
async function stepUpStarted(tag: string) {
  const u = await verifiedUser(tag);
  const tokens = await login(u.email, u.password, replayDevice());
  const { verification_id } = await refreshFrom(tokens.refresh_token, replayDevice(), 'step_up_required');
  return { u, tokens, verificationId: verification_id };
}

async function submitStepUp(verificationId: string, code: string, status: number) {
  const r = await api('POST', `/v1/auth/step-up/${verificationId}`, { body: { code } });
  if (r.status !== status) throw new Error(`step-up answered ${r.status} ${JSON.stringify(r.body)}, expected ${status}`);
  return r;
}

function completeBackups(ctx: ScenarioContext): string[] {
  const root = ctx.env.BACKUP_DIR;
  if (!root || !existsSync(root)) return [];
  return readdirSync(root).filter((n) => !n.startsWith('.') && existsSync(join(root, n, 'manifest.json')));
}

/** Starts an operations workflow like the Schedules do (UserId = system). */
async function startOps(ctx: ScenarioContext, workflowType: string, flow: string, args: unknown[]): Promise<string> {
  const workflowId = `${flow}:replay-${randomUUID()}`;
  await ctx.client.workflow.start(workflowType, {
    workflowId,
    taskQueue: ctx.taskQueue,
    args,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    typedSearchAttributes: [
      { key: UserIdAttr, value: SYSTEM_USER },
      { key: FlowAttr, value: flow },
    ],
  });
  return workflowId;
}

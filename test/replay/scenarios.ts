/**
 * Recording scenarios: one or more per workflow type (the happy path and the main alternative
 * paths). Each drives a real stack the way a user or the API would and returns the workflow it
 * produced; the recorder waits for that workflow to close and stores its history.
 *
 * To cover a new workflow type, add an entry here (copy the closest one) and run
 * `npx tsx test/replay/record.ts <workflowType>` against a running stack.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { FlowAttr, UserIdAttr } from '../../core/temporal';
import { codeFrom, GOOD_PASSWORD, login } from '../helpers/users';
import { api, mailsTo, sleep, uniqueEmail, waitForMail } from '../helpers/stack';

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
        typedSearchAttributes: [{ key: UserIdAttr, value: u.userId }, { key: FlowAttr, value: 'email-verification' }],
      });
      return { workflowId };
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
      const r = await api('PUT', '/v1/me/password', { token: tokens.access_token, headers: { 'X-Request-Id': requestId }, body: { current_password: u.password, new_password: `${GOOD_PASSWORD}-changed` } });
      if (r.status !== 204) throw new Error(`password change failed: ${r.status} ${JSON.stringify(r.body)}`);
      const workflowId = await ctx.findWorkflow(`UserId = '${u.userId}' AND Flow = 'notification'`);
      for (let i = 0; i < 50 && (await mailsTo(u.email, /password was changed/)).length === 0; i++) await sleep(200);
      return { workflowId };
    },
  },
];

/**
 * Finding 9, the payload codec half: someone who reaches the Temporal server's port without the
 * codec keys (a plain Temporal client, no codec) must not be able to make the worker act. Every
 * payload our processes write is encrypted, so the worker's codec refuses an unencrypted one: the
 * workflow task fails, no activity is ever scheduled, no e-mail leaves.
 */
import { randomUUID } from 'node:crypto';
import type { temporal } from '@temporalio/proto';
import { PLAINTEXT_REFUSED } from '../../platform/temporal/payload-codec';
import { defaultPayloadConverter } from '@temporalio/common';
import { mailsTo, sleep, stackInfo, until, waitForMail } from '../helpers/stack';
import { registerAndVerify } from '../helpers/users';
import { stackClients, StackClients } from '../replay/stack-codec';

let clients: StackClients;
const TASK_QUEUE = () => stackInfo().serviceEnv.TEMPORAL_TASK_QUEUE ?? 'authflow';

beforeAll(async () => {
  clients = await stackClients(stackInfo());
});

afterAll(async () => {
  await clients?.close();
});

type Event = temporal.api.history.v1.IHistoryEvent;

async function events(workflowId: string): Promise<Event[]> {
  const h = await clients.raw.workflow.getHandle(workflowId).fetchHistory();
  return h.events ?? [];
}

/** The first failed workflow task's failure message, decoded (our failure converter may have
 * moved it into an encrypted attribute). */
async function workflowTaskFailure(evs: Event[]): Promise<string> {
  const f = evs.find((e) => e.workflowTaskFailedEventAttributes)?.workflowTaskFailedEventAttributes?.failure;
  if (!f) return '';
  let attrs = '';
  if (f.encodedAttributes) attrs = JSON.stringify(defaultPayloadConverter.fromPayload((await clients.codec.decode([f.encodedAttributes]))[0]));
  return `${f.applicationFailureInfo?.type ?? ''} ${f.message ?? ''} ${attrs}`;
}

/** Starts `workflowType` with a plain client (no codec) and checks the worker refused to run it. */
async function attackerStarts(workflowType: string, args: unknown[], email: string, subject: RegExp) {
  const workflowId = `attacker-${workflowType}-${randomUUID()}`;
  const handle = await clients.raw.workflow.start(workflowType, { workflowId, taskQueue: TASK_QUEUE(), args });
  try {
    // The worker picks the task up and fails it: it cannot decode an unencrypted input. (Before
    // the fix it ran it: an activity was scheduled and the e-mail sent.)
    const evs = await until(`a failed workflow task or a scheduled activity of ${workflowId}`, async () => {
      const e = await events(workflowId);
      return e.some((x) => x.workflowTaskFailedEventAttributes || x.activityTaskScheduledEventAttributes) ? e : undefined;
    });
    expect(evs.filter((e) => e.activityTaskScheduledEventAttributes)).toHaveLength(0);
    const failure = await workflowTaskFailure(evs);
    expect(failure).toContain(PLAINTEXT_REFUSED);
    expect(failure).toContain('refusing an unencrypted payload (encoding json/plain)');
    // Long enough for the mail activity to have run had the input been accepted.
    await sleep(4000);
    const later = await events(workflowId);
    expect(later.filter((e) => e.activityTaskScheduledEventAttributes)).toHaveLength(0);
    expect(later.some((e) => e.workflowExecutionCompletedEventAttributes)).toBe(false);
    expect(await mailsTo(email, subject)).toHaveLength(0);
  } finally {
    await handle.terminate('test cleanup').catch(() => undefined);
  }
}

describe('the worker refuses unencrypted payloads (a client without the codec keys)', () => {
  test('notificationWorkflow started by a plain Temporal client sends no e-mail and schedules no activity', async () => {
    const { email, user } = await registerAndVerify({ name: 'Plaintext Target' });
    await attackerStarts('notificationWorkflow', [{ userId: user.id, template: 'account_suspended' }], email, /suspended/);
  });

  test('passwordResetWorkflow started by a plain Temporal client issues no token and sends no e-mail', async () => {
    const { email, user } = await registerAndVerify({ name: 'Plaintext Reset Target' });
    await attackerStarts('passwordResetWorkflow', [{ userId: user.id, reason: 'admin_reset' }], email, /Reset/);
  });

  test('the same start through the production codec does send the e-mail (the refusal is about the encoding only)', async () => {
    const { email, user } = await registerAndVerify({ name: 'Codec Control' });
    const workflowId = `codec-control-${randomUUID()}`;
    await clients.client.workflow.start('notificationWorkflow', {
      workflowId,
      taskQueue: TASK_QUEUE(),
      args: [{ userId: user.id, template: 'account_suspended' }],
    });
    await waitForMail(email, /suspended/);
    expect(await clients.client.workflow.getHandle(workflowId).result()).toEqual({ sent: true });
  });
});

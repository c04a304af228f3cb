/**
 * Crash safety: the worker process is killed with SIGKILL in the middle of flows (e-mail
 * verification and password reset); a new worker
 * takes over from the recorded history, the flows complete, and nobody gets an e-mail twice
 * (activities are idempotent: the e-mail outbox is keyed by workflow/run/activity id).
 *
 * The test stack's worker is a child of jest's global setup. This file kills whichever worker is
 * current (its pid is in stack.json), starts a replacement itself (same command and environment as
 * the launcher) and records the replacement's pid in stack.json's `pids`, so the stack's stop()
 * ends it at teardown. It always leaves one running worker behind for the test files after it.
 */
import * as workflowsModule from '../../workflows';
import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StackInfo } from '../../infra/stack/stack';
import { api, mailsTo, pg, sleep, stackInfo, uniqueEmail, waitForMail } from '../helpers/stack';
import { adminAccount, codeFrom, GOOD_PASSWORD, loginWithTotp } from '../helpers/users';
import { historyToObject } from '../replay/histories';
import { stackClients, StackClients } from '../replay/stack-codec';

const ROOT = join(__dirname, '..', '..');
const stackFile = () => process.env.AUTHFLOW_STACK_FILE ?? join(ROOT, '.data', 'test', 'stack.json');

let clients: StackClients;
let currentWorker: number;
let replacements = 0;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function killWorker() {
  const pid = currentWorker;
  expect(alive(pid)).toBe(true);
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(50);
  expect(alive(pid)).toBe(false);
}

/** Starts a worker like the launcher does and records its pid in stack.json for teardown. */
async function startReplacementWorker(): Promise<ChildProcess> {
  const info = stackInfo();
  const name = `worker-replacement-${++replacements}`;
  const logPath = join(info.logs, `${name}.log`);
  const fd = openSync(logPath, 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', '--enable-source-maps', join(ROOT, 'worker', 'main.ts')], {
    cwd: ROOT,
    env: { ...process.env, ...info.serviceEnv, VAULT_ROLE_ID: info.roleIds.worker, VAULT_SECRET_ID_FILE: info.secretIdFiles.worker },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  // It outlives this test file (the next files need a worker); teardown ends it via stack.json.
  child.unref();
  const recorded = JSON.parse(readFileSync(stackFile(), 'utf8')) as StackInfo;
  recorded.pids[name] = child.pid!;
  writeFileSync(stackFile(), JSON.stringify(recorded, null, 2), { mode: 0o600 });
  const deadline = Date.now() + 120000;
  while (Date.now() < deadline) {
    if (existsSync(logPath) && readFileSync(logPath, 'utf8').includes('"worker started"')) break;
    if (child.exitCode !== null) throw new Error(`replacement worker exited (${child.exitCode}); see ${logPath}`);
    await sleep(200);
  }
  if (!readFileSync(logPath, 'utf8').includes('"worker started"')) throw new Error(`replacement worker did not start; see ${logPath}`);
  currentWorker = child.pid!;
  return child;
}

async function register(tag: string) {
  const email = uniqueEmail(tag);
  const reg = await api('POST', '/v1/auth/register', { body: { email, password: GOOD_PASSWORD } });
  expect(reg.status).toBe(201);
  return { email, userId: reg.body.user.id as string };
}

const wfId = (userId: string) => `email-verification:${userId}`;

/** The attempt numbers recorded for the completed runs of an activity type in a flow's history. */
async function attemptsOf(workflowId: string, activityType: string): Promise<number[]> {
  const h = historyToObject(await clients.raw.workflow.getHandle(workflowId).fetchHistory()) as { events: Array<Record<string, any>> };
  const scheduled = new Set(h.events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activityType).map((e) => String(e.eventId)));
  return h.events
    .filter((e) => e.activityTaskStartedEventAttributes && scheduled.has(String(e.activityTaskStartedEventAttributes.scheduledEventId)))
    .map((e) => e.activityTaskStartedEventAttributes.attempt as number);
}

/** Holds the outbox's "sent" update of users whose address starts with the tag for 4 s (a slow
 * database), so a kill lands after SMTP accepted the message and before Temporal heard the
 * activity finish. The trigger is dropped afterwards. */
async function withSlowOutbox(fn: (tag: string) => Promise<void>) {
  const tag = `crash-midsend-${Date.now().toString(36)}`;
  const c = await pg();
  await c.query(`
    CREATE OR REPLACE FUNCTION test_slow_outbox_sent() RETURNS trigger AS $$
    BEGIN
      IF NEW.status = 'sent' AND EXISTS (SELECT 1 FROM users WHERE id = NEW.user_id AND email LIKE '${tag}.%') THEN
        PERFORM pg_sleep(4);
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql`);
  await c.query('DROP TRIGGER IF EXISTS test_slow_outbox_sent ON email_outbox');
  await c.query('CREATE TRIGGER test_slow_outbox_sent BEFORE UPDATE ON email_outbox FOR EACH ROW EXECUTE FUNCTION test_slow_outbox_sent()');
  try {
    await fn(tag);
  } finally {
    await c.query('DROP TRIGGER IF EXISTS test_slow_outbox_sent ON email_outbox');
    await c.query('DROP FUNCTION IF EXISTS test_slow_outbox_sent()');
    await c.end();
  }
}

async function waitNoPendingActivity(workflowId: string, timeoutMs = 90000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && (await clients.client.workflow.getHandle(workflowId).describe()).raw.pendingActivities?.length) await sleep(500);
}

async function outboxRows(userId: string): Promise<Array<{ status: string; template: string }>> {
  const c = await pg();
  try {
    return (await c.query('SELECT status, template FROM email_outbox WHERE user_id = $1', [userId])).rows;
  } finally {
    await c.end();
  }
}

async function verifyAndExpectVerified(email: string, userId: string, mailText: string) {
  expect((await api('POST', '/v1/auth/verify-email', { body: { token: codeFrom(mailText) } })).status).toBe(200);
  const result = await Promise.race([
    clients.client.workflow.getHandle(wfId(userId)).result(),
    new Promise((_, reject) => setTimeout(() => reject(new Error('flow did not finish within 60 s')), 60000).unref()),
  ]);
  expect(result).toEqual(expect.objectContaining({ status: 'verified' }));
}

beforeAll(async () => {
  clients = await stackClients(stackInfo());
  const info = JSON.parse(readFileSync(stackFile(), 'utf8')) as StackInfo;
  // The launcher's worker, or a replacement an earlier run of this file left (the newest one).
  const candidates = Object.entries(info.pids).filter(([n, pid]) => /^worker/.test(n) && alive(pid));
  if (candidates.length === 0) throw new Error('no running worker recorded in stack.json');
  currentWorker = candidates[candidates.length - 1][1];
});

afterAll(async () => {
  // Whatever happened above, leave a worker running for the test files that follow.
  if (!alive(currentWorker)) await startReplacementWorker();
  await clients?.close();
});

describe('the worker is killed in the middle of flows', () => {
  test('a flow waiting for its user survives the crash: the new worker finishes it and no e-mail is sent twice', async () => {
    const { email, userId } = await register('crash.waiting');
    const mail = await waitForMail(email, /Verify/);
    await killWorker();
    await startReplacementWorker();
    await verifyAndExpectVerified(email, userId, mail.text);
    expect(await mailsTo(email, /Verify/)).toHaveLength(1);
    expect(await attemptsOf(wfId(userId), 'issueOneTimeCode')).toEqual([1]);
    expect(await outboxRows(userId)).toEqual([{ status: 'sent', template: 'email_verification' }]);
  }, 180000);

  test('flows started while no worker runs wait in Temporal and complete once a worker is back, one e-mail each', async () => {
    await killWorker();
    const users = [await register('crash.noworker.a'), await register('crash.noworker.b')];
    await sleep(1500);
    for (const u of users) expect(await mailsTo(u.email, /Verify/)).toHaveLength(0);
    await startReplacementWorker();
    for (const u of users) {
      const mail = await waitForMail(u.email, /Verify/, 60000);
      await verifyAndExpectVerified(u.email, u.userId, mail.text);
      expect(await mailsTo(u.email, /Verify/)).toHaveLength(1);
    }
  }, 180000);

  test('killed after the e-mail went out but before the activity reported back: the retry does not send it again', async () => {
    await withSlowOutbox(async (tag) => {
      const { email, userId } = await register(tag);
      const mail = await waitForMail(email, /Verify/, 20000);
      await killWorker();
      // The activity is still running as far as Temporal knows.
      expect((await clients.client.workflow.getHandle(wfId(userId)).describe()).raw.pendingActivities?.length).toBe(1);
      await startReplacementWorker();
      await waitNoPendingActivity(wfId(userId));
      // Temporal retried the attempt (after its 30 s start-to-close timeout) on the new worker...
      expect(await attemptsOf(wfId(userId), 'issueOneTimeCode')).toEqual([2]);
      // ...which found the outbox row marked sent: still exactly one e-mail, and its code works.
      expect(await mailsTo(email, /Verify/)).toHaveLength(1);
      expect(await outboxRows(userId)).toEqual([{ status: 'sent', template: 'email_verification' }]);
      await verifyAndExpectVerified(email, userId, mail.text);
      expect(await mailsTo(email, /Verify/)).toHaveLength(1);
    });
  }, 240000);

  test('password reset: killed between the reset e-mail and the activity\'s completion: one reset e-mail, the reset works, one "password changed"', async () => {
    await withSlowOutbox(async (tag) => {
      const { email, userId } = await register(tag);
      await verifyAndExpectVerified(email, userId, (await waitForMail(email, /Verify/)).text);
      expect((await api('POST', '/v1/auth/password/forgot', { body: { email } })).status).toBe(202);
      const mail = await waitForMail(email, /Reset your password/, 20000);
      await killWorker();
      const resetId = `password-reset:${userId}`;
      expect((await clients.client.workflow.getHandle(resetId).describe()).raw.pendingActivities?.length).toBe(1);
      // The user resets at once with the e-mailed token (the test TTL is 12 s, shorter than the
      // 30 s it takes Temporal to give up on the killed attempt): the API tells the flow by signal.
      const r = await api('POST', '/v1/auth/password/reset', { body: { token: codeFrom(mail.text), new_password: `${GOOD_PASSWORD}-after-crash` } });
      expect(r.status).toBe(204);
      await startReplacementWorker();
      await waitNoPendingActivity(resetId);
      expect(await attemptsOf(resetId, 'issueResetToken')).toEqual([2]);
      const result = await Promise.race([
        clients.client.workflow.getHandle(resetId).result(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('reset flow did not finish within 60 s')), 60000).unref()),
      ]);
      expect(result).toEqual(expect.objectContaining({ status: 'completed', emailsSent: 1 }));
      await waitForMail(email, /password was changed/);
      expect(await mailsTo(email, /Reset your password/)).toHaveLength(1);
      expect(await mailsTo(email, /password was changed/)).toHaveLength(1);
    });
  }, 240000);
});

/** Backups (when the build has them): the worker dies while pg_dump runs; the heartbeat timeout
 * hands the attempt to the new worker and exactly one complete backup results. */
const hasBackups = typeof (workflowsModule as Record<string, unknown>).backupWorkflow === 'function';

describe('the worker is killed in the middle of a backup', () => {
  (hasBackups ? test : test.skip)(
    'the dump is retried on the new worker after the heartbeat timeout: one complete backup, no partial left',
    async () => {
      const admin = await adminAccount({ name: 'Crash Operator' });
      const c = await pg();
      const token = (await loginWithTotp(admin.email, admin.password, admin.app)).access_token;
      const root = join(stackInfo().dataDir, 'backups');
      const complete = () => (existsSync(root) ? readdirSync(root).filter((n) => !n.startsWith('.') && existsSync(join(root, n, 'manifest.json'))) : []);
      const before = complete();
      const wf = 'backup:on-demand';
      // Hold pg_dump (and the manifest's reads) with a lock on a table nothing else writes at run
      // time, so the kill lands while the dump activity runs and heartbeats.
      await c.query('BEGIN');
      await c.query('LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE');
      let locked = true;
      try {
        expect((await api('POST', '/v1/admin/ops/backup', { token, body: {} })).status).toBe(202);
        let running = false;
        for (let i = 0; i < 200 && !running; i++) {
          const pending = (await clients.client.workflow.getHandle(wf).describe()).raw.pendingActivities ?? [];
          running = pending.some((a) => a.activityType?.name === 'dumpDatabaseForBackup' && !!a.lastStartedTime);
          if (!running) await sleep(100);
        }
        expect(running).toBe(true);
        await sleep(1000);
        await killWorker();
        await c.query('ROLLBACK');
        locked = false;
        await startReplacementWorker();
        const result = (await Promise.race([
          clients.client.workflow.getHandle(wf).result(),
          new Promise((_, reject) => setTimeout(() => reject(new Error('backup did not finish within 150 s')), 150000).unref()),
        ])) as { backupId: string };
        expect(await attemptsOf(wf, 'dumpDatabaseForBackup')).toEqual([2]);
        const after = complete();
        expect(after.filter((n) => !before.includes(n))).toEqual([result.backupId]);
        expect(readdirSync(root).filter((n) => n.startsWith('.partial-'))).toEqual([]);
      } finally {
        if (locked) await c.query('ROLLBACK');
        await c.end();
      }
    },
    240000,
  );
});

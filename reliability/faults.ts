/**
 * The fault matrix (issue 17, 1b): under the steady mixed load of lib/load.ts, each fault in turn:
 * a quiet baseline, the fault held for its time, the repair, a settle period; then the next fault
 * once /readyz of every instance says `ok` again. For each fault the table gets what the clients
 * saw (every answer in the fault's window: successes, 503 with Retry-After, no answer and so
 * retried elsewhere, anything else is a failure), how long after the repair service was whole
 * again (the last refused or unanswered request, measured from the repair), and the loss
 * accounting of what was accepted in that window: the e-mail of each accepted registration and of
 * each accepted forgot for a known address, duplicates (the same Message-ID twice), and refresh
 * chains lost. Accounting waits for e-mails until the end of the matrix (a flow may finish late).
 *
 * Process control reuses the test helpers (test/helpers/ops.ts, temporal-server.ts), which read
 * the stack through AUTHFLOW_STACK_FILE.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { freePort } from '../bench/lib/env';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { temporalConnectionOptions } from '../platform/temporal/connection';
import { parseTemporalConnectionConfig } from '../platform/config';
import { alive, currentWorkerPid, killVault, recordPid, restartPostgres, ROOT, startService, startVault, stopPid } from '../test/helpers/ops';
import { stackInfo, unsealKeys, vaultRoot } from '../test/helpers/stack';
import { startTemporal, stopTemporal } from '../test/helpers/temporal-server';
import type { PartResult, ReliabilityContext, Row } from './lib/context';
import { MixedLoad, Sample, window } from './lib/load';
import type { MailCollector } from './lib/mail';

export const VERIFY_SUBJECT = /^Verify your e-mail address$/;
export const RESET_SUBJECT = /^Reset your password$/;

export interface Fault {
  name: string;
  /** how long the fault is held before the repair starts */
  holdMs: number;
  inject(): Promise<void>;
  repair(): Promise<void>;
}

export interface FaultWindow {
  fault: Fault;
  /** ms on the load's clock */
  injected: number;
  repairStarted: number;
  repaired: number;
  settled: number;
}

function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
}

function respawn(name: string, argv: string[]): ChildProcess {
  const fd = openSync(join(stackInfo().logs, `${name}.log`), 'a');
  const child = spawn(argv[0], argv.slice(1), { cwd: ROOT, env: process.env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  recordPid(name, child.pid!);
  return child;
}

async function killHard(pid: number) {
  process.kill(pid, 'SIGKILL');
  const deadline = Date.now() + 20000;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
}

async function portServes(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return false;
  }
}

/** The second API instance: same service environment, a port free when it first starts (kept for its restart). */
let secondPort: number | undefined;
export async function startSecondApi(): Promise<string> {
  secondPort ??= await freePort();
  const s = await startService('api', { API_PORT: String(secondPort) }, 'api-2');
  return s.url!;
}

export function faults(quick: boolean, onDbReplaced: () => Promise<void>): Fault[] {
  const hold = (ms: number) => (quick ? Math.min(ms, 5000) : ms);
  let vaultArgv: string[] = [];
  let temporalArgv: string[] = [];
  let maildevArgv: string[] = [];
  let workerSerial = 0;
  return [
    {
      name: `Vault sealed ${hold(30000) / 1000} s, then unsealed`,
      holdMs: hold(30000),
      inject: () => vaultRoot().seal(),
      repair: () => vaultRoot().unseal(unsealKeys()),
    },
    {
      name: 'Vault killed (SIGKILL), restarted and unsealed after 10 s',
      holdMs: hold(10000),
      inject: async () => {
        vaultArgv = await killVault();
      },
      repair: async () => {
        await startVault(vaultArgv);
      },
    },
    {
      name: 'Postgres stopped (fast shutdown), started again after 10 s',
      holdMs: 0,
      // The stop, the 10 s down and the start are one step of restartPostgres.
      inject: () => Promise.resolve(),
      repair: async () => {
        await restartPostgres(hold(10000));
        await onDbReplaced();
      },
    },
    {
      name: `Temporal killed, restarted after ${hold(30000) / 1000} s`,
      holdMs: hold(30000),
      inject: async () => {
        temporalArgv = await stopTemporal();
      },
      repair: () => startTemporal(temporalArgv),
    },
    {
      name: `SMTP server (maildev) down ${hold(60000) / 1000} s`,
      holdMs: hold(60000),
      inject: async () => {
        const pid = stackInfo().pids.maildev;
        maildevArgv = cmdline(pid);
        await killHard(pid);
      },
      repair: async () => {
        respawn('maildev', maildevArgv);
        const deadline = Date.now() + 30000;
        while (!(await portServes(`${stackInfo().urls.mailUi}/email`)) && Date.now() < deadline) await sleep(200);
      },
    },
    {
      name: 'worker killed (SIGKILL), a new one started after 10 s',
      holdMs: hold(10000),
      inject: async () => {
        await killHard(currentWorkerPid());
      },
      repair: async () => {
        await startService('worker', {}, `worker-reliability-${++workerSerial}`);
      },
    },
    {
      name: 'one of two API instances killed (SIGKILL), restarted after 10 s',
      holdMs: hold(10000),
      inject: async () => {
        await killHard(stackInfo().pids['api-2']);
      },
      repair: async () => {
        await stopPid(stackInfo().pids['api-2']).catch(() => undefined);
        await startSecondApi();
      },
    },
  ];
}

/** Waits until every instance's /readyz answers 200 with status ok (nothing degraded). */
export async function waitHealthy(apis: string[], timeoutMs = 120000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const states = await Promise.all(
      apis.map(async (u) => {
        try {
          const r = await fetch(`${u}/readyz`, { signal: AbortSignal.timeout(4000) });
          const b = (await r.json()) as { status?: string };
          return r.status === 200 && b.status === 'ok';
        } catch {
          return false;
        }
      }),
    );
    if (states.every(Boolean)) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`the stack did not become healthy within ${timeoutMs / 1000} s`);
    await sleep(250);
  }
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Failed (refused or unanswered) answers: their end time on the load's clock. */
function failingEnds(samples: Sample[], from: number, to: number): number[] {
  return samples.filter((s) => s.t >= from && s.t < to && !(s.status >= 200 && s.status < 300)).map((s) => s.t + s.ms);
}

export interface MatrixOptions {
  baselineMs: number;
  settleMs: number;
}

/** Runs the faults one after the other under `load`; returns their windows. */
export async function runMatrix(ctx: ReliabilityContext, load: MixedLoad, list: Fault[], o: MatrixOptions): Promise<FaultWindow[]> {
  const windows: FaultWindow[] = [];
  for (const fault of list) {
    await waitHealthy(ctx.apis);
    await sleep(o.baselineMs);
    ctx.log(`fault: ${fault.name}`);
    const injected = load.now();
    await fault.inject();
    await sleep(fault.holdMs);
    const repairStarted = load.now();
    await fault.repair();
    const repaired = load.now();
    ctx.log(`  repaired in ${secs(repaired - repairStarted)}; settling ${secs(o.settleMs)}`);
    await sleep(o.settleMs);
    windows.push({ fault, injected, repairStarted, repaired, settled: load.now() });
  }
  await waitHealthy(ctx.apis);
  return windows;
}

export interface Accounting {
  registrations: { accepted: number; missing: string[]; duplicates: number };
  forgots: { accepted: number; missing: string[]; duplicates: number; extra: number };
}

/** E-mails of the registrations and forgots accepted in [from, to) on the load's clock. */
export function account(load: MixedLoad, mails: MailCollector, from: number, to: number): Accounting {
  const dupes = (ids: string[]) => ids.length - new Set(ids).size;
  const reg = { accepted: 0, missing: [] as string[], duplicates: 0 };
  for (const [email, at] of load.registered) {
    if (at < from || at >= to) continue;
    reg.accepted++;
    const got = mails.to(email, VERIFY_SUBJECT);
    if (!got.length) reg.missing.push(email);
    reg.duplicates += dupes(got.map((m) => m.messageId));
  }
  const fg = { accepted: 0, missing: [] as string[], duplicates: 0, extra: 0 };
  for (const [email, times] of load.forgot) {
    const inWindow = times.filter((t) => t >= from && t < to).length;
    if (!inWindow) continue;
    fg.accepted += inWindow;
    const got = mails.to(email, RESET_SUBJECT);
    const distinct = new Set(got.map((m) => m.messageId)).size;
    // Every accepted forgot of this address (in any window) needs its own message.
    if (distinct < times.length) fg.missing.push(`${email} (${times.length} accepted, ${distinct} mails)`);
    if (distinct > times.length) fg.extra += distinct - times.length;
    fg.duplicates += dupes(got.map((m) => m.messageId));
  }
  return { registrations: reg, forgots: fg };
}

/** Waits (up to `timeoutMs`) until every accepted registration and forgot has its e-mail. */
export async function drainMail(load: MixedLoad, mails: MailCollector, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    await mails.pollOnce().catch(() => undefined);
    const a = account(load, mails, 0, Number.MAX_SAFE_INTEGER);
    if ((!a.registrations.missing.length && !a.forgots.missing.length) || Date.now() - t0 > timeoutMs) return Date.now() - t0;
    await sleep(500);
  }
}

export interface WorkflowHealth {
  failed: number;
  timedOut: number;
  terminated: number;
  /** running workflows with an activity retrying (attempt > 3) at the end */
  retrying: number;
  running: number;
  outboxPending: number;
}

/** The state of the workflows started since `since` (all of them without it), and of the flow outbox. */
export async function workflowHealth(ctx: ReliabilityContext, since?: Date): Promise<WorkflowHealth> {
  const info = ctx.info;
  const started = since ? ` AND StartTime >= '${since.toISOString()}'` : '';
  const connection = await Connection.connect({ ...temporalConnectionOptions(parseTemporalConnectionConfig(info.serviceEnv)), connectTimeout: 5000 });
  try {
    const client = new TemporalClient({ connection, namespace: info.serviceEnv.TEMPORAL_NAMESPACE ?? 'default' });
    const count = async (q: string) => Number((await client.workflow.count(q)).count);
    const running: Array<{ workflowId: string; runId: string }> = [];
    for await (const wf of client.workflow.list({ query: `ExecutionStatus = 'Running'${started}` }))
      running.push({ workflowId: wf.workflowId, runId: wf.runId });
    let retrying = 0;
    for (let i = 0; i < running.length; i += 25) {
      const batch = await Promise.all(
        running.slice(i, i + 25).map((w) =>
          client.workflow
            .getHandle(w.workflowId, w.runId)
            .describe()
            .catch(() => undefined),
        ),
      );
      for (const d of batch) if (d?.raw.pendingActivities?.some((a) => (a.attempt ?? 0) > 3)) retrying++;
    }
    const pending = await ctx.db.query<{ n: string }>('SELECT count(*) AS n FROM flow_outbox WHERE relayed_at IS NULL');
    return {
      failed: await count(`ExecutionStatus = 'Failed'${started}`),
      timedOut: await count(`ExecutionStatus = 'TimedOut'${started}`),
      terminated: await count(`ExecutionStatus = 'Terminated'${started}`),
      retrying,
      running: running.length,
      outboxPending: Number(pending.rows[0].n),
    };
  } finally {
    await connection.close();
  }
}

/** The rows of one fault's window. */
export function faultRows(w: FaultWindow, load: MixedLoad, mails: MailCollector): Row[] {
  const chains = load.chainStats(w.injected, w.settled);
  const part = `fault: ${w.fault.name}`;
  const seen = window(load.samples, w.injected, w.settled);
  const otherCodes = [...new Set(seen.other.map((s) => `${s.op} ${s.status}${s.code ? ` ${s.code}` : ''}`))].slice(0, 5);
  const ends = failingEnds(load.samples, w.injected, w.settled);
  const lastFail = ends.length ? Math.max(...ends) : undefined;
  const recovery = lastFail === undefined ? 0 : Math.max(0, lastFail - w.repaired);
  // Recovered: the last 5 s of the settle window were answered without a failure.
  const tail = failingEnds(load.samples, w.settled - 5000, w.settled).length;
  const a = account(load, mails, w.injected, w.settled);
  const rows: Row[] = [
    {
      part,
      measure: 'what clients saw',
      figure:
        `${seen.n} answers: ${seen.ok} ok, ${seen.s503} × 503 + Retry-After, ${seen.s429} × 429, ${seen.noAnswer} unanswered (sent again to the other instance)` +
        (seen.afterLost ? `, ${seen.afterLost} × 401 for a refresh token whose answer was lost in flight` : '') +
        (seen.other.length ? `, **${seen.other.length} other** (${otherCodes.join('; ')})` : ', 0 other'),
      target: 'only 503 + Retry-After, or retried successes',
      verdict: seen.other.length ? 'FAIL' : 'PASS',
    },
    {
      part,
      measure: 'time to recover',
      figure:
        lastFail === undefined
          ? 'no request failed'
          : `${secs(recovery)} after the repair (repair itself took ${secs(w.repaired - w.repairStarted)}); last 5 s clean: ${tail === 0 ? 'yes' : `no (${tail} failures)`}`,
      target: 'recovered',
      verdict: tail === 0 ? 'PASS' : 'FAIL',
    },
    {
      part,
      measure: 'loss',
      figure:
        `e-mails missing: ${a.registrations.missing.length} of ${a.registrations.accepted} registrations, ${a.forgots.missing.length} of ${a.forgots.accepted} forgots; ` +
        `duplicates ${a.registrations.duplicates + a.forgots.duplicates}; refresh chains lost ${chains.lost} (${chains.lostInFlight} ended by an answer lost in flight, ${chains.broken} broken)`,
      target: '0 lost',
      verdict: a.registrations.missing.length || a.forgots.missing.length || chains.lost || chains.broken ? 'FAIL' : 'PASS',
    },
  ];
  return rows;
}

export type { PartResult };

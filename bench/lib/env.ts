/**
 * The environment of a benchmark run: the running stack (read from its stack.json), the machine,
 * CPU pinning, and the dedicated API process the HTTP benchmarks talk to.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import * as os from 'node:os';
import { join } from 'node:path';
import { Client as PgClient } from 'pg';
import { ROOT, StackInfo } from '../../infra/stack/stack';
import { sleep } from './stats';

export class BenchError extends Error {}

/** Reads stack.json and checks that the stack behind it answers; a clear error otherwise. */
export async function connectStack(dataDir: string): Promise<StackInfo> {
  const file = join(dataDir, 'stack.json');
  const hint = `start it with \`npm run dev\` (AUTHFLOW_DATA_DIR=${dataDir}) and run the benchmark again`;
  if (!existsSync(file)) throw new BenchError(`no local stack at ${dataDir} (no stack.json): ${hint}`);
  const info = JSON.parse(readFileSync(file, 'utf8')) as StackInfo;
  if (info.build !== 'dist') {
    throw new BenchError(
      `the stack at ${dataDir} runs from source (tsx); the benchmark measures the compiled build: stop it and start it with \`npm run dev -- --production\` (AUTHFLOW_DATA_DIR=${dataDir})`,
    );
  }
  const lock = join(dataDir, 'stack.lock');
  if (!existsSync(lock)) throw new BenchError(`the stack at ${dataDir} is not running (stack.json is left from an earlier run): ${hint}`);
  const { pid } = JSON.parse(readFileSync(lock, 'utf8')) as { pid: number };
  if (!pidAlive(pid)) throw new BenchError(`the stack at ${dataDir} is not running (its launcher, pid ${pid}, is gone): ${hint}`);
  const checks: Array<[string, () => Promise<unknown>]> = [
    ['API', () => httpOk(`${info.urls.api}/healthz`)],
    ['maildev', () => httpOk(`${info.urls.mailUi}/healthz`)],
    [
      'Vault',
      () =>
        fetch(`${info.urls.vault}/v1/sys/health`, { signal: AbortSignal.timeout(3000) }).then((r) => {
          if (r.status !== 200) throw new Error(`answered ${r.status} (sealed or standby?)`);
        }),
    ],
    [
      'PostgreSQL',
      async () => {
        const c = await appDb(info);
        try {
          await c.query('SELECT 1 FROM users LIMIT 1');
        } finally {
          await c.end();
        }
      },
    ],
  ];
  for (const [name, check] of checks) {
    try {
      await check();
    } catch (err) {
      throw new BenchError(`the stack at ${dataDir} is not fully up: ${name} does not answer (${(err as Error).message}); ${hint}`);
    }
  }
  return info;
}

async function httpOk(url: string) {
  const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
  if (!r.ok) throw new Error(`${url} answered ${r.status}`);
}

export function pidAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A superuser connection to the application database. */
export async function appDb(info: StackInfo): Promise<PgClient> {
  const c = new PgClient({ connectionString: info.pgSuperuserUrl.replace(/\/postgres$/, '/authflow'), application_name: 'authflow-bench' });
  await c.connect();
  return c;
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memGiB: number;
  kernel: string;
  node: string;
  commit: string;
  postgres?: string;
}

export function machineInfo(): MachineInfo {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpuModel = m[1].trim();
  } catch {
    /* not Linux */
  }
  const git = (args: string[]) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() ?? '';
  const commit = git(['rev-parse', '--short', 'HEAD']) || 'unknown';
  const dirty = git(['status', '--porcelain', '--untracked-files=no']).split('\n').filter(Boolean).length;
  return {
    cpuModel,
    cores: os.availableParallelism(),
    memGiB: os.totalmem() / 2 ** 30,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    commit: dirty ? `${commit} (+${dirty} uncommitted tracked file${dirty > 1 ? 's' : ''})` : commit,
  };
}

/** Number of CPUs in a taskset list such as "1", "0,2" or "2-3". */
export function cpuCount(list: string): number {
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(list)) throw new BenchError(`bad CPU list "${list}" (taskset syntax, e.g. 1 or 2-3)`);
  return cpuList(list).length;
}

export interface Pinning {
  pinned: boolean;
  apiCpus: string;
  clientCpus: string;
  apiCores: number;
  description: string;
}

/** Pins this process (all its threads) to the client CPUs when taskset and enough cores exist. */
export function pinSelf(apiCpus: string, clientCpus: string): Pinning {
  const cores = os.availableParallelism();
  const hasTaskset = spawnSync('taskset', ['--version'], { encoding: 'utf8' }).status === 0;
  if (!hasTaskset || cores < 2) {
    return {
      pinned: false,
      apiCpus: '',
      clientCpus: '',
      apiCores: cores,
      description: `API not pinned (${hasTaskset ? 'only one core' : 'taskset missing'}): it shared ${cores} core(s) with everything else; refreshes per API CPU-second are the comparable figure`,
    };
  }
  const r = spawnSync('taskset', ['-a', '-p', '-c', clientCpus, String(process.pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new BenchError(`taskset could not pin the load generator to CPU ${clientCpus}: ${r.stderr.trim()}`);
  const apiCores = cpuCount(apiCpus);
  return {
    pinned: true,
    apiCpus,
    clientCpus,
    apiCores,
    description: `API: ${apiCores} core${apiCores > 1 ? 's' : ''} (${apiCores > 1 ? `a cluster of ${apiCores} API processes and their primary` : 'a dedicated API process'}, compiled build, NODE_ENV=production, pinned with taskset to CPU ${apiCpus}); load generator and in-process benchmarks pinned to CPU ${clientCpus}; PostgreSQL, Temporal, Vault, maildev and the worker are the stack's own processes, not pinned (they share all ${cores} cores)`,
  };
}

/** utime + stime of a process (all threads), in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Expands a taskset CPU list ("0,2-3") into CPU numbers. */
export function cpuList(list: string): number[] {
  const out: number[] = [];
  for (const part of list.split(',')) {
    const [a, b] = part.split('-').map(Number);
    for (let c = a; c <= (b ?? a); c++) out.push(c);
  }
  return out;
}

/** Busy (without steal) and stolen seconds of the given CPUs so far, from /proc/stat. */
export function cpuTimes(cpus: number[]): { busy: number; steal: number } {
  let busy = 0;
  let steal = 0;
  const stat = readFileSync('/proc/stat', 'utf8');
  for (const c of cpus) {
    const m = new RegExp(`^cpu${c} (.+)$`, 'm').exec(stat);
    if (!m) continue;
    const [user, nice, system, , , irq, softirq, st] = m[1].trim().split(/\s+/).map(Number);
    busy += user + nice + system + irq + softirq;
    steal += st ?? 0;
  }
  return { busy: busy / CLK_TCK, steal: steal / CLK_TCK };
}

const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  return Number(r.stdout?.trim()) || 100;
})();

/** Resident set size in MB (10^6 bytes), or NaN when the process is gone. */
export function rssMB(pid: number | undefined): number {
  if (!pidAlive(pid)) return NaN;
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? (Number(m[1]) * 1024) / 1e6 : NaN;
  } catch {
    return NaN;
  }
}

/** The command line of a process (to check that a pid from stack.json is still what we think). */
export function cmdline(pid: number | undefined): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

/**
 * Rate limits stay in the request path (their Postgres cost is part of every login and refresh)
 * but are raised so the load generator, one IP and a few accounts, never hits them.
 */
const RAISED_LIMITS: Record<string, string> = Object.fromEntries(
  ['LOGIN_IP', 'LOGIN_ACCOUNT', 'REGISTER_IP', 'REGISTER_ACCOUNT', 'FORGOT_IP', 'FORGOT_ACCOUNT', 'REFRESH_IP', 'REFRESH_ACCOUNT'].map((k) => [
    `RATE_LIMIT_${k}`,
    '1000000000/60',
  ]),
);

export interface BenchApi {
  url: string;
  /** The cluster primary (or the single process). */
  pid: number;
  /** Every process of the benchmarked API: the primary and its API processes (their CPU and RSS are summed). */
  pids(): number[];
  processes: number;
  log: string;
  stop(): Promise<void>;
}

/** The child pids of a process (Linux: /proc/<pid>/task/<tid>/children). */
export function childPids(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

/**
 * Starts the benchmarked API as a deployment runs it: the compiled build (dist/, built by
 * `npm run dev -- --production`), NODE_ENV=production, no source maps, one API process per core it
 * is given (API_PROCESSES, Node's cluster), pinned to those cores when possible, against the
 * stack's services.
 */
export async function startBenchApi(info: StackInfo, pin: Pinning): Promise<BenchApi> {
  const entry = join(ROOT, 'dist', 'api', 'main.js');
  if (!existsSync(entry)) throw new BenchError(`${entry} is missing: start the stack with \`npm run dev -- --production\` (it runs \`npm run build\`)`);
  const port = await freePort();
  const logs = join(info.dataDir, 'logs');
  mkdirSync(logs, { recursive: true });
  const log = join(logs, 'bench-api.log');
  const fd = openSync(log, 'a');
  const processes = Math.max(1, pin.apiCores);
  const env = {
    ...process.env,
    ...info.serviceEnv,
    ...RAISED_LIMITS,
    NODE_ENV: 'production',
    NODE_OPTIONS: '',
    VAULT_ROLE_ID: info.roleIds.api,
    VAULT_SECRET_ID_FILE: info.secretIdFiles.api,
    API_PORT: String(port),
    API_PROCESSES: String(processes),
    LOG_LEVEL: 'warn',
  };
  // BENCH_API_NODE_ARGS passes profiler flags to the benchmarked API, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const extraArgs = (process.env.BENCH_API_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const nodeArgs = [...extraArgs, entry];
  const [cmd, args] = pin.pinned ? ['taskset', ['-c', pin.apiCpus, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const child: ChildProcess = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(t);
  };
  const pids = () => (processes > 1 ? [child.pid!, ...childPids(child.pid!)] : [child.pid!]);
  process.once('exit', () => {
    for (const p of pids().reverse()) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  });
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      // Every API process up: a cluster answers once the first one listens.
      if ((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) })).ok && pids().length === (processes > 1 ? processes + 1 : 1)) {
        if (processes > 1) await sleep(2000); // the others finish their start
        return { url, pid: child.pid!, pids, processes, log, stop };
      }
    } catch {
      /* not yet */
    }
    await sleep(250);
  }
  await stop();
  const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-15).join('\n') : '';
  throw new BenchError(`the benchmark API did not start; its log is ${log}\n${tail}`);
}

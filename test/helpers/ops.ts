/**
 * Helpers for the Vault-operations tests: an admin session, the Temporal client with the stack's
 * codec, and control of the stack's server processes (kill and restart Vault, Postgres, the worker;
 * extra API instances). Replacement processes are recorded in stack.json `pids` (and the lock file),
 * so the launcher's stop() ends them at teardown.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StackInfo } from '../../infra/stack/stack';
import { stackClients, StackClients } from '../replay/stack-codec';
import { api, pg, sleep, stackInfo, unsealKeys, vaultRoot } from './stack';
import { adminAccount, loginWithTotp } from './users';

export const ROOT = join(__dirname, '..', '..');
const stackFile = () => process.env.AUTHFLOW_STACK_FILE ?? join(ROOT, '.data', 'test', 'stack.json');

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Records (or replaces) a pid under `name` in stack.json and in the launcher's lock file. */
export function recordPid(name: string, pid: number) {
  const file = stackFile();
  const info = JSON.parse(readFileSync(file, 'utf8')) as StackInfo;
  info.pids[name] = pid;
  writeFileSync(file, JSON.stringify(info, null, 2), { mode: 0o600 });
  const lock = join(info.dataDir, 'stack.lock');
  if (existsSync(lock)) {
    const l = JSON.parse(readFileSync(lock, 'utf8')) as { pid: number; pids?: Record<string, number> };
    l.pids = { ...(l.pids ?? {}), [name]: pid };
    writeFileSync(lock, JSON.stringify(l));
  }
}

async function waitExit(pid: number, ms = 20000) {
  const deadline = Date.now() + ms;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) throw new Error(`pid ${pid} did not exit within ${ms} ms`);
}

function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
}

function uidGid(pid: number): { uid: number; gid: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { uid: Number(/^Uid:\s+(\d+)/m.exec(status)![1]), gid: Number(/^Gid:\s+(\d+)/m.exec(status)![1]) };
}

function spawnLogged(
  name: string,
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number; cwd?: string } = {},
): ChildProcess {
  const info = stackInfo();
  const fd = openSync(join(info.logs, `${name}.log`), 'a');
  const child = spawn(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    env: opts.env ?? process.env,
    stdio: ['ignore', fd, fd],
    uid: opts.uid,
    gid: opts.gid,
    detached: false,
  });
  closeSync(fd);
  child.unref();
  return child;
}

/**
 * Admin: a verified user promoted in Postgres, with TOTP enrolled (the admin API needs a session
 * signed in with a second factor) and signed in with password + code. `token()` returns an access
 * token at most 15 s old (keys may rotate under the tests), `token(true)` a freshly issued one;
 * both use the refresh token (per-account login limits are low in the test stack) and sign in
 * again only if it fails.
 */
export async function makeAdmin() {
  const u = await adminAccount({ name: 'Ops Admin' });
  let session: { access_token: string; refresh_token: string; at: number } | undefined;
  const token = async (fresh = false): Promise<string> => {
    if (session && !fresh && Date.now() - session.at < 15000) return session.access_token;
    if (session) {
      const r = await api('POST', '/v1/auth/refresh', { body: { refresh_token: session.refresh_token } });
      if (r.status === 200) {
        session = { ...r.body, at: Date.now() };
        return session!.access_token;
      }
    }
    session = { ...(await loginWithTotp(u.email, u.password, u.app)), at: Date.now() };
    return session.access_token;
  };
  return { ...u, token };
}

let clients: StackClients | undefined;
export async function temporal(): Promise<StackClients> {
  clients ??= await stackClients(stackInfo());
  return clients;
}
export async function closeTemporal() {
  await clients?.close();
  clients = undefined;
}

/** Polls GET /v1/admin/ops/runs/:id until the run is no longer RUNNING. */
export async function waitRun(token: (fresh?: boolean) => Promise<string>, workflowId: string, timeoutMs = 120000) {
  const deadline = Date.now() + timeoutMs;
  const t = await token();
  for (;;) {
    const r = await api('GET', `/v1/admin/ops/runs/${encodeURIComponent(workflowId)}`, { token: t });
    if (r.status === 200 && r.body.status !== 'RUNNING') return r.body as { status: string; result?: any; failure?: string; run_id: string };
    if (Date.now() > deadline) throw new Error(`${workflowId} still ${r.body?.status ?? r.status} after ${timeoutMs} ms`);
    await sleep(300);
  }
}

export function logLines(name: string): Array<Record<string, any>> {
  const file = join(stackInfo().logs, `${name}.log`);
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return {};
      }
    });
}

/** Waits until a log line of `name` after `fromLine` matches. */
export async function waitLog(name: string, pred: (l: Record<string, any>) => boolean, fromLine = 0, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (logLines(name).slice(fromLine).some(pred)) return;
    await sleep(200);
  }
  throw new Error(`no matching ${name} log line within ${timeoutMs} ms`);
}

// --- service processes ------------------------------------------------------------------------

let serial = 0;

/** Starts an API or worker like the launcher does, with extra env; records it for teardown. */
export async function startService(
  kind: 'api' | 'worker',
  extraEnv: Record<string, string> = {},
  label?: string,
): Promise<{ pid: number; name: string; url?: string; child: ChildProcess }> {
  const info = stackInfo();
  const name = label ?? `${kind}-ops-${++serial}`;
  const logPath = join(info.logs, `${name}.log`);
  const before = existsSync(logPath) ? readFileSync(logPath, 'utf8').length : 0;
  const env: Record<string, string | undefined> = {
    ...process.env,
    ...info.serviceEnv,
    VAULT_ROLE_ID: info.roleIds[kind],
    VAULT_SECRET_ID_FILE: info.secretIdFiles[kind],
    ...extraEnv,
  };
  const child = spawnLogged(name, process.execPath, ['--import', 'tsx', '--enable-source-maps', join(ROOT, kind, 'main.ts')], { env });
  recordPid(name, child.pid!);
  const deadline = Date.now() + 120000;
  const url = kind === 'api' ? `http://127.0.0.1:${env.API_PORT}` : undefined;
  for (;;) {
    if (kind === 'worker' && existsSync(logPath) && readFileSync(logPath, 'utf8').slice(before).includes('"worker started"')) break;
    if (kind === 'api') {
      try {
        if ((await fetch(`${url}/healthz`)).ok) break;
      } catch {
        /* not yet */
      }
    }
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}); see ${logPath}`);
    if (Date.now() > deadline) throw new Error(`${name} did not start; see ${logPath}`);
    await sleep(200);
  }
  return { pid: child.pid!, name, url, child };
}

export async function stopPid(pid: number, signal: NodeJS.Signals = 'SIGTERM') {
  if (!alive(pid)) return;
  process.kill(pid, signal);
  await waitExit(pid);
}

/** The worker that currently runs (the launcher's or the newest replacement). */
export function currentWorkerPid(): number {
  const pids = stackInfo().pids;
  const names = Object.keys(pids)
    .filter((n) => n === 'worker' || n.startsWith('worker-'))
    .filter((n) => alive(pids[n]));
  if (!names.length) throw new Error('no worker is running');
  return pids[names[names.length - 1]];
}

/** The log name of the worker that runs now (the launcher's `worker`, or a replacement). */
export function workerLogName(): string {
  const pids = stackInfo().pids;
  const pid = currentWorkerPid();
  return Object.keys(pids).find((n) => pids[n] === pid)!;
}

// --- Vault -------------------------------------------------------------------------------------

/** SIGKILLs the Vault server process (the launcher's or a replacement). */
export async function killVault(): Promise<string[]> {
  const pid = stackInfo().pids.vault;
  const argv = cmdline(pid);
  process.kill(pid, 'SIGKILL');
  await waitExit(pid);
  return argv;
}

/** Starts Vault again with the same command line, unseals it, records the pid. */
export async function startVault(argv: string[]): Promise<number> {
  const child = spawnLogged('vault', argv[0], argv.slice(1));
  recordPid('vault', child.pid!);
  const root = vaultRoot();
  await root.waitReachable(30000);
  await root.unseal(unsealKeys());
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      await root.req('GET', 'sys/mounts');
      return child.pid!;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}

// --- Postgres ----------------------------------------------------------------------------------

function postmasterPid(): number {
  return Number(readFileSync(join(stackInfo().dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
}

/** Fast shutdown (SIGINT) of Postgres, then the same postmaster again (same user, same args);
 * `whileDown` runs while it is stopped. */
export async function restartPostgres(downMs = 0, whileDown?: () => Promise<void>): Promise<number> {
  const pid = postmasterPid();
  const argv = cmdline(pid);
  const ids = uidGid(pid);
  process.kill(pid, 'SIGINT');
  await waitExit(pid, 30000);
  if (downMs) await sleep(downMs);
  if (whileDown) await whileDown();
  const child = spawnLogged('postgres', argv[0], argv.slice(1), { uid: ids.uid, gid: ids.gid, cwd: '/' });
  recordPid('postgres', child.pid!);
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      const c = await pg();
      await c.end();
      return child.pid!;
    } catch (err) {
      if (child.exitCode !== null) throw new Error(`postgres exited (${child.exitCode}); see logs/postgres.log`, { cause: err });
      if (Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}

/** Runs an operator command's entry point (cli/<name>.ts) as a child process against the test stack (stdin closed: no prompt possible). */
export function operatorCli(name: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, `cli/${name}.ts`), ...args], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        AUTHFLOW_STACK_FILE: join(stackInfo().dataDir, 'stack.json'),
        ...env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end();
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs `npm run create-admin`'s entry point as a child process against the test stack. */
export function createAdminCli(
  email: string,
  env: Record<string, string> = {},
  args: string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return operatorCli('create-admin', [email, ...args], env);
}

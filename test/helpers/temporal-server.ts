/**
 * Stops and restarts the test stack's Temporal dev server (a real outage: the process is killed,
 * its port closes). The restart runs the same command line on the same SQLite file, so running
 * workflows survive; the replacement's pid is recorded in stack.json's `pids` so teardown ends it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import type { StackInfo } from '../../infra/stack/stack';
import { sleep, stackInfo } from './stack';

const ROOT = join(__dirname, '..', '..');
const stackFile = () => process.env.AUTHFLOW_STACK_FILE ?? join(ROOT, '.data', 'test', 'stack.json');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** The running Temporal server's pid (the launcher's, or the newest replacement). */
function currentPid(): number {
  const pids = (JSON.parse(readFileSync(stackFile(), 'utf8')) as StackInfo).pids;
  const running = Object.entries(pids).filter(([n, pid]) => /^temporal/.test(n) && alive(pid));
  if (running.length === 0) throw new Error('no running Temporal server recorded in stack.json');
  return running[running.length - 1][1];
}

let replacements = 0;

/** Kills the Temporal server (SIGKILL to its process group); returns its command line for `startTemporal`. */
export async function stopTemporal(): Promise<string[]> {
  const pid = currentPid();
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    process.kill(pid, 'SIGKILL');
  }
  const port = stackInfo().ports.temporal;
  for (let i = 0; i < 200 && (alive(pid) || (await portOpen(port))); i++) await sleep(50);
  if (alive(pid)) throw new Error(`Temporal (pid ${pid}) did not stop`);
  return argv;
}

/** Starts Temporal again with the command line `stopTemporal` returned; waits until it serves. */
export async function startTemporal(argv: string[]): Promise<void> {
  const info = stackInfo();
  const name = `temporal-replacement-${++replacements}-${process.pid}`;
  const fd = openSync(join(info.logs, `${name}.log`), 'a');
  const child = spawn(argv[0], argv.slice(1), { cwd: ROOT, env: process.env, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  child.unref();
  const recorded = JSON.parse(readFileSync(stackFile(), 'utf8')) as StackInfo;
  recorded.pids[name] = child.pid!;
  writeFileSync(stackFile(), JSON.stringify(recorded, null, 2), { mode: 0o600 });
  const deadline = Date.now() + 90000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`Temporal exited (${child.exitCode}) on restart`);
    const r = spawnSync(argv[0], ['operator', 'cluster', 'health', '--address', info.urls.temporal], { encoding: 'utf8', timeout: 5000 });
    if (r.status === 0 && /SERVING/.test(r.stdout)) return;
    await sleep(250);
  }
  throw new Error('Temporal did not come back within 90 s');
}

/** The running worker's pid (the launcher's, or the newest replacement crash-safety started). */
function workerPid(): number {
  const pids = (JSON.parse(readFileSync(stackFile(), 'utf8')) as StackInfo).pids;
  const running = Object.entries(pids).filter(([n, pid]) => /^worker/.test(n) && alive(pid));
  if (running.length === 0) throw new Error('no running worker recorded in stack.json');
  return running[running.length - 1][1];
}

/** Runs `fn` with the worker frozen (SIGSTOP, SIGCONT afterwards): Temporal answers, nobody runs workflow tasks. */
export async function withWorkerPaused<T>(fn: () => Promise<T>): Promise<T> {
  const pid = workerPid();
  process.kill(pid, 'SIGSTOP');
  try {
    return await fn();
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

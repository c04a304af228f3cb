/** API_PROCESSES (api/cluster.ts): one primary forks N API processes that share the port; requests
 * reach every one of them, a process that dies is replaced, and SIGTERM stops them all. Run from
 * source with the stack's service environment on a free port. */
import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { childPids as children, cpuSeconds, pidAlive as alive } from '../../bench/lib/env';
import { sleep, stackInfo, until } from '../helpers/stack';

const ROOT = join(__dirname, '..', '..');
let primary: ChildProcess | undefined;
let port = 0;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

/** GET on a new connection each time (the primary hands every new connection to the next process).
 * A connection the primary handed to a process that was dying that instant gets no answer: the
 * 5-second timeout turns that into an error, as a client's own timeout would. */
function getFresh(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' }, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  const info = stackInfo();
  port = await freePort();
  const log = createWriteStream(join(info.logs, 'api-cluster.log'));
  primary = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'api/main.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      ...info.serviceEnv,
      VAULT_ROLE_ID: info.roleIds.api,
      VAULT_SECRET_ID_FILE: info.secretIdFiles.api,
      API_HOST: '127.0.0.1',
      API_PORT: String(port),
      API_PROCESSES: '2',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  primary.stdout!.pipe(log);
  primary.stderr!.pipe(log);
  await until('both API processes', async () => children(primary!.pid!).length === 2, 30000);
  await until(
    'the API to answer',
    async () => {
      if (primary!.exitCode !== null) throw new Error(`the cluster exited with ${primary!.exitCode}; see ${join(info.logs, 'api-cluster.log')}`);
      return (await getFresh('/healthz').catch(() => 0)) === 200;
    },
    90000,
  );
}, 150000);

afterAll(async () => {
  if (primary && primary.exitCode === null) {
    const pids = children(primary.pid!);
    primary.kill('SIGKILL');
    for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
  }
});

test('requests on new connections reach both API processes', async () => {
  const pids = children(primary!.pid!);
  expect(pids).toHaveLength(2);
  // Wait until the second process listens too (its start may finish after the first one's).
  await sleep(3000);
  const before = pids.map(cpuSeconds);
  for (let i = 0; i < 300; i++) expect(await getFresh('/readyz')).toBe(200);
  const used = pids.map((p, i) => cpuSeconds(p) - before[i]);
  // Round-robin: each process served about half; both did real work (a process that took none
  // would use a 10 ms tick at most for its timers).
  for (const u of used) expect(u).toBeGreaterThan(0.05);
}, 120000);

test('a process that dies is replaced; the others keep serving', async () => {
  const [victim, other] = children(primary!.pid!);
  process.kill(victim, 'SIGKILL');
  // The survivor answers (a retry at most: the connection of the crash instant may be lost).
  await until('the surviving process to answer', async () => (await getFresh('/healthz').catch(() => 0)) === 200, 20000);
  await until('a replacement process', async () => {
    const now = children(primary!.pid!);
    return now.length === 2 && !now.includes(victim) && now.includes(other);
  });
  await until('the replacement to serve', async () => (await getFresh('/healthz').catch(() => 0)) === 200);
}, 120000);

test('SIGTERM to the primary stops every API process, and the primary exits 0', async () => {
  const pids = children(primary!.pid!);
  const exited = new Promise<number | null>((r) => primary!.once('exit', (code) => r(code)));
  primary!.kill('SIGTERM');
  expect(await exited).toBe(0);
  await until('the API processes to exit', async () => pids.every((p) => !alive(p)), 20000);
}, 60000);

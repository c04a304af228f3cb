/** Rate limits shared by several API instances through Postgres (issue 4). A second API process
 * is started here with the stack's service environment on another port; requests alternate
 * between the two and the limit holds across them. Per-IP limits are tested from other loopback
 * source addresses (127.0.0.2, ...): the test stack allow-lists 127.0.0.1, the address every other
 * test file uses, from the per-IP limits (RATE_LIMIT_IP_ALLOWLIST in test/env/lifecycle.json);
 * per-account limits apply to every address. */
import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { callFrom as call, type FromResponse as Res } from '../helpers/http-from';
import { pg, sleep, stackInfo, uniqueEmail } from '../helpers/stack';

const ROOT = join(__dirname, '..', '..');
let second: ChildProcess | undefined;
let urlA: string;
let urlB: string;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function expect429(r: Res) {
  expect(r.status).toBe(429);
  expect(r.headers['content-type']).toMatch(/application\/problem\+json/);
  expect(r.body).toMatchObject({ code: 'rate_limited', status: 429 });
  const retryAfter = Number(r.headers['retry-after']);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
}

beforeAll(async () => {
  const info = stackInfo();
  // By address: the source addresses below are IPv4 loopbacks, whatever localhost resolves to.
  urlA = `http://127.0.0.1:${info.ports.api}`;
  const port = await freePort();
  urlB = `http://127.0.0.1:${port}`;
  const log = createWriteStream(join(info.logs, 'api-second.log'));
  second = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'api/main.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      ...info.serviceEnv,
      VAULT_ROLE_ID: info.roleIds.api,
      VAULT_SECRET_ID_FILE: info.secretIdFiles.api,
      API_PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  second.stdout!.pipe(log);
  second.stderr!.pipe(log);
  const deadline = Date.now() + 90000;
  for (;;) {
    try {
      if ((await fetch(`${urlB}/healthz`)).ok) break;
    } catch {
      /* not up yet */
    }
    if (second.exitCode !== null) throw new Error(`second API exited with ${second.exitCode}; see ${join(info.logs, 'api-second.log')}`);
    if (Date.now() > deadline) throw new Error('second API did not start');
    await sleep(300);
  }
}, 120000);

afterAll(async () => {
  if (second && second.exitCode === null) {
    const exited = new Promise((r) => second!.once('exit', r));
    second.kill('SIGTERM');
    await Promise.race([exited, sleep(10000)]);
  }
});

const base = (i: number) => (i % 2 === 0 ? urlA : urlB);

describe('rate limits shared by two API instances through Postgres', () => {
  test('both instances answer', async () => {
    expect((await call(urlA, 'GET', '/healthz', undefined)).status).toBe(200);
    expect((await call(urlB, 'GET', '/healthz', undefined)).status).toBe(200);
    expect(urlA).not.toBe(urlB);
  });

  test('per-account login limit (30/min in tests) counts requests on either instance', async () => {
    const email = uniqueEmail('rl-account');
    for (let i = 0; i < 30; i++) {
      const r = await call(base(i), 'POST', '/v1/auth/login', { email, password: 'guessing-password-1' });
      expect([i, r.status]).toEqual([i, 401]);
    }
    expect429(await call(urlA, 'POST', '/v1/auth/login', { email, password: 'guessing-password-1' }));
    const onB = await call(urlB, 'POST', '/v1/auth/login', { email: email.toUpperCase(), password: 'guessing-password-1' });
    expect429(onB);
    expect(onB.body.limit).toBe('account');
    // Another account from the same address is not affected.
    expect((await call(urlB, 'POST', '/v1/auth/login', { email: uniqueEmail('rl-other'), password: 'guessing-password-1' })).status).toBe(401);
    // The counters live in Postgres, keyed by a hash (no address stored).
    const c = await pg();
    try {
      const rows = (await c.query("SELECT key, points FROM rate_limits WHERE key LIKE 'login:account:%' ORDER BY points DESC")).rows;
      expect(rows[0].points).toBeGreaterThanOrEqual(31);
      expect(JSON.stringify(rows)).not.toContain('rl-account');
    } finally {
      await c.end();
    }
  });

  test('per-IP login limit (8/min in tests) is shared, and other addresses are not affected', async () => {
    for (let i = 0; i < 8; i++) {
      const r = await call(base(i), 'POST', '/v1/auth/login', { email: uniqueEmail('rl-ip'), password: 'guessing-password-1' }, '127.0.0.2');
      expect([i, r.status]).toEqual([i, 401]);
    }
    const a = await call(urlA, 'POST', '/v1/auth/login', { email: uniqueEmail('rl-ip'), password: 'guessing-password-1' }, '127.0.0.2');
    const b = await call(urlB, 'POST', '/v1/auth/login', { email: uniqueEmail('rl-ip'), password: 'guessing-password-1' }, '127.0.0.2');
    expect429(a);
    expect429(b);
    expect(b.body.limit).toBe('ip');
    expect((await call(urlB, 'POST', '/v1/auth/login', { email: uniqueEmail('rl-ip'), password: 'guessing-password-1' }, '127.0.0.3')).status).toBe(401);
  });

  test('registration per IP (4/min in tests)', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await call(base(i), 'POST', '/v1/auth/register', { email: uniqueEmail('rl-reg'), password: 'violet-tangerine-lighthouse-42' }, '127.0.0.4');
      expect([i, r.status]).toEqual([i, 201]);
    }
    expect429(await call(urlB, 'POST', '/v1/auth/register', { email: uniqueEmail('rl-reg'), password: 'violet-tangerine-lighthouse-42' }, '127.0.0.4'));
  });

  test('refresh per IP (8/min in tests)', async () => {
    for (let i = 0; i < 8; i++) {
      const r = await call(base(i), 'POST', '/v1/auth/refresh', { refresh_token: `rt_${'x'.repeat(43)}` }, '127.0.0.5');
      expect([i, r.status]).toEqual([i, 401]);
    }
    expect429(await call(urlA, 'POST', '/v1/auth/refresh', { refresh_token: `rt_${'x'.repeat(43)}` }, '127.0.0.5'));
  });

  test('reactivation is limited like login (per IP)', async () => {
    for (let i = 0; i < 8; i++) {
      const r = await call(base(i), 'POST', '/v1/me/reactivate', { email: uniqueEmail('rl-re'), password: 'guessing-password-1' }, '127.0.0.6');
      expect([i, r.status]).toEqual([i, 401]);
    }
    expect429(await call(urlB, 'POST', '/v1/me/reactivate', { email: uniqueEmail('rl-re'), password: 'guessing-password-1' }, '127.0.0.6'));
  });
});

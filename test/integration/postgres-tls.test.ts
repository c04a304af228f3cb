/**
 * TLS to Postgres: a separate Postgres with ssl=on and a pg_hba.conf that only has `hostssl`
 * lines (plaintext is refused), reached through the service's own helpers (createSequelize,
 * pgSsl, pgConnect).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { initCluster, preparePostgres, spawnOptionsFor, type PostgresLayout } from '../../infra/stack/postgres';
import { pgConnect } from '../../platform/backup-io';
import { createSequelize, type DbConfig } from '../../platform/db';
import { pgSsl, type DbSslConfig } from '../../platform/db/ssl';

jest.setTimeout(120000);

const password = 'tls-test-password';
let work: string;
let layout: PostgresLayout;
let pg: ChildProcess;
let port: number;

function openssl(...args: string[]) {
  const r = spawnSync('openssl', args, { cwd: work, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'authflow-pgtls-'));
  // A CA, a server certificate for localhost/127.0.0.1 signed by it, and an unrelated CA.
  for (const ca of ['ca', 'other-ca']) {
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '2', '-subj', `/CN=authflow test ${ca}`);
  }
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(join(work, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '2',
    '-extfile',
    'san.ext',
  );

  layout = preparePostgres(join(work, 'data'));
  const logPath = join(work, 'postgres.log');
  await initCluster(layout, password, logPath);
  // Certificate and key inside the cluster directory (the server user reaches it); key 0600, the server user's.
  const cert = join(layout.clusterDir, 'server.crt');
  const key = join(layout.clusterDir, 'server.key');
  writeFileSync(cert, readFileSync(join(work, 'server.crt')));
  writeFileSync(key, readFileSync(join(work, 'server.key')), { mode: 0o600 });
  writeFileSync(join(layout.clusterDir, 'pg_hba.conf'), 'local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n');
  if (layout.user) for (const f of [cert, key, join(layout.clusterDir, 'pg_hba.conf')]) chownSync(f, layout.user.uid, layout.user.gid);

  port = await freePort();
  const o = spawnOptionsFor(layout);
  pg = spawn(
    join(layout.nativeDir, 'bin', 'postgres'),
    [
      '-D',
      layout.clusterDir,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'ssl=on',
      '-c',
      `ssl_cert_file=${cert}`,
      '-c',
      `ssl_key_file=${key}`,
      '-k',
      layout.clusterDir,
    ],
    { ...o, env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  await new Promise<void>((res, rej) => {
    const on = (b: Buffer) => {
      out += b.toString();
      if (out.includes('ready to accept connections')) res();
    };
    pg.stdout!.on('data', on);
    pg.stderr!.on('data', on);
    pg.once('exit', (c) => rej(new Error(`postgres exited (${c}): ${out}`)));
  });
});

afterAll(async () => {
  if (pg && pg.exitCode === null) {
    const gone = new Promise((res) => pg.once('exit', res));
    pg.kill('SIGINT');
    await gone;
  }
  if (layout) rmSync(layout.clusterDir, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

function dbConfig(ssl: DbSslConfig, host = '127.0.0.1'): DbConfig {
  return { DB_HOST: host, DB_PORT: port, DB_NAME: 'postgres', DB_POOL_MAX: 2, DB_STATEMENT_TIMEOUT_MS: 5000, ...ssl };
}

async function sequelizeSelect1(ssl: DbSslConfig, host?: string) {
  const s = createSequelize(dbConfig(ssl, host), { username: 'postgres', password });
  try {
    const [rows] = await s.query('SELECT 1 AS one');
    return rows;
  } finally {
    await s.close();
  }
}

async function rawSelect1(ssl: DbSslConfig, host = '127.0.0.1') {
  const c = new Client({ host, port, database: 'postgres', user: 'postgres', password, ssl: pgSsl(ssl), connectionTimeoutMillis: 5000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return (await c.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0].ssl;
  } finally {
    await c.end();
  }
}

const verifyFull = (ca: string): DbSslConfig => ({ DB_SSL_MODE: 'verify-full', DB_SSL_CA: join(work, ca) });

test('verify-full with the right CA: Sequelize and a raw pg client reach the TLS-only server, over TLS', async () => {
  await expect(sequelizeSelect1(verifyFull('ca.crt'))).resolves.toEqual([{ one: 1 }]);
  await expect(sequelizeSelect1(verifyFull('ca.crt'), 'localhost')).resolves.toEqual([{ one: 1 }]);
  await expect(rawSelect1(verifyFull('ca.crt'))).resolves.toBe(true);
  const c = await pgConnect({ host: '127.0.0.1', port, database: 'postgres', username: 'postgres', password, ssl: verifyFull('ca.crt') });
  await c.end();
});

test('require: encrypted without checking the certificate', async () => {
  await expect(rawSelect1({ DB_SSL_MODE: 'require' })).resolves.toBe(true);
});

test('DB_SSL_MODE=disable is refused by a server that only allows hostssl', async () => {
  await expect(rawSelect1({ DB_SSL_MODE: 'disable' })).rejects.toThrow(/no pg_hba.conf entry|SSL off/);
  await expect(sequelizeSelect1({ DB_SSL_MODE: 'disable' })).rejects.toThrow(/no pg_hba.conf entry|SSL off/);
});

test('verify-full with a different CA refuses the server certificate', async () => {
  await expect(rawSelect1(verifyFull('other-ca.crt'))).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  await expect(sequelizeSelect1(verifyFull('other-ca.crt'))).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
});

test('verify-full without DB_SSL_CA is a configuration error', () => {
  expect(() => pgSsl({ DB_SSL_MODE: 'verify-full' })).toThrow(/DB_SSL_CA/);
});

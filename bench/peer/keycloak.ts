/**
 * Keycloak as the benchmark's peer: a production-mode server (`kc.sh build`, then
 * `kc.sh start --optimized`) on loopback, against its own database `keycloak_bench` on the stack's
 * PostgreSQL (the `authflow` database is never touched), with a realm `bench` set like our
 * defaults and the same argon2id cost as ours.
 *
 * - The database is dropped and created again at every start (Keycloak creates its bootstrap admin
 *   only in an empty database, and the admin password is random per run); it is left in place at
 *   stop, for inspection, and replaced by the next start.
 * - Build-time options (database kind, health, local caches) are hashed; the build is skipped when
 *   the installation was last built with the same ones.
 * - Users are seeded by partial imports carrying a precomputed argon2 credential in Keycloak's own
 *   format (hashed once here with the argon2 package), so seeding costs no hash per user; a login
 *   still verifies that hash at our cost, which `startKeycloak` checks.
 */
import * as argon2 from 'argon2';
import { ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client as PgClient } from 'pg';
import { BenchError, cmdline, cpuCount, freePort, pidAlive } from '../lib/env';
import { sleep } from '../lib/stats';
import { provisionKeycloak, runTool } from './keycloak-provision';

export const KEYCLOAK_REALM = 'bench';
export const KEYCLOAK_CLIENT_ID = 'bench-app';
/** The one password every seeded Keycloak user has (the users are throw-away, at a reserved domain). */
export const KEYCLOAK_BENCH_PASSWORD = 'Bench-peer-password-1';
const DB_NAME = 'keycloak_bench';
const DB_ROLE = 'keycloak_bench';
const ADMIN_USER = 'bench-admin';

export interface KeycloakOptions {
  /** postgres://user:pass@host:port/postgres of the stack's PostgreSQL (StackInfo.pgSuperuserUrl). */
  pgSuperuserUrl: string;
  /** Logs go to <dataDir>/logs/keycloak.log. */
  dataDir: string;
  /** taskset CPU list for the JVM; null = not pinned. */
  cpus: string | null;
  argon2: { memoryKiB: number; timeCost: number; parallelism: number };
  accessTokenTtlSec: number;
  users: number;
  log: (m: string) => void;
}

export interface KeycloakPeer {
  /** Base URL, e.g. http://127.0.0.1:PORT */
  url: string;
  tokenUrl: string;
  jwksUrl: string;
  issuer: string;
  clientId: string;
  clientSecret: string;
  password: string;
  /** The e-mail (and username) of seeded user n, 0 ≤ n < users. */
  email(n: number): string;
  users: number;
  /** The JVM's pid: the process whose CPU and RSS are measured. */
  pid: number;
  version: string;
  javaVersion: string;
  heapNote: string;
  /** The argon2 parameters read back from a credential Keycloak made itself. */
  hashNote: string;
  /** How the users were seeded and how long it took. */
  seedNote: string;
  log: string;
  stop(): Promise<void>;
}

/** What `kc.sh build` bakes in; a change means a new build. */
const BUILD_OPTIONS = ['--db=postgres', '--health-enabled=true', '--cache=local'];

export async function startKeycloak(opts: KeycloakOptions): Promise<KeycloakPeer> {
  const { log } = opts;
  const kc = await provisionKeycloak(log);
  const javaEnv: NodeJS.ProcessEnv = { ...process.env, JAVA_HOME: kc.javaHome, PATH: `${join(kc.javaHome, 'bin')}:${process.env.PATH ?? ''}` };
  // Let kc.sh choose the JVM options and heap as its production default does.
  delete javaEnv.JAVA_OPTS;
  delete javaEnv.JAVA_OPTS_KC_HEAP;
  delete javaEnv.JAVA_OPTS_APPEND;
  delete javaEnv.KC_RUN_IN_CONTAINER;

  const buildHash = createHash('sha256')
    .update(JSON.stringify([kc.version, kc.javaVersion, BUILD_OPTIONS]))
    .digest('hex')
    .slice(0, 16);
  const buildMarker = join(kc.home, '.authflow-build');
  if (!existsSync(buildMarker) || readFileSync(buildMarker, 'utf8').trim() !== buildHash) {
    log(`keycloak: kc.sh build ${BUILD_OPTIONS.join(' ')} (about a minute)`);
    const t0 = Date.now();
    await runTool(join(kc.home, 'bin', 'kc.sh'), ['build', ...BUILD_OPTIONS], javaEnv, 'kc.sh build', log);
    writeFileSync(buildMarker, `${buildHash}\n`);
    log(`keycloak: built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }

  const dbPassword = randomBytes(18).toString('base64url');
  const db = await prepareDatabase(opts.pgSuperuserUrl, dbPassword);
  const adminPassword = randomBytes(18).toString('base64url');
  const clientSecret = randomBytes(24).toString('base64url');
  const port = await freePort();
  const mgmtPort = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logs = join(opts.dataDir, 'logs');
  mkdirSync(logs, { recursive: true });
  const logFile = join(logs, 'keycloak.log');
  const cores = opts.cpus ? cpuCount(opts.cpus) : (await import('node:os')).availableParallelism();
  const a = opts.argon2;
  const startArgs = [
    'start',
    '--optimized',
    '--http-enabled=true',
    '--http-host=127.0.0.1',
    `--http-port=${port}`,
    `--http-management-port=${mgmtPort}`,
    `--hostname=${url}`,
    '--hostname-strict=false',
    `--db-url=jdbc:postgresql://${db.host}:${db.port}/${DB_NAME}`,
    `--db-username=${DB_ROLE}`,
    '--log-level=info',
    // Runtime options of the argon2 password-hashing provider (Keycloak 26.4+ spelling).
    '--spi-password-hashing--argon2--type=id',
    '--spi-password-hashing--argon2--version=1.3',
    '--spi-password-hashing--argon2--hash-length=32',
    `--spi-password-hashing--argon2--memory=${a.memoryKiB}`,
    `--spi-password-hashing--argon2--iterations=${a.timeCost}`,
    `--spi-password-hashing--argon2--parallelism=${a.parallelism}`,
    `--spi-password-hashing--argon2--cpu-cores=${cores}`,
  ];
  const env = {
    ...javaEnv,
    // Secrets through the environment, not the command line (which `ps` shows).
    KC_DB_PASSWORD: dbPassword,
    KC_BOOTSTRAP_ADMIN_USERNAME: ADMIN_USER,
    KC_BOOTSTRAP_ADMIN_PASSWORD: adminPassword,
  };
  const kcSh = join(kc.home, 'bin', 'kc.sh');
  const [cmd, args] = opts.cpus ? ['taskset', ['-c', opts.cpus, kcSh, ...startArgs]] : [kcSh, startArgs];
  const fd = openSync(logFile, 'a');
  writeFileSync(fd, `\n=== ${new Date().toISOString()} kc.sh ${startArgs.join(' ')}${opts.cpus ? ` (taskset -c ${opts.cpus})` : ''}\n`);
  log(`keycloak: starting ${kc.version} on ${url} (management ${mgmtPort}), ${opts.cpus ? `pinned to CPU ${opts.cpus}` : 'not pinned'}; log ${logFile}`);
  const child: ChildProcess = spawn(cmd, args, { env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let jvmPid = 0;
  const kill = (sig: NodeJS.Signals) => {
    for (const pid of [jvmPid, child.pid]) {
      if (pid && pidAlive(pid)) {
        try {
          process.kill(pid, sig);
        } catch {
          /* gone */
        }
      }
    }
  };
  const onExit = () => kill('SIGKILL');
  process.once('exit', onExit);
  const stop = async () => {
    process.removeListener('exit', onExit);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      kill('SIGTERM');
      const t = setTimeout(() => kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(t);
    }
    // The JVM may be a child of the spawned process rather than the same one.
    for (let i = 0; i < 100 && jvmPid && pidAlive(jvmPid); i++) await sleep(100);
    if (jvmPid && pidAlive(jvmPid)) kill('SIGKILL');
  };
  const fail = async (why: string): Promise<never> => {
    await stop();
    const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-25).join('\n') : '';
    throw new BenchError(`keycloak ${why}; its log is ${logFile}:\n${tail}`);
  };

  const t0 = Date.now();
  const deadline = t0 + 300_000;
  let ready = false;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return fail(`exited during start (${child.exitCode ?? child.signalCode})`);
    try {
      if ((await fetch(`http://127.0.0.1:${mgmtPort}/health/ready`, { signal: AbortSignal.timeout(2000) })).ok) {
        ready = true;
        break;
      }
    } catch {
      /* not yet */
    }
    await sleep(500);
  }
  if (!ready) return fail('did not become ready within 300 s');
  jvmPid = findJvm(child.pid!);
  if (!jvmPid) return fail(`started, but no java process was found under pid ${child.pid}`);
  log(`keycloak: ready in ${((Date.now() - t0) / 1000).toFixed(0)} s (JVM pid ${jvmPid})`);

  try {
    const admin = new Admin(url, adminPassword);
    await setUpRealm(admin, opts, clientSecret);
    const hashNote = await verifyHashCost(admin, db.client, opts.argon2);
    log(`keycloak: argon2 cost in effect: ${hashNote}`);
    const seedNote = await seedUsers(admin, opts);
    log(`keycloak: ${seedNote}`);
    const peer: KeycloakPeer = {
      url,
      tokenUrl: `${url}/realms/${KEYCLOAK_REALM}/protocol/openid-connect/token`,
      jwksUrl: `${url}/realms/${KEYCLOAK_REALM}/protocol/openid-connect/certs`,
      issuer: `${url}/realms/${KEYCLOAK_REALM}`,
      clientId: KEYCLOAK_CLIENT_ID,
      clientSecret,
      password: KEYCLOAK_BENCH_PASSWORD,
      email: (n) => `u${n}@bench.invalid`,
      users: opts.users,
      pid: jvmPid,
      version: kc.version,
      javaVersion: kc.javaVersion,
      heapNote: heapNote(jvmPid),
      hashNote,
      seedNote,
      log: logFile,
      stop,
    };
    await checkLogin(peer, db.client, opts.argon2, log);
    await db.client.end();
    return peer;
  } catch (err) {
    await db.client.end().catch(() => undefined);
    await stop();
    throw err instanceof BenchError ? err : new BenchError(`keycloak: setting up the bench realm failed: ${(err as Error).message}`);
  }
}

/** The pid of the java process: the spawned one itself (kc.sh and taskset exec it), or its descendant. */
function findJvm(root: number): number {
  const isJava = (pid: number) => /(^|\/)java\s/.test(cmdline(pid));
  if (isJava(root)) return root;
  const queue = [root];
  while (queue.length) {
    const parent = queue.shift()!;
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid !== parent) continue;
        if (isJava(Number(d))) return Number(d);
        queue.push(Number(d));
      } catch {
        /* gone */
      }
    }
  }
  return 0;
}

/** The heap flags on the JVM's command line (kc.sh's defaults) and its max heap as configured. */
function heapNote(pid: number): string {
  const flags = cmdline(pid)
    .split(' ')
    .filter((f) => /^-Xm[sx]|RAMPercentage|^-XX:\+Use\w+GC|MetaspaceSize/.test(f));
  return `kc.sh production defaults, untouched: ${flags.join(' ')}`;
}

async function prepareDatabase(superUrl: string, password: string): Promise<{ client: PgClient; host: string; port: number }> {
  const u = new URL(superUrl);
  const su = new PgClient({ connectionString: superUrl, application_name: 'authflow-bench-keycloak' });
  await su.connect();
  try {
    const role = await su.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [DB_ROLE]);
    const pw = su.escapeLiteral(password);
    await su.query(role.rowCount ? `ALTER ROLE ${DB_ROLE} LOGIN PASSWORD ${pw}` : `CREATE ROLE ${DB_ROLE} LOGIN PASSWORD ${pw}`);
    await su.query(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`);
    await su.query(`CREATE DATABASE ${DB_NAME} OWNER ${DB_ROLE}`);
  } finally {
    await su.end();
  }
  const dbUrl = new URL(superUrl);
  dbUrl.pathname = `/${DB_NAME}`;
  const client = new PgClient({ connectionString: dbUrl.toString(), application_name: 'authflow-bench-keycloak' });
  await client.connect();
  return { client, host: u.hostname, port: Number(u.port) || 5432 };
}

/** The admin REST API with a token of the bootstrap admin (master realm, admin-cli), renewed as it ages. */
class Admin {
  private token = '';
  private tokenAt = 0;
  constructor(
    private readonly url: string,
    private readonly password: string,
  ) {}

  private async bearer(): Promise<string> {
    if (this.token && Date.now() - this.tokenAt < 30_000) return this.token;
    const r = await fetch(`${this.url}/realms/master/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', client_id: 'admin-cli', username: ADMIN_USER, password: this.password }),
    });
    if (!r.ok) throw new BenchError(`keycloak: the bootstrap admin could not log in (${r.status} ${(await r.text()).slice(0, 200)})`);
    this.token = ((await r.json()) as { access_token: string }).access_token;
    this.tokenAt = Date.now();
    return this.token;
  }

  async call(method: string, path: string, body?: unknown, okStatuses: number[] = []): Promise<{ status: number; json: unknown }> {
    const r = await fetch(`${this.url}/admin/realms${path}`, {
      method,
      headers: { authorization: `Bearer ${await this.bearer()}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(300_000),
    });
    const text = await r.text();
    if (!r.ok && !okStatuses.includes(r.status)) throw new BenchError(`keycloak admin API: ${method} ${path} answered ${r.status}: ${text.slice(0, 300)}`);
    return { status: r.status, json: parseOr(text) };
  }
}

async function setUpRealm(admin: Admin, opts: KeycloakOptions, clientSecret: string): Promise<void> {
  await admin.call('DELETE', `/${KEYCLOAK_REALM}`, undefined, [404]);
  await admin.call('POST', '', {
    realm: KEYCLOAK_REALM,
    enabled: true,
    // Single-use refresh tokens, like ours.
    revokeRefreshToken: true,
    refreshTokenMaxReuse: 0,
    accessTokenLifespan: opts.accessTokenTtlSec,
    // Brute-force detection on, temporary lockouts only.
    bruteForceProtected: true,
    permanentLockout: false,
    failureFactor: 5,
    passwordPolicy: 'hashAlgorithm(argon2)',
    registrationAllowed: false,
    loginWithEmailAllowed: true,
    sslRequired: 'none',
    clients: [
      {
        clientId: KEYCLOAK_CLIENT_ID,
        enabled: true,
        protocol: 'openid-connect',
        publicClient: false,
        clientAuthenticatorType: 'client-secret',
        secret: clientSecret,
        standardFlowEnabled: false,
        implicitFlowEnabled: false,
        directAccessGrantsEnabled: true,
        serviceAccountsEnabled: true,
        // Access tokens name this client in `aud`, so a resource server can check its audience.
        protocolMappers: [
          {
            name: 'bench-app audience',
            protocol: 'openid-connect',
            protocolMapper: 'oidc-audience-mapper',
            config: { 'included.client.audience': KEYCLOAK_CLIENT_ID, 'access.token.claim': 'true', 'id.token.claim': 'false' },
          },
        ],
      },
    ],
  });
}

/**
 * Creates one user through the admin API with a password, so Keycloak hashes it with its own
 * configured provider, then reads that credential back from the `credential` table: algorithm,
 * type, memory, iterations and parallelism must be ours. The user is deleted afterwards.
 */
async function verifyHashCost(admin: Admin, db: PgClient, want: KeycloakOptions['argon2']): Promise<string> {
  const username = 'hash-probe@bench.invalid';
  await admin.call('POST', `/${KEYCLOAK_REALM}/users`, {
    username,
    email: username,
    firstName: 'Hash',
    lastName: 'Probe',
    enabled: true,
    emailVerified: true,
    credentials: [{ type: 'password', value: randomBytes(12).toString('base64url'), temporary: false }],
  });
  const r = await db.query<{ credential_data: string; id: string }>(
    `SELECT c.credential_data, u.id FROM credential c JOIN user_entity u ON u.id = c.user_id
       JOIN realm r ON r.id = u.realm_id WHERE r.name = $1 AND u.username = $2 AND c.type = 'password'`,
    [KEYCLOAK_REALM, username],
  );
  if (!r.rowCount) throw new BenchError('keycloak: the probe user has no password credential in keycloak_bench.credential');
  const data = JSON.parse(r.rows[0].credential_data) as CredentialData;
  const p = data.additionalParameters ?? {};
  const got = {
    algorithm: data.algorithm,
    type: p.type?.[0],
    memory: Number(p.memory?.[0]),
    iterations: data.hashIterations,
    parallelism: Number(p.parallelism?.[0]),
  };
  const note = `${got.algorithm} type=${got.type} m=${got.memory} KiB t=${got.iterations} p=${got.parallelism} (read from keycloak_bench.credential of a user whose password Keycloak hashed itself)`;
  if (
    got.algorithm !== 'argon2' ||
    got.type !== 'id' ||
    got.memory !== want.memoryKiB ||
    got.iterations !== want.timeCost ||
    got.parallelism !== want.parallelism
  ) {
    throw new BenchError(
      `keycloak does not hash at our cost: its credential says ${note}, ours is argon2id m=${want.memoryKiB} t=${want.timeCost} p=${want.parallelism}`,
    );
  }
  await admin.call('DELETE', `/${KEYCLOAK_REALM}/users/${r.rows[0].id}`);
  return note;
}

interface CredentialData {
  hashIterations: number;
  algorithm: string;
  additionalParameters?: Record<string, string[]>;
}

/** Keycloak's stored form of an argon2 password credential, hashed once here. */
async function precomputedCredential(params: KeycloakOptions['argon2']): Promise<{ credentialData: string; secretData: string }> {
  const salt = randomBytes(16);
  const hash = await argon2.hash(KEYCLOAK_BENCH_PASSWORD, {
    type: argon2.argon2id,
    version: 0x13,
    raw: true,
    salt,
    hashLength: 32,
    memoryCost: params.memoryKiB,
    timeCost: params.timeCost,
    parallelism: params.parallelism,
  });
  const data: CredentialData = {
    hashIterations: params.timeCost,
    algorithm: 'argon2',
    additionalParameters: {
      hashLength: ['32'],
      memory: [String(params.memoryKiB)],
      type: ['id'],
      version: ['1.3'],
      parallelism: [String(params.parallelism)],
    },
  };
  return {
    credentialData: JSON.stringify(data),
    secretData: JSON.stringify({ value: hash.toString('base64'), salt: salt.toString('base64'), additionalParameters: {} }),
  };
}

const IMPORT_BATCH = 500;

async function seedUsers(admin: Admin, opts: KeycloakOptions): Promise<string> {
  const t0 = performance.now();
  const cred = await precomputedCredential(opts.argon2);
  for (let from = 0; from < opts.users; from += IMPORT_BATCH) {
    const users = [];
    for (let n = from; n < Math.min(opts.users, from + IMPORT_BATCH); n++) {
      const email = `u${n}@bench.invalid`;
      users.push({
        username: email,
        email,
        // Keycloak's default user profile requires both names (without them a login answers "Account is not fully set up").
        firstName: 'Bench',
        lastName: `User ${n}`,
        enabled: true,
        emailVerified: true,
        requiredActions: [],
        credentials: [{ type: 'password', credentialData: cred.credentialData, secretData: cred.secretData }],
      });
    }
    await admin.call('POST', `/${KEYCLOAK_REALM}/partialImport`, { ifResourceExists: 'OVERWRITE', users });
    if (opts.users > 2000 && (from / IMPORT_BATCH) % 4 === 3) opts.log(`keycloak: seeded ${from + users.length} of ${opts.users} users`);
  }
  const sec = (performance.now() - t0) / 1000;
  return `seeded ${opts.users} users in ${sec.toFixed(1)} s (partialImport in batches of ${IMPORT_BATCH}, one argon2id credential precomputed in Keycloak's format, no hash per user)`;
}

/**
 * A password grant for a seeded user must succeed (Keycloak verified our precomputed hash) and must
 * leave the stored credential as it was (a credential not matching Keycloak's configured cost would
 * be re-hashed on login, which would double the cost of every first login).
 */
async function checkLogin(peer: KeycloakPeer, db: PgClient, params: KeycloakOptions['argon2'], log: (m: string) => void): Promise<void> {
  const email = peer.email(0);
  const secretOf = async () =>
    (
      await db.query<{ secret_data: string }>(
        `SELECT c.secret_data FROM credential c JOIN user_entity u ON u.id = c.user_id JOIN realm r ON r.id = u.realm_id
          WHERE r.name = $1 AND u.username = $2 AND c.type = 'password'`,
        [KEYCLOAK_REALM, email],
      )
    ).rows[0]?.secret_data;
  const before = await secretOf();
  const times: number[] = [];
  for (let i = 0; i < 6; i++) {
    const t = performance.now();
    await passwordGrant(peer, email);
    times.push(performance.now() - t);
  }
  const after = await secretOf();
  if (before !== after) throw new BenchError('keycloak re-hashed the seeded credential on login: its configured argon2 cost differs from the seeded one');
  // One argon2id hash at the same cost in this process, for comparison (a login should cost about one).
  const h0 = performance.now();
  await argon2.hash(KEYCLOAK_BENCH_PASSWORD, {
    type: argon2.argon2id,
    memoryCost: params.memoryKiB,
    timeCost: params.timeCost,
    parallelism: params.parallelism,
  });
  const hashMs = performance.now() - h0;
  const sorted = times.slice(1).sort((x, y) => x - y);
  log(
    `keycloak: a seeded user logs in (password grant, sequential, median ${sorted[Math.floor(sorted.length / 2)].toFixed(1)} ms; one argon2id hash at the same cost in Node: ${hashMs.toFixed(1)} ms); credential unchanged by login`,
  );
}

export interface TokenAnswer {
  access_token: string;
  refresh_token?: string;
  expires_in: number;
}

/** `Authorization: Basic` for the bench client (client_secret_basic). */
export function clientAuthHeader(peer: Pick<KeycloakPeer, 'clientId' | 'clientSecret'>): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(peer.clientId)}:${encodeURIComponent(peer.clientSecret)}`).toString('base64')}`;
}

export async function tokenRequest(peer: KeycloakPeer, form: Record<string, string>): Promise<TokenAnswer> {
  const r = await fetch(peer.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: clientAuthHeader(peer) },
    body: new URLSearchParams(form),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await r.text();
  if (!r.ok) throw new BenchError(`keycloak token endpoint (${form.grant_type}) answered ${r.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text) as TokenAnswer;
}

export function passwordGrant(peer: KeycloakPeer, email: string): Promise<TokenAnswer> {
  // No `openid` scope: plain OAuth, like our /v1/auth/login (no ID token signed on either side, on
  // this grant or on the refreshes of its session).
  return tokenRequest(peer, { grant_type: 'password', username: email, password: peer.password });
}

/** The JSON of an answer, or its text when it is not JSON (null when empty). */
function parseOr(text: string): unknown {
  if (!text) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

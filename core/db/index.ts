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

export interface DbConfig {
  DB_HOST: string;
  DB_PORT: number;
  DB_NAME: string;
  DB_POOL_MAX: number;
  DB_STATEMENT_TIMEOUT_MS: number;
}

export interface DbCredentials {
  username: string;
  password: string;
}

export async function readDbCredentials(vault: VaultClient): Promise<DbCredentials> {
  const creds = await vault.kvGet<DbCredentials>('database');
  if (!creds?.username || !creds?.password) {
    throw new Error('Vault KV has no database credentials at <prefix>/database (username, password)');
  }
  return creds;
}

export function createSequelize(c: DbConfig, creds: DbCredentials, logger?: Logger): Sequelize {
  const sequelize = new Sequelize(c.DB_NAME, creds.username, creds.password, {
    host: c.DB_HOST,
    port: c.DB_PORT,
    dialect: 'postgres',
    logging: logger ? (sql: string) => logger.trace({ sql }, 'sql') : false,
    benchmark: false,
    pool: { max: c.DB_POOL_MAX, min: 0, acquire: 10000, idle: 10000 },
    dialectOptions: { statement_timeout: c.DB_STATEMENT_TIMEOUT_MS, application_name: 'authflow' },
    define: { underscored: true, timestamps: false },
  });
  instrumentSequelize(sequelize);
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
  const code = (err as { parent?: { code?: string }; original?: { code?: string } })?.parent?.code;
  // admin_shutdown, cannot_connect_now, crash_shutdown, too_many_connections
  return ['57P01', '57P03', '57P02', '53300', 'ECONNREFUSED', 'ECONNRESET'].includes(code ?? '');
}

/** Maps a connection-level failure to 503; other errors pass through unchanged. */
export function mapDbError(err: unknown): unknown {
  if (isConnectionFailure(err)) {
    dependencyCalls.inc({ dependency: 'postgres', operation: 'query', outcome: 'error' });
    return new DependencyError('postgres', err);
  }
  return err;
}

export async function withTx<T>(sequelize: Sequelize, fn: (t: Transaction) => Promise<T>): Promise<T> {
  try {
    return await sequelize.transaction(fn);
  } catch (err) {
    throw mapDbError(err);
  }
}

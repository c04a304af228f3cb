/**
 * TLS to Postgres: one reading of DB_SSL_MODE / DB_SSL_CA for every connection the service opens
 * (Sequelize's pool, raw pg clients, pg_dump / pg_restore through libpq's environment).
 *  - disable: plaintext (the local stack's loopback Postgres);
 *  - require: TLS, the server's certificate is not checked (protects against passive eavesdropping only);
 *  - verify-full: TLS, the certificate must chain to DB_SSL_CA and name DB_HOST.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';

export type DbSslMode = 'disable' | 'require' | 'verify-full';

export interface DbSslConfig {
  DB_SSL_MODE: DbSslMode;
  /** Path to a PEM CA bundle; required for verify-full. */
  DB_SSL_CA?: string;
}

/** The `ssl` option of node-postgres (Client, Pool, Sequelize's dialectOptions) for `c`. */
export function pgSsl(c: DbSslConfig): false | ConnectionOptions {
  if (c.DB_SSL_MODE === 'disable') return false;
  if (c.DB_SSL_MODE === 'require') return { rejectUnauthorized: false };
  if (!c.DB_SSL_CA) throw new Error('DB_SSL_MODE=verify-full needs DB_SSL_CA (a PEM CA file)');
  // node-postgres checks the certificate against the host (it sends the host name as SNI unless it is an IP).
  return { ca: readFileSync(c.DB_SSL_CA, 'utf8'), rejectUnauthorized: true };
}

/** libpq's environment (pg_dump, pg_restore) for the same setting. */
export function pgSslEnv(c: DbSslConfig): Record<string, string> {
  if (c.DB_SSL_MODE === 'disable') return { PGSSLMODE: 'disable' };
  if (c.DB_SSL_MODE === 'require') return { PGSSLMODE: 'require' };
  if (!c.DB_SSL_CA) throw new Error('DB_SSL_MODE=verify-full needs DB_SSL_CA (a PEM CA file)');
  return { PGSSLMODE: 'verify-full', PGSSLROOTCERT: c.DB_SSL_CA };
}

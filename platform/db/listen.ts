/**
 * A dedicated Postgres connection outside the Sequelize pool, for LISTEN (a pooled connection
 * would be handed to other queries and lose its LISTEN). Same server and credentials as the pool.
 */
import { Client } from 'pg';
import type { DbConfig, DbCredentials } from './index';
import { pgSsl, type DbSslConfig } from './ssl';

export type ListenClient = Client;

export function listenClient(
  c: Pick<DbConfig, 'DB_HOST' | 'DB_PORT' | 'DB_NAME' | 'DB_STATEMENT_TIMEOUT_MS'> & DbSslConfig,
  creds: DbCredentials,
  name: string,
): ListenClient {
  return new Client({
    host: c.DB_HOST,
    port: c.DB_PORT,
    database: c.DB_NAME,
    user: creds.username,
    password: creds.password,
    application_name: name,
    statement_timeout: c.DB_STATEMENT_TIMEOUT_MS,
    connectionTimeoutMillis: 3000,
    keepAlive: true,
    ssl: pgSsl(c),
  });
}

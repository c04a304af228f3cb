/**
 * How every Temporal connection of the service is made: the API's lazy client, the worker's
 * NativeConnection, the schedule registration and the CLI tools (platform/temporal/client.ts) all
 * take their options from temporalConnectionOptions, so TLS, mTLS and the API key apply to all of
 * them or none.
 *  - TEMPORAL_TLS=false (default): plaintext gRPC (the local stack's loopback dev server).
 *  - TEMPORAL_TLS=true: TLS; the server's certificate must chain to TEMPORAL_TLS_CA (or the system
 *    roots) and name TEMPORAL_TLS_SERVER_NAME (or the host of TEMPORAL_ADDRESS).
 *  - TEMPORAL_TLS_CERT + TEMPORAL_TLS_KEY: the client certificate presented for mTLS.
 *  - TEMPORAL_API_KEY: sent as `authorization: Bearer <key>` metadata on every call (TLS only;
 *    platform/config.ts refuses it without). With TEMPORAL_API_KEY_FROM_VAULT=true the processes
 *    read it from Vault KV `<prefix>/temporal` first (withTemporalApiKeyFromVault).
 */
import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/client';
import type { TemporalConnectionConfig } from '../config';

/** The options both `Connection` (@temporalio/client) and `NativeConnection` (@temporalio/worker) take. */
export interface TemporalConnectionOptions {
  address: string;
  /** Absent for plaintext; the SDKs treat `undefined` as "no TLS" unless an API key is set. */
  tls?: TLSConfig;
  apiKey?: string;
}

/** The Vault KV secret (under VAULT_KV_PREFIX) holding the API key, field `api_key`. */
export const TEMPORAL_KV_SECRET = 'temporal';

/** `c` with TEMPORAL_API_KEY filled from Vault when TEMPORAL_API_KEY_FROM_VAULT is set (read once,
 * at start: a new key needs a restart); unchanged otherwise. A missing secret or field is an error. */
export async function withTemporalApiKeyFromVault<C extends TemporalConnectionConfig>(c: C, vault: { kvGet<T>(name: string): Promise<T | null> }): Promise<C> {
  if (!c.TEMPORAL_API_KEY_FROM_VAULT) return c;
  const secret = await vault.kvGet<{ api_key?: unknown }>(TEMPORAL_KV_SECRET);
  const key = secret?.api_key;
  if (typeof key !== 'string' || key.length === 0)
    throw new Error(
      `TEMPORAL_API_KEY_FROM_VAULT: Vault KV secret "${TEMPORAL_KV_SECRET}" has no api_key field (write it with: vault kv put <mount>/<prefix>/${TEMPORAL_KV_SECRET} api_key=...)`,
    );
  return { ...c, TEMPORAL_API_KEY: key };
}

function pem(variable: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`${variable}: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** The connection options for `c`; reads the PEM files it names (a missing file is an error naming the variable). */
export function temporalConnectionOptions(c: TemporalConnectionConfig): TemporalConnectionOptions {
  if (!c.TEMPORAL_TLS) {
    // parseConfig refuses these without TLS; a caller that built the config by hand gets the same answer.
    if (c.TEMPORAL_API_KEY || c.TEMPORAL_API_KEY_FROM_VAULT) throw new Error('TEMPORAL_API_KEY needs TEMPORAL_TLS=true (the key must not travel in clear)');
    if (c.TEMPORAL_TLS_CA || c.TEMPORAL_TLS_CERT || c.TEMPORAL_TLS_KEY || c.TEMPORAL_TLS_SERVER_NAME)
      throw new Error('TEMPORAL_TLS_* settings need TEMPORAL_TLS=true');
    return { address: c.TEMPORAL_ADDRESS };
  }
  if (c.TEMPORAL_API_KEY_FROM_VAULT && !c.TEMPORAL_API_KEY) throw new Error('TEMPORAL_API_KEY_FROM_VAULT: read the key first (withTemporalApiKeyFromVault)');
  if (!!c.TEMPORAL_TLS_CERT !== !!c.TEMPORAL_TLS_KEY) throw new Error('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY: give both or neither');
  const tls: TLSConfig = {};
  if (c.TEMPORAL_TLS_CA) tls.serverRootCACertificate = pem('TEMPORAL_TLS_CA', c.TEMPORAL_TLS_CA);
  if (c.TEMPORAL_TLS_SERVER_NAME) tls.serverNameOverride = c.TEMPORAL_TLS_SERVER_NAME;
  if (c.TEMPORAL_TLS_CERT && c.TEMPORAL_TLS_KEY)
    tls.clientCertPair = { crt: pem('TEMPORAL_TLS_CERT', c.TEMPORAL_TLS_CERT), key: pem('TEMPORAL_TLS_KEY', c.TEMPORAL_TLS_KEY) };
  return { address: c.TEMPORAL_ADDRESS, tls, ...(c.TEMPORAL_API_KEY ? { apiKey: c.TEMPORAL_API_KEY } : {}) };
}

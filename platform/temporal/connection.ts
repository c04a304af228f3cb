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
 *    platform/config.ts refuses it without).
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
    if (c.TEMPORAL_API_KEY) throw new Error('TEMPORAL_API_KEY needs TEMPORAL_TLS=true (the key must not travel in clear)');
    if (c.TEMPORAL_TLS_CA || c.TEMPORAL_TLS_CERT || c.TEMPORAL_TLS_KEY || c.TEMPORAL_TLS_SERVER_NAME)
      throw new Error('TEMPORAL_TLS_* settings need TEMPORAL_TLS=true');
    return { address: c.TEMPORAL_ADDRESS };
  }
  if (!!c.TEMPORAL_TLS_CERT !== !!c.TEMPORAL_TLS_KEY) throw new Error('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY: give both or neither');
  const tls: TLSConfig = {};
  if (c.TEMPORAL_TLS_CA) tls.serverRootCACertificate = pem('TEMPORAL_TLS_CA', c.TEMPORAL_TLS_CA);
  if (c.TEMPORAL_TLS_SERVER_NAME) tls.serverNameOverride = c.TEMPORAL_TLS_SERVER_NAME;
  if (c.TEMPORAL_TLS_CERT && c.TEMPORAL_TLS_KEY)
    tls.clientCertPair = { crt: pem('TEMPORAL_TLS_CERT', c.TEMPORAL_TLS_CERT), key: pem('TEMPORAL_TLS_KEY', c.TEMPORAL_TLS_KEY) };
  return { address: c.TEMPORAL_ADDRESS, tls, ...(c.TEMPORAL_API_KEY ? { apiKey: c.TEMPORAL_API_KEY } : {}) };
}

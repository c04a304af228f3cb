/** A Temporal client for tools and processes other than the API (which builds its own lazy one). */
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import type { TemporalConnectionConfig } from '../config';
import { temporalConnectionOptions } from './connection';

/** A client for tools and processes other than the API. Pass the production data converter
 * (`dataConverterWith(new AesGcmPayloadCodec(keys))` from platform/temporal/payload-codec.ts): without it, what the
 * client sends would be stored unencrypted and what it reads would stay ciphertext. */
export async function connectTemporal(c: TemporalConnectionConfig, dataConverter?: DataConverter): Promise<Client> {
  const connection = await Connection.connect({ ...temporalConnectionOptions(c), connectTimeout: 5000 });
  return new Client({ connection, namespace: c.TEMPORAL_NAMESPACE, dataConverter });
}

/** A Temporal client for tools and processes other than the API (which builds its own lazy one). */
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';

/** A client for tools and processes other than the API. Pass the production data converter
 * (`dataConverterWith(new AesGcmPayloadCodec(keys))` from platform/temporal/payload-codec.ts): without it, what the
 * client sends would be stored unencrypted and what it reads would stay ciphertext. */
export async function connectTemporal(c: { TEMPORAL_ADDRESS: string; TEMPORAL_NAMESPACE: string }, dataConverter?: DataConverter): Promise<Client> {
  const connection = await Connection.connect({ address: c.TEMPORAL_ADDRESS, connectTimeout: 5000 });
  return new Client({ connection, namespace: c.TEMPORAL_NAMESPACE, dataConverter });
}

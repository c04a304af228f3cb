/**
 * Temporal clients for tests and tools against a local stack (test stack or `npm run dev`):
 * one with the production data converter and the stack's codec keys (read with the Vault root
 * token that a local stack keeps in its data directory), and a raw one that sees what the server
 * stores. Local stacks only.
 */
import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { AesGcmPayloadCodec } from '../../platform/temporal/payload-codec';
import { dataConverterWith } from '../../platform/temporal/data-converter';
import { CODEC_KEYSET_NAME, CodecKeySet, StaticCodecKeys } from '../../platform/temporal/codec-keys';
import type { StackInfo } from '../../infra/stack/stack';
import { VaultAdmin } from '../../infra/stack/vault-admin';

export async function stackCodecKeys(info: StackInfo): Promise<CodecKeySet> {
  const init = JSON.parse(readFileSync(info.vaultInitFile, 'utf8')) as { root_token: string };
  const prefix = info.serviceEnv.VAULT_KV_PREFIX ?? 'authflow';
  const set = (await new VaultAdmin(info.urls.vault, init.root_token).kvGet(`${prefix}/${CODEC_KEYSET_NAME}`)) as CodecKeySet | null;
  if (!set) throw new Error('the stack has no payload codec keys yet (has its worker started?)');
  return set;
}

export interface StackClients {
  connection: Connection;
  /** Production data converter with the stack's codec keys: reads and writes plaintext values. */
  client: Client;
  /** No codec: sees payloads as the Temporal server stores them. */
  raw: Client;
  codec: AesGcmPayloadCodec;
  close: () => Promise<void>;
}

export async function stackClients(info: StackInfo): Promise<StackClients> {
  const codec = new AesGcmPayloadCodec(new StaticCodecKeys(await stackCodecKeys(info)));
  const connection = await Connection.connect({ address: info.urls.temporal });
  const namespace = info.serviceEnv.TEMPORAL_NAMESPACE ?? 'default';
  return {
    connection,
    client: new Client({ connection, namespace, dataConverter: dataConverterWith(codec) }),
    raw: new Client({ connection, namespace }),
    codec,
    close: () => connection.close(),
  };
}

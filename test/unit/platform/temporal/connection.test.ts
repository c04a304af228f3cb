import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTemporalConnectionConfig, type TemporalConnectionConfig } from '../../../../platform/config';
import { temporalConnectionOptions, withTemporalApiKeyFromVault } from '../../../../platform/temporal/connection';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'authflow-tconn-'));
  for (const f of ['ca.pem', 'client.pem', 'client.key']) writeFileSync(join(dir, f), `-----${f}-----\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const plain: TemporalConnectionConfig = {
  TEMPORAL_ADDRESS: 'temporal:7233',
  TEMPORAL_NAMESPACE: 'default',
  TEMPORAL_TLS: false,
  TEMPORAL_API_KEY_FROM_VAULT: false,
};

describe('temporalConnectionOptions', () => {
  test('plaintext by default: only the address', () => {
    expect(temporalConnectionOptions(plain)).toEqual({ address: 'temporal:7233' });
  });

  test('TLS with CA, server name, client pair and API key', () => {
    const o = temporalConnectionOptions({
      ...plain,
      TEMPORAL_TLS: true,
      TEMPORAL_TLS_CA: join(dir, 'ca.pem'),
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
      TEMPORAL_TLS_CERT: join(dir, 'client.pem'),
      TEMPORAL_TLS_KEY: join(dir, 'client.key'),
      TEMPORAL_API_KEY: 'key-1',
    });
    expect(o.address).toBe('temporal:7233');
    expect(o.apiKey).toBe('key-1');
    expect(o.tls?.serverNameOverride).toBe('temporal.internal');
    expect(Buffer.from(o.tls!.serverRootCACertificate!).toString()).toBe('-----ca.pem-----\n');
    expect(Buffer.from(o.tls!.clientCertPair!.crt).toString()).toBe('-----client.pem-----\n');
    expect(Buffer.from(o.tls!.clientCertPair!.key).toString()).toBe('-----client.key-----\n');
  });

  test('TLS with the system roots: an empty TLS config, no API key', () => {
    expect(temporalConnectionOptions({ ...plain, TEMPORAL_TLS: true })).toEqual({ address: 'temporal:7233', tls: {} });
  });

  test('refuses an API key or TLS files without TLS, half a client pair, an unreadable file', () => {
    expect(() => temporalConnectionOptions({ ...plain, TEMPORAL_API_KEY: 'k' })).toThrow(/TEMPORAL_API_KEY needs TEMPORAL_TLS=true/);
    expect(() => temporalConnectionOptions({ ...plain, TEMPORAL_TLS_CA: join(dir, 'ca.pem') })).toThrow(/TEMPORAL_TLS=true/);
    expect(() => temporalConnectionOptions({ ...plain, TEMPORAL_TLS: true, TEMPORAL_TLS_CERT: join(dir, 'client.pem') })).toThrow(/both or neither/);
    expect(() => temporalConnectionOptions({ ...plain, TEMPORAL_TLS: true, TEMPORAL_TLS_CA: join(dir, 'missing.pem') })).toThrow(
      /TEMPORAL_TLS_CA: cannot read/,
    );
  });

  test('parseTemporalConnectionConfig reads only the Temporal variables, with the same refusals', () => {
    expect(parseTemporalConnectionConfig({ TEMPORAL_ADDRESS: 'x:1', OTHER: 'y' })).toEqual({
      TEMPORAL_ADDRESS: 'x:1',
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TLS: false,
      TEMPORAL_API_KEY_FROM_VAULT: false,
    });
    expect(() => parseTemporalConnectionConfig({ TEMPORAL_API_KEY: 'k' })).toThrow(/TEMPORAL_API_KEY: needs TEMPORAL_TLS=true/);
    expect(() => parseTemporalConnectionConfig({ TEMPORAL_TLS: 'true', TEMPORAL_TLS_KEY: '/k' })).toThrow(/give both/);
  });

  test('withTemporalApiKeyFromVault reads <prefix>/temporal api_key only when asked, and fails without it', async () => {
    const tls = { ...plain, TEMPORAL_TLS: true };
    const vault = (v: unknown) => ({ kvGet: jest.fn(async () => v) as never });
    const none = vault({ api_key: 'x' });
    await expect(withTemporalApiKeyFromVault(tls, none)).resolves.toBe(tls);
    expect((none.kvGet as jest.Mock).mock.calls).toHaveLength(0);
    const ok = vault({ api_key: 'from-vault' });
    const c = await withTemporalApiKeyFromVault({ ...tls, TEMPORAL_API_KEY_FROM_VAULT: true }, ok);
    expect((ok.kvGet as jest.Mock).mock.calls).toEqual([['temporal']]);
    expect(temporalConnectionOptions(c).apiKey).toBe('from-vault');
    await expect(withTemporalApiKeyFromVault({ ...tls, TEMPORAL_API_KEY_FROM_VAULT: true }, vault(null))).rejects.toThrow(/has no api_key/);
    await expect(withTemporalApiKeyFromVault({ ...tls, TEMPORAL_API_KEY_FROM_VAULT: true }, vault({ api_key: '' }))).rejects.toThrow(/has no api_key/);
    // Never connect without the key that was asked for.
    expect(() => temporalConnectionOptions({ ...tls, TEMPORAL_API_KEY_FROM_VAULT: true })).toThrow(/read the key first/);
  });
});

/**
 * The in-memory key ring (domain/sessions/signing-keys.ts) over a fake KV store with Vault's
 * check-and-set semantics: the upgrade of an EdDSA-only set on load (two instances at once add the
 * missing keys once), the JWKS and oidc-provider's private JWKs, and change notifications.
 */
import { withActiveKeys, withNextKeys } from '../../../../domain/sessions/key-rotation';
import { KeyRing, newKeyPerAlg, newStoredKey, SIGNING_ALGS, StoredKeySet } from '../../../../domain/sessions/signing-keys';
import { createLogger } from '../../../../platform/logger';
import { VaultRequestError, type VaultClient } from '../../../../platform/vault';

/** One KV secret with versions and `cas` like Vault KV v2; `holdReads` makes that many readers meet before any continues. */
class FakeKv {
  version = 0;
  data: StoredKeySet | null = null;
  puts = 0;
  casLost = 0;
  denyWrites = false;
  private waiting: Array<() => void> = [];
  constructor(private holdReads = 0) {}

  private async meet() {
    if (this.holdReads <= 0) return;
    await new Promise<void>((resolve) => {
      this.waiting.push(resolve);
      if (this.waiting.length >= this.holdReads) {
        this.holdReads = 0;
        this.waiting.splice(0).forEach((r) => r());
      }
    });
  }

  client(): VaultClient {
    const snapshot = () => (this.data ? (JSON.parse(JSON.stringify(this.data)) as StoredKeySet) : null);
    return {
      kvGet: async () => snapshot(),
      kvRead: async () => {
        const read = this.data ? { data: snapshot()!, version: this.version } : null;
        await this.meet();
        return read;
      },
      kvPut: async (_name: string, data: Record<string, unknown>, cas?: number) => {
        if (this.denyWrites) throw new VaultRequestError(403, 'permission denied');
        if (cas !== undefined && cas !== this.version) {
          this.casLost++;
          throw new VaultRequestError(400, 'check-and-set parameter did not match the current version');
        }
        this.data = JSON.parse(JSON.stringify(data)) as StoredKeySet;
        this.puts++;
        return ++this.version;
      },
    } as unknown as VaultClient;
  }
}

const logger = createLogger('silent', 'test');
const activeByAlg = (set: StoredKeySet) => SIGNING_ALGS.map((alg) => set.keys.filter((k) => k.alg === alg && k.status === 'active').length);

describe('loading an install from before ES256 and RS256', () => {
  test('the API adds an active ES256 and RS256 key; two instances starting at once add them once and load the same ring', async () => {
    const ed = await newStoredKey('active', 'EdDSA');
    const kv = new FakeKv(2);
    kv.data = { keys: [ed] };
    kv.version = 1;
    const a = new KeyRing(kv.client(), logger);
    const b = new KeyRing(kv.client(), logger);
    await Promise.all([a.load(true), b.load(true)]);
    expect(kv.puts).toBe(1);
    expect(kv.casLost).toBe(1);
    expect(kv.data.keys).toHaveLength(3);
    expect(activeByAlg(kv.data)).toEqual([1, 1, 1]);
    expect(kv.data.keys[0]).toEqual(ed);
    const kids = (r: KeyRing) => r.jwks().keys.map((k) => k.kid);
    expect(kids(a)).toEqual(kids(b));
    expect(a.signingKey().kid).toBe(ed.kid);
    expect(a.signingKeyFor('ES256').kid).toMatch(/^p256-/);
    expect(b.signingKeyFor('RS256').kid).toMatch(/^rsa-/);
    expect(a.signingKeyFor('ES256').kid).toBe(b.signingKeyFor('ES256').kid);
  });

  test('a fresh install gets one active key per algorithm, once, however many instances start', async () => {
    const kv = new FakeKv();
    const rings = [new KeyRing(kv.client(), logger), new KeyRing(kv.client(), logger)];
    await Promise.all(rings.map((r) => r.load(true)));
    expect(kv.puts).toBe(1);
    expect(activeByAlg(kv.data!)).toEqual([1, 1, 1]);
    expect(rings[0].jwks()).toEqual(rings[1].jwks());
  });

  test('a reload (not a start) never writes; a policy without update keeps the EdDSA-only ring serving', async () => {
    const kv = new FakeKv();
    kv.data = { keys: [await newStoredKey('active', 'EdDSA')] };
    kv.version = 1;
    const ring = new KeyRing(kv.client(), logger);
    await ring.load(false);
    expect(kv.puts).toBe(0);
    kv.denyWrites = true;
    await ring.load(true);
    expect(ring.signingKey().kid).toBe(kv.data.keys[0].kid);
    expect(() => ring.signingKeyFor('ES256')).toThrow(/no active ES256/);
  });
});

describe('what the ring publishes', () => {
  async function rotatingRing() {
    // Mid-rotation: an older rotation's keys retiring, the current active keys, a new rotation's next keys.
    let set: StoredKeySet = { keys: await newKeyPerAlg('active') };
    set = withNextKeys(set, 'rot-0', await newKeyPerAlg('next'))!;
    const ed0 = set.keys.find((k) => k.rotation_id === 'rot-0' && k.alg === 'EdDSA')!.kid;
    set = withActiveKeys(set, ed0, new Date(Date.now() + 3600_000), 'rot-0')!;
    set = withNextKeys(set, 'rot-1', await newKeyPerAlg('next'))!;
    // Stored in a shuffled order: the ring's order must not depend on it.
    set.keys.reverse();
    const kv = new FakeKv();
    kv.data = set;
    kv.version = 1;
    const ring = new KeyRing(kv.client(), logger);
    await ring.load(false);
    return { ring, set, kv };
  }

  test('the JWKS lists the public keys of all algorithms, each with kid, alg and use sig, and no private part', async () => {
    const { ring, set } = await rotatingRing();
    const jwks = ring.jwks().keys;
    expect(jwks.map((k) => k.kid).sort()).toEqual(set.keys.map((k) => k.kid).sort());
    for (const k of jwks) {
      expect(k).toMatchObject({ kid: expect.any(String), alg: expect.stringMatching(/^(EdDSA|ES256|RS256)$/), use: 'sig' });
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(k[secret as keyof typeof k]).toBeUndefined();
    }
    expect(new Set(jwks.map((k) => k.kty))).toEqual(new Set(['OKP', 'EC', 'RSA']));
  });

  test("oidc-provider's private JWKs: per algorithm active first, then next, then retiring", async () => {
    const { ring, set } = await rotatingRing();
    const jwks = ring.providerJwks();
    const status = (kid: string | undefined) => set.keys.find((k) => k.kid === kid)!.status;
    expect(jwks.map((k) => `${k.alg}:${status(k.kid)}`)).toEqual(SIGNING_ALGS.flatMap((alg) => [`${alg}:active`, `${alg}:next`, `${alg}:retiring`]));
    for (const k of jwks) expect(k).toMatchObject({ d: expect.any(String), use: 'sig' });
    for (const alg of SIGNING_ALGS) expect(jwks.find((k) => k.alg === alg)!.kid).toBe(ring.signingKeyFor(alg).kid);
    // Callers get copies: changing one does not change the ring.
    jwks[0].kid = 'changed';
    expect(ring.providerJwks()[0].kid).not.toBe('changed');
  });

  test('onChange fires after a load that changes the kids or the active kids, not on a refresh that changes nothing', async () => {
    const { ring, kv } = await rotatingRing();
    let first = 0;
    const fresh = new KeyRing(kv.client(), logger);
    fresh.onChange(() => first++);
    await fresh.load(false);
    await fresh.load(false);
    expect(first).toBe(1);
    let calls = 0;
    ring.onChange(() => calls++);
    ring.onChange(() => {
      throw new Error('a broken listener');
    });
    await ring.load(false);
    expect(calls).toBe(0);
    // Phase 2 of rot-1: the active kids change.
    const ed1 = kv.data!.keys.find((k) => k.rotation_id === 'rot-1' && k.alg === 'EdDSA')!.kid;
    kv.data = withActiveKeys(kv.data!, ed1, new Date(Date.now() + 3600_000), 'rot-1');
    await ring.load(false);
    expect(calls).toBe(1);
    expect(ring.signingKey().kid).toBe(ed1);
    // A key leaves the set: the kids change.
    kv.data = { keys: kv.data!.keys.filter((k) => k.rotation_id !== 'rot-0' || k.alg !== 'RS256') };
    await ring.load(false);
    expect(calls).toBe(2);
    await ring.load(false);
    expect(calls).toBe(2);
  });
});

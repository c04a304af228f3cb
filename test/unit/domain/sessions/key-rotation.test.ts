/**
 * The signing-key rotation phases as pure transforms of the stored key set
 * (domain/sessions/key-rotation.ts): every phase acts on EdDSA, ES256 and RS256 at once, per
 * algorithm, idempotently per rotation id.
 */
import { RotationConflictError, withActiveKeys, withNextKeys, withoutRetiredKeys } from '../../../../domain/sessions/key-rotation';
import {
  checkKeySet,
  KeySetStateError,
  newKeyPerAlg,
  newStoredKey,
  rotationTimings,
  SIGNING_ALGS,
  StoredKeySet,
} from '../../../../domain/sessions/signing-keys';

async function fullRing(): Promise<StoredKeySet> {
  return { keys: await newKeyPerAlg('active') };
}

const statusesByAlg = (set: StoredKeySet) => Object.fromEntries(SIGNING_ALGS.map((alg) => [alg, set.keys.filter((k) => k.alg === alg).map((k) => k.status)]));
const edKid = (set: StoredKeySet, rotationId: string) => set.keys.find((k) => k.alg === 'EdDSA' && k.rotation_id === rotationId)!.kid;

describe('rotation phase 1 (publish)', () => {
  test('adds one next key per algorithm, with per-algorithm kid prefixes, tagged with the rotation', async () => {
    const set = await fullRing();
    const s1 = withNextKeys(set, 'rot-1', await newKeyPerAlg('next'))!;
    expect(statusesByAlg(s1)).toEqual({ EdDSA: ['active', 'next'], ES256: ['active', 'next'], RS256: ['active', 'next'] });
    const added = s1.keys.filter((k) => k.status === 'next');
    expect(added.every((k) => k.rotation_id === 'rot-1')).toBe(true);
    expect(Object.fromEntries(added.map((k) => [k.alg, k.kid.split('-')[0]]))).toEqual({ EdDSA: 'ed25519', ES256: 'p256', RS256: 'rsa' });
    expect(added.map((k) => k.public_jwk.kty)).toEqual(['OKP', 'EC', 'RSA']);
    expect(() => checkKeySet(s1)).not.toThrow();
  });

  test('a retry of the same rotation changes nothing, before and after phase 2', async () => {
    const s1 = withNextKeys(await fullRing(), 'rot-1', await newKeyPerAlg('next'))!;
    expect(withNextKeys(s1, 'rot-1', await newKeyPerAlg('next'))).toBeNull();
    const s2 = withActiveKeys(s1, edKid(s1, 'rot-1'), new Date('2030-01-01T00:00:00Z'), 'rot-1')!;
    expect(withNextKeys(s2, 'rot-1', await newKeyPerAlg('next'))).toBeNull();
  });

  test('another rotation conflicts while any algorithm has a next key of the first', async () => {
    const set = await fullRing();
    const s1 = withNextKeys(set, 'rot-1', await newKeyPerAlg('next'))!;
    const others = await newKeyPerAlg('next');
    expect(() => withNextKeys(s1, 'rot-2', others)).toThrow(RotationConflictError);
    // Only the RS256 next key left (hand-edited set): still a conflict, naming that key.
    const onlyRsa = { keys: s1.keys.filter((k) => k.status === 'active' || k.alg === 'RS256') };
    const rsaNext = onlyRsa.keys.find((k) => k.status === 'next')!;
    expect(() => withNextKeys(onlyRsa, 'rot-2', [])).toThrow(expect.objectContaining({ kid: rsaNext.kid, otherRotationId: 'rot-1' }) as Error);
  });

  test("completes a rotation whose earlier phase 1 published EdDSA only (an older worker's run)", async () => {
    const set = await fullRing();
    const ed = await newStoredKey('next', 'EdDSA');
    const old = { keys: [...set.keys, { ...ed, rotation_id: 'rot-1' }] };
    const s1 = withNextKeys(old, 'rot-1', await newKeyPerAlg('next'))!;
    expect(statusesByAlg(s1)).toEqual({ EdDSA: ['active', 'next'], ES256: ['active', 'next'], RS256: ['active', 'next'] });
    expect(edKid(s1, 'rot-1')).toBe(ed.kid);
  });

  test('an algorithm without an active key gets no next key (the upgrade on load adds it as active)', async () => {
    const edOnly = { keys: [await newStoredKey('active', 'EdDSA')] };
    const s1 = withNextKeys(edOnly, 'rot-1', await newKeyPerAlg('next'))!;
    expect(statusesByAlg(s1)).toEqual({ EdDSA: ['active', 'next'], ES256: [], RS256: [] });
    expect(() => checkKeySet(s1)).not.toThrow();
  });
});

describe('rotation phase 2 (switch)', () => {
  test("activates every algorithm's next key and retires each algorithm's previous active key with the deadline", async () => {
    const set = await fullRing();
    const before = Object.fromEntries(set.keys.map((k) => [k.alg, k.kid]));
    const s1 = withNextKeys(set, 'rot-1', await newKeyPerAlg('next'))!;
    const fresh = Object.fromEntries(s1.keys.filter((k) => k.status === 'next').map((k) => [k.alg, k.kid]));
    const until = new Date('2030-01-01T00:00:00Z');
    const s2 = withActiveKeys(s1, edKid(s1, 'rot-1'), until, 'rot-1')!;
    for (const alg of SIGNING_ALGS) {
      expect(s2.keys.filter((k) => k.alg === alg && k.status === 'active').map((k) => k.kid)).toEqual([fresh[alg]]);
      expect(s2.keys.find((k) => k.kid === before[alg])).toMatchObject({ status: 'retiring', publish_until: until.toISOString(), retired_by: 'rot-1' });
    }
    expect(() => checkKeySet(s2)).not.toThrow();
  });

  test('a retry changes nothing; an unknown or retiring kid is refused', async () => {
    const set = await fullRing();
    const oldEd = set.keys.find((k) => k.alg === 'EdDSA')!.kid;
    const s1 = withNextKeys(set, 'rot-1', await newKeyPerAlg('next'))!;
    const kid = edKid(s1, 'rot-1');
    const s2 = withActiveKeys(s1, kid, new Date('2030-01-01T00:00:00Z'), 'rot-1')!;
    expect(withActiveKeys(s2, kid, new Date(), 'rot-1')).toBeNull();
    expect(() => withActiveKeys(s2, 'unknown', new Date())).toThrow(KeySetStateError);
    expect(() => withActiveKeys(s2, oldEd, new Date())).toThrow(KeySetStateError);
  });

  test("retires only the algorithms the rotation publishes for: an EdDSA-only rotation leaves ES256's and RS256's active keys signing", async () => {
    const set = await fullRing();
    const ed = await newStoredKey('next', 'EdDSA');
    const s1 = { keys: [...set.keys, { ...ed, rotation_id: 'rot-1' }] };
    const s2 = withActiveKeys(s1, ed.kid, new Date('2030-01-01T00:00:00Z'), 'rot-1')!;
    expect(statusesByAlg(s2)).toEqual({ EdDSA: ['retiring', 'active'], ES256: ['active'], RS256: ['active'] });
  });

  test("a next key of another rotation is neither activated nor a reason to retire its algorithm's key", async () => {
    const set = await fullRing();
    const s1 = withNextKeys(set, 'rot-1', await newKeyPerAlg('next'))!;
    const stray = await newStoredKey('next', 'ES256');
    // Two next ES256 keys of one rotation cannot both sign.
    const twice = { keys: [...s1.keys, { ...stray, rotation_id: 'rot-1' }] };
    expect(() => withActiveKeys(twice, edKid(s1, 'rot-1'), new Date(), 'rot-1')).toThrow(KeySetStateError);
    const other = { keys: [...s1.keys, { ...stray, rotation_id: 'rot-0' }] };
    const s2 = withActiveKeys(other, edKid(s1, 'rot-1'), new Date(), 'rot-1')!;
    expect(s2.keys.find((k) => k.kid === stray.kid)!.status).toBe('next');
  });
});

describe('rotation phase 3 (remove)', () => {
  test('removes only retiring keys whose window has passed, of any algorithm', async () => {
    const set = await fullRing();
    const a = await newStoredKey('retiring', 'ES256');
    const b = await newStoredKey('retiring', 'RS256');
    const c = await newStoredKey('retiring', 'EdDSA');
    set.keys.push(
      { ...a, publish_until: '2020-01-01T00:00:00Z' },
      { ...b, publish_until: '2999-01-01T00:00:00Z' },
      { ...c, publish_until: '2020-01-01T00:00:00Z' },
    );
    const r = withoutRetiredKeys(set, new Date());
    expect(r.removed).toEqual([a.kid, c.kid]);
    expect(r.set!.keys.map((x) => x.kid)).toEqual([...set.keys.slice(0, 3).map((k) => k.kid), b.kid]);
    expect(withoutRetiredKeys(r.set!, new Date()).set).toBeNull();
  });
});

describe('key set invariants', () => {
  test('exactly one active key per algorithm present, and an active EdDSA key, or the write is refused', async () => {
    const set = await fullRing();
    expect(() => checkKeySet(set)).not.toThrow();
    const secondRsa = await newStoredKey('active', 'RS256');
    expect(() => checkKeySet({ keys: [...set.keys, secondRsa] })).toThrow(KeySetStateError);
    expect(() => checkKeySet({ keys: set.keys.filter((k) => k.alg !== 'EdDSA') })).toThrow(/EdDSA/);
    expect(() => checkKeySet({ keys: set.keys.map((k) => (k.alg === 'ES256' ? { ...k, status: 'next' as const } : k)) })).toThrow(/ES256/);
  });

  test('a retiring key stays published for the longest token lifetime plus a key refresh plus clock skew', () => {
    expect(rotationTimings({ ACCESS_TOKEN_TTL: 900, KEY_REFRESH_SECONDS: 30, KEY_PROPAGATION_DELAY: 3600 })).toEqual({
      propagationDelaySeconds: 3600,
      retireAfterSeconds: 990,
    });
  });
});

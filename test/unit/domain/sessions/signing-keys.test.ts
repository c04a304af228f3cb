/** The signing-key rotation phases as pure transforms of the stored key set (domain/sessions/signing-keys.ts). */
import {
  KeySetStateError,
  newStoredKey,
  RotationConflictError,
  rotationTimings,
  StoredKeySet,
  withActiveKey,
  withNextKey,
  withoutRetiredKeys,
} from '../../../../domain/sessions/signing-keys';

async function setWithActive(): Promise<StoredKeySet> {
  return { keys: [await newStoredKey('active')] };
}

describe('rotation phases', () => {
  test('phase 1 adds one next key per rotation; a retry changes nothing; another rotation conflicts', async () => {
    const set = await setWithActive();
    const k = await newStoredKey('next');
    const s1 = withNextKey(set, 'rot-1', k)!;
    expect(s1.keys.map((x) => x.status)).toEqual(['active', 'next']);
    expect(s1.keys[1]).toMatchObject({ kid: k.kid, rotation_id: 'rot-1' });
    expect(withNextKey(s1, 'rot-1', await newStoredKey('next'))).toBeNull();
    expect(() => withNextKey(s1, 'rot-2', k)).toThrow(RotationConflictError);
  });

  test('phase 2 makes the next key active and retires the old one with its publication deadline; a retry changes nothing', async () => {
    const set = await setWithActive();
    const old = set.keys[0].kid;
    const s1 = withNextKey(set, 'rot-1', await newStoredKey('next'))!;
    const kid = s1.keys[1].kid;
    const until = new Date('2030-01-01T00:00:00Z');
    const s2 = withActiveKey(s1, kid, until)!;
    expect(s2.keys.find((x) => x.kid === kid)!.status).toBe('active');
    expect(s2.keys.find((x) => x.kid === old)).toMatchObject({ status: 'retiring', publish_until: until.toISOString() });
    expect(s2.keys.filter((x) => x.status === 'active')).toHaveLength(1);
    expect(withActiveKey(s2, kid, new Date())).toBeNull();
    expect(() => withActiveKey(s2, 'unknown', until)).toThrow(KeySetStateError);
    expect(() => withActiveKey(s2, old, until)).toThrow(KeySetStateError);
    // After phase 2 a retried phase 1 of the same rotation is still a no-op.
    expect(withNextKey(s2, 'rot-1', await newStoredKey('next'))).toBeNull();
  });

  test('phase 3 removes only retiring keys whose window has passed', async () => {
    const set = await setWithActive();
    const a = await newStoredKey('retiring');
    const b = await newStoredKey('retiring');
    set.keys.push({ ...a, publish_until: '2020-01-01T00:00:00Z' }, { ...b, publish_until: '2999-01-01T00:00:00Z' });
    const r = withoutRetiredKeys(set, new Date());
    expect(r.removed).toEqual([a.kid]);
    expect(r.set!.keys.map((x) => x.kid)).toEqual([set.keys[0].kid, b.kid]);
    expect(withoutRetiredKeys(r.set!, new Date()).set).toBeNull();
  });

  test('a retiring key stays published for the longest token lifetime plus a key refresh plus clock skew', () => {
    expect(rotationTimings({ ACCESS_TOKEN_TTL: 900, KEY_REFRESH_SECONDS: 30, KEY_PROPAGATION_DELAY: 3600 })).toEqual({
      propagationDelaySeconds: 3600,
      retireAfterSeconds: 990,
    });
  });
});

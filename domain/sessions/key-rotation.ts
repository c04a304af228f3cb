/**
 * The three phases of a signing-key rotation (workflows/key-rotation.ts) as pure transforms of the
 * stored key set (signing-keys.ts): each returns the new set, or null when the set already reflects
 * the phase, so a retried activity changes nothing. A rotation rotates every algorithm of the ring
 * at once: phase 1 publishes one `next` key per algorithm, phase 2 activates all of them and
 * retires the previous active key of each, phase 3 removes retiring keys whose window has passed.
 * Unit-tested (test/unit/domain/sessions/key-rotation.test.ts).
 */
import { KeySetStateError, type SigningAlg, type StoredKey, type StoredKeySet } from './signing-keys';

/** Another rotation owns a `next` key: this one must not add a second. */
export class RotationConflictError extends Error {
  constructor(
    readonly otherRotationId: string | undefined,
    readonly kid: string,
  ) {
    super(`another rotation (${otherRotationId ?? 'unknown'}) is publishing key ${kid}`);
    this.name = 'RotationConflictError';
  }
}

/**
 * Phase 1: publish `candidates` (one per algorithm) as `next`: in the JWKS, not signing. An
 * algorithm the set has no active key of is left out (the API's upgrade on load adds it); one that
 * already has this rotation's key keeps it (a retried call, or a phase 1 of an older version that
 * published EdDSA only). Null once any of this rotation's keys has gone past `next` (phase 2 ran).
 */
export function withNextKeys(set: StoredKeySet, rotationId: string, candidates: StoredKey[]): StoredKeySet | null {
  const foreign = set.keys.find((k) => k.status === 'next' && k.rotation_id !== rotationId);
  if (foreign) throw new RotationConflictError(foreign.rotation_id, foreign.kid);
  const mine = set.keys.filter((k) => k.rotation_id === rotationId);
  if (mine.some((k) => k.status !== 'next')) return null; // already past phase 1
  const added = candidates
    .filter((c, i) => candidates.findIndex((x) => x.alg === c.alg) === i)
    .filter((c) => set.keys.some((k) => k.alg === c.alg && k.status === 'active') && !mine.some((k) => k.alg === c.alg))
    .map((c) => ({ ...c, status: 'next' as const, rotation_id: rotationId }));
  if (!added.length) return null;
  return { ...set, keys: [...set.keys, ...added] };
}

/**
 * Phase 2: `kid` (the rotation's EdDSA key, which the workflow carries) and every other `next` key
 * of the same rotation sign; the key that signed until now for each of their algorithms retires,
 * published until `publishUntil`. Null when they already sign.
 */
export function withActiveKeys(set: StoredKeySet, kid: string, publishUntil: Date, rotationId?: string): StoredKeySet | null {
  const target = set.keys.find((k) => k.kid === kid);
  if (!target) throw new KeySetStateError(`key ${kid} is not in the key set`);
  if (target.status !== 'next' && target.status !== 'active') throw new KeySetStateError(`key ${kid} is ${target.status}, not next`);
  const batch = set.keys.filter((k) => k.status === 'next' && (k.kid === kid || (target.rotation_id !== undefined && k.rotation_id === target.rotation_id)));
  if (!batch.length) return null;
  const algs = new Set<SigningAlg>();
  for (const k of batch) {
    if (algs.has(k.alg)) throw new KeySetStateError(`the rotation has more than one next ${k.alg} key`);
    algs.add(k.alg);
  }
  const retired = { status: 'retiring' as const, publish_until: publishUntil.toISOString(), ...(rotationId ? { retired_by: rotationId } : {}) };
  return {
    ...set,
    keys: set.keys.map((k) => {
      if (batch.includes(k)) return { ...k, status: 'active' as const };
      if (k.status === 'active' && algs.has(k.alg)) return { ...k, ...retired };
      return k;
    }),
  };
}

/** Phase 3: drop retiring keys whose publication window has passed (any rotation's, any algorithm). */
export function withoutRetiredKeys(set: StoredKeySet, now: Date): { set: StoredKeySet | null; removed: string[] } {
  const gone = set.keys.filter((k) => k.status === 'retiring' && (!k.publish_until || Date.parse(k.publish_until) <= now.getTime()));
  if (!gone.length) return { set: null, removed: [] };
  return { set: { ...set, keys: set.keys.filter((k) => !gone.includes(k)) }, removed: gone.map((k) => k.kid) };
}

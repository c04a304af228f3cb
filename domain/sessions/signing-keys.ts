/**
 * Access-token signing keys. Decision: Ed25519 (EdDSA) keys whose private half lives in Vault KV
 * (`<prefix>/signing-keys`), loaded into memory at start and re-read periodically, so signing on
 * the refresh path costs no network round trip (bench/ records the cost of Vault transit signing,
 * the alternative). Private keys are never in Postgres, env files or logs.
 *
 * Key set states: `next` (published in the JWKS, not yet signing), `active` (signs), `retiring`
 * (published until every token it signed has expired), removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, JWK, KeyLike } from 'jose';
import type { Logger } from '../../platform/logger';
import { VaultRequestError, type VaultClient } from '../../platform/vault';

export const SIGNING_ALG = 'EdDSA';
export const KEYSET_NAME = 'signing-keys';

export interface StoredKey {
  kid: string;
  alg: typeof SIGNING_ALG;
  status: 'next' | 'active' | 'retiring';
  created_at: string;
  /** When a retiring key may leave the JWKS (set when it stops signing). */
  publish_until?: string;
  /** The rotation (workflow run) that created the key; makes each rotation phase idempotent. */
  rotation_id?: string;
  /** The rotation that retired the key (phase 2), so its phase 3 waits for this key's window. */
  retired_by?: string;
  public_jwk: JWK;
  private_jwk: JWK;
}

export interface StoredKeySet {
  keys: StoredKey[];
}

interface LoadedKey {
  kid: string;
  status: StoredKey['status'];
  publicJwk: JWK;
  publicKey: KeyLike | Uint8Array;
  privateKey: KeyLike | Uint8Array;
}

export async function newStoredKey(status: StoredKey['status']): Promise<StoredKey> {
  const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, { crv: 'Ed25519', extractable: true });
  const created = new Date();
  const kid = `ed25519-${created.toISOString().slice(0, 10).replace(/-/g, '')}-${randomBytes(4).toString('hex')}`;
  const public_jwk = { ...(await exportJWK(publicKey)), kid, alg: SIGNING_ALG, use: 'sig' };
  const private_jwk = { ...(await exportJWK(privateKey)), kid, alg: SIGNING_ALG };
  return { kid, alg: SIGNING_ALG, status, created_at: created.toISOString(), public_jwk, private_jwk };
}

/** Another rotation owns the `next` key: this one must not add a second. */
export class RotationConflictError extends Error {
  constructor(
    readonly otherRotationId: string | undefined,
    readonly kid: string,
  ) {
    super(`another rotation (${otherRotationId ?? 'unknown'}) is publishing key ${kid}`);
    this.name = 'RotationConflictError';
  }
}

/** The key set is not in a state this phase can act on (lost key, manual edit). */
export class KeySetStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeySetStateError';
  }
}

/*
 * Rotation phases as pure transforms of the stored set: each returns the new set, or null when
 * the set already reflects the phase (a retried activity changes nothing). Unit-tested.
 */

/** Phase 1: publish `key` as `next` (in the JWKS, not signing). */
export function withNextKey(set: StoredKeySet, rotationId: string, key: StoredKey): StoredKeySet | null {
  const pending = set.keys.find((k) => k.status === 'next');
  if (pending) {
    if (pending.rotation_id === rotationId) return null;
    throw new RotationConflictError(pending.rotation_id, pending.kid);
  }
  if (set.keys.some((k) => k.rotation_id === rotationId)) return null; // already past phase 1
  return { ...set, keys: [...set.keys, { ...key, status: 'next', rotation_id: rotationId }] };
}

/** Phase 2: `kid` signs; the key that signed until now retires, published until `publishUntil`. */
export function withActiveKey(set: StoredKeySet, kid: string, publishUntil: Date, rotationId?: string): StoredKeySet | null {
  const target = set.keys.find((k) => k.kid === kid);
  if (!target) throw new KeySetStateError(`key ${kid} is not in the key set`);
  if (target.status === 'active') return null;
  if (target.status !== 'next') throw new KeySetStateError(`key ${kid} is ${target.status}, not next`);
  return {
    ...set,
    keys: set.keys.map((k) => {
      if (k.kid === kid) return { ...k, status: 'active' as const };
      if (k.status === 'active')
        return { ...k, status: 'retiring' as const, publish_until: publishUntil.toISOString(), ...(rotationId ? { retired_by: rotationId } : {}) };
      return k;
    }),
  };
}

/** Phase 3: drop retiring keys whose publication window has passed (any rotation's). */
export function withoutRetiredKeys(set: StoredKeySet, now: Date): { set: StoredKeySet | null; removed: string[] } {
  const gone = set.keys.filter((k) => k.status === 'retiring' && (!k.publish_until || Date.parse(k.publish_until) <= now.getTime()));
  if (!gone.length) return { set: null, removed: [] };
  return { set: { ...set, keys: set.keys.filter((k) => !gone.includes(k)) }, removed: gone.map((k) => k.kid) };
}

/** What may be shown about a key (status page, logs, workflow history): never key material. */
export function keySummary(k: StoredKey) {
  return { kid: k.kid, status: k.status, created_at: k.created_at, publish_until: k.publish_until ?? null };
}

/**
 * The write side used by the rotation activities: read the set with its KV version, apply a phase
 * transform, write it back with check-and-set on that version. A concurrent writer makes the
 * write fail (400); we re-read and re-apply, so two writers never lose each other's change.
 */
export async function updateKeySet(
  vault: VaultClient,
  change: (set: StoredKeySet) => StoredKeySet | null,
  maxAttempts = 5,
): Promise<{ set: StoredKeySet; changed: boolean; version: number }> {
  for (let attempt = 1; ; attempt++) {
    const current = await vault.kvRead<StoredKeySet>(KEYSET_NAME);
    if (!current || !Array.isArray(current.data.keys) || current.data.keys.length === 0) throw new KeySetStateError('no signing key set in Vault');
    const next = change(current.data);
    if (!next) return { set: current.data, changed: false, version: current.version };
    if (!next.keys.some((k) => k.status === 'active')) throw new KeySetStateError('refusing to write a key set without an active key');
    try {
      const version = await vault.kvPut(KEYSET_NAME, next as unknown as Record<string, unknown>, current.version);
      return { set: next, changed: true, version };
    } catch (err) {
      const casLost = err instanceof VaultRequestError && err.statusCode === 400 && /check-and-set/i.test(err.message);
      if (!casLost || attempt >= maxAttempts) throw err;
    }
  }
}

/** Reads the stored set (status pages, rotation pre-checks). */
export async function readKeySet(vault: VaultClient): Promise<StoredKeySet | null> {
  return vault.kvGet<StoredKeySet>(KEYSET_NAME);
}

/**
 * How long a retiring key stays published: until every token it signed has expired. It may still
 * sign for up to one key-set refresh after the switch (an API that has not reloaded yet), plus a
 * margin for clock skew between the API hosts and verifiers.
 */
export const ROTATION_CLOCK_SKEW_SECONDS = 60;
export function rotationTimings(c: { ACCESS_TOKEN_TTL: number; KEY_REFRESH_SECONDS: number; KEY_PROPAGATION_DELAY: number }) {
  return {
    propagationDelaySeconds: c.KEY_PROPAGATION_DELAY,
    retireAfterSeconds: c.ACCESS_TOKEN_TTL + c.KEY_REFRESH_SECONDS + ROTATION_CLOCK_SKEW_SECONDS,
  };
}

export class KeyRing {
  private keys = new Map<string, LoadedKey>();
  private activeKid: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private jwksCache: { keys: JWK[] } = { keys: [] };
  private lastLoadOk = 0;

  constructor(
    private readonly vault: VaultClient,
    private readonly logger: Logger,
  ) {}

  /** Loads the key set; on a fresh install creates the first key (create-only write). */
  async load(createIfMissing: boolean): Promise<void> {
    let set = await this.vault.kvGet<StoredKeySet>(KEYSET_NAME);
    if ((!set || set.keys.length === 0) && createIfMissing) {
      const first = await newStoredKey('active');
      try {
        await this.vault.kvPut(KEYSET_NAME, { keys: [first] }, 0);
        this.logger.info({ kid: first.kid }, 'created the first signing key');
      } catch (err) {
        // Another instance won the create-only write: use its key set.
        if (!(err instanceof VaultRequestError && err.statusCode === 400)) throw err;
      }
      set = await this.vault.kvGet<StoredKeySet>(KEYSET_NAME);
    }
    if (!set || set.keys.length === 0) throw new Error('no signing keys in Vault');
    await this.apply(set);
  }

  private async apply(set: StoredKeySet) {
    const next = new Map<string, LoadedKey>();
    let active: string | undefined;
    for (const k of set.keys) {
      const existing = this.keys.get(k.kid);
      next.set(k.kid, {
        kid: k.kid,
        status: k.status,
        publicJwk: k.public_jwk,
        publicKey: existing?.publicKey ?? (await importJWK(k.public_jwk, SIGNING_ALG)),
        privateKey: existing?.privateKey ?? (await importJWK(k.private_jwk, SIGNING_ALG)),
      });
      if (k.status === 'active') active = k.kid;
    }
    if (!active) throw new Error('signing key set has no active key');
    if (active !== this.activeKid && this.activeKid) this.logger.info({ kid: active }, 'signing key switched');
    this.keys = next;
    this.activeKid = active;
    this.jwksCache = { keys: [...next.values()].map((k) => ({ ...k.publicJwk })) };
    this.lastLoadOk = Date.now();
  }

  /** Re-reads the key set every `ms`; a failed read keeps the cached keys (logged once). */
  startRefresh(ms: number) {
    let failing = false;
    this.timer = setInterval(
      () =>
        void (async () => {
          try {
            await this.load(false);
            if (failing) this.logger.info('signing keys reloaded from Vault again');
            failing = false;
          } catch (err) {
            if (!failing) this.logger.warn({ err: (err as Error).message }, 'cannot reload signing keys; using cached keys');
            failing = true;
          }
        })(),
      ms,
    );
    this.timer.unref();
  }

  stop() {
    clearInterval(this.timer);
  }

  signingKey(): { kid: string; key: KeyLike | Uint8Array } {
    const k = this.activeKid ? this.keys.get(this.activeKid) : undefined;
    if (!k) throw new Error('signing keys not loaded');
    return { kid: k.kid, key: k.privateKey };
  }

  /** Public key for a kid from the token header; undefined when unknown. */
  verificationKey(kid: string): KeyLike | Uint8Array | undefined {
    return this.keys.get(kid)?.publicKey;
  }

  jwks(): { keys: JWK[] } {
    return this.jwksCache;
  }

  loadedAt(): number {
    return this.lastLoadOk;
  }
}

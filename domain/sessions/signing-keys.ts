/**
 * The signing key ring. Decision: the private keys live in Vault KV (`<prefix>/signing-keys`),
 * loaded into memory at start and re-read periodically, so signing on the refresh path costs no
 * network round trip (bench/ records the cost of Vault transit signing, the alternative). Private
 * keys are never in Postgres, env files or logs.
 *
 * The ring holds keys of three algorithms: EdDSA (Ed25519) signs our own /v1 access tokens;
 * ES256 (P-256) and RS256 (RSA 2048) are there for the OpenID Connect provider's id tokens, since
 * many relying parties (Temporal's JWT authorizer among them) cannot verify EdDSA.
 *
 * Invariants of the stored set: every key names its `alg`; every algorithm present has exactly one
 * `active` key (it signs), and EdDSA is always present. Per algorithm, `next` keys are published
 * in the JWKS but do not sign yet, `retiring` keys are published until every token they signed has
 * expired, then removed. The rotation phases (key-rotation.ts) keep these per algorithm.
 *
 * Writes: only through this module, with check-and-set on the KV version (updateKeySet, or the
 * create-only first write): the rotation activities, and the API's start (first keys, upgrade).
 */
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, JWK, KeyLike } from 'jose';
import type { Logger } from '../../platform/logger';
import { VaultRequestError, type VaultClient } from '../../platform/vault';

/** Every algorithm the ring holds, in the order the JWKS lists them. */
export const SIGNING_ALGS = ['EdDSA', 'ES256', 'RS256'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];
export const KEYSET_NAME = 'signing-keys';

export interface StoredKey {
  kid: string;
  alg: SigningAlg;
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

const KID_PREFIX: Record<SigningAlg, string> = { EdDSA: 'ed25519', ES256: 'p256', RS256: 'rsa' };

function generate(alg: SigningAlg) {
  if (alg === 'EdDSA') return generateKeyPair(alg, { crv: 'Ed25519', extractable: true });
  if (alg === 'RS256') return generateKeyPair(alg, { modulusLength: 2048, extractable: true });
  return generateKeyPair(alg, { extractable: true });
}

export function isSigningAlg(alg: unknown): alg is SigningAlg {
  return (SIGNING_ALGS as readonly unknown[]).includes(alg);
}

export async function newStoredKey(status: StoredKey['status'], alg: SigningAlg = 'EdDSA'): Promise<StoredKey> {
  const { publicKey, privateKey } = await generate(alg);
  const created = new Date();
  const kid = `${KID_PREFIX[alg]}-${created.toISOString().slice(0, 10).replace(/-/g, '')}-${randomBytes(4).toString('hex')}`;
  const public_jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  const private_jwk = { ...(await exportJWK(privateKey)), kid, alg };
  return { kid, alg, status, created_at: created.toISOString(), public_jwk, private_jwk };
}

/** One new key per algorithm, all with `status`. */
export function newKeyPerAlg(status: StoredKey['status'], algs: readonly SigningAlg[] = SIGNING_ALGS): Promise<StoredKey[]> {
  return Promise.all(algs.map((alg) => newStoredKey(status, alg)));
}

/** The key set is not in a state this phase can act on (lost key, manual edit). */
export class KeySetStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeySetStateError';
  }
}

/** Throws KeySetStateError unless every algorithm present has exactly one active key and EdDSA is present. */
export function checkKeySet(set: StoredKeySet): void {
  for (const alg of SIGNING_ALGS) {
    const ofAlg = set.keys.filter((k) => k.alg === alg);
    const active = ofAlg.filter((k) => k.status === 'active').length;
    if ((ofAlg.length > 0 || alg === 'EdDSA') && active !== 1) throw new KeySetStateError(`the key set must hold exactly one active ${alg} key, not ${active}`);
  }
}

/** Algorithms of SIGNING_ALGS without an active key in the set (an install from before ES256/RS256). */
export function missingAlgs(set: StoredKeySet): SigningAlg[] {
  return SIGNING_ALGS.filter((alg) => !set.keys.some((k) => k.alg === alg && k.status === 'active'));
}

/** Upgrade of an older set: each candidate becomes the active key of its algorithm when that has none; null when none is missing. */
export function withAllAlgs(set: StoredKeySet, candidates: StoredKey[]): StoredKeySet | null {
  const missing = missingAlgs(set);
  const added = candidates.filter((k) => missing.includes(k.alg)).map((k) => ({ ...k, status: 'active' as const }));
  if (!added.length) return null;
  return { ...set, keys: [...set.keys, ...added] };
}

/** What may be shown about a key (status page, logs, workflow history): never key material. */
export function keySummary(k: StoredKey) {
  return { kid: k.kid, alg: k.alg, status: k.status, created_at: k.created_at, publish_until: k.publish_until ?? null };
}

/**
 * The write side (rotation activities, the upgrade on load): read the set with its KV version,
 * apply a transform, write it back with check-and-set on that version. A concurrent writer makes
 * the write fail (400); we re-read and re-apply, so two writers never lose each other's change.
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
    checkKeySet(next);
    try {
      const version = await vault.kvPut(KEYSET_NAME, next as unknown as Record<string, unknown>, current.version);
      return { set: next, changed: true, version };
    } catch (err) {
      if (!isCasLost(err) || attempt >= maxAttempts) throw err;
    }
  }
}

function isCasLost(err: unknown): boolean {
  return err instanceof VaultRequestError && err.statusCode === 400 && /check-and-set/i.test(err.message);
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

interface LoadedKey {
  kid: string;
  alg: SigningAlg;
  status: StoredKey['status'];
  publicJwk: JWK;
  privateJwk: JWK;
  publicKey: KeyLike | Uint8Array;
  privateKey: KeyLike | Uint8Array;
}

const STATUS_ORDER: Record<StoredKey['status'], number> = { active: 0, next: 1, retiring: 2 };

/** Keys grouped by algorithm (SIGNING_ALGS order), within one: active, next, retiring (oldest first). */
function ordered(keys: Iterable<LoadedKey>): LoadedKey[] {
  return [...keys].sort((a, b) => SIGNING_ALGS.indexOf(a.alg) - SIGNING_ALGS.indexOf(b.alg) || STATUS_ORDER[a.status] - STATUS_ORDER[b.status]);
}

/**
 * The in-memory ring every API instance signs and verifies with. Readers get consistent
 * snapshots: a (re)load replaces all of its state at once. Keys of an algorithm this version does
 * not know are ignored (a newer instance may have added them).
 */
export class KeyRing {
  private keys = new Map<string, LoadedKey>();
  private activeKids = new Map<SigningAlg, string>();
  private timer: NodeJS.Timeout | undefined;
  private jwksCache: { keys: JWK[] } = { keys: [] };
  private providerCache: JWK[] = [];
  private fingerprint = '';
  private readonly listeners: Array<() => void> = [];
  private lastLoadOk = 0;

  constructor(
    private readonly vault: VaultClient,
    private readonly logger: Logger,
  ) {}

  /**
   * Loads the key set. With `createIfMissing` (the API's start): on a fresh install creates one
   * active key per algorithm (create-only write), and on a set from before ES256/RS256 adds the
   * missing algorithms' active keys (check-and-set write; a concurrent instance's win is re-read).
   */
  async load(createIfMissing: boolean): Promise<void> {
    let set = await this.vault.kvGet<StoredKeySet>(KEYSET_NAME);
    if ((!set || set.keys.length === 0) && createIfMissing) {
      const first = await newKeyPerAlg('active');
      try {
        await this.vault.kvPut(KEYSET_NAME, { keys: first }, 0);
        this.logger.info({ kids: first.map((k) => k.kid) }, 'created the first signing keys');
      } catch (err) {
        // Another instance won the create-only write: use its key set.
        if (!(err instanceof VaultRequestError && err.statusCode === 400)) throw err;
      }
      set = await this.vault.kvGet<StoredKeySet>(KEYSET_NAME);
    } else if (set && set.keys.length > 0 && createIfMissing && missingAlgs(set).length > 0) {
      set = await this.addMissingAlgs(set);
    }
    if (!set || set.keys.length === 0) throw new Error('no signing keys in Vault');
    await this.apply(set);
  }

  private async addMissingAlgs(set: StoredKeySet): Promise<StoredKeySet> {
    const candidates = await newKeyPerAlg('active', missingAlgs(set));
    try {
      const r = await updateKeySet(this.vault, (s) => withAllAlgs(s, candidates));
      if (r.changed) {
        const added = r.set.keys.filter((k) => candidates.some((c) => c.kid === k.kid));
        this.logger.info({ keys: added.map((k) => ({ kid: k.kid, alg: k.alg })) }, 'added signing keys for the missing algorithms');
      }
      return r.set;
    } catch (err) {
      // A Vault policy from before this version grants the API create-only: keep serving with what is there.
      if (!(err instanceof VaultRequestError && err.statusCode === 403)) throw err;
      this.logger.warn({ missing: missingAlgs(set) }, 'cannot add signing keys for the missing algorithms: the Vault policy lacks update on signing-keys');
      return set;
    }
  }

  private async apply(set: StoredKeySet) {
    const next = new Map<string, LoadedKey>();
    const active = new Map<SigningAlg, string>();
    for (const k of set.keys) {
      if (!isSigningAlg(k.alg)) continue;
      const existing = this.keys.get(k.kid);
      next.set(k.kid, {
        kid: k.kid,
        alg: k.alg,
        status: k.status,
        publicJwk: { ...k.public_jwk, kid: k.kid, alg: k.alg, use: 'sig' },
        privateJwk: { ...k.private_jwk, kid: k.kid, alg: k.alg, use: 'sig' },
        publicKey: existing?.alg === k.alg ? existing.publicKey : await importJWK(k.public_jwk, k.alg),
        privateKey: existing?.alg === k.alg ? existing.privateKey : await importJWK(k.private_jwk, k.alg),
      });
      if (k.status === 'active') {
        if (active.has(k.alg)) throw new Error(`signing key set has more than one active ${k.alg} key`);
        active.set(k.alg, k.kid);
      }
    }
    if (!active.has('EdDSA')) throw new Error('signing key set has no active EdDSA key');
    for (const [alg, kid] of active) {
      const before = this.activeKids.get(alg);
      if (before && before !== kid) this.logger.info({ kid, alg }, 'signing key switched');
    }
    const keys = ordered(next.values());
    const fingerprint = JSON.stringify([[...next.keys()].sort(), [...active.values()].sort()]);
    const changed = fingerprint !== this.fingerprint;
    this.keys = next;
    this.activeKids = active;
    this.jwksCache = { keys: keys.map((k) => ({ ...k.publicJwk })) };
    this.providerCache = keys.map((k) => k.privateJwk);
    this.fingerprint = fingerprint;
    this.lastLoadOk = Date.now();
    if (changed) this.notify();
  }

  private notify() {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, 'a signing-key change listener failed');
      }
    }
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

  /** The active EdDSA key: what our /v1 access tokens are signed with. */
  signingKey(): { kid: string; key: KeyLike | Uint8Array } {
    return this.signingKeyFor('EdDSA');
  }

  /** The active key of `alg`; throws when none is loaded. */
  signingKeyFor(alg: SigningAlg): { kid: string; key: KeyLike | Uint8Array } {
    const kid = this.activeKids.get(alg);
    const k = kid ? this.keys.get(kid) : undefined;
    if (!k) throw new Error(`no active ${alg} signing key loaded`);
    return { kid: k.kid, key: k.privateKey };
  }

  /** Public key for a kid from a token header, only when it is a key of `alg`; undefined otherwise. */
  verificationKey(kid: string, alg: SigningAlg): KeyLike | Uint8Array | undefined {
    const k = this.keys.get(kid);
    return k?.alg === alg ? k.publicKey : undefined;
  }

  /** Every public key of every algorithm (kid, alg, use 'sig'): what the JWKS serves. */
  jwks(): { keys: JWK[] } {
    return this.jwksCache;
  }

  /**
   * PRIVATE JWKs for oidc-provider's `jwks` option: per algorithm the active key first, then next,
   * then retiring keys (it signs with the first usable key of an alg and publishes all). Copies.
   */
  providerJwks(): JWK[] {
    return this.providerCache.map((k) => ({ ...k }));
  }

  /** Calls `listener` after every load whose kids or active kids differ from the loaded ring's before (the first load included). */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  loadedAt(): number {
    return this.lastLoadOk;
  }
}

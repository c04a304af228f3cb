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
import type { Logger } from './logger';
import { VaultRequestError, type VaultClient } from './vault';

export const SIGNING_ALG = 'EdDSA';
export const KEYSET_NAME = 'signing-keys';

export interface StoredKey {
  kid: string;
  alg: typeof SIGNING_ALG;
  status: 'next' | 'active' | 'retiring';
  created_at: string;
  /** When a retiring key may leave the JWKS (set when it stops signing). */
  publish_until?: string;
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
    this.timer = setInterval(async () => {
      try {
        await this.load(false);
        if (failing) this.logger.info('signing keys reloaded from Vault again');
        failing = false;
      } catch (err) {
        if (!failing) this.logger.warn({ err: (err as Error).message }, 'cannot reload signing keys; using cached keys');
        failing = true;
      }
    }, ms);
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

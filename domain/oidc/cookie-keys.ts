/**
 * The keys that sign the OpenID provider's cookies (its sign-in session and interaction cookies),
 * kept in Vault KV `oidc-cookie-keys`, newest first: the first signs, all verify, so a rotation
 * (a new key prepended, the oldest beyond COOKIE_KEYS_KEPT dropped) signs nobody out. The
 * key rotation's phase 2 rotates them (activities/key-rotation.ts); the API re-reads them when it
 * rebuilds the provider for the new signing keys. Created on
 * first start with a create-only write; a second instance starting at once reads the winner's.
 * Key material never leaves this module except to the provider, and is never logged.
 */
import { randomBytes } from 'node:crypto';
import { VaultRequestError, type VaultClient } from '../../platform/vault';

export const COOKIE_KEYSET = 'oidc-cookie-keys';
export const COOKIE_KEYS_KEPT = 3;

interface StoredCookieKeys {
  keys: Array<{ key: string; created_at: string; rotation_id?: string }>;
}

const newKey = (rotationId?: string) => ({
  key: randomBytes(32).toString('base64url'),
  created_at: new Date().toISOString(),
  ...(rotationId ? { rotation_id: rotationId } : {}),
});

export class OidcCookieKeys {
  constructor(private readonly vault: VaultClient) {}

  /** The keys, newest first; creates the first one on a fresh install. */
  async load(): Promise<string[]> {
    let set = await this.vault.kvGet<StoredCookieKeys>(COOKIE_KEYSET);
    if (!set?.keys?.length) {
      try {
        await this.vault.kvPut(COOKIE_KEYSET, { keys: [newKey()] }, 0);
      } catch (err) {
        if (!(err instanceof VaultRequestError && err.statusCode === 400)) throw err;
      }
      set = await this.vault.kvGet<StoredCookieKeys>(COOKIE_KEYSET);
    }
    if (!set?.keys?.length) throw new Error('no OpenID provider cookie keys in Vault');
    return set.keys.map((k) => k.key);
  }

  /**
   * Prepends a new key (check-and-set on the version read), keeping COOKIE_KEYS_KEPT; a retried
   * call of the same rotation finds its key in front and changes nothing. Returns whether it wrote.
   */
  async rotate(rotationId: string): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      const current = await this.vault.kvRead<StoredCookieKeys>(COOKIE_KEYSET);
      if (current?.data.keys?.[0]?.rotation_id === rotationId) return false;
      const keys = [newKey(rotationId), ...(current?.data.keys ?? [])].slice(0, COOKIE_KEYS_KEPT);
      try {
        await this.vault.kvPut(COOKIE_KEYSET, { keys }, current?.version ?? 0);
        return true;
      } catch (err) {
        const lost = err instanceof VaultRequestError && err.statusCode === 400;
        if (!lost || attempt >= 5) throw err;
      }
    }
  }
}

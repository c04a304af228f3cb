/**
 * The payload codec's keys. They live in Vault KV `<prefix>/codec-keys` as
 * `{ active_kid, keys: { kid: base64(32 bytes) } }`. The worker creates the set on a fresh install
 * (create-only write, cas=0); the API only reads it (its policy has `read` on that path) and waits
 * for it. Both re-read it periodically and at once when a payload names a key id they do not know,
 * so a rotation (`rotateCodecKeys`: a new active key, older keys kept for decryption) reaches every
 * process without a restart.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../logger';
import { VaultRequestError, type VaultClient } from '../vault';
import { CODEC_KEY_BYTES, CodecUnavailableError, type CodecKeySource } from './payload-codec';

export const CODEC_KEYSET_NAME = 'codec-keys';

/** Key ids of the fixed key the replay fixtures are encrypted with. A service refuses to load a
 * key set that contains one (see CodecKeyRing.apply), so that key can never protect real data. */
export const FIXTURE_KID_PREFIX = 'fixture-';

export interface CodecKeySet {
  active_kid: string;
  /** kid -> base64 of 32 random bytes. */
  keys: Record<string, string>;
  /** kid -> ISO time the key was created (informational, for pruning decisions). */
  created_at?: Record<string, string>;
}

function decodeKeySet(set: CodecKeySet): Map<string, Buffer> {
  if (!set || typeof set.active_kid !== 'string' || !set.keys || typeof set.keys !== 'object') throw new Error('codec key set is malformed');
  const keys = new Map<string, Buffer>();
  for (const [kid, b64] of Object.entries(set.keys)) {
    const key = Buffer.from(String(b64), 'base64');
    if (key.length !== CODEC_KEY_BYTES) throw new Error(`codec key ${kid} is not ${CODEC_KEY_BYTES} bytes`);
    keys.set(kid, key);
  }
  if (!keys.has(set.active_kid)) throw new Error(`codec key set has no key for its active kid ${set.active_kid}`);
  return keys;
}

/** Fixed keys (the replay fixtures' test key, unit tests). Never used by the services. */
export class StaticCodecKeys implements CodecKeySource {
  private readonly keys: Map<string, Buffer>;
  constructor(private readonly set: CodecKeySet) {
    this.keys = decodeKeySet(set);
  }
  toJSON() {
    return { activeKid: this.set.active_kid, keys: this.keys.size };
  }
  active() {
    return { kid: this.set.active_kid, key: this.keys.get(this.set.active_kid)! };
  }
  get(kid: string) {
    return this.keys.get(kid);
  }
}

export function newCodecKey(now = new Date()): { kid: string; key: string } {
  const kid = `c-${now.toISOString().slice(0, 10).replace(/-/g, '')}-${randomBytes(4).toString('hex')}`;
  return { kid, key: randomBytes(CODEC_KEY_BYTES).toString('base64') };
}

/** The key set in Vault, loaded into memory and refreshed. */
export class CodecKeyRing implements CodecKeySource {
  private keys = new Map<string, Buffer>();
  private activeKid: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private waitTimer: NodeJS.Timeout | undefined;
  private reloading: Promise<void> | undefined;
  private lastReload = 0;
  private loaded!: Promise<void>;
  private resolveLoaded!: () => void;
  private stopped = false;

  constructor(
    private readonly vault: VaultClient,
    private readonly logger: Logger,
  ) {
    this.resetLoaded();
  }

  private resetLoaded() {
    this.loaded = new Promise((r) => {
      this.resolveLoaded = r;
    });
  }

  /** Reads the key set; with `createIfMissing` (worker) creates it on a fresh install. Returns
   * false when it does not exist (and was not created). */
  async load(createIfMissing: boolean): Promise<boolean> {
    let set = await this.vault.kvGet<CodecKeySet>(CODEC_KEYSET_NAME);
    if (!set && createIfMissing) {
      const first = newCodecKey();
      try {
        await this.vault.kvPut(
          CODEC_KEYSET_NAME,
          { active_kid: first.kid, keys: { [first.kid]: first.key }, created_at: { [first.kid]: new Date().toISOString() } },
          0,
        );
        this.logger.info({ kid: first.kid }, 'created the first payload codec key');
      } catch (err) {
        // Another worker won the create-only write: use its key set.
        if (!(err instanceof VaultRequestError && err.statusCode === 400)) throw err;
      }
      set = await this.vault.kvGet<CodecKeySet>(CODEC_KEYSET_NAME);
    }
    if (!set) return false;
    this.apply(set);
    return true;
  }

  private apply(set: CodecKeySet) {
    const keys = decodeKeySet(set);
    for (const kid of keys.keys()) {
      if (kid.startsWith(FIXTURE_KID_PREFIX))
        throw new Error(`codec key set holds the replay-fixture key ${kid}; refusing to use a key that is public in the repository`);
    }
    if (this.activeKid && set.active_kid !== this.activeKid) this.logger.info({ kid: set.active_kid, keys: keys.size }, 'payload codec key switched');
    this.keys = keys;
    this.activeKid = set.active_kid;
    this.resolveLoaded();
  }

  /** API: loads in the background until the worker has created the key set, then refreshes. */
  loadInBackground(refreshMs: number, retryMs = 1000) {
    let warned = false;
    const attempt = async () => {
      if (this.stopped) return;
      try {
        if (await this.load(false)) {
          if (warned) this.logger.info('payload codec keys loaded');
          this.startRefresh(refreshMs);
          return;
        }
        if (!warned) this.logger.warn('payload codec keys not in Vault yet (the worker creates them); retrying');
      } catch (err) {
        if (!warned) this.logger.warn({ err: (err as Error).message }, 'cannot load payload codec keys yet; retrying');
      }
      warned = true;
      this.waitTimer = setTimeout(() => void attempt(), retryMs);
      this.waitTimer.unref();
    };
    void attempt();
  }

  /** Re-reads the key set every `ms`; a failed read keeps the cached keys (logged once). */
  startRefresh(ms: number) {
    if (this.timer || this.stopped) return;
    let failing = false;
    this.timer = setInterval(
      () =>
        void (async () => {
          try {
            await this.reload();
            if (failing) this.logger.info('payload codec keys reloaded from Vault again');
            failing = false;
          } catch (err) {
            if (!failing) this.logger.warn({ err: (err as Error).message }, 'cannot reload payload codec keys; using cached keys');
            failing = true;
          }
        })(),
      ms,
    );
    this.timer.unref();
  }

  private reload(): Promise<void> {
    if (!this.reloading) {
      this.reloading = this.load(false)
        .then(() => undefined)
        .finally(() => {
          this.lastReload = Date.now();
          this.reloading = undefined;
        });
    }
    return this.reloading;
  }

  async refreshFor(kid: string): Promise<void> {
    if (this.keys.has(kid)) return;
    // At most one forced reload every two seconds, however many unknown payloads arrive.
    if (Date.now() - this.lastReload < 2000 && !this.reloading) return;
    try {
      await this.reload();
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, kid }, 'cannot reload payload codec keys for an unknown key id');
    }
  }

  async ready(timeoutMs: number): Promise<void> {
    if (this.activeKid) return;
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, rej) => {
      t = setTimeout(() => rej(new CodecUnavailableError(new Error('payload codec keys not loaded'))), timeoutMs);
    });
    try {
      await Promise.race([this.loaded, timeout]);
    } finally {
      clearTimeout(t);
    }
  }

  active(): { kid: string; key: Buffer } {
    const key = this.activeKid ? this.keys.get(this.activeKid) : undefined;
    if (!key) throw new CodecUnavailableError(new Error('payload codec keys not loaded'));
    return { kid: this.activeKid!, key };
  }

  get(kid: string): Buffer | undefined {
    return this.keys.get(kid);
  }

  toJSON() {
    return { activeKid: this.activeKid, keys: this.keys.size };
  }

  kids(): { active: string | undefined; all: string[] } {
    return { active: this.activeKid, all: [...this.keys.keys()] };
  }

  stop() {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.waitTimer);
  }
}

/**
 * Rotation: adds a new key and makes it active; older keys stay so existing histories still
 * decrypt. Check-and-set on the version read, so two rotations cannot overwrite each other. Needs
 * `update` on the path (the worker's policy). Returns the new key id.
 */
export async function rotateCodecKeys(vault: VaultClient, kv: { VAULT_KV_MOUNT: string; VAULT_KV_PREFIX: string }): Promise<string> {
  const res = await vault.read(`${kv.VAULT_KV_MOUNT}/data/${kv.VAULT_KV_PREFIX}/${CODEC_KEYSET_NAME}`);
  const current = res?.data?.data as CodecKeySet | undefined;
  const version = res?.data?.metadata?.version;
  if (!current || version === undefined) throw new Error('no codec key set to rotate');
  const next = newCodecKey();
  const set: CodecKeySet = {
    active_kid: next.kid,
    keys: { ...current.keys, [next.kid]: next.key },
    created_at: { ...(current.created_at ?? {}), [next.kid]: new Date().toISOString() },
  };
  await vault.kvPut(CODEC_KEYSET_NAME, set as unknown as Record<string, unknown>, version);
  return next.kid;
}

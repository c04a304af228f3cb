/**
 * The Temporal payload codec: every payload the client and the worker send (workflow inputs and
 * results, activity arguments and results, signals, updates, queries, memo, and failure messages
 * through platform/temporal/failure-converter.ts) is encrypted with AES-256-GCM before it reaches the Temporal
 * server, so workflow histories at rest hold ciphertext. Search attributes are not payloads that
 * pass through a codec: they stay plaintext and carry ids only.
 *
 * Keys live in Vault KV `<prefix>/codec-keys` as `{ active_kid, keys: { kid: base64(32 bytes) } }`.
 * The worker creates the set on a fresh install (create-only write, cas=0); the API only reads it
 * (its policy has `read` on that path) and waits for it. Both re-read it periodically and at once
 * when a payload names a key id they do not know, so a rotation (`rotateCodecKeys`: a new active
 * key, older keys kept for decryption) reaches every process without a restart.
 *
 * Wire format of an encrypted payload:
 *   metadata: encoding=binary/encrypted, encryption-cipher=AES-256-GCM, encryption-key-id=<kid>
 *   data:     0x01 | iv (12 bytes) | tag (16 bytes) | ciphertext of the protobuf-encoded original
 * The key id is bound as additional authenticated data, so a payload relabelled with another key
 * id fails to decrypt. Error messages name key ids and counts only, never payload contents.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { DependencyError } from '../errors';
import type { Logger } from '../logger';
import { VaultRequestError, type VaultClient } from '../vault';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const CIPHER_NAME = 'AES-256-GCM';
export const META_KEY_ID = 'encryption-key-id';
export const META_CIPHER = 'encryption-cipher';
export const CODEC_KEYSET_NAME = 'codec-keys';
/** Key ids of the fixed key the replay fixtures are encrypted with. A service refuses to load a
 * key set that contains one (see CodecKeyRing.apply), so that key can never protect real data. */
export const FIXTURE_KID_PREFIX = 'fixture-';

const FORMAT_VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();
const aad = (kid: string) => Buffer.from(`authflow-payload-v${FORMAT_VERSION}:${kid}`, 'utf8');

/** A payload cannot be decoded: unknown key id, tampered or truncated data. Names no content. */
export class CodecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CodecError';
  }
}

/** The key set has not been loaded yet (fresh install, Vault unreachable): 503 for clients. */
export class CodecUnavailableError extends DependencyError {
  constructor(cause?: unknown) {
    super('vault', cause);
    this.name = 'CodecUnavailableError';
  }
}

export interface CodecKeySet {
  active_kid: string;
  /** kid -> base64 of 32 random bytes. */
  keys: Record<string, string>;
  /** kid -> ISO time the key was created (informational, for pruning decisions). */
  created_at?: Record<string, string>;
}

export interface CodecKeySource {
  active(): { kid: string; key: Buffer };
  get(kid: string): Buffer | undefined;
  /** Waits for the first load (API on a fresh install); throws CodecUnavailableError on timeout. */
  ready?(timeoutMs: number): Promise<void>;
  /** Reloads the key set once when a payload names an unknown key id (rotation elsewhere). */
  refreshFor?(kid: string): Promise<void>;
}

export function metaString(p: Payload, key: string): string | undefined {
  const v = p.metadata?.[key];
  return v ? fromUtf8.decode(v) : undefined;
}

export function isEncrypted(p: Payload): boolean {
  return metaString(p, 'encoding') === ENCRYPTED_ENCODING;
}

export function encryptPayload(p: Payload, kid: string, key: Buffer): Payload {
  const plain = temporal.api.common.v1.Payload.encode({ metadata: p.metadata ?? {}, data: p.data ?? new Uint8Array() }).finish();
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad(kid));
  const ct = Buffer.concat([cipher.update(plain), cipher.final()]);
  const data = Buffer.concat([Buffer.from([FORMAT_VERSION]), iv, cipher.getAuthTag(), ct]);
  return {
    metadata: {
      encoding: utf8.encode(ENCRYPTED_ENCODING),
      [META_CIPHER]: utf8.encode(CIPHER_NAME),
      [META_KEY_ID]: utf8.encode(kid),
    },
    data: new Uint8Array(data),
  };
}

export function decryptPayload(p: Payload, key: Buffer): Payload {
  const kid = metaString(p, META_KEY_ID) ?? '';
  const cipherName = metaString(p, META_CIPHER);
  if (cipherName !== CIPHER_NAME) throw new CodecError(`unsupported payload cipher ${cipherName ?? '(none)'}`);
  const data = Buffer.from(p.data ?? new Uint8Array());
  if (data.length < 1 + IV_BYTES + TAG_BYTES || data[0] !== FORMAT_VERSION) throw new CodecError(`malformed encrypted payload (key ${kid})`);
  const iv = data.subarray(1, 1 + IV_BYTES);
  const tag = data.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
  const ct = data.subarray(1 + IV_BYTES + TAG_BYTES);
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(aad(kid));
    decipher.setAuthTag(tag);
    plain = Buffer.concat([decipher.update(ct), decipher.final()]);
  } catch {
    throw new CodecError(`encrypted payload does not authenticate with key ${kid}`);
  }
  const inner = temporal.api.common.v1.Payload.decode(plain);
  return { metadata: inner.metadata, data: inner.data };
}

/** AES-256-GCM payload codec; payloads that are not encrypted decode unchanged (older histories,
 * search attributes), payloads that already are encrypted encode unchanged. */
export class AesGcmPayloadCodec implements PayloadCodec {
  constructor(private readonly keys: CodecKeySource) {}

  /** What a logger that dumps options (the SDK logs worker options at debug) sees: no keys. */
  toJSON() {
    return { codec: CIPHER_NAME };
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    if (payloads.length === 0) return payloads;
    await this.keys.ready?.(5000);
    const { kid, key } = this.keys.active();
    return payloads.map((p) => (isEncrypted(p) ? p : encryptPayload(p, kid, key)));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    const out: Payload[] = [];
    for (const p of payloads) {
      if (!isEncrypted(p)) {
        out.push(p);
        continue;
      }
      const kid = metaString(p, META_KEY_ID);
      if (!kid) throw new CodecError('encrypted payload has no key id');
      let key = this.keys.get(kid);
      if (!key) {
        await this.keys.ready?.(5000);
        key = this.keys.get(kid);
      }
      if (!key && this.keys.refreshFor) {
        await this.keys.refreshFor(kid);
        key = this.keys.get(kid);
      }
      if (!key) throw new CodecError(`unknown payload key id ${kid}`);
      out.push(decryptPayload(p, key));
    }
    return out;
  }
}

/** Proto-JSON form of a payload (what the codec endpoint, the UI and the CLI exchange): metadata
 * values and data in base64. Written here rather than with @temporalio/common's proto-utils, whose
 * protobufjs-based helpers break when npm installs two copies of protobufjs (as it does here). */
export interface JsonPayload {
  metadata?: Record<string, string> | null;
  data?: string | null;
}

export function payloadFromJson(j: JsonPayload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(j.metadata ?? {})) metadata[k] = new Uint8Array(Buffer.from(v, 'base64'));
  return { metadata, data: new Uint8Array(Buffer.from(j.data ?? '', 'base64')) };
}

export function payloadToJson(p: Payload): JsonPayload {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) metadata[k] = Buffer.from(v).toString('base64');
  return { metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') };
}

/** Path of the failure converter that moves failure messages and stack traces into an (encrypted)
 * payload; it is loaded inside the workflow sandbox too, hence a path and a separate module. */
export const FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');

/** The production data converter: the default payload converter, failure messages as payloads,
 * and the encrypting codec. Used by the API's client, the worker, the recorder and the replayer. */
export function dataConverterWith(codec: PayloadCodec): DataConverter {
  return { payloadCodecs: [codec], failureConverterPath: FAILURE_CONVERTER_PATH };
}

function decodeKeySet(set: CodecKeySet): Map<string, Buffer> {
  if (!set || typeof set.active_kid !== 'string' || !set.keys || typeof set.keys !== 'object') throw new Error('codec key set is malformed');
  const keys = new Map<string, Buffer>();
  for (const [kid, b64] of Object.entries(set.keys)) {
    const key = Buffer.from(String(b64), 'base64');
    if (key.length !== KEY_BYTES) throw new Error(`codec key ${kid} is not ${KEY_BYTES} bytes`);
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
  return { kid, key: randomBytes(KEY_BYTES).toString('base64') };
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
        await this.vault.kvPut(CODEC_KEYSET_NAME, { active_kid: first.kid, keys: { [first.kid]: first.key }, created_at: { [first.kid]: new Date().toISOString() } }, 0);
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
      if (kid.startsWith(FIXTURE_KID_PREFIX)) throw new Error(`codec key set holds the replay-fixture key ${kid}; refusing to use a key that is public in the repository`);
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
    this.timer = setInterval(async () => {
      try {
        await this.reload();
        if (failing) this.logger.info('payload codec keys reloaded from Vault again');
        failing = false;
      } catch (err) {
        if (!failing) this.logger.warn({ err: (err as Error).message }, 'cannot reload payload codec keys; using cached keys');
        failing = true;
      }
    }, ms);
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
  const version = res?.data?.metadata?.version as number | undefined;
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

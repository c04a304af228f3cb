/**
 * The Temporal payload codec: every payload the client and the worker send (workflow inputs and
 * results, activity arguments and results, signals, updates, queries, memo, and failure messages
 * through platform/temporal/failure-converter.ts) is encrypted with AES-256-GCM before it reaches the Temporal
 * server, so workflow histories at rest hold ciphertext. Search attributes are not payloads that
 * pass through a codec: they stay plaintext and carry ids only.
 * The keys come from a `CodecKeySource` (platform/temporal/codec-keys.ts: the Vault-held key ring).
 *
 * Wire format of an encrypted payload:
 *   metadata: encoding=binary/encrypted, encryption-cipher=AES-256-GCM, encryption-key-id=<kid>
 *   data:     0x01 | iv (12 bytes) | tag (16 bytes) | ciphertext of the protobuf-encoded original
 * The key id is bound as additional authenticated data, so a payload relabelled with another key
 * id fails to decrypt. Error messages name key ids and counts only, never payload contents.
 */
import { AES_GCM_IV_BYTES, AES_GCM_TAG_BYTES, openAesGcm, sealAesGcm } from '../../crypto/aes-gcm';
import { ApplicationFailure, type Payload, type PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { DependencyError } from '../errors';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const CIPHER_NAME = 'AES-256-GCM';
export const META_KEY_ID = 'encryption-key-id';
export const META_CIPHER = 'encryption-cipher';
/** ApplicationFailure type of a refused unencrypted payload (see AesGcmPayloadCodec.decode). */
export const PLAINTEXT_REFUSED = 'PlaintextPayloadRefused';
const FORMAT_VERSION = 1;
const IV_BYTES = AES_GCM_IV_BYTES;
const TAG_BYTES = AES_GCM_TAG_BYTES;
/** A codec key is 256 bits. */
export const CODEC_KEY_BYTES = 32;

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
  const { iv, ciphertext, tag } = sealAesGcm(key, plain, aad(kid));
  const data = Buffer.concat([Buffer.from([FORMAT_VERSION]), iv, tag, ciphertext]);
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
    plain = openAesGcm(key, iv, ct, tag, aad(kid));
  } catch {
    throw new CodecError(`encrypted payload does not authenticate with key ${kid}`);
  }
  const inner = temporal.api.common.v1.Payload.decode(plain);
  return { metadata: inner.metadata, data: inner.data };
}

/**
 * What decode does with a payload that is not encrypted:
 *  - `refuse` (the API's Temporal client, the worker, every tool's client): a non-retryable
 *    ApplicationFailure (type PlaintextPayloadRefused). Everything our processes send is
 *    encrypted, so plaintext input was written by someone who reached the Temporal server without
 *    the codec keys (a plain client started `notificationWorkflow`, say): the workflow task fails
 *    and the workflow never runs an activity; an activity fails without a retry.
 *  - `pass`: returned unchanged. Only for the codec endpoint (api/routes/codec.ts), which the
 *    Temporal UI and CLI hand every payload they show, including Temporal's own plaintext ones.
 * Search attributes and headers never pass through the codec (the SDK skips them), and failure
 * messages arrive as encrypted payloads (platform/temporal/failure-converter.ts), or as plain
 * strings that are not payloads (timeouts, terminations), so neither needs an exception.
 */
export type PlaintextPolicy = 'refuse' | 'pass';

/** AES-256-GCM payload codec; payloads that already are encrypted encode unchanged. */
export class AesGcmPayloadCodec implements PayloadCodec {
  constructor(
    private readonly keys: CodecKeySource,
    private readonly opts: { plaintext: PlaintextPolicy } = { plaintext: 'refuse' },
  ) {}

  /** What a logger that dumps options (the SDK logs worker options at debug) sees: no keys. */
  toJSON() {
    return { codec: CIPHER_NAME, plaintext: this.opts.plaintext };
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
        if (this.opts.plaintext === 'refuse') throw plaintextRefused(p);
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

/** The failure for an unencrypted payload: names its encoding (cut short), never its content. */
export function plaintextRefused(p: Payload): ApplicationFailure {
  const encoding = (metaString(p, 'encoding') ?? '(none)').slice(0, 40).replace(/[^\x20-\x7e]/g, '?');
  return ApplicationFailure.create({
    type: PLAINTEXT_REFUSED,
    message: `refusing an unencrypted payload (encoding ${encoding}): whoever wrote it does not hold the payload codec keys`,
    nonRetryable: true,
  });
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

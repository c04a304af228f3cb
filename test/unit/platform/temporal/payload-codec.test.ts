/** The payload codec: AES-256-GCM, key id in the metadata, rotation, tampering, key-set guards. */
import { randomBytes } from 'node:crypto';
import { ApplicationFailure, defaultPayloadConverter, type Payload } from '@temporalio/common';
import { AesGcmPayloadCodec, CodecError, ENCRYPTED_ENCODING, META_KEY_ID, metaString, PLAINTEXT_REFUSED } from '../../../../platform/temporal/payload-codec';
import { CodecKeyRing, CodecKeySet, FIXTURE_KID_PREFIX, newCodecKey, StaticCodecKeys } from '../../../../platform/temporal/codec-keys';
import { failureConverter } from '../../../../platform/temporal/failure-converter';
import { createLogger } from '../../../../platform/logger';

const keySet = (...kids: string[]): CodecKeySet => ({
  active_kid: kids[kids.length - 1],
  keys: Object.fromEntries(kids.map((k) => [k, randomBytes(32).toString('base64')])),
});
const codecFor = (set: CodecKeySet) => new AesGcmPayloadCodec(new StaticCodecKeys(set));
const secretInput = { userId: 'u-1', email: 'alice@example.test', code: '12345678' };
const text = (p: Payload) =>
  Buffer.from(p.data ?? []).toString('latin1') +
  JSON.stringify(Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString()])));

describe('the payload codec', () => {
  test('encrypts a payload so neither its data nor its encoding is readable, and decrypts it back', async () => {
    const set = keySet('c-1');
    const codec = codecFor(set);
    const plain = defaultPayloadConverter.toPayload(secretInput);
    const [enc] = await codec.encode([plain]);
    expect(metaString(enc, 'encoding')).toBe(ENCRYPTED_ENCODING);
    expect(metaString(enc, META_KEY_ID)).toBe('c-1');
    expect(text(enc)).not.toContain('alice@example.test');
    expect(text(enc)).not.toContain('12345678');
    expect(text(enc)).not.toContain('json/plain');
    const [dec] = await codec.decode([enc]);
    expect(defaultPayloadConverter.fromPayload(dec)).toEqual(secretInput);
    expect(metaString(dec, 'encoding')).toBe('json/plain');
  });

  test('two encryptions of the same payload differ (random IV)', async () => {
    const codec = codecFor(keySet('c-1'));
    const plain = defaultPayloadConverter.toPayload(secretInput);
    const [a, b] = await codec.encode([plain, plain]);
    expect(Buffer.from(a.data!).equals(Buffer.from(b.data!))).toBe(false);
  });

  test('after a rotation new payloads use the new key and payloads under the old key still decrypt', async () => {
    const old = keySet('c-old');
    const rotated: CodecKeySet = { active_kid: 'c-new', keys: { ...old.keys, 'c-new': randomBytes(32).toString('base64') } };
    const [underOld] = await codecFor(old).encode([defaultPayloadConverter.toPayload('before')]);
    const codec = codecFor(rotated);
    const [underNew] = await codec.encode([defaultPayloadConverter.toPayload('after')]);
    expect(metaString(underNew, META_KEY_ID)).toBe('c-new');
    const decoded = await codec.decode([underOld, underNew]);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual(['before', 'after']);
    // A process that has not seen the rotation yet cannot read the new key's payloads.
    await expect(codecFor(old).decode([underNew])).rejects.toThrow(/unknown payload key id c-new/);
  });

  test('tampered ciphertext and a relabelled key id are rejected without revealing content', async () => {
    const set: CodecKeySet = { active_kid: 'c-a', keys: { 'c-a': randomBytes(32).toString('base64'), 'c-b': randomBytes(32).toString('base64') } };
    const codec = codecFor(set);
    const [enc] = await codec.encode([defaultPayloadConverter.toPayload(secretInput)]);
    const flipped = Buffer.from(enc.data!);
    flipped[flipped.length - 1] ^= 1;
    const err = await codec.decode([{ ...enc, data: flipped }]).catch((e) => e);
    expect(err).toBeInstanceOf(CodecError);
    expect(String(err.message)).not.toContain('alice');
    const relabelled = { ...enc, metadata: { ...enc.metadata, [META_KEY_ID]: Buffer.from('c-b') } };
    await expect(codec.decode([relabelled])).rejects.toBeInstanceOf(CodecError);
    await expect(codec.decode([{ ...enc, data: flipped.subarray(0, 10) }])).rejects.toBeInstanceOf(CodecError);
  });

  test('plain payloads are refused (non-retryable, content not named); encrypted payloads are not encrypted twice', async () => {
    const codec = codecFor(keySet('c-1'));
    const plain = defaultPayloadConverter.toPayload({ n: 1, email: 'alice@example.com' });
    const err = await codec.decode([plain]).catch((e) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err.type).toBe(PLAINTEXT_REFUSED);
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toContain('json/plain');
    expect(err.message).not.toContain('alice');
    // A payload without metadata at all is refused too.
    await expect(codec.decode([{ data: plain.data }])).rejects.toBeInstanceOf(ApplicationFailure);
    const [enc] = await codec.encode([plain]);
    const [again] = await codec.encode([enc]);
    expect(again).toBe(enc);
  });

  test("the codec endpoint's policy passes plain payloads through unchanged (the UI hands it every payload)", async () => {
    const codec = new AesGcmPayloadCodec(new StaticCodecKeys(keySet('c-1')), { plaintext: 'pass' });
    const plain = defaultPayloadConverter.toPayload({ n: 1 });
    const [enc] = await codec.encode([plain]);
    expect(await codec.decode([plain, enc])).toEqual([plain, plain]);
  });

  test('a key set with a wrong-sized key or without its active key is refused', () => {
    expect(() => new StaticCodecKeys({ active_kid: 'x', keys: { x: randomBytes(16).toString('base64') } })).toThrow(/32 bytes/);
    expect(() => new StaticCodecKeys({ active_kid: 'y', keys: { x: randomBytes(32).toString('base64') } })).toThrow(/active kid/);
  });

  test('new key ids are dated and unique', () => {
    const a = newCodecKey(new Date('2026-01-02T00:00:00Z'));
    const b = newCodecKey(new Date('2026-01-02T00:00:00Z'));
    expect(a.kid).toMatch(/^c-20260102-[0-9a-f]{8}$/);
    expect(a.kid).not.toBe(b.kid);
    expect(Buffer.from(a.key, 'base64')).toHaveLength(32);
  });

  test('a service refuses a Vault key set that holds the public replay-fixture key', async () => {
    const set = keySet(`${FIXTURE_KID_PREFIX}replay-v1`);
    const vault = { kvGet: async () => set, kvPut: async () => 1 };
    const ring = new CodecKeyRing(vault as never, createLogger('silent', 'test'));
    await expect(ring.load(false)).rejects.toThrow(/replay-fixture key/);
  });

  test('the key ring loads from Vault, reloads once for an unknown key id and then decrypts', async () => {
    let set = keySet('c-1');
    const vault = { kvGet: async () => set, kvPut: async () => 1 };
    const ring = new CodecKeyRing(vault as never, createLogger('silent', 'test'));
    await ring.load(false);
    const codec = new AesGcmPayloadCodec(ring);
    set = { active_kid: 'c-2', keys: { ...set.keys, 'c-2': randomBytes(32).toString('base64') } };
    const [enc] = await codecFor(set).encode([defaultPayloadConverter.toPayload('rotated elsewhere')]);
    const [dec] = await codec.decode([enc]);
    expect(defaultPayloadConverter.fromPayload(dec)).toBe('rotated elsewhere');
    expect(ring.kids().active).toBe('c-2');
    ring.stop();
  });

  test('a codec or key ring dumped into a log (the SDK logs worker options at debug) shows no key material', async () => {
    const set = keySet('c-1');
    const statics = new StaticCodecKeys(set);
    const vault = { kvGet: async () => set, kvPut: async () => 1 };
    const ring = new CodecKeyRing(vault as never, createLogger('silent', 'test'));
    await ring.load(false);
    for (const o of [new AesGcmPayloadCodec(statics), new AesGcmPayloadCodec(ring), statics, ring]) {
      expect(JSON.stringify(o)).not.toContain(set.keys['c-1']);
      expect(JSON.stringify({ dataConverter: { payloadCodecs: [o] } })).not.toContain(set.keys['c-1'].slice(0, 12));
    }
    ring.stop();
  });

  test('failure messages and stack traces go into an encoded attribute (which the codec encrypts)', () => {
    const failure = failureConverter.errorToFailure(new Error('550 mailbox alice@example.test unavailable'), defaultPayloadConverter);
    expect(failure.message).not.toContain('alice@example.test');
    expect(failure.stackTrace ?? '').not.toContain('alice@example.test');
    expect(defaultPayloadConverter.fromPayload<{ message: string }>(failure.encodedAttributes!).message).toContain('alice@example.test');
  });
});

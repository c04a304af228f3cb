/** The one DPoP proof verifier (crypto/dpop.ts, RFC 9449 §4.3): every refusal on its own, with
 * proofs made by jose as a client would make them. */
import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import { accessTokenHash, DpopProofError, normaliseHtu, verifyDpopProof } from '../../../crypto/dpop';

const URL_ = 'http://localhost:3000/v1/auth/refresh';
const NOW = 1_800_000_000;
const OPTS = { iatWindow: 60, now: NOW };

interface Key {
  alg: 'ES256' | 'EdDSA';
  privateKey: KeyLike;
  jwk: JWK;
  privateJwk: JWK;
}

async function key(alg: 'ES256' | 'EdDSA'): Promise<Key> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { crv: alg === 'EdDSA' ? 'Ed25519' : undefined, extractable: true });
  return { alg, privateKey, jwk: await exportJWK(publicKey), privateJwk: await exportJWK(privateKey) };
}

async function proof(k: Key, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, signWith?: KeyLike): Promise<string> {
  const payload: Record<string, unknown> = { jti: randomUUID(), htm: 'POST', htu: URL_, iat: NOW, ...claims };
  for (const c of Object.keys(payload)) if (payload[c] === undefined) delete payload[c];
  return new SignJWT(payload).setProtectedHeader({ alg: k.alg, typ: 'dpop+jwt', jwk: k.jwk, ...header }).sign(signWith ?? k.privateKey);
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DpopProofError);
    return (err as DpopProofError).reason;
  }
  throw new Error('the proof was accepted');
}

let es: Key;
let ed: Key;
let other: Key;
beforeAll(async () => {
  [es, ed, other] = await Promise.all([key('ES256'), key('EdDSA'), key('ES256')]);
});

test('a proof of each allowed algorithm verifies and names its key by its RFC 7638 thumbprint', async () => {
  for (const k of [es, ed]) {
    const jti = randomUUID();
    const v = await verifyDpopProof(await proof(k, { jti }), { method: 'POST', url: URL_ }, OPTS);
    expect(v).toEqual({ jkt: await calculateJwkThumbprint(k.jwk, 'sha256'), jti, iat: NOW });
  }
});

test('header refusals: typ, alg, missing or private jwk, a key of the wrong type', async () => {
  const req = { method: 'POST', url: URL_ };
  expect(await refusal(verifyDpopProof(await proof(es, {}, { typ: 'JWT' }), req, OPTS))).toMatch(/typ/);
  const hs = new TextEncoder().encode('x'.repeat(32));
  const hsProof = await new SignJWT({ jti: randomUUID(), htm: 'POST', htu: URL_, iat: NOW })
    .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: es.jwk })
    .sign(hs);
  expect(await refusal(verifyDpopProof(hsProof, req, OPTS))).toMatch(/alg/);
  expect(await refusal(verifyDpopProof(await proof(es, {}, { jwk: undefined }), req, OPTS))).toMatch(/jwk/);
  expect(await refusal(verifyDpopProof(await proof(es, {}, { jwk: es.privateJwk }), req, OPTS))).toMatch(/public/);
  expect(await refusal(verifyDpopProof(await proof(es, {}, { alg: 'EdDSA' }, ed.privateKey), req, OPTS))).toMatch(/Ed25519/);
});

test('a proof signed by another key than its jwk is refused', async () => {
  const forged = await proof(es, {}, {}, other.privateKey);
  expect(await refusal(verifyDpopProof(forged, { method: 'POST', url: URL_ }, OPTS))).toMatch(/signature/);
});

test('payload refusals: jti, htm, htu, iat window, ath', async () => {
  const req = { method: 'POST', url: URL_ };
  expect(await refusal(verifyDpopProof(await proof(es, { jti: undefined }), req, OPTS))).toMatch(/jti/);
  expect(await refusal(verifyDpopProof(await proof(es, { jti: 'short' }), req, OPTS))).toMatch(/jti/);
  expect(await refusal(verifyDpopProof(await proof(es, { htm: 'GET' }), req, OPTS))).toMatch(/htm/);
  expect(await refusal(verifyDpopProof(await proof(es, { htu: 'http://localhost:3000/v1/auth/login' }), req, OPTS))).toMatch(/htu/);
  expect(await refusal(verifyDpopProof(await proof(es, { htu: 'http://evil.example/v1/auth/refresh' }), req, OPTS))).toMatch(/htu/);
  expect(await refusal(verifyDpopProof(await proof(es, { iat: NOW - 61 }), req, OPTS))).toMatch(/iat/);
  expect(await refusal(verifyDpopProof(await proof(es, { iat: NOW + 61 }), req, OPTS))).toMatch(/iat/);
  expect(await refusal(verifyDpopProof(await proof(es, { iat: String(NOW) }), req, OPTS))).toMatch(/iat/);
  const token = 'a.b.c';
  const resource = { method: 'GET', url: 'http://localhost:3000/v1/me', accessToken: token };
  const base = { htm: 'GET', htu: 'http://localhost:3000/v1/me' };
  expect(await refusal(verifyDpopProof(await proof(es, base), resource, OPTS))).toMatch(/ath/);
  expect(await refusal(verifyDpopProof(await proof(es, { ...base, ath: accessTokenHash('x.y.z') }), resource, OPTS))).toMatch(/ath/);
  await expect(verifyDpopProof(await proof(es, { ...base, ath: accessTokenHash(token) }), resource, OPTS)).resolves.toMatchObject({ iat: NOW });
});

test('not a compact JWT, or too long, is refused before any parsing', async () => {
  const req = { method: 'POST', url: URL_ };
  expect(await refusal(verifyDpopProof('not-a-jwt', req, OPTS))).toMatch(/compact/);
  expect(await refusal(verifyDpopProof(`${'a'.repeat(9000)}.b.c`, req, OPTS))).toMatch(/compact/);
});

test('htu comparison ignores query and fragment and the default port, nothing else', () => {
  expect(normaliseHtu('http://LOCALHOST:80/v1/x?y=1#z')).toBe('http://localhost/v1/x');
  expect(normaliseHtu('https://a.example:443/p')).toBe('https://a.example/p');
  expect(normaliseHtu('ftp://a.example/p')).toBeUndefined();
  expect(normaliseHtu('not a url')).toBeUndefined();
});

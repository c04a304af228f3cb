/** DPoP (RFC 9449) client side for tests: a device key and proofs made with it (jose). */
import { createHash, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import { api, apiUrl } from './stack';

export interface DeviceKey {
  alg: 'ES256' | 'EdDSA';
  privateKey: KeyLike;
  jwk: JWK;
  jkt: string;
}

export async function deviceKey(alg: 'ES256' | 'EdDSA' = 'ES256'): Promise<DeviceKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
  const jwk = await exportJWK(publicKey);
  return { alg, privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') };
}

export const ath = (token: string) => createHash('sha256').update(token).digest('base64url');

export interface ProofOptions {
  /** Overrides of the payload (htm, htu, iat, jti, ath, nonce); `undefined` values drop a claim. */
  claims?: Record<string, unknown>;
  /** Overrides of the protected header. */
  header?: Record<string, unknown>;
  /** The access token the proof is bound to (adds `ath`). */
  accessToken?: string;
}

/** A proof for `method` on the API's `path` (htu = the stack's public URL + path). */
export async function proof(key: DeviceKey, method: string, path: string, opts: ProofOptions = {}): Promise<string> {
  const payload: Record<string, unknown> = {
    jti: randomUUID(),
    htm: method,
    htu: `${apiUrl()}${path}`,
    iat: Math.floor(Date.now() / 1000),
    ...(opts.accessToken ? { ath: ath(opts.accessToken) } : {}),
    ...opts.claims,
  };
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
  return new SignJWT(payload).setProtectedHeader({ alg: key.alg, typ: 'dpop+jwt', jwk: key.jwk, ...opts.header }).sign(key.privateKey);
}

/** POST to a token endpoint with a fresh proof of `key` (or none when `key` is undefined). */
export async function dpopPost(path: string, body: unknown, key: DeviceKey | undefined, headers: Record<string, string> = {}) {
  const h = { ...headers, ...(key ? { DPoP: await proof(key, 'POST', path) } : {}) };
  return api('POST', path, { body, headers: h });
}

/** A resource request with `Authorization: DPoP <token>` and a proof carrying ath. */
export async function dpopGet(path: string, accessToken: string, key: DeviceKey, opts: ProofOptions = {}, headers: Record<string, string> = {}) {
  return api('GET', path, { headers: { ...headers, Authorization: `DPoP ${accessToken}`, DPoP: await proof(key, 'GET', path, { accessToken, ...opts }) } });
}

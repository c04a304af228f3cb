/**
 * DPoP proof checks (RFC 9449 §4.3), pure: no I/O, no clock but the one given. The one verifier
 * every caller uses (token endpoints and resource requests, domain/sessions/dpop.ts adds the
 * replay stores and the nonce). A proof is a JWT with `typ: dpop+jwt`, an allowed asymmetric
 * algorithm (ES256 or EdDSA only), the public key in its `jwk` header (no private members), signed
 * by that key, with `htm` and `htu` naming this request, `iat` within the window, a `jti`, and on
 * resource requests `ath` = base64url(SHA-256(access token)).
 */
import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, compactVerify, decodeProtectedHeader, importJWK } from 'jose';

export const DPOP_ALGS = ['ES256', 'EdDSA'] as const;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const MAX_PROOF_LENGTH = 8192;

export interface DpopRequest {
  /** HTTP method of the request (compared case-sensitively with `htm`, upper case). */
  method: string;
  /** The URL the proof must name: the configured public base URL + path, no query or fragment. */
  url: string;
  /** Resource requests: the access token the proof must be bound to (`ath`). */
  accessToken?: string;
}

export interface DpopOptions {
  /** Seconds a proof's `iat` may be in the past or the future. */
  iatWindow: number;
  /** Now, in seconds since the epoch. */
  now?: number;
}

export interface VerifiedProof {
  /** RFC 7638 SHA-256 thumbprint of the proof's public key (base64url). */
  jkt: string;
  jti: string;
  iat: number;
  nonce?: string;
}

export class DpopProofError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'DpopProofError';
  }
}

/** base64url(SHA-256(token)): the `ath` of a proof sent with `token`. */
export const accessTokenHash = (token: string) => createHash('sha256').update(token, 'ascii').digest('base64url');

/** A URL without query and fragment, with the default port dropped and the scheme and host lower-cased (RFC 9449 §4.3 step 9). */
export function normaliseHtu(u: string): string | undefined {
  try {
    const url = new URL(u);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return undefined;
  }
}

function fail(reason: string): never {
  throw new DpopProofError(reason);
}

/** Checks one `DPoP` header value; throws DpopProofError naming the first failed check. */
export async function verifyDpopProof(proof: string, req: DpopRequest, opts: DpopOptions): Promise<VerifiedProof> {
  if (proof.length > MAX_PROOF_LENGTH || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(proof)) fail('the DPoP header is not one compact JWT');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    fail('the proof header is not valid JSON');
  }
  if (header.typ !== 'dpop+jwt') fail('typ must be dpop+jwt');
  if (typeof header.alg !== 'string' || !(DPOP_ALGS as readonly string[]).includes(header.alg)) fail('alg must be ES256 or EdDSA');
  const jwk = header.jwk;
  if (!jwk || typeof jwk !== 'object' || Array.isArray(jwk)) fail('the header carries no jwk');
  if (PRIVATE_MEMBERS.some((m) => m in jwk)) fail('the jwk must be a public key');
  if (header.alg === 'ES256' && !(jwk.kty === 'EC' && jwk.crv === 'P-256')) fail('ES256 needs an EC P-256 key');
  if (header.alg === 'EdDSA' && !(jwk.kty === 'OKP' && jwk.crv === 'Ed25519')) fail('EdDSA needs an Ed25519 key');
  let payload: Record<string, unknown>;
  try {
    const key = await importJWK(jwk, header.alg);
    const { payload: bytes } = await compactVerify(proof, key, { algorithms: [header.alg] });
    payload = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
  } catch {
    fail('the proof signature does not verify with its jwk');
  }
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) fail('the proof payload is not a JSON object');
  const { jti, htm, htu, iat, ath, nonce } = payload;
  if (typeof jti !== 'string' || jti.length < 8 || jti.length > 256) fail('jti is missing or not 8 to 256 characters');
  if (htm !== req.method.toUpperCase()) fail('htm does not match the request method');
  const expected = normaliseHtu(req.url);
  if (typeof htu !== 'string' || !expected || normaliseHtu(htu) !== expected) fail('htu does not match the request URL');
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  if (typeof iat !== 'number' || !Number.isFinite(iat) || Math.abs(now - iat) > opts.iatWindow) fail('iat is missing or outside the accepted window');
  if (req.accessToken !== undefined) {
    if (ath !== accessTokenHash(req.accessToken)) fail('ath is missing or does not match the access token');
  }
  if (nonce !== undefined && typeof nonce !== 'string') fail('nonce must be a string');
  return { jkt: await calculateJwkThumbprint(jwk, 'sha256'), jti, iat, ...(typeof nonce === 'string' ? { nonce } : {}) };
}

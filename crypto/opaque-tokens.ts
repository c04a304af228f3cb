/**
 * Opaque tokens: the random strings we hand out (refresh tokens, e-mailed links and codes, MFA
 * and step-up tokens) and the one way they are stored: the SHA-256 of the token, never the token.
 * Pure: no I/O, imports nothing of ours.
 */
import { createHash, randomBytes } from 'node:crypto';

/** SHA-256 of an opaque token (32 bytes), the form in which every token is stored and looked up. */
export function hashOpaque(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** A URL-safe random token of `bytes` random bytes (base64url, no padding). */
export function randomOpaque(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

export const REFRESH_PREFIX = 'rt_';

/** A new refresh token (256 random bits behind the prefix) and its hash. */
export function newRefreshToken(): { token: string; hash: Buffer } {
  const token = REFRESH_PREFIX + randomOpaque(32);
  return { token, hash: hashOpaque(token) };
}

/** Cheap shape check before any database work. */
export function looksLikeRefreshToken(t: string): boolean {
  return t.length === REFRESH_PREFIX.length + 43 && t.startsWith(REFRESH_PREFIX) && /^[A-Za-z0-9_-]+$/.test(t.slice(3));
}

/** A uniformly random decimal code of `digits` digits. */
export function numericCode(digits: number): string {
  const max = 10 ** digits;
  const limit = Math.floor(0x1_0000_0000 / max) * max;
  for (;;) {
    const n = randomBytes(4).readUInt32BE(0);
    if (n < limit || max > 0x1_0000_0000) return String(n % max).padStart(digits, '0');
  }
}

/**
 * TOTP second factor (RFC 6238 over RFC 4226 HOTP) as every authenticator app implements it:
 * HMAC-SHA-1, 6 digits, 30-second steps, T0 = 0, base32 secret of 160 bits (the HMAC-SHA-1 block
 * output size that RFC 4226 §4 recommends). Plus single-use recovery codes. Pure: no I/O.
 *
 * Replay: a code proves possession only once. `verifyTotp` returns the time step it matched; the
 * caller stores it as `lastUsedStep` and passes it back next time, and any code for that step or
 * an earlier one is refused as 'replayed' (RFC 6238 §5.2).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { hashOpaque } from './opaque-tokens';
import { authenticator } from 'otplib';

export const TOTP_DIGITS = 6;
export const TOTP_STEP_SECONDS = 30;
/** Steps accepted either side of the current one (clock drift and typing time). */
export const TOTP_WINDOW = 1;
export const TOTP_SECRET_BYTES = 20;

type OtpOptions = NonNullable<Parameters<typeof authenticator.clone>[0]>;

/** otplib's authenticator pinned to the parameters above, whatever its defaults become. */
const base = authenticator.clone({
  algorithm: 'sha1' as OtpOptions['algorithm'],
  digits: TOTP_DIGITS,
  step: TOTP_STEP_SECONDS,
  window: 0,
});

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 without padding (20 bytes → 32 characters). */
function base32Encode(bytes: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** A new 160-bit secret from the CSPRNG, base32-encoded (32 characters, no padding). */
export function generateTotpSecret(): string {
  return base32Encode(randomBytes(TOTP_SECRET_BYTES));
}

/**
 * The otpauth:// URI an authenticator app scans (as a QR code). Colons are removed from label and
 * issuer because the URI uses "Issuer:account" as its label and a colon inside either would split
 * it wrongly.
 */
export function otpauthUrl(secret: string, accountLabel: string, issuer: string): string {
  const clean = (s: string) => s.replace(/:/g, '').trim();
  return base.keyuri(clean(accountLabel), clean(issuer), secret);
}

/** The RFC 6238 time step containing `nowMs`. */
export function totpStep(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_STEP_SECONDS);
}

function codeForStep(secret: string, step: number): string {
  return base.clone({ epoch: step * TOTP_STEP_SECONDS * 1000 }).generate(secret);
}

export type TotpResult = { ok: true; step: number } | { ok: false; reason: 'malformed' | 'invalid' | 'replayed' };

/**
 * Checks a code typed by the user against steps now-1, now and now+1. Spaces are ignored ("123
 * 456" as apps display it); anything else that is not exactly 6 ASCII digits is 'malformed'. All
 * three candidates are computed and compared in constant time, whatever matches, so timing does
 * not tell which step (if any) matched. A match on a step ≤ `lastUsedStep` is 'replayed'.
 */
export function verifyTotp(secret: string, code: string, lastUsedStep: number | null, nowMs: number = Date.now()): TotpResult {
  const typed = code.replace(/\s+/g, '');
  if (!new RegExp(`^[0-9]{${TOTP_DIGITS}}$`).test(typed)) return { ok: false, reason: 'malformed' };
  const typedBuf = Buffer.from(typed, 'ascii');
  const now = totpStep(nowMs);
  let fresh: number | null = null;
  let replayed = false;
  for (let step = now - TOTP_WINDOW; step <= now + TOTP_WINDOW; step++) {
    const expected = Buffer.from(codeForStep(secret, step), 'ascii');
    const match = expected.length === typedBuf.length && timingSafeEqual(expected, typedBuf);
    if (!match) continue;
    if (lastUsedStep !== null && step <= lastUsedStep) replayed = true;
    else fresh = step; // ascending loop: keeps the latest fresh step on a (rare) collision
  }
  if (fresh !== null) return { ok: true, step: fresh };
  return { ok: false, reason: replayed ? 'replayed' : 'invalid' };
}

/**
 * Recovery-code alphabet: lowercase letters and digits without the look-alikes 0/o, 1/l/i.
 * 31 symbols → log2(31) ≈ 4.95 bits per character; 15 characters ≈ 74 bits per code.
 */
export const RECOVERY_ALPHABET = '23456789abcdefghjkmnpqrstuvwxyz';
export const RECOVERY_GROUPS = 3;
export const RECOVERY_GROUP_LENGTH = 5;

/** Uniform choice from the alphabet by rejection sampling (no modulo bias). */
function randomChars(count: number): string {
  let out = '';
  while (out.length < count) {
    for (const byte of randomBytes(count * 2)) {
      const v = byte & 31;
      if (v < RECOVERY_ALPHABET.length) out += RECOVERY_ALPHABET[v];
      if (out.length === count) break;
    }
  }
  return out;
}

/** `n` distinct single-use recovery codes, formatted "xxxxx-xxxxx-xxxxx". */
export function generateRecoveryCodes(n = 10): string[] {
  const codes = new Set<string>();
  while (codes.size < n) {
    const raw = randomChars(RECOVERY_GROUPS * RECOVERY_GROUP_LENGTH);
    const groups: string[] = [];
    for (let i = 0; i < raw.length; i += RECOVERY_GROUP_LENGTH) {
      groups.push(raw.slice(i, i + RECOVERY_GROUP_LENGTH));
    }
    codes.add(groups.join('-'));
  }
  return [...codes];
}

/** Canonical form of a typed recovery code: lowercase, without dashes and whitespace. */
export function normaliseRecoveryCode(code: string): string {
  return code.toLowerCase().replace(/[-\s]+/g, '');
}

/**
 * SHA-256 of the normalised code, for storage and lookup. A fast hash is enough: each code has
 * ~74 bits of entropy, far beyond brute force, so a slow KDF would only cost CPU.
 */
export function hashRecoveryCode(code: string): Buffer {
  return hashOpaque(normaliseRecoveryCode(code));
}

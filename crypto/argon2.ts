/**
 * Password hashing with Argon2id (RFC 9106, OWASP's first choice). Pure apart from the CPU/memory
 * the hash costs; no I/O.
 *
 * - Passwords are NFKC-normalised before hashing and before verifying (NIST SP 800-63B §5.1.1.2),
 *   so the same password typed with composed or decomposed characters verifies; the policy in
 *   password-policy.ts counts length after the same normalisation.
 * - Every hash carries its own parameters ($argon2id$v=19$m=…,t=…,p=…$salt$hash); `needsRehash`
 *   tells the caller to re-hash on the next successful login after the configured cost changes.
 * - `verifyPassword` with no hash (unknown user) still runs a full verification against a dummy
 *   hash made with the current parameters, so a login for an unknown e-mail costs the same time as
 *   one with a wrong password and response timing does not reveal which accounts exist.
 */
import { randomBytes } from 'node:crypto';
import * as argon2 from 'argon2';

export interface Argon2Params {
  /** Memory cost in KiB (argon2 `m`). */
  memoryKiB: number;
  /** Number of passes (argon2 `t`). */
  timeCost: number;
  /** Lanes (argon2 `p`). */
  parallelism: number;
}

function normalise(password: string): string {
  return password.normalize('NFKC');
}

function hashOptions(params: Argon2Params): argon2.HashOptions {
  return {
    type: argon2.argon2id,
    memoryCost: params.memoryKiB,
    timeCost: params.timeCost,
    parallelism: params.parallelism,
  };
}

/** Hashes a password with Argon2id and a fresh random salt; returns the PHC-format string. */
export async function hashPassword(password: string, params: Argon2Params): Promise<string> {
  return argon2.hash(normalise(password), hashOptions(params));
}

/**
 * One dummy hash per parameter set, made on first need. The promise is cached (not the string) so
 * concurrent first calls share one computation; a failed computation is forgotten so the next call
 * tries again.
 */
const dummyHashes = new Map<string, Promise<string>>();

function dummyHash(params: Argon2Params): Promise<string> {
  const key = `${params.memoryKiB}:${params.timeCost}:${params.parallelism}`;
  let p = dummyHashes.get(key);
  if (!p) {
    p = argon2.hash(randomBytes(32).toString('base64url'), hashOptions(params));
    p.catch(() => dummyHashes.delete(key));
    dummyHashes.set(key, p);
  }
  return p;
}

/**
 * Computes the dummy hash ahead of time (e.g. at start-up) so the first login for an unknown user
 * is not slower than later ones. Optional: `verifyPassword` makes it on demand.
 */
export async function warmUpDummyHash(params: Argon2Params): Promise<void> {
  await dummyHash(params);
}

/** Burns one verification's worth of time; the result is always discarded. */
async function verifyDummy(password: string, params: Argon2Params): Promise<void> {
  try {
    await argon2.verify(await dummyHash(params), normalise(password));
  } catch {
    // the dummy exists only for its cost
  }
}

/**
 * True when `password` matches `hash`. With no hash (unknown user, or an account without a
 * password) it verifies against the dummy hash and returns false, taking about as long as a real
 * check. Never throws: a malformed or unsupported hash is a mismatch (also after a dummy check, to
 * keep the timing).
 */
export async function verifyPassword(hash: string | null | undefined, password: string, params: Argon2Params): Promise<boolean> {
  if (hash === null || hash === undefined || hash === '') {
    await verifyDummy(password, params);
    return false;
  }
  try {
    return (await argon2.verify(hash, normalise(password))) === true;
  } catch {
    await verifyDummy(password, params);
    return false;
  }
}

/**
 * True when `hash` was not made by Argon2id with exactly these parameters (and the current
 * version), so it should be replaced by a fresh hash after the next successful verification.
 * A malformed hash also "needs rehash".
 */
export function needsRehash(hash: string, params: Argon2Params): boolean {
  if (!hash.startsWith('$argon2id$')) return true;
  try {
    return argon2.needsRehash(hash, {
      memoryCost: params.memoryKiB,
      timeCost: params.timeCost,
      parallelism: params.parallelism,
    });
  } catch {
    return true;
  }
}

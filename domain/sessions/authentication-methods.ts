/**
 * Authentication method references (RFC 8176) of a session, and the one answer to "did this
 * sign-in use a second factor", asked by every check that needs one (admin routes today; step-up
 * and acr values build on the same function).
 */

/** The amr values this service writes. */
export const AMR = {
  /** Password (something known). */
  password: 'pwd',
  /** One-time password: TOTP or a recovery code (something held). */
  otp: 'otp',
  /** Proof of possession of a software-secured key (a passkey without hardware attestation). */
  softwareKey: 'swk',
  /** Proof of possession of a hardware-secured key. */
  hardwareKey: 'hwk',
  /** User presence test. */
  userPresence: 'user',
  /** Multiple-factor authentication, stated by the method itself (a passkey with user verification). */
  multiFactor: 'mfa',
} as const;

/** Factors that are something the user holds. */
const POSSESSION: ReadonlySet<string> = new Set([AMR.otp, AMR.softwareKey, AMR.hardwareKey]);

/**
 * Whether a session's amr holds a second factor: a method that states multiple factors itself, or
 * the password together with something held. A password alone, or a key without user
 * verification alone, is one factor.
 */
export function hasSecondFactor(amr: readonly string[]): boolean {
  if (amr.includes(AMR.multiFactor)) return true;
  return amr.includes(AMR.password) && amr.some((m) => POSSESSION.has(m));
}

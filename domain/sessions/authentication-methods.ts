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

/**
 * Authentication context class references (OpenID Connect `acr`), defined by this service and
 * derived from the amr in this one place, weakest first. A request for a level is satisfied by it
 * or any stronger one.
 */
export const ACR = {
  /** One factor (a password, or a passkey without user verification). */
  singleFactor: 'urn:authflow:acr:1fa',
  /** Two factors (password and TOTP or recovery code, or a passkey with user verification). */
  multiFactor: 'urn:authflow:acr:mfa',
  /** Two factors, one of them a key bound to the origin (a passkey with user verification). */
  phishingResistant: 'urn:authflow:acr:phr',
} as const;
export type Acr = (typeof ACR)[keyof typeof ACR];
export const ACR_VALUES: readonly Acr[] = [ACR.singleFactor, ACR.multiFactor, ACR.phishingResistant];

export function acrFor(amr: readonly string[]): Acr {
  if (!hasSecondFactor(amr)) return ACR.singleFactor;
  return amr.includes(AMR.softwareKey) || amr.includes(AMR.hardwareKey) ? ACR.phishingResistant : ACR.multiFactor;
}

/** Whether a sign-in of `amr` meets the requested level; an unknown level is never met. */
export function meetsAcr(amr: readonly string[], requested: string): boolean {
  const want = ACR_VALUES.indexOf(requested as Acr);
  return want >= 0 && ACR_VALUES.indexOf(acrFor(amr)) >= want;
}

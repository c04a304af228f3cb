/** Request and response schemas shared by routes and the OpenAPI document. */
import { z } from 'zod';

/**
 * A string of `min`..`max` characters, counted as JSON Schema's minLength/maxLength count them:
 * in Unicode code points. (zod's `.min()`/`.max()` count UTF-16 units, so 60 emoji would be 120
 * and the server would refuse what the document allows.)
 */
export function chars(min: number, max: number) {
  return z
    .string()
    .refine(
      (s) => {
        let n = 0;
        for (const _ of s) if (++n > max) return false;
        return n >= min;
      },
      { message: min === max ? `must be ${min} characters` : `must be ${min} to ${max} characters` },
    )
    .meta({ minLength: min, maxLength: max });
}

/**
 * Free text the server stores or searches in Postgres, which cannot hold U+0000 in `text`: `chars`
 * that also refuses NUL (and says so in the document's pattern).
 */
export function storedText(min: number, max: number) {
  // eslint-disable-next-line no-control-regex
  return chars(min, max).regex(/^[^\u0000]*$/, 'no NUL (U+0000) characters');
}

/** An address: at most 254 characters, the local part (before the last `@`) at most 64 (RFC 5321 §4.5.3.1). */
export const Email = z
  .string()
  .trim()
  .min(3)
  .max(254)
  .email()
  .refine((v) => v.lastIndexOf('@') <= 64, 'the part before @ is longer than 64 characters');
/** A password being presented (login, re-authentication): only a hard cap against abuse. */
export const Password = chars(1, 1024);
/** Marks a schema whose length the document takes from the password policy (see `buildDocument`). */
export const NEW_PASSWORD_MARK = 'x-authflow-new-password';
/**
 * A password being chosen (registration, reset, change). The policy checks it with clear reasons
 * (`too_short`, `too_long`, `common`, ...; PASSWORD_MIN_LENGTH / PASSWORD_MAX_LENGTH, 12 and 128
 * by default); the document states the configured lengths.
 */
export const NewPassword = chars(1, 1024).meta({
  [NEW_PASSWORD_MARK]: true,
  description: 'checked by the password policy: length, not common, not the e-mail, not repetitive (400 validation_failed with `reason`)',
});

/** A display name: one printable line. No control or format characters (Unicode Cc, Cf: newlines,
 * tabs, bidi overrides, zero-width characters) and no line or paragraph separators. Stored trimmed;
 * a name of spaces only is no name. */
export const UserName = chars(1, 100)
  // The Cc, Cf, Zl and Zp characters of the Basic Multilingual Plane, spelled out (`\p{..}` classes
  // are not understood by every JSON Schema tool; the served document carries this very pattern).
  // The few format characters outside it (emoji tag sequences among them) are allowed.
  .regex(
    // eslint-disable-next-line no-control-regex
    /^[^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$/u,
    'one printable line: no control, format (bidi, zero-width) or line-break characters',
  );

export const UserSchema = z.object({
  id: z.string().uuid(),
  email: z.string().nullable(),
  name: z.string().nullable(),
  status: z.enum(['pending_verification', 'active', 'locked', 'suspended', 'pending_deletion', 'deleted']),
  email_verified: z.boolean(),
  mfa_enabled: z.boolean(),
  roles: z.array(z.string()),
  created_at: z.string(),
});

export const UserEnvelope = z.object({ user: UserSchema });

export const TokensSchema = z.object({
  access_token: z
    .string()
    .describe(
      'EdDSA JWT (typ at+jwt): sub, sid, amr, roles, auth_time (the sign-in time of the session, kept across refreshes), cnf.jkt when DPoP-bound, iat, exp',
    ),
  token_type: z.enum(['Bearer', 'DPoP']).describe('DPoP when the request carried a DPoP proof: the session is bound to that key (access token claim cnf.jkt)'),
  expires_in: z.number().int(),
  refresh_token: z.string(),
  refresh_expires_in: z
    .number()
    .int()
    .describe('seconds until the session (and this refresh token) expires: idle timeout from now, capped by the absolute lifetime since sign-in'),
});

/** The `DPoP` request header of the token endpoints (RFC 9449). */
export const DPOP_HEADER = {
  name: 'DPoP',
  description:
    'Optional DPoP proof (RFC 9449): a JWT with typ dpop+jwt, alg ES256 or EdDSA, the public key as `jwk`, and claims jti, htm (this method), ' +
    'htu (the public URL of this endpoint, without query) and iat (within DPOP_IAT_WINDOW seconds); `nonce` when the server requires one (DPoP-Nonce). ' +
    'With it the session is bound to the key; each proof is accepted once.',
};
export const DPOP_DESCRIPTION =
  'With a `DPoP` proof header the tokens are bound to the proof key (token_type DPoP; the refresh token, the mfa_token and a step-up verification_id then need a fresh proof of that key). ' +
  'Without one the session falls back to the weaker header fingerprint.';
export const DPOP_RESPONSES =
  'invalid_dpop_proof (a malformed, replayed, stale or wrong-method/URL proof, or a bound token or challenge used without a proof of its key), ' +
  'use_dpop_nonce (with a DPoP-Nonce header: repeat with that nonce in the proof)';

export const MfaRequiredSchema = z.object({
  mfa_required: z.literal(true),
  mfa_token: z.string(),
  expires_in: z.number().int().describe('seconds the mfa_token lives'),
});

/** A TOTP code ("123456", spaces allowed) or a recovery code ("xxxxx-xxxxx-xxxxx"); a wrong shape is a wrong code (401). */
export const MfaCode = chars(1, 64);

export const RefreshBody = z.object({ refresh_token: chars(1, 512) }).strict();

export const DeletionSchema = z.object({
  due_at: z.string().describe('when personal data is erased unless the account is reactivated'),
});
export const DeletionEnvelope = z.object({ user: UserSchema, deletion: DeletionSchema });

/**
 * One error type with a stable machine `code` and an HTTP status; the API maps it to RFC 9457
 * problem+json in one middleware. Only AppErrors reach clients with their detail.
 */
export const ERROR_CODES = {
  validation_failed: { status: 400, title: 'Request validation failed' },
  invalid_json: { status: 400, title: 'Malformed JSON body' },
  invalid_token: { status: 400, title: 'Invalid or expired token' },
  invalid_credentials: { status: 401, title: 'Invalid credentials' },
  unauthorized: { status: 401, title: 'Authentication required' },
  invalid_grant: { status: 401, title: 'Invalid grant' },
  token_reused: { status: 401, title: 'Refresh token reused' },
  mfa_required: { status: 401, title: 'Multi-factor authentication required' },
  invalid_mfa_code: { status: 401, title: 'Invalid verification code' },
  step_up_required: { status: 401, title: 'Additional verification required' },
  /** DPoP (RFC 9449): a missing, malformed, replayed or wrong-key proof where one is required. */
  invalid_dpop_proof: { status: 401, title: 'Invalid DPoP proof' },
  /** DPoP: the proof must carry the server nonce sent in the `DPoP-Nonce` header. */
  use_dpop_nonce: { status: 401, title: 'Use the DPoP nonce' },
  email_not_verified: { status: 403, title: 'E-mail address not verified' },
  forbidden: { status: 403, title: 'Forbidden' },
  /** The admin API needs a session signed in with a second factor (RFC 9470 insufficient_user_authentication). */
  mfa_enrolment_required: { status: 403, title: 'Sign in with a second factor to use this' },
  account_locked: { status: 423, title: 'Account locked' },
  account_suspended: { status: 403, title: 'Account suspended' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  conflict: { status: 409, title: 'Conflict' },
  invalid_transition: { status: 409, title: 'Illegal account state transition' },
  /** Verification of a contested registration: the mailbox owner must choose the password. */
  password_required: { status: 409, title: 'Choose a password to finish the verification' },
  self_action_not_confirmed: { status: 409, title: 'Action on your own account needs confirm_self=true' },
  /** Locking, suspending or deleting the last active administrator would leave nobody to undo it. */
  last_admin: { status: 409, title: 'The last active administrator must stay' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  rate_limited: { status: 429, title: 'Too many requests' },
  dependency_unavailable: { status: 503, title: 'A dependency is unavailable' },
  internal: { status: 500, title: 'Internal server error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface FieldError {
  field: string;
  message: string;
}

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    detail?: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail ?? ERROR_CODES[code].title);
    this.name = 'AppError';
    this.status = ERROR_CODES[code].status;
  }
}

/** A dependency (Postgres, Vault, Temporal, SMTP) failed in a way a retry may fix. */
export class DependencyError extends AppError {
  constructor(
    readonly dependency: 'postgres' | 'vault' | 'temporal' | 'smtp',
    cause?: unknown,
  ) {
    super(
      'dependency_unavailable',
      `${dependency} is unavailable, retry later`,
      { dependency },
      {
        'Retry-After': '5',
      },
    );
    this.name = 'DependencyError';
    if (cause !== undefined) (this as { cause?: unknown }).cause = cause;
  }
}

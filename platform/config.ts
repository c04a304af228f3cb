/**
 * Configuration: the only module that reads process.env. Parsed and validated once; a missing or
 * bad variable stops the process with a message naming it. `.env.example` lists every variable.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import type { Argon2Params } from '../crypto/argon2';

/** TRUST_PROXY, parsed. */
export type TrustProxy = { kind: 'none' } | { kind: 'hops'; hops: number } | { kind: 'cidrs'; cidrs: string[] };

function refuse(ctx: z.RefinementCtx, message: string): never {
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
}

/** `a.b.c.d/n`, `x::y/n`, or a bare address (a /32 or /128). */
function validCidr(c: string): boolean {
  const [addr, bits, ...rest] = c.split('/');
  const family = isIP(addr);
  if (!family || rest.length) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max).default(def);
/** Durations are whole seconds. */
const seconds = (def: number) => int(def, 1);
/** An absolute http(s) URL template holding `{token}` exactly once (platform/config.ts EMAIL_VERIFY_LINK). */
const linkTemplate = z
  .string()
  .trim()
  .refine(
    (v) => {
      if (v.split('{token}').length !== 2) return false;
      try {
        const u = new URL(v.replace('{token}', 'x'));
        return u.protocol === 'https:' || u.protocol === 'http:';
      } catch {
        return false;
      }
    },
    { message: 'an absolute http(s) URL with {token} exactly once, such as https://app.example.com/verify#token={token}' },
  );
/** A comma-separated list of positive whole seconds, e.g. `60,300,900`. */
const secondsList = (def: string) =>
  z
    .string()
    .default(def)
    .refine((s) => /^\s*\d+(\s*,\s*\d+)*\s*$/.test(s) && s.split(',').every((x) => Number(x) > 0), 'a comma-separated list of positive whole seconds')
    .transform((s) => s.split(',').map((x) => Number(x.trim())));
/** A rate limit `points/seconds`, e.g. `10/60`. */
const rateLimit = (def: string) =>
  z
    .string()
    .default(def)
    .refine((s) => /^\s*[1-9]\d*\s*\/\s*[1-9]\d*\s*$/.test(s), 'points/seconds, e.g. 10/60')
    .transform((s) => {
      const [points, duration] = s.split('/').map((x) => Number(x.trim()));
      return { points, duration };
    });

const schema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  /** Addresses the API listens on, comma-separated (e.g. `127.0.0.1,::1`, or `0.0.0.0` in a container). */
  API_HOST: z
    .string()
    .default('127.0.0.1')
    .transform((v) => v.split(',').map((h) => h.trim()))
    .refine((hs) => hs.length > 0 && hs.every((h) => h.length > 0), { message: 'a comma-separated list of addresses' }),
  API_PORT: int(3000, 0, 65535),
  /** API processes on this host (Node's cluster: one primary shares the port among them); one per
   * core the API is given is the usual choice. 1: a single process, no primary. */
  API_PROCESSES: int(1, 1, 64),
  PUBLIC_BASE_URL: z.url().default('http://localhost:3000'),
  /** Origins allowed to call the codec endpoint from a browser (the Temporal UI). */
  CORS_ORIGINS: z.string().default('http://localhost:8233'),
  /**
   * Origins of browser apps allowed to call `/v1/*` (api/middleware/cors.ts): comma-separated exact
   * origins such as `https://app.example.com` (scheme, host, optional port; no path, no wildcard).
   * Empty (the default): no cross-origin access.
   */
  /**
   * Where the links in e-mails lead: URL templates with `{token}` where the e-mailed token goes
   * (URL-encoded), e.g. `https://app.example.com/verify#token={token}` for an app's own page (a
   * fragment keeps the token out of the app's server logs), which then sends the token to
   * POST /v1/auth/verify-email or /v1/auth/password/reset. Unset, they lead to the hosted pages
   * on PUBLIC_BASE_URL (`/verify-email?token={token}`, `/reset-password?token={token}`).
   */
  EMAIL_VERIFY_LINK: linkTemplate.optional(),
  PASSWORD_RESET_LINK: linkTemplate.optional(),
  API_CORS_ORIGINS: z
    .string()
    .default('')
    .refine(
      (v) =>
        v
          .split(',')
          .map((o) => o.trim())
          .filter(Boolean)
          .every((o) => {
            try {
              const u = new URL(o);
              return (u.protocol === 'https:' || u.protocol === 'http:') && u.origin === o && !o.includes('*');
            } catch {
              return false;
            }
          }),
      { message: 'each entry must be an exact origin such as https://app.example.com (no path, no wildcard, no trailing slash)' },
    ),
  /**
   * Which X-Forwarded-For entries name the client (api/middleware/client-ip.ts): `false` (the
   * socket peer, nothing forwarded is believed), a hop count `N` (N proxies in front: the N-th
   * address from the right, counting the socket peer as the first), or a comma-separated list of
   * the proxies' CIDRs (the nearest address outside them). `true` (believe the leftmost entry,
   * which any client can write) is refused.
   */
  TRUST_PROXY: z
    .string()
    .default('false')
    .transform((v, ctx): TrustProxy => {
      const t = v.trim();
      if (t === 'false' || t === '0' || t === 'no' || t === '') return { kind: 'none' };
      if (t === 'true' || t === 'yes')
        return refuse(ctx, 'true would believe the leftmost X-Forwarded-For, which clients write: give the number of proxies in front, or their CIDRs');
      if (/^\d+$/.test(t)) {
        const hops = Number(t);
        if (hops > 10) return refuse(ctx, 'a hop count of at most 10');
        return { kind: 'hops', hops };
      }
      const cidrs = t.split(',').map((c) => c.trim());
      const bad = cidrs.filter((c) => !validCidr(c));
      if (bad.length) return refuse(ctx, `not a CIDR or an address: ${bad.join(', ')}`);
      return { kind: 'cidrs', cidrs };
    }),
  /** Bearer token /metrics requires; unset, /metrics is not served (404). */
  METRICS_TOKEN: z.string().min(32).optional(),

  JWT_ISSUER: z.string().min(1).optional(),
  JWT_AUDIENCE: z.string().min(1).default('authflow'),
  ACCESS_TOKEN_TTL: seconds(900),
  /** `client_id` claim of access tokens (RFC 9068); no client registry yet, so one first-party client. */
  ACCESS_TOKEN_CLIENT_ID: z.string().trim().min(1).max(128).default('authflow-api'),
  REFRESH_TOKEN_TTL: seconds(30 * 24 * 3600),
  /** Session lifetimes: a session not refreshed for SESSION_IDLE_TIMEOUT seconds ends, and none
   * lives longer than SESSION_MAX_LIFETIME seconds after its sign-in, however often it is used. A
   * refresh token expires with its session (and never after REFRESH_TOKEN_TTL). */
  SESSION_IDLE_TIMEOUT: seconds(14 * 24 * 3600),
  /** Refresh grace (RFC 9700 §4.14.2), DPoP-bound sessions only: for this many seconds after a
   * refresh, the spent token presented again with a fresh proof of the session's key returns the
   * same successor (kept sealed, domain/sessions/sessions.ts) instead of ending the session: two
   * tabs refreshing at once, a retry after a lost answer. 0 turns it off. Header-mode sessions,
   * other keys and later uses keep strict reuse detection. */
  REFRESH_GRACE_SECONDS: int(5, 0, 60),
  SESSION_MAX_LIFETIME: seconds(90 * 24 * 3600),
  /** Revocation feed (domain/sessions/revocations.ts): every API instance hears ended sessions over
   * Postgres LISTEN/NOTIFY and sends itself a heartbeat every REVOCATION_HEARTBEAT_MS; while the
   * newest heartbeat it heard back was sent more than REVOCATION_MAX_LAG_MS ago (or the listener
   * is down), each request's session is checked in the database instead (503 if that fails). */
  REVOCATION_MAX_LAG_MS: int(2000, 100, 60000),
  REVOCATION_HEARTBEAT_MS: int(250, 10, 10000),
  MFA_TOKEN_TTL: seconds(300),
  /** OpenID provider (api/oidc/): a hosted sign-in (interaction) expires after OIDC_INTERACTION_TTL
   * seconds; a client-credentials request without `resource` gets a JWT access token whose
   * audience is OIDC_DEFAULT_RESOURCE (an absolute URI, never the /v1 audience). */
  OIDC_INTERACTION_TTL: int(600, 30, 3600),
  OIDC_DEFAULT_RESOURCE: z
    .string()
    .regex(/^[a-z][a-z0-9+.-]*:[^\s]+$/i, 'an absolute URI')
    .default('urn:authflow:api'),
  /** Webhooks (domain/webhooks.ts): a delivery is retried with backoff from
   * WEBHOOK_RETRY_INITIAL_SECONDS for WEBHOOK_RETRY_SECONDS (a day), then parked as failed; each try
   * waits WEBHOOK_TIMEOUT_MS for an answer. Targets must resolve to public addresses, except the
   * host names in WEBHOOK_PRIVATE_HOSTS (comma-separated); WEBHOOK_CA_FILE adds CA certificates
   * (PEM) to trust for targets. */
  WEBHOOK_RETRY_SECONDS: int(24 * 3600, 5, 7 * 24 * 3600),
  WEBHOOK_RETRY_INITIAL_SECONDS: int(10, 1, 3600),
  WEBHOOK_TIMEOUT_MS: int(10_000, 100, 60_000),
  WEBHOOK_PRIVATE_HOSTS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter(Boolean),
    ),
  WEBHOOK_CA_FILE: z.string().min(1).optional(),
  /** Seconds a rotated-out webhook secret still signs deliveries (beside the new one), so receivers can switch. */
  WEBHOOK_SECRET_OVERLAP_SECONDS: int(24 * 3600, 0, 30 * 24 * 3600),
  /** Seconds an invitation (POST /v1/admin/invitations) stays acceptable. */
  INVITATION_TTL: seconds(7 * 24 * 3600),
  /** Code attempts one MFA login challenge allows before the client must sign in again. */
  MFA_MAX_ATTEMPTS: int(5, 1, 20),
  /** Issuer shown by authenticator apps (otpauth:// label and issuer parameter). */
  TOTP_ISSUER: z.string().trim().min(1).max(64).default('Authflow'),
  /** One-time recovery codes handed out when TOTP is confirmed. */
  MFA_RECOVERY_CODES: int(10, 4, 20),

  DB_HOST: z.string().default('127.0.0.1'),
  DB_PORT: int(5432, 1, 65535),
  DB_NAME: z.string().default('authflow'),
  DB_POOL_MAX: int(10, 1, 200),
  DB_STATEMENT_TIMEOUT_MS: int(10000, 100),
  /** TLS to Postgres: disable | require (encrypted, certificate unchecked) | verify-full (needs DB_SSL_CA). */
  DB_SSL_MODE: z.enum(['disable', 'require', 'verify-full']).default('disable'),
  /** Path to the PEM CA that signed the Postgres server's certificate (verify-full). */
  DB_SSL_CA: z.string().min(1).optional(),

  VAULT_ADDR: z.url(),
  VAULT_ROLE_ID: z.string().min(1).optional(),
  VAULT_ROLE_ID_FILE: z.string().min(1).optional(),
  VAULT_SECRET_ID: z.string().min(1).optional(),
  VAULT_SECRET_ID_FILE: z.string().min(1).optional(),
  VAULT_KV_MOUNT: z.string().default('secret'),
  VAULT_KV_PREFIX: z.string().default('authflow'),
  VAULT_TRANSIT_MOUNT: z.string().default('transit'),
  VAULT_TIMEOUT_MS: int(5000, 100),
  /** Retries of a Vault call after a transient failure (network, 5xx, sealed), with exponential
   * backoff from VAULT_RETRY_BASE_MS; never after a 4xx such as 403. */
  VAULT_RETRIES: int(2, 0, 10),
  VAULT_RETRY_BASE_MS: int(100, 10, 10000),

  TEMPORAL_ADDRESS: z.string().default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_TASK_QUEUE: z.string().default('authflow'),
  /** TLS to the Temporal frontend (platform/temporal/connection.ts): off by default (the local
   * stack's loopback dev server). TEMPORAL_TLS_CA: PEM CA bundle that signed the server's
   * certificate (unset: the system roots); TEMPORAL_TLS_SERVER_NAME: the name the certificate is
   * checked against (and sent as SNI) instead of TEMPORAL_ADDRESS's host; TEMPORAL_TLS_CERT +
   * TEMPORAL_TLS_KEY: PEM client certificate and key for mTLS (both or neither). */
  TEMPORAL_TLS: bool.default(false),
  TEMPORAL_TLS_CA: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().trim().min(1).max(253).optional(),
  TEMPORAL_TLS_CERT: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY: z.string().min(1).optional(),
  /** API key sent with every Temporal call as `authorization: Bearer <key>` (Temporal Cloud API
   * keys, or a gRPC proxy that checks it). Needs TEMPORAL_TLS=true: a key never travels in clear. */
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  /** Read the API key from Vault KV `<prefix>/temporal` (field `api_key`) at start instead (the
   * way the SMTP credentials are kept); exclusive with TEMPORAL_API_KEY, TLS only. */
  TEMPORAL_API_KEY_FROM_VAULT: bool.default(false),
  /** How often the API and the worker re-read the payload codec keys from Vault (rotation). */
  CODEC_KEY_REFRESH_SECONDS: seconds(60),
  /** Workflows the worker keeps in its sticky cache (a V8 context each). The SDK's default scales
   * with the heap limit (thousands on a large machine), so RSS grew with the number of waiting
   * flows (554 → 1071 MB in a 10-minute soak); evicted workflows replay from history on their next
   * task. */
  WORKER_MAX_CACHED_WORKFLOWS: int(250, 10, 100000),
  /** The flow outbox relay (domain/flow-outbox.ts): fallback poll, longest retry backoff and call
   * timeout (milliseconds), and how long relayed rows are kept (seconds). */
  FLOW_OUTBOX_POLL_MS: int(1000, 50, 60000),
  FLOW_OUTBOX_MAX_BACKOFF_MS: int(10000, 250, 600000),
  FLOW_OUTBOX_CALL_TIMEOUT_MS: int(5000, 100, 60000),
  FLOW_OUTBOX_RETENTION: seconds(24 * 3600),

  /** Signing-key rotation (a Temporal Schedule the worker registers): how often, how long a new
   * key is published in the JWKS before it signs, and how often every API re-reads the key set. */
  KEY_ROTATION_INTERVAL: seconds(30 * 24 * 3600),
  KEY_PROPAGATION_DELAY: seconds(3600),
  KEY_REFRESH_SECONDS: seconds(30),
  /** Backups (schedule): pg_dump + Vault raft snapshot, encrypted, into BACKUP_DIR (a shared
   * volume when several workers run); the newest BACKUP_RETENTION complete backups are kept. */
  BACKUP_INTERVAL: seconds(24 * 3600),
  BACKUP_DIR: z.string().min(1).default('.data/backups'),
  BACKUP_RETENTION: int(7, 1, 1000),
  /** Restore drill (schedule): restores the newest backup into this scratch database (owned by
   * the service's role, created by the operator) and checks the manifest's row counts. */
  RESTORE_DRILL_INTERVAL: seconds(7 * 24 * 3600),
  RESTORE_DRILL_DATABASE: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a plain lower-case database name')
    .default('authflow_restore_drill'),
  PG_DUMP_BIN: z.string().min(1).default('pg_dump'),
  PG_RESTORE_BIN: z.string().min(1).default('pg_restore'),

  SMTP_HOST: z.string().default('127.0.0.1'),
  SMTP_PORT: int(1025, 1, 65535),
  SMTP_SECURE: bool.default(false),
  /** On a plain-port relay: fail the send unless the relay offers STARTTLS (never send in clear). */
  SMTP_REQUIRE_TLS: bool.default(false),
  MAIL_FROM: z.string().default('Authflow <no-reply@authflow.local>'),

  ARGON2_MEMORY_KIB: int(19456, 8192),
  ARGON2_TIME_COST: int(2, 1, 20),
  ARGON2_PARALLELISM: int(1, 1, 16),
  PASSWORD_MIN_LENGTH: int(12, 8, 64),
  PASSWORD_MAX_LENGTH: int(128, 64, 1024),

  EMAIL_VERIFICATION_TTL: seconds(24 * 3600),
  EMAIL_VERIFICATION_MAX_RESENDS: int(3, 0, 20),

  /** Password reset: token lifetime; at most one e-mail per interval and N per rolling day. */
  PASSWORD_RESET_TTL: seconds(30 * 60),
  PASSWORD_RESET_EMAIL_INTERVAL: seconds(60),
  PASSWORD_RESET_EMAILS_PER_DAY: int(5, 1, 100),
  /** Step-up verification of a refresh from an unknown device: code lifetime and attempts; more
   * than STEP_UP_MAX_UNKNOWN_DEVICES different unknown fingerprints on one session within
   * STEP_UP_UNKNOWN_DEVICE_WINDOW seconds revoke the session. */
  STEP_UP_TTL: seconds(10 * 60),
  STEP_UP_MAX_ATTEMPTS: int(5, 1, 20),
  STEP_UP_MAX_UNKNOWN_DEVICES: int(3, 1, 100),
  STEP_UP_UNKNOWN_DEVICE_WINDOW: seconds(3600),
  /** Seconds a known device stays trusted after it was last seen (a sign-in, a refresh or a
   * step-up from it). A refresh from a device unseen for longer needs a step-up, even with the
   * session's own device; the next sign-in or verified step-up trusts it again. */
  DEVICE_TRUST_TTL: seconds(90 * 24 * 3600),
  /** DPoP (RFC 9449) proofs: seconds a proof's `iat` may lie in the past or future; whether every
   * proof must carry a server nonce (`DPoP-Nonce`), and how many seconds one nonce lasts (the
   * previous one is accepted too). */
  DPOP_IAT_WINDOW: int(60, 5, 600),
  DPOP_NONCE_REQUIRED: bool.default(false),
  DPOP_NONCE_SECONDS: int(300, 10, 3600),
  /** Admin endpoints (the admin and operations API, the codec endpoint) need a session whose sign-in
   * used a second factor (TOTP or a recovery code today; passkeys later): an admin without one gets
   * 403 mfa_enrolment_required until it enrols and signs in again. Off only for a throwaway stack. */
  ADMIN_MFA_REQUIRED: bool.default(true),
  /** Password guessing (NIST SP 800-63B §5.2.2, domain/accounts/lockout.ts). Throttle per (account, device),
   * a device being the request's header fingerprint and IP: after LOGIN_THROTTLE_FREE_FAILURES
   * failures the device waits the next of LOGIN_THROTTLE_DELAYS (seconds, escalating; the last
   * repeats) before its next attempt is evaluated; LOGIN_THROTTLE_RESET quiet seconds or a
   * successful sign-in from the device clear it. Account-wide cap: LOCKOUT_THRESHOLD consecutive
   * failed credentials lock the account for the next of LOCKOUT_DURATIONS (escalating; the last
   * repeats) and e-mail the owner; LOCKOUT_LEVEL_RESET seconds after a lock ended without new
   * locks the escalation starts over. */
  LOGIN_THROTTLE_FREE_FAILURES: int(3, 0, 100),
  LOGIN_THROTTLE_DELAYS: secondsList('5,15,60,300,900'),
  LOGIN_THROTTLE_RESET: seconds(24 * 3600),
  LOCKOUT_THRESHOLD: int(100, 1, 1000),
  LOCKOUT_DURATIONS: secondsList('60,300,900,3600'),
  LOCKOUT_LEVEL_RESET: seconds(24 * 3600),
  /** Grace period between a deletion request and the erasure of personal data. */
  ACCOUNT_DELETION_GRACE: seconds(14 * 24 * 3600),
  /** Rate limits as `points/seconds`, stored in Postgres (shared by every API instance). */
  RATE_LIMIT_ENABLED: bool.default(true),
  RATE_LIMIT_LOGIN_IP: rateLimit('50/900'),
  RATE_LIMIT_LOGIN_ACCOUNT: rateLimit('20/900'),
  RATE_LIMIT_REGISTER_IP: rateLimit('20/3600'),
  RATE_LIMIT_REGISTER_ACCOUNT: rateLimit('5/3600'),
  RATE_LIMIT_FORGOT_IP: rateLimit('20/3600'),
  RATE_LIMIT_FORGOT_ACCOUNT: rateLimit('5/3600'),
  RATE_LIMIT_REFRESH_IP: rateLimit('300/300'),
  RATE_LIMIT_REFRESH_ACCOUNT: rateLimit('60/300'),
  /** Password re-authentication of a signed-in user (password change, TOTP enrolment and removal). */
  RATE_LIMIT_REAUTH_IP: rateLimit('30/900'),
  RATE_LIMIT_REAUTH_ACCOUNT: rateLimit('10/900'),
  /** Client IPs (comma-separated, exact) exempt from the per-IP limits; per-account limits still apply. */
  RATE_LIMIT_IP_ALLOWLIST: z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    ),
});

export type Config = z.infer<typeof schema> & { JWT_ISSUER: string; EMAIL_VERIFY_LINK: string; PASSWORD_RESET_LINK: string };

/** Every variable the service reads (.env.example must list them all; a unit test checks). */
export const CONFIG_KEYS = Object.keys(schema.shape);

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export function parseConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') input[k] = v;
  const result = schema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`));
  }
  const c = result.data;
  const missing: string[] = [];
  if (!c.VAULT_ROLE_ID && !c.VAULT_ROLE_ID_FILE) missing.push('VAULT_ROLE_ID or VAULT_ROLE_ID_FILE: one of them is required');
  if (!c.VAULT_SECRET_ID && !c.VAULT_SECRET_ID_FILE) missing.push('VAULT_SECRET_ID or VAULT_SECRET_ID_FILE: one of them is required');
  if (c.KEY_PROPAGATION_DELAY < 2 * c.KEY_REFRESH_SECONDS)
    missing.push('KEY_PROPAGATION_DELAY: must be at least twice KEY_REFRESH_SECONDS, so every API publishes a new key before any signs with it');
  if (c.REVOCATION_HEARTBEAT_MS * 2 > c.REVOCATION_MAX_LAG_MS)
    missing.push('REVOCATION_HEARTBEAT_MS: must be at most half of REVOCATION_MAX_LAG_MS, or a healthy feed would count as lagging');
  if (c.RESTORE_DRILL_DATABASE === c.DB_NAME)
    missing.push('RESTORE_DRILL_DATABASE: must not be DB_NAME: the drill restores the backup into it, over the live data (objects dropped first)');
  if (c.DB_SSL_MODE === 'verify-full' && !c.DB_SSL_CA)
    missing.push('DB_SSL_CA: required when DB_SSL_MODE=verify-full (path to the PEM CA of the Postgres server)');
  missing.push(...temporalConfigProblems(c));
  if (missing.length) throw new ConfigError(missing);
  const base = c.PUBLIC_BASE_URL.replace(/\/+$/, '');
  return {
    ...c,
    JWT_ISSUER: c.JWT_ISSUER ?? c.PUBLIC_BASE_URL,
    EMAIL_VERIFY_LINK: c.EMAIL_VERIFY_LINK ?? `${base}/verify-email?token={token}`,
    PASSWORD_RESET_LINK: c.PASSWORD_RESET_LINK ?? `${base}/reset-password?token={token}`,
  };
}

const temporalSchema = schema.pick({
  TEMPORAL_ADDRESS: true,
  TEMPORAL_NAMESPACE: true,
  TEMPORAL_TLS: true,
  TEMPORAL_TLS_CA: true,
  TEMPORAL_TLS_SERVER_NAME: true,
  TEMPORAL_TLS_CERT: true,
  TEMPORAL_TLS_KEY: true,
  TEMPORAL_API_KEY: true,
  TEMPORAL_API_KEY_FROM_VAULT: true,
});
/** The variables that say how to reach Temporal (platform/temporal/connection.ts reads them). */
export type TemporalConnectionConfig = z.infer<typeof temporalSchema>;

/** Combinations of the Temporal connection variables that are refused at load. */
function temporalConfigProblems(c: TemporalConnectionConfig): string[] {
  const out: string[] = [];
  if (!!c.TEMPORAL_TLS_CERT !== !!c.TEMPORAL_TLS_KEY)
    out.push('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY: give both (the client certificate and its key for mTLS) or neither');
  if (!c.TEMPORAL_TLS) {
    const tlsOnly = (['TEMPORAL_TLS_CA', 'TEMPORAL_TLS_SERVER_NAME', 'TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY'] as const).filter((k) => c[k]);
    if (tlsOnly.length)
      out.push(`TEMPORAL_TLS: must be true when ${tlsOnly.join(', ')} ${tlsOnly.length > 1 ? 'are' : 'is'} set (they only apply to a TLS connection)`);
    if (c.TEMPORAL_API_KEY) out.push('TEMPORAL_API_KEY: needs TEMPORAL_TLS=true (the key must not travel in clear)');
    if (c.TEMPORAL_API_KEY_FROM_VAULT) out.push('TEMPORAL_API_KEY_FROM_VAULT: needs TEMPORAL_TLS=true (the key must not travel in clear)');
  }
  if (c.TEMPORAL_API_KEY && c.TEMPORAL_API_KEY_FROM_VAULT)
    out.push('TEMPORAL_API_KEY_FROM_VAULT: set either TEMPORAL_API_KEY or TEMPORAL_API_KEY_FROM_VAULT=true, not both');
  return out;
}

/** Only the Temporal connection variables of `env` (tools that reach the service's Temporal as
 * the service does, without the rest of its configuration), checked the same way. */
export function parseTemporalConnectionConfig(env: Record<string, string | undefined>): TemporalConnectionConfig {
  const input: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') input[k] = v;
  const result = temporalSchema.safeParse(input);
  if (!result.success) throw new ConfigError(result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`));
  const problems = temporalConfigProblems(result.data);
  if (problems.length) throw new ConfigError(problems);
  return result.data;
}

let cached: Config | undefined;
/** Parses process.env once; on failure prints which variables are wrong and exits. */
export function loadConfig(): Config {
  if (cached) return cached;
  try {
    cached = parseConfig();
    return cached;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\nSee .env.example for every variable and its default.\n`);
      process.exit(78);
    }
    throw err;
  }
}

/** The argon2id cost the configuration sets (ARGON2_MEMORY_KIB, ARGON2_TIME_COST, ARGON2_PARALLELISM). */
export function argon2Params(c: Pick<Config, 'ARGON2_MEMORY_KIB' | 'ARGON2_TIME_COST' | 'ARGON2_PARALLELISM'>): Argon2Params {
  return { memoryKiB: c.ARGON2_MEMORY_KIB, timeCost: c.ARGON2_TIME_COST, parallelism: c.ARGON2_PARALLELISM };
}

/**
 * The one place that builds the domain services, all through constructors: signing keys, tokens,
 * guessing limits, devices, sessions, accounts, MFA, password resets. The Temporal side reaches the
 * domain only through the ports passed in here (platform/temporal/flows.ts implements them).
 */
import { createHash, type KeyObject } from 'node:crypto';
import { argon2Params } from '../platform/config';
import { retrying, Runtime } from '../platform/runtime';
import { AccountService } from './accounts/accounts';
import { FlowOutbox } from './flow-outbox';
import { InvitationService } from './accounts/invitations';
import { WebhookService } from './webhooks';
import { ClientRegistry } from './oidc/clients';
import { audit } from './audit';
import { VaultWebhookSecrets } from '../platform/webhook-secrets';
import { GuessingLimits, type LockNotices } from './accounts/lockout';
import { AdminService, type PasswordResetFlows } from './accounts/admin';
import { DeletionService, type DeletionFlows } from './accounts/deletion';
import { MfaService } from './accounts/mfa';
import { OpsService } from './ops/operations';
import { RateLimits, rateLimitSettings } from './rate-limits';
import { PasswordResetService } from './accounts/password-reset';
import { DeviceService, type NewDeviceNotices } from './sessions/devices';
import { DpopService, MemoryJtiCache, PgJtiStore } from './sessions/dpop';
import { type StepUpFlows } from './sessions/step-up';
import { SessionService } from './sessions/sessions';
import { KeyRing } from './sessions/signing-keys';
import { TokenService } from './sessions/tokens';
import { RevocationFeed } from './sessions/revocations';
import { isAuthFailure, readDbCredentials, type DbCredentials } from '../platform/db';
import { listenClient } from '../platform/db/listen';
import { OidcStore } from './oidc/store';
import { SignInService } from './oidc/sign-in';
import { OidcCookieKeys } from './oidc/cookie-keys';

/** What the services need of Temporal. */
export type DomainFlows = StepUpFlows & LockNotices & DeletionFlows & PasswordResetFlows & NewDeviceNotices;

export interface ServiceOptions {
  /** The one-statement refresh of a trusted device's token (on in production; tests of the locked path switch it off). */
  oneStatementRefresh?: boolean;
}

export async function buildServices(rt: Runtime, flows: DomainFlows, opts: ServiceOptions = {}) {
  const { config, logger, vault, sequelize } = rt;
  const keys = new KeyRing(vault, logger.child({ component: 'keys' }));
  await retrying('signing keys', logger, () => keys.load(true));
  keys.startRefresh(config.KEY_REFRESH_SECONDS * 1000);
  let listenCreds: DbCredentials | undefined;
  // Ended sessions reach access tokens through the revocation feed; only the API starts it (api/main.ts).
  const revocations = new RevocationFeed(
    sequelize,
    // The credentials are read once and again only when Postgres refuses them (rotated by Vault).
    async (lastError) => {
      if (!listenCreds || isAuthFailure(lastError)) listenCreds = await readDbCredentials(vault);
      return listenClient(config, listenCreds, 'authflow-revocations');
    },
    { accessTtl: config.ACCESS_TOKEN_TTL, maxLagMs: config.REVOCATION_MAX_LAG_MS, heartbeatMs: config.REVOCATION_HEARTBEAT_MS },
    logger.child({ component: 'revocations' }),
  );
  const tokens = new TokenService(
    keys,
    { issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE, accessTtl: config.ACCESS_TOKEN_TTL, clientId: config.ACCESS_TOKEN_CLIENT_ID },
    revocations,
  );
  const limits = new GuessingLimits(
    sequelize,
    {
      threshold: config.LOCKOUT_THRESHOLD,
      durations: config.LOCKOUT_DURATIONS,
      levelResetSeconds: config.LOCKOUT_LEVEL_RESET,
      throttleFree: config.LOGIN_THROTTLE_FREE_FAILURES,
      throttleDelays: config.LOGIN_THROTTLE_DELAYS,
      throttleResetSeconds: config.LOGIN_THROTTLE_RESET,
    },
    flows,
    logger.child({ component: 'lockout' }),
  );
  // Known devices: recorded at session creation; every refresh must come from its session's own
  // device, trusted within DEVICE_TRUST_TTL (step-up otherwise; MFA users confirm with TOTP).
  const devices = new DeviceService(
    sequelize,
    {
      stepUpTtl: config.STEP_UP_TTL,
      maxUnknownDevices: config.STEP_UP_MAX_UNKNOWN_DEVICES,
      unknownWindow: config.STEP_UP_UNKNOWN_DEVICE_WINDOW,
      trustTtl: config.DEVICE_TRUST_TTL,
      totpStepUp: true,
    },
    flows,
  );
  const sessions = new SessionService(
    sequelize,
    tokens,
    config.REFRESH_TOKEN_TTL,
    {
      check: devices.check,
      recordAtLogin: devices.recordAtLogin,
      ...(opts.oneStatementRefresh === false ? {} : { knownDevice: devices.knownDevice }),
    },
    { idle: config.SESSION_IDLE_TIMEOUT, max: config.SESSION_MAX_LIFETIME },
    config.REFRESH_GRACE_SECONDS,
  );
  const argon2 = argon2Params(config);
  // Flow events a request commits (the API process relays them to Temporal: api/main.ts).
  const flowOutbox = new FlowOutbox(
    sequelize,
    {
      pollMs: config.FLOW_OUTBOX_POLL_MS,
      maxBackoffMs: config.FLOW_OUTBOX_MAX_BACKOFF_MS,
      callTimeoutMs: config.FLOW_OUTBOX_CALL_TIMEOUT_MS,
      retentionSeconds: config.FLOW_OUTBOX_RETENTION,
    },
    logger.child({ component: 'flow-outbox' }),
  );
  const accounts = new AccountService(
    sequelize,
    sessions,
    limits,
    {
      argon2,
      minLength: config.PASSWORD_MIN_LENGTH,
      maxLength: config.PASSWORD_MAX_LENGTH,
    },
    flowOutbox,
  );
  const mfa = new MfaService(sequelize, vault, sessions, limits, {
    issuer: config.TOTP_ISSUER,
    challengeTtl: config.MFA_TOKEN_TTL,
    maxAttempts: config.MFA_MAX_ATTEMPTS,
    recoveryCodes: config.MFA_RECOVERY_CODES,
  });
  const passwordResets = new PasswordResetService(sequelize, sessions, accounts, argon2, flowOutbox);
  const invitations = new InvitationService(sequelize, flowOutbox, config.INVITATION_TTL);
  const webhooks = new WebhookService(sequelize, new VaultWebhookSecrets(vault), config.WEBHOOK_PRIVATE_HOSTS, config.WEBHOOK_SECRET_OVERLAP_SECONDS);
  // Registered OpenID Connect clients (the admin API writes them, the provider reads them).
  const clients = new ClientRegistry(sequelize, audit);
  const deletions = new DeletionService(sequelize, flows, accounts, mfa, config.ACCOUNT_DELETION_GRACE);
  const admin = new AdminService(sequelize, deletions, flows);
  const rateLimits = new RateLimits(sequelize, rateLimitSettings(config));
  const ops = new OpsService(sequelize, vault);
  // The OpenID provider's store and hosted sign-in (api/oidc/ mounts the provider).
  const oidcStore = new OidcStore(sequelize);
  const signIn = new SignInService(oidcStore, accounts, mfa);
  const oidcCookieKeys = new OidcCookieKeys(vault);
  // DPoP proofs: the token endpoints' jti store in Postgres, a per-instance cache for resource
  // requests; nonces keyed by a hash of the active signing key, which every API instance holds.
  const nonceKeys = new Map<string, Buffer>();
  const dpop = new DpopService(
    {
      publicBaseUrl: config.PUBLIC_BASE_URL,
      iatWindow: config.DPOP_IAT_WINDOW,
      nonceRequired: config.DPOP_NONCE_REQUIRED,
      nonceSlot: config.DPOP_NONCE_SECONDS,
    },
    new PgJtiStore(sequelize),
    new MemoryJtiCache(),
    () => {
      const { kid, key } = keys.signingKey();
      let secret = nonceKeys.get(kid);
      if (!secret) {
        const der = key instanceof Uint8Array ? Buffer.from(key) : (key as KeyObject).export({ format: 'der', type: 'pkcs8' });
        secret = createHash('sha256').update('authflow-dpop-nonce:').update(der).digest();
        nonceKeys.set(kid, secret);
      }
      return secret;
    },
  );
  return {
    keys,
    revocations,
    tokens,
    limits,
    flowOutbox,
    sessions,
    accounts,
    mfa,
    devices,
    passwordResets,
    invitations,
    webhooks,
    clients,
    deletions,
    admin,
    rateLimits,
    ops,
    dpop,
    oidcStore,
    signIn,
    oidcCookieKeys,
  };
}

export type Services = Awaited<ReturnType<typeof buildServices>>;

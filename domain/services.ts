/**
 * The one place that builds the domain services, all through constructors: signing keys, tokens,
 * guessing limits, devices, sessions, accounts, MFA, password resets. The Temporal side reaches the
 * domain only through the ports passed in here (platform/temporal/flows.ts implements them).
 */
import { argon2Params } from '../platform/config';
import { retrying, Runtime } from '../platform/runtime';
import { AccountService } from './accounts/accounts';
import { GuessingLimits, type LockNotices } from './accounts/lockout';
import { AdminService, type PasswordResetFlows } from './accounts/admin';
import { DeletionService, type DeletionFlows } from './accounts/deletion';
import { MfaService } from './accounts/mfa';
import { OpsService } from './ops/operations';
import { RateLimits, rateLimitSettings } from './rate-limits';
import { PasswordResetService } from './accounts/password-reset';
import { DeviceService } from './sessions/devices';
import { type StepUpFlows } from './sessions/step-up';
import { SessionService } from './sessions/sessions';
import { KeyRing } from './sessions/signing-keys';
import { TokenService } from './sessions/tokens';

/** What the services need of Temporal. */
export type DomainFlows = StepUpFlows & LockNotices & DeletionFlows & PasswordResetFlows;

export interface ServiceOptions {
  /** The one-statement refresh of a trusted device's token (on in production; tests of the locked path switch it off). */
  oneStatementRefresh?: boolean;
}

export async function buildServices(rt: Runtime, flows: DomainFlows, opts: ServiceOptions = {}) {
  const { config, logger, vault, sequelize } = rt;
  const keys = new KeyRing(vault, logger.child({ component: 'keys' }));
  await retrying('signing keys', logger, () => keys.load(true));
  keys.startRefresh(config.KEY_REFRESH_SECONDS * 1000);
  const tokens = new TokenService(keys, {
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    accessTtl: config.ACCESS_TOKEN_TTL,
    clientId: config.ACCESS_TOKEN_CLIENT_ID,
  });
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
  const sessions = new SessionService(sequelize, tokens, config.REFRESH_TOKEN_TTL, {
    check: devices.check,
    recordAtLogin: devices.recordAtLogin,
    ...(opts.oneStatementRefresh === false ? {} : { knownDevice: devices.knownDevice }),
  });
  const argon2 = argon2Params(config);
  const accounts = new AccountService(sequelize, sessions, limits, {
    argon2,
    minLength: config.PASSWORD_MIN_LENGTH,
    maxLength: config.PASSWORD_MAX_LENGTH,
  });
  const mfa = new MfaService(sequelize, vault, sessions, limits, {
    issuer: config.TOTP_ISSUER,
    challengeTtl: config.MFA_TOKEN_TTL,
    maxAttempts: config.MFA_MAX_ATTEMPTS,
    recoveryCodes: config.MFA_RECOVERY_CODES,
  });
  const passwordResets = new PasswordResetService(sequelize, sessions, accounts, argon2);
  const deletions = new DeletionService(sequelize, flows, accounts, mfa, config.ACCOUNT_DELETION_GRACE);
  const admin = new AdminService(sequelize, deletions, flows);
  const rateLimits = new RateLimits(sequelize, rateLimitSettings(config));
  const ops = new OpsService(sequelize, vault);
  return { keys, tokens, limits, sessions, accounts, mfa, devices, passwordResets, deletions, admin, rateLimits, ops };
}

export type Services = Awaited<ReturnType<typeof buildServices>>;

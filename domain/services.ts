/** The domain services built on a runtime: keys, tokens, sessions, accounts. */
import { deriveFingerprint } from './sessions/fingerprint';
import { AccountService } from './accounts/accounts';
import { DeviceService } from './sessions/devices';
import { KeyRing } from './sessions/signing-keys';
import { bindMfaService, MfaService } from './accounts/mfa';
import { PasswordResetService } from './accounts/password-reset';
import { argon2ParamsFromConfig } from '../crypto/argon2';
import { retrying, Runtime } from '../platform/runtime';
import { SessionService } from './sessions/sessions';
import { TokenService } from './sessions/tokens';

export async function buildServices(rt: Runtime) {
  const { config, logger, vault, sequelize } = rt;
  const keys = new KeyRing(vault, logger.child({ component: 'keys' }));
  await retrying('signing keys', logger, () => keys.load(true));
  keys.startRefresh(config.KEY_REFRESH_SECONDS * 1000);
  const tokens = new TokenService(keys, { issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE, accessTtl: config.ACCESS_TOKEN_TTL });
  const sessions = new SessionService(sequelize, tokens, config.REFRESH_TOKEN_TTL);
  const accounts = new AccountService(sequelize, sessions, {
    argon2: argon2ParamsFromConfig(config),
    minLength: config.PASSWORD_MIN_LENGTH,
    maxLength: config.PASSWORD_MAX_LENGTH,
  });
  const mfa = new MfaService(sequelize, vault, sessions, {
    issuer: config.TOTP_ISSUER,
    challengeTtl: config.MFA_TOKEN_TTL,
    maxAttempts: config.MFA_MAX_ATTEMPTS,
    recoveryCodes: config.MFA_RECOVERY_CODES,
  });
  bindMfaService(mfa);
  // Known devices: recorded at session creation; every refresh must come from its session's own
  // device, trusted within DEVICE_TRUST_TTL (step-up otherwise).
  const devices = new DeviceService(sequelize, {
    stepUpTtl: config.STEP_UP_TTL,
    maxUnknownDevices: config.STEP_UP_MAX_UNKNOWN_DEVICES,
    unknownWindow: config.STEP_UP_UNKNOWN_DEVICE_WINDOW,
    trustTtl: config.DEVICE_TRUST_TTL,
  });
  devices.totpAvailable = true; // MfaService verifies TOTP step-up codes
  sessions.deviceCheck = devices.check;
  sessions.deviceRecorder = devices.recordAtLogin;
  sessions.knownDevice = { fingerprint: (meta) => deriveFingerprint(meta).hash, trustTtl: config.DEVICE_TRUST_TTL };
  const passwordResets = new PasswordResetService(sequelize, sessions, accounts, argon2ParamsFromConfig(config));
  return { keys, tokens, sessions, accounts, mfa, devices, passwordResets };
}

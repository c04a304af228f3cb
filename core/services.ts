/** The domain services built on a runtime: keys, tokens, sessions, accounts. */
import { AccountService } from './accounts';
import { KeyRing } from './keys';
import { bindMfaService, MfaService } from './mfa';
import { argon2ParamsFromConfig } from './passwords';
import { retrying, Runtime } from './runtime';
import { SessionService } from './sessions';
import { TokenService } from './tokens';

export async function buildServices(rt: Runtime) {
  const { config, logger, vault, sequelize } = rt;
  const keys = new KeyRing(vault, logger.child({ component: 'keys' }));
  await retrying('signing keys', logger, () => keys.load(true));
  keys.startRefresh(30_000);
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
  return { keys, tokens, sessions, accounts, mfa };
}

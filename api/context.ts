/** What handlers receive: the process's shared dependencies and services. */
import type { Client } from '@temporalio/client';
import type { Sequelize } from 'sequelize';
import type { AccountService } from '../domain/accounts/accounts';
import type { Config } from '../platform/config';
import type { DeviceService } from '../domain/sessions/devices';
import type { KeyRing } from '../domain/sessions/signing-keys';
import type { Logger } from '../platform/logger';
import type { MfaService } from '../domain/accounts/mfa';
import type { PasswordResetService } from '../domain/accounts/password-reset';
import type { SessionService } from '../domain/sessions/sessions';
import type { TokenService } from '../domain/sessions/tokens';
import type { VaultClient } from '../platform/vault';

export interface AppDeps {
  config: Config;
  logger: Logger;
  sequelize: Sequelize;
  vault: VaultClient;
  temporal: Client;
  keys: KeyRing;
  tokens: TokenService;
  sessions: SessionService;
  accounts: AccountService;
  mfa: MfaService;
  devices: DeviceService;
  passwordResets: PasswordResetService;
}

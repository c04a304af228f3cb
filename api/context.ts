/** What handlers receive: the process's shared dependencies and services. */
import type { Client } from '@temporalio/client';
import type { Sequelize } from 'sequelize';
import type { AccountService } from '../core/accounts';
import type { Config } from '../core/config';
import type { DeviceService } from '../core/devices';
import type { KeyRing } from '../core/keys';
import type { Logger } from '../core/logger';
import type { MfaService } from '../core/mfa';
import type { PasswordResetService } from '../core/password-reset';
import type { SessionService } from '../core/sessions';
import type { TokenService } from '../core/tokens';
import type { VaultClient } from '../core/vault';

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

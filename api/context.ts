/** What handlers receive: the process's shared dependencies. */
import type { Client } from '@temporalio/client';
import type { Sequelize } from 'sequelize';
import type { Config } from '../core/config';
import type { Logger } from '../core/logger';
import type { VaultClient } from '../core/vault';

export interface AppDeps {
  config: Config;
  logger: Logger;
  sequelize: Sequelize;
  vault: VaultClient;
  temporal: Client;
}

/** What every activity factory receives: the worker's clients, passed in (tests pass real ones). */
import type { Sequelize } from 'sequelize';
import type { Config } from '../platform/config';
import type { Logger } from '../platform/logger';
import type { Mailer } from '../platform/mailer';
import type { VaultClient } from '../platform/vault';

export interface ActivityDeps {
  sequelize: Sequelize;
  vault: VaultClient;
  mailer: Mailer;
  config: Config;
  logger: Logger;
}

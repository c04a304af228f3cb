/** Activities, built by a factory that receives their dependencies (db, vault, mailer), so tests
 * and the worker pass real ones. Workflows import only the `Activities` type. */
import type { Sequelize } from 'sequelize';
import type { Config } from '../core/config';
import type { Logger } from '../core/logger';
import type { Mailer } from '../core/mailer';
import type { VaultClient } from '../core/vault';
import { createNotificationActivities } from './notifications';

export interface ActivityDeps {
  sequelize: Sequelize;
  vault: VaultClient;
  mailer: Mailer;
  config: Config;
  logger: Logger;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createNotificationActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;

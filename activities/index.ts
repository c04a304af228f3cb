/** Activities, built by a factory that receives their dependencies (db, vault, mailer), so tests
 * and the worker pass real ones. Workflows import only the `Activities` type. */
import type { Sequelize } from 'sequelize';
import type { Config } from '../core/config';
import type { Logger } from '../core/logger';
import type { Mailer } from '../core/mailer';
import type { VaultClient } from '../core/vault';
import { createAccountActivities } from './accounts';
import { createMfaActivities } from './mfa';
import { createNotificationActivities } from './notifications';
import { createResetStepUpActivities } from './reset-stepup';
import { createVaultOpsActivities } from './vault-ops';

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
    ...createAccountActivities(deps),
    ...createMfaActivities(deps),
    ...createResetStepUpActivities(deps),
    ...createVaultOpsActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;

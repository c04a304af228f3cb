/** Activities, built by a factory that receives their dependencies (db, vault, mailer), so tests
 * and the worker pass real ones. Workflows import only the `Activities` type. */
import type { Sequelize } from 'sequelize';
import type { Config } from '../platform/config';
import type { Logger } from '../platform/logger';
import type { Mailer } from '../platform/mailer';
import type { VaultClient } from '../platform/vault';
import { createAccountActivities } from './account-deletion';
import { createMfaActivities } from './mfa';
import { createNotificationActivities } from './notification';
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

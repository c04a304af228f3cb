/** Activities, built by one factory per flow that receives their dependencies (db, vault, mailer),
 * so tests and the worker pass real ones. Workflows import only the `Activities` type. */
import { createAccountDeletionActivities } from './account-deletion';
import { createBackupsActivities } from './backups';
import type { ActivityDeps } from './deps';
import { createEmailVerificationActivities } from './email-verification';
import { createInvitationActivities } from './invitation';
import { createKeyRotationActivities } from './key-rotation';
import { createNotificationActivities } from './notification';
import { createOpsRunActivities } from './ops-run';
import { createPasswordResetActivities } from './password-reset';
import { createStepUpActivities } from './step-up';
import { createWebhookDeliveryActivities } from './webhook-delivery';

export function createActivities(deps: ActivityDeps) {
  return {
    ...createNotificationActivities(deps),
    ...createEmailVerificationActivities(deps),
    ...createInvitationActivities(deps),
    ...createAccountDeletionActivities(deps),
    ...createPasswordResetActivities(deps),
    ...createStepUpActivities(deps),
    ...createKeyRotationActivities(deps),
    ...createBackupsActivities(deps),
    ...createOpsRunActivities(deps),
    ...createWebhookDeliveryActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;

/** Named activity option presets: every activity call has an explicit timeout and retry policy. */
import type { ActivityOptions } from '@temporalio/workflow';

/** E-mail and short DB work: quick attempts, retried with backoff for up to an hour. */
export const mailActivity: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  scheduleToCloseTimeout: '1 hour',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: ['NotFound', 'InvalidInput'],
  },
};

/** Short database updates. */
export const dbActivity: ActivityOptions = {
  startToCloseTimeout: '15 seconds',
  scheduleToCloseTimeout: '30 minutes',
  retry: {
    initialInterval: '500 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    nonRetryableErrorTypes: ['NotFound', 'InvalidInput'],
  },
};

/** Vault operations (key-set writes, bookkeeping): short attempts, retried for up to a day, so a
 * sealed or restarting Vault delays a rotation instead of failing it. */
export const opsActivity: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  scheduleToCloseTimeout: '1 day',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '5 minutes',
    nonRetryableErrorTypes: ['RotationConflict', 'KeySetState', 'InvalidInput'],
  },
};

/** Long file work (pg_dump, raft snapshot, restore drill): heartbeats, bounded attempts. A dead
 * worker is noticed within the heartbeat timeout and the attempt starts over on another. */
export const longOpsActivity: ActivityOptions = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '30 seconds',
  scheduleToCloseTimeout: '8 hours',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '5 minutes',
    maximumAttempts: 8,
    nonRetryableErrorTypes: ['BackupInvalid', 'InvalidInput'],
  },
};

/**
 * A webhook delivery's HTTP try: retried with exponential backoff (from `initialSeconds`, doubling,
 * at most an hour apart) until `retryForSeconds` after the first try (WEBHOOK_RETRY_SECONDS, a
 * day); a refused target (server-side request forgery guard) is not retried.
 */
export function webhookActivity(retryForSeconds: number, initialSeconds: number): ActivityOptions {
  return {
    startToCloseTimeout: '30 seconds',
    scheduleToCloseTimeout: `${retryForSeconds} seconds`,
    retry: {
      initialInterval: `${initialSeconds} seconds`,
      backoffCoefficient: 2,
      maximumInterval: '1 hour',
      nonRetryableErrorTypes: ['WebhookTargetRefused', 'InvalidInput'],
    },
  };
}

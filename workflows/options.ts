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

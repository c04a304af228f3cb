/**
 * Activities of the account-deletion flow: cancel a pending deletion (restore the account) and
 * erase a deleted account's personal data (domain/accounts/erasure.ts). Both are safe to retry.
 */
import { ApplicationFailure } from '@temporalio/common';
import { AccountErasure, cancelPendingDeletion, EraseResult } from '../domain/accounts/erasure';
import { AppError } from '../platform/errors';
import type { ActivityDeps } from './deps';
import { createOutbox, idempotencyKey } from './outbox';

export type { EraseResult };

/** No such user is `NotFound`; an account in a state that does not allow it `InvalidTransition`. */
function accountFailure(err: unknown): never {
  if (err instanceof AppError && err.code === 'not_found') throw ApplicationFailure.nonRetryable(err.message, 'NotFound');
  if (err instanceof AppError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidTransition');
  throw err;
}

export function createAccountDeletionActivities(deps: ActivityDeps) {
  const { sequelize, logger } = deps;
  const erasure = new AccountErasure(sequelize, createOutbox(deps), logger);

  return {
    /** Restores a pending-deletion account (self-service or admin reactivation). */
    async cancelAccountDeletion(input: {
      userId: string;
      actorId: string | null;
      requestId: string | null;
      restoreTo?: 'active';
    }): Promise<{ status: string }> {
      const r = await cancelPendingDeletion(sequelize, input).catch(accountFailure);
      logger.info({ userId: input.userId, to: r.status }, 'account deletion cancelled');
      return r;
    },

    /**
     * Erases personal data once the grace period is over; the farewell e-mail goes out first
     * (once, through the outbox). Safe to run any number of times.
     */
    async eraseAccount(input: { userId: string }): Promise<EraseResult> {
      try {
        return await erasure.erase(idempotencyKey(), input.userId);
      } catch (err) {
        if (err instanceof AppError && err.code === 'not_found') throw ApplicationFailure.nonRetryable(err.message, 'NotFound');
        throw err;
      }
    },
  };
}

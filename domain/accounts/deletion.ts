/**
 * Account deletion with a grace period, shared by `DELETE /v1/me` and the admin DELETE: a state
 * transition to `pending_deletion` plus the `account-deletion:<userId>` workflow, started inside
 * the same database transaction so neither exists without the other; and its cancellation
 * (reactivation), which goes through the workflow's update (its handler restores the account).
 */
import type { Sequelize, Transaction } from 'sequelize';
import { User } from '../../platform/db/models';
import { withTx } from '../../platform/db';
import { AppError } from '../../platform/errors';
import type { RequestMeta } from '../sessions/sessions';
import { lockUser, transition } from './account-state';
import { assertNotLastAdmin } from './last-admin';
import type { AccountService } from './accounts';
import type { MfaService } from './mfa';

/** The deletion workflow as the domain sees it (platform/temporal/flows.ts implements it). */
export interface DeletionFlows {
  startDeletion(input: { userId: string; dueAt: string; requestedBy: 'self' | 'admin' }): Promise<void>;
  /** False when no workflow exists; throws (an error named DeletionNotCancellable) once erasure has begun. */
  cancelDeletion(userId: string, input: { actorId: string | null; requestId: string | null; restoreTo?: 'active' }, updateId: string): Promise<boolean>;
  deletionState(userId: string): Promise<{ status: string; due_at: string } | null>;
}

export class DeletionService {
  constructor(
    private readonly sequelize: Sequelize,
    private readonly flows: DeletionFlows,
    private readonly accounts: AccountService,
    private readonly mfa: MfaService,
    private readonly graceSeconds: number,
  ) {}

  /**
   * The user's own request: the password is checked like a sign-in (wrong ones count), MFA users
   * add a fresh code (missing: 401 mfa_required; wrong: 401 invalid_mfa_code), spent in the
   * transaction of `schedule` (a deletion that does not happen leaves the code usable).
   */
  async requestBySelf(userId: string, password: string, code: string | undefined, meta: RequestMeta): Promise<{ user: User; dueAt: Date }> {
    const current = await User.findByPk(userId);
    if (!current || current.status === 'deleted' || !current.email) throw new AppError('unauthorized', 'the account no longer exists');
    if (current.status === 'pending_deletion') {
      throw new AppError('invalid_transition', 'the account is already pending deletion', { status_now: current.status, event: 'request_deletion' });
    }
    await this.accounts.authenticatePassword(current.email, password, meta);
    const claim = await this.mfa.prepareSecondFactor(userId, code, meta, 'account_deletion');
    try {
      return await this.schedule(userId, meta, 'self', undefined, claim ? (t) => claim.spend(t) : undefined);
    } catch (err) {
      await claim?.release();
      throw err;
    }
  }

  /**
   * Moves the user to `pending_deletion` and starts the deletion workflow, in one transaction (a
   * failed start rolls the status back). `guard` runs on the locked row first; `inTx` (spending the
   * second factor that authorised it) in the same transaction.
   */
  async schedule(
    userId: string,
    meta: RequestMeta,
    by: 'self' | 'admin',
    guard?: (u: User) => void,
    inTx?: (t: Transaction) => Promise<void>,
  ): Promise<{ user: User; dueAt: Date }> {
    const dueAt = new Date(Date.now() + this.graceSeconds * 1000);
    return withTx(this.sequelize, async (t) => {
      // Nobody may delete the last active administrator, not even itself (the advisory lock first,
      // then the row, the same order as every other admin-state change).
      await assertNotLastAdmin(this.sequelize, t, userId);
      const user = await lockUser(userId, t);
      guard?.(user);
      await inTx?.(t);
      await transition(t, user, 'request_deletion', { meta, deletionDueAt: dueAt, data: { by, due_at: dueAt.toISOString() } });
      await this.flows.startDeletion({ userId, dueAt: dueAt.toISOString(), requestedBy: by });
      return { user, dueAt };
    });
  }

  /**
   * Cancels a pending deletion through the workflow's update. If no workflow exists (it was
   * terminated by an operator), the transition is applied directly. Throws 409 when erasure has
   * begun or the account is not pending deletion.
   */
  async cancel(userId: string, meta: RequestMeta, restoreTo?: 'active'): Promise<User> {
    let handled: boolean;
    try {
      handled = await this.flows.cancelDeletion(
        userId,
        { actorId: meta.actorId ?? null, requestId: meta.requestId ?? null, restoreTo },
        `cancel:${meta.requestId ?? Date.now()}`,
      );
    } catch (err) {
      if ((err as Error)?.name === 'DeletionNotCancellable') {
        throw new AppError('invalid_transition', 'the deletion can no longer be cancelled', { status_now: 'pending_deletion', event: 'cancel_deletion' });
      }
      throw err;
    }
    if (!handled) {
      // Workflow finished or gone: only the database decides (erased accounts stay erased).
      await withTx(this.sequelize, (t) => transition(t, userId, 'cancel_deletion', { meta, restoreTo, data: { workflow: 'missing' } }));
    }
    const user = await User.findByPk(userId);
    if (!user) throw new AppError('not_found', 'no such user');
    return user;
  }

  /** The deletion workflow's state, when one exists (null if Temporal does not answer). */
  state(userId: string) {
    return this.flows.deletionState(userId);
  }
}

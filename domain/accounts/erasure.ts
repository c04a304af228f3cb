/**
 * The end of an account: erasure of a deleted account's personal data once the grace period is
 * over, and its counterpart, a pending deletion cancelled before that (the account-deletion
 * flow's activity half; starting and cancelling from the API is the API's side). Both lock the
 * user row and check its state themselves, so a retry, a second run or a race with the API
 * changes nothing twice.
 */
import { OidcStore } from '../oidc/store';
import { QueryTypes, Sequelize } from 'sequelize';
import { User } from '../../platform/db/models';
import { AppError } from '../../platform/errors';
import type { Logger } from '../../platform/logger';
import { render } from '../mail-templates';
import { deleteUserTokens } from '../one-time-tokens';
import { dropPendingDeliveries } from '../webhooks';
import { greetingName, type Outbox } from '../outbox';
import { lockUser, transition } from './account-state';
import { MFA_CLEARED, wipeCredentials } from './credentials';
import { throttleAccountKey } from './lockout';

export interface EraseResult {
  erased: boolean;
  alreadyErased: boolean;
  /** Why nothing was erased (the account is no longer pending deletion). */
  skipped?: string;
  erasedAt: string | null;
}

const noSuchUser = () => new AppError('not_found', 'no such user');

/** Restores a pending-deletion account (self-service or admin reactivation). 404 `not_found` or
 * 409 `invalid_transition` when there is nothing to restore. */
export async function cancelPendingDeletion(
  sequelize: Sequelize,
  input: { userId: string; actorId: string | null; requestId: string | null; restoreTo?: 'active' },
): Promise<{ status: string }> {
  return sequelize.transaction(async (t) => {
    const user = await lockUser(input.userId, t);
    const r = await transition(t, user, 'cancel_deletion', {
      meta: { actorId: input.actorId, requestId: input.requestId },
      restoreTo: input.restoreTo,
      data: { by: input.actorId === input.userId ? 'self' : 'admin' },
    });
    return { status: r.to };
  });
}

export class AccountErasure {
  constructor(
    private readonly sequelize: Sequelize,
    private readonly outbox: Outbox,
    private readonly logger: Logger,
  ) {}

  /**
   * Erases personal data: e-mail, name, password hash, MFA secrets and recovery codes, devices,
   * sessions and one-time codes. The row stays as a tombstone (status `deleted`) and the audit
   * trail is kept. The farewell e-mail goes out first (once per outbox `key`), while the address
   * still exists. Safe to run any number of times. 404 `not_found` for an unknown user.
   */
  async erase(key: string, userId: string): Promise<EraseResult> {
    const { sequelize } = this;
    const user = await User.findByPk(userId);
    if (!user) throw noSuchUser();
    if (user.status === 'deleted') return { erased: false, alreadyErased: true, erasedAt: null };
    if (user.status !== 'pending_deletion') {
      this.logger.warn({ userId, status: user.status }, 'erasure skipped: account no longer pending deletion');
      return { erased: false, alreadyErased: false, skipped: user.status, erasedAt: null };
    }

    // Farewell notice, at most once per workflow run (outbox row keyed by run and activity).
    const { row } = await this.outbox.claim(key, user.id, 'account_erased');
    if (row.status !== 'sent' && user.email) {
      await this.outbox.deliver(key, row, { to: user.email, ...render('account_erased', { name: greetingName(user) }) });
    }

    const erasedAt = new Date();
    const result = await sequelize.transaction(async (t): Promise<EraseResult> => {
      const u = await User.findByPk(userId, { transaction: t, lock: t.LOCK.UPDATE });
      if (!u) throw noSuchUser();
      if (u.status === 'deleted') return { erased: false, alreadyErased: true, erasedAt: null };
      if (u.status !== 'pending_deletion') return { erased: false, alreadyErased: false, skipped: u.status, erasedAt: null };
      await wipeCredentials(sequelize, t, u.id);
      await deleteUserTokens(t, u.id);
      await dropPendingDeliveries(sequelize, t, u.id);
      // An invitation names who invited the address and with which roles.
      await sequelize.query('DELETE FROM invitations WHERE user_id = :id', { replacements: { id: u.id }, type: QueryTypes.DELETE, transaction: t });
      // Login throttles are keyed by a hash of the address: they go with it.
      if (u.email) {
        await sequelize.query('DELETE FROM login_throttles WHERE account_key = :key', {
          replacements: { key: throttleAccountKey(u.email) },
          type: QueryTypes.DELETE,
          transaction: t,
        });
      }
      // The OpenID provider's grants (consents), tokens and sign-in sessions of the user.
      await new OidcStore(sequelize).endAllForAccount(u.id, t);
      // Sessions hold IPs and user agents; their refresh tokens go with them (cascade).
      const sessions = await sequelize.query<{ id: string }>('DELETE FROM sessions WHERE user_id = :id RETURNING id', {
        replacements: { id: u.id },
        type: QueryTypes.SELECT,
        transaction: t,
      });
      await transition(t, u, 'erase', {
        data: { sessions_deleted: sessions.length },
        patch: {
          email: null,
          name: null,
          password_hash: null,
          email_verified_at: null,
          ...MFA_CLEARED,
          failed_logins: 0,
          failed_window_start: null,
          lock_level: 0,
          last_lock_ended_at: null,
          password_changed_at: null,
          updated_at: erasedAt,
        },
      });
      return { erased: true, alreadyErased: false, erasedAt: erasedAt.toISOString() };
    });
    if (result.erased) this.logger.info({ userId }, 'account erased');
    return result;
  }
}

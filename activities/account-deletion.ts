/**
 * Account lifecycle activities: cancel a pending deletion (restore the account) and erase a
 * deleted account's personal data. Both lock the user row and check its state themselves, so a
 * retry, a second run or a race with the API changes nothing twice.
 */
import { createHash } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { QueryTypes } from 'sequelize';
import { transition } from '../domain/accounts/account-state';
import { throttleAccountKey } from '../domain/accounts/lockout';
import { EmailOutbox, User } from '../platform/db/models';
import { AppError } from '../platform/errors';
import type { ActivityDeps } from './index';
import { idempotencyKey } from './notification';
import { render } from '../domain/mail-templates';

export interface EraseResult {
  erased: boolean;
  alreadyErased: boolean;
  /** Why nothing was erased (the account is no longer pending deletion). */
  skipped?: string;
  erasedAt: string | null;
}

export function createAccountActivities(deps: ActivityDeps) {
  const { sequelize, mailer, logger } = deps;
  const tableExists = async (name: string) =>
    (await sequelize.query<{ t: string | null }>('SELECT to_regclass(:name)::text AS t', { replacements: { name }, type: QueryTypes.SELECT }))[0]?.t != null;

  return {
    /** Restores a pending-deletion account (self-service or admin reactivation). */
    async cancelAccountDeletion(input: { userId: string; actorId: string | null; requestId: string | null; restoreTo?: 'active' }): Promise<{ status: string }> {
      try {
        return await sequelize.transaction(async (t) => {
          const user = await User.findByPk(input.userId, { transaction: t, lock: t.LOCK.UPDATE });
          if (!user) throw ApplicationFailure.nonRetryable('no such user', 'NotFound');
          const r = await transition(t, user, 'cancel_deletion', {
            meta: { actorId: input.actorId, requestId: input.requestId },
            restoreTo: input.restoreTo,
            data: { by: input.actorId === input.userId ? 'self' : 'admin' },
          });
          logger.info({ userId: input.userId, to: r.to }, 'account deletion cancelled');
          return { status: r.to };
        });
      } catch (err) {
        if (err instanceof AppError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidTransition');
        throw err;
      }
    },

    /**
     * Erases personal data once the grace period is over: e-mail, name, password hash, MFA
     * secrets and recovery codes, devices, sessions and one-time codes. The row stays as a
     * tombstone (status `deleted`) and the audit trail is kept. The farewell e-mail goes out first
     * (once, through the outbox), while the address still exists. Safe to run any number of times.
     */
    async eraseAccount(input: { userId: string }): Promise<EraseResult> {
      const user = await User.findByPk(input.userId);
      if (!user) throw ApplicationFailure.nonRetryable('no such user', 'NotFound');
      if (user.status === 'deleted') return { erased: false, alreadyErased: true, erasedAt: null };
      if (user.status !== 'pending_deletion') {
        logger.warn({ userId: input.userId, status: user.status }, 'erasure skipped: account no longer pending deletion');
        return { erased: false, alreadyErased: false, skipped: user.status, erasedAt: null };
      }

      // Farewell notice, at most once per workflow run (outbox row keyed by run and activity).
      const key = idempotencyKey();
      const [row] = await EmailOutbox.findOrCreate({ where: { idempotency_key: key }, defaults: { idempotency_key: key, user_id: user.id, template: 'account_erased', status: 'pending' } });
      if (row.status !== 'sent' && user.email) {
        const messageId = `<${createHash('sha256').update(key).digest('hex').slice(0, 32)}@authflow>`;
        await mailer.send({ to: user.email, ...render('account_erased', { name: user.name ?? '' }), messageId });
        await row.update({ status: 'sent', message_id: messageId, sent_at: new Date() });
      }

      const erasedAt = new Date();
      const result = await sequelize.transaction(async (t) => {
        const u = await User.findByPk(input.userId, { transaction: t, lock: t.LOCK.UPDATE });
        if (!u) throw ApplicationFailure.nonRetryable('no such user', 'NotFound');
        if (u.status === 'deleted') return { erased: false, alreadyErased: true, erasedAt: null };
        if (u.status !== 'pending_deletion') return { erased: false, alreadyErased: false, skipped: u.status, erasedAt: null };
        const q = (sql: string) => sequelize.query(sql, { replacements: { id: u.id }, type: QueryTypes.DELETE, transaction: t });
        await q('DELETE FROM mfa_recovery_codes WHERE user_id = :id');
        await q('DELETE FROM device_fingerprints WHERE user_id = :id');
        await q('DELETE FROM one_time_tokens WHERE user_id = :id');
        if (await tableExists('mfa_challenges')) await q('DELETE FROM mfa_challenges WHERE user_id = :id');
        // Login throttles are keyed by a hash of the address: they go with it.
        if (u.email) {
          await sequelize.query('DELETE FROM login_throttles WHERE account_key = :key', { replacements: { key: throttleAccountKey(u.email) }, type: QueryTypes.DELETE, transaction: t });
        }
        // Sessions hold IPs and user agents; their refresh tokens go with them (cascade).
        const sessions = await sequelize.query<{ id: string }>('DELETE FROM sessions WHERE user_id = :id RETURNING id', { replacements: { id: u.id }, type: QueryTypes.SELECT, transaction: t });
        await transition(t, u, 'erase', {
          data: { sessions_deleted: sessions.length },
          patch: {
            email: null, name: null, password_hash: null, email_verified_at: null,
            mfa_enabled: false, totp_secret_enc: null, totp_pending_enc: null, totp_last_step: null,
            failed_logins: 0, failed_window_start: null, lock_level: 0, last_lock_ended_at: null,
            password_changed_at: null, updated_at: erasedAt,
          },
        });
        return { erased: true, alreadyErased: false, erasedAt: erasedAt.toISOString() };
      });
      if (result.erased) logger.info({ userId: input.userId }, 'account erased');
      return result;
    },
  };
}

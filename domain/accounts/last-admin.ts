/**
 * The one rule that keeps an administrator: no lock, suspension or deletion (by an admin or by the
 * account itself) may leave no active admin, since nothing but the CLI could undo it. Checked
 * inside the change's transaction under a transaction-level advisory lock, so two admins acting
 * on each other at once cannot both pass.
 */
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { AppError } from '../../platform/errors';

/** Throws 409 `last_admin` when `userId` is an active admin and no other active admin exists. */
export async function assertNotLastAdmin(sequelize: Sequelize, t: Transaction, userId: string): Promise<void> {
  await sequelize.query(`SELECT pg_advisory_xact_lock(hashtext('authflow:last-active-admin'))`, { transaction: t });
  const [row] = await sequelize.query<{ target: boolean; others: number }>(
    `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND status = 'active' AND 'admin' = ANY(roles)) AS target,
            (SELECT count(*)::int FROM users WHERE id <> $1 AND status = 'active' AND 'admin' = ANY(roles)) AS others`,
    { bind: [userId], transaction: t, type: QueryTypes.SELECT },
  );
  if (row?.target && row.others === 0) {
    throw new AppError('last_admin', 'this is the last active administrator: make another account admin first');
  }
}

/**
 * Roles by API: an administrator grants or revokes one role of an account (`PUT`/`DELETE
 * /v1/admin/users/{id}/roles/{role}`), one transaction each, audited. Every account keeps `user`.
 * The last active administrator keeps `admin` (last-admin.ts), and `admin` goes only to an active,
 * verified account: whoever registered an unverified address chose its details.
 *
 * A revoked role leaves no access token behind: the `users_roles_reduced` trigger (migration 012)
 * records the account in `token_revocations`, so access tokens issued before are refused at once
 * (domain/sessions/revocations.ts) and the next refresh carries the new roles. A granted role
 * appears at the next refresh.
 */
import type { Sequelize } from 'sequelize';
import { withTx } from '../../platform/db';
import type { User } from '../../platform/db/models';
import { AppError } from '../../platform/errors';
import { audit, type AuditMeta } from '../audit';
import { lockUser } from './account-state';
import { assertNotLastAdmin } from './last-admin';

/** A role name: lower-case letters, digits, `_` and `-`, starting with a letter, at most 32. */
export const ROLE_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
/** How many roles one account may hold. */
export const MAX_ROLES = 32;

export async function grantRole(sequelize: Sequelize, userId: string, role: string, meta: AuditMeta): Promise<{ user: User; changed: boolean }> {
  return withTx(sequelize, async (t) => {
    const user = await lockUser(userId, t);
    if (user.status === 'deleted' || user.status === 'pending_deletion') {
      throw new AppError('invalid_transition', `cannot change the roles of an account that is ${user.status.replace(/_/g, ' ')}`, {
        status_now: user.status,
        event: 'grant_role',
      });
    }
    if (role === 'admin' && (user.status !== 'active' || !user.email_verified_at)) {
      throw new AppError('invalid_transition', 'admin goes only to an active account with a verified address', {
        status_now: user.status,
        event: 'grant_role',
      });
    }
    if (user.roles.includes(role)) return { user, changed: false };
    if (user.roles.length >= MAX_ROLES) throw new AppError('conflict', `an account holds at most ${MAX_ROLES} roles`);
    await user.update({ roles: [...user.roles, role], updated_at: new Date() }, { transaction: t });
    await audit(t, 'role.granted', user.id, meta, { role });
    return { user, changed: true };
  });
}

export async function revokeRole(sequelize: Sequelize, userId: string, role: string, meta: AuditMeta): Promise<{ user: User; changed: boolean }> {
  if (role === 'user') throw new AppError('conflict', 'every account has the user role');
  return withTx(sequelize, async (t) => {
    // Nobody may strip the last active administrator (the advisory lock first, then the row).
    if (role === 'admin') await assertNotLastAdmin(sequelize, t, userId);
    const user = await lockUser(userId, t);
    if (!user.roles.includes(role)) return { user, changed: false };
    await user.update({ roles: user.roles.filter((r) => r !== role), updated_at: new Date() }, { transaction: t });
    await audit(t, 'role.revoked', user.id, meta, { role });
    return { user, changed: true };
  });
}

/**
 * Invitations: an administrator invites an address (`POST /v1/admin/invitations`). The account
 * exists at once as `pending_verification` with no password and the given roles, and the
 * invitation flow (workflows/invitation.ts) e-mails an `email_verification` code. Accepting is
 * verifying the address with that code and choosing the password in the same step (the
 * verification page and `POST /v1/auth/verify-email` ask for it: an account without a password
 * needs one, accounts.ts). The flow ends at acceptance or at expiry; `finish` records which, from
 * the account itself (a verification by any path counts). The `invitations` table's one writer;
 * erasure deletes the row with the account's other data (erasure.ts).
 *
 * Only a new address can be invited (an existing account is 409 `conflict`: the admin sees it in
 * the user listing); `admin` is never part of an invitation (whoever opens the e-mail first would
 * get it): grant it after acceptance (roles.ts).
 */
import { randomUUID } from 'node:crypto';
import { QueryTypes, type Sequelize } from 'sequelize';
import { mapDbError } from '../../platform/db';
import { User } from '../../platform/db/models';
import { AppError } from '../../platform/errors';
import { audit, type AuditMeta } from '../audit';
import type { FlowOutbox } from '../flow-outbox';
import { MAX_ROLES, ROLE_NAME } from './roles';
import { normaliseEmail } from './users';

export interface InvitationRecord {
  user_id: string;
  email: string;
  roles: string[];
  invited_by: string | null;
  created_at: Date;
  expires_at: Date;
  status: 'pending' | 'accepted' | 'expired';
  finished_at: Date | null;
}

export class InvitationService {
  constructor(
    private readonly sequelize: Sequelize,
    private readonly flowOutbox: Pick<FlowOutbox, 'enqueue'>,
    /** INVITATION_TTL: seconds an invitation stays acceptable. */
    private readonly ttlSeconds: number,
  ) {}

  /** Creates the invited account and its invitation, and leaves the flow's start in the outbox, in one transaction. */
  async invite(input: { email: string; name?: string; roles: string[] }, meta: AuditMeta): Promise<InvitationRecord> {
    const email = normaliseEmail(input.email);
    const roles = ['user', ...new Set(input.roles.filter((r) => r !== 'user'))];
    const bad = roles.filter((r) => !ROLE_NAME.test(r));
    if (bad.length) throw new AppError('validation_failed', `not a role name: ${bad.join(', ')}`, { errors: [{ field: 'roles', message: 'not a role name' }] });
    if (roles.includes('admin')) {
      throw new AppError(
        'validation_failed',
        'admin is not given by invitation: grant it once the invitation is accepted (PUT /v1/admin/users/{id}/roles/admin)',
        {
          errors: [{ field: 'roles', message: 'admin is granted after acceptance' }],
        },
      );
    }
    if (roles.length > MAX_ROLES) throw new AppError('validation_failed', `at most ${MAX_ROLES} roles`, { errors: [{ field: 'roles', message: 'too many' }] });
    const expiresAt = new Date(Date.now() + this.ttlSeconds * 1000);
    try {
      return await this.sequelize.transaction(async (t) => {
        const existing = await User.findOne({ where: { email }, attributes: ['id', 'status'], transaction: t });
        if (existing) throw new AppError('conflict', `an account with this address exists (user ${existing.id}, ${existing.status.replace(/_/g, ' ')})`);
        const user = await User.create(
          { id: randomUUID(), email, name: input.name ?? null, password_hash: null, status: 'pending_verification', roles },
          { transaction: t },
        );
        await this.sequelize.query(`INSERT INTO invitations (user_id, invited_by, roles, expires_at) VALUES ($1, $2, $3, $4)`, {
          bind: [user.id, meta.actorId ?? null, roles, expiresAt],
          transaction: t,
        });
        await audit(t, 'invitation.created', user.id, meta, { roles, expires_at: expiresAt.toISOString() });
        await this.flowOutbox.enqueue(t, { kind: 'invitation.start', userId: user.id });
        return {
          user_id: user.id,
          email,
          roles,
          invited_by: meta.actorId ?? null,
          created_at: user.created_at,
          expires_at: expiresAt,
          status: 'pending',
          finished_at: null,
        };
      });
    } catch (err) {
      // Two invitations of one address at once: the unique address decides, the loser is a conflict.
      if ((err as Error)?.name === 'SequelizeUniqueConstraintError') throw new AppError('conflict', 'an account with this address exists');
      throw mapDbError(err);
    }
  }

  /** Seconds an invitation stays acceptable (the flow's code lifetime). */
  get ttl(): number {
    return this.ttlSeconds;
  }

  /** Whether the account still has a pending invitation (the relay starts the flow only then). */
  async pending(userId: string): Promise<boolean> {
    const rows = await this.sequelize.query(`SELECT 1 FROM invitations WHERE user_id = $1 AND status = 'pending'`, { bind: [userId], type: QueryTypes.SELECT });
    return rows.length > 0;
  }
}

/**
 * The end of the flow: `accepted` when the address was verified (by the invitation's code or
 * any other path), `expired` otherwise. Idempotent: a finished invitation keeps its outcome.
 */
export async function finishInvitation(sequelize: Sequelize, userId: string): Promise<{ outcome: 'accepted' | 'expired' | 'gone' }> {
  return sequelize.transaction(async (t) => {
    const [row] = await sequelize.query<{ status: InvitationRecord['status']; verified: boolean | null }>(
      `SELECT i.status, u.email_verified_at IS NOT NULL AS verified
         FROM invitations i LEFT JOIN users u ON u.id = i.user_id WHERE i.user_id = $1 FOR UPDATE OF i`,
      { bind: [userId], transaction: t, type: QueryTypes.SELECT },
    );
    if (!row) return { outcome: 'gone' as const };
    if (row.status !== 'pending') return { outcome: row.status };
    const outcome = row.verified ? ('accepted' as const) : ('expired' as const);
    await sequelize.query(`UPDATE invitations SET status = $2, finished_at = now() WHERE user_id = $1`, { bind: [userId, outcome], transaction: t });
    await audit(t, `invitation.${outcome}`, userId, {}, {});
    return { outcome };
  });
}

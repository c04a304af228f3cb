/**
 * Administration that is not a status transition: the account reset, and the read models for
 * the admin listings (users, audit events) with opaque keyset cursors.
 */
import { QueryTypes, type Sequelize, Transaction } from 'sequelize';
import { lockUser, transition } from './account-state';
import { MFA_CLEARED, wipeCredentials } from './credentials';
import type { DeletionService } from './deletion';
import { withTx } from '../../platform/db';
import { endUserSessions } from '../sessions/sessions';
import { audit, AuditMeta } from '../audit';
import { assertNotLastAdmin } from './last-admin';
import { grantRole, revokeRole } from './roles';
import { User, UserStatus } from '../../platform/db/models';
import { AppError } from '../../platform/errors';

/**
 * Cursors carry the last row's sort key in a plain grammar the OpenAPI document states exactly,
 * so every cursor that matches it is a valid position (clients still treat them as opaque):
 * users `<created_at in microseconds since 1970>_<id>`, audit events the event id.
 */
export const USER_CURSOR = /^([0-9]{1,16})_([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$/;
// At most 18 digits: always inside bigint, so a forged cursor cannot make the cast fail.
export const EVENT_CURSOR = /^[0-9]{1,18}$/;

function malformedCursor(): AppError {
  return new AppError('validation_failed', 'the cursor is malformed', { errors: [{ field: 'cursor', message: 'malformed cursor' }] });
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/** Users, newest first; `query` matches e-mail or name (substring) or the exact id. */
export async function searchUsers(
  sequelize: Sequelize,
  opts: { query?: string; status?: UserStatus; limit: number; cursor?: string },
): Promise<{ users: User[]; nextCursor: string | null }> {
  const where: string[] = [];
  const rep: Record<string, unknown> = { limit: opts.limit + 1 };
  if (opts.status) {
    where.push('status = :status');
    rep.status = opts.status;
  }
  if (opts.query) {
    const q = opts.query.trim().toLowerCase();
    if (UUID_RE.test(q)) {
      where.push('id = :qid');
      rep.qid = q;
    } else {
      where.push(`(email LIKE :q ESCAPE '\\' OR lower(name) LIKE :q ESCAPE '\\')`);
      rep.q = `%${likeEscape(q)}%`;
    }
  }
  if (opts.cursor) {
    const m = USER_CURSOR.exec(opts.cursor);
    if (!m) throw malformedCursor();
    where.push(`(created_at, id) < (timestamptz 'epoch' + CAST(:cus AS bigint) * interval '1 microsecond', CAST(:cid AS uuid))`);
    rep.cus = m[1];
    rep.cid = m[2];
  }
  const rows = await sequelize.query<{ id: string; sort_created: string }>(
    `SELECT id, (extract(epoch FROM created_at) * 1000000)::bigint::text AS sort_created FROM users ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_at DESC, id DESC LIMIT :limit`,
    { replacements: rep, type: QueryTypes.SELECT },
  );
  const page = rows.slice(0, opts.limit);
  const users = page.length ? await User.findAll({ where: { id: page.map((r) => r.id) } }) : [];
  const byId = new Map(users.map((u) => [u.id, u]));
  const last = page[page.length - 1];
  return {
    users: page.map((r) => byId.get(r.id)!).filter(Boolean),
    nextCursor: rows.length > opts.limit && last ? `${last.sort_created}_${last.id}` : null,
  };
}

export interface AuditEventView {
  id: string;
  type: string;
  user_id: string | null;
  actor_id: string | null;
  ip: string | null;
  request_id: string | null;
  data: Record<string, unknown>;
  created_at: string;
}

/** Audit events, newest first, by user and/or type (`type` ending in `.*` matches a prefix). */
export async function listAuditEvents(
  sequelize: Sequelize,
  opts: { userId?: string; type?: string; limit: number; cursor?: string },
): Promise<{ events: AuditEventView[]; nextCursor: string | null }> {
  const where: string[] = [];
  const rep: Record<string, unknown> = { limit: opts.limit + 1 };
  if (opts.userId) {
    where.push('e.user_id = :userId');
    rep.userId = opts.userId;
  }
  if (opts.type) {
    if (opts.type.endsWith('.*')) {
      where.push(`e.type LIKE :typePrefix ESCAPE '\\'`);
      rep.typePrefix = `${likeEscape(opts.type.slice(0, -1))}%`;
    } else {
      where.push('e.type = :type');
      rep.type = opts.type;
    }
  }
  if (opts.cursor) {
    if (!EVENT_CURSOR.test(opts.cursor)) throw malformedCursor();
    const id = opts.cursor;
    where.push('e.id < CAST(:cid AS bigint)');
    rep.cid = id;
  }
  // Ordered by the bigint column, qualified: the select's text alias `id` would otherwise shadow
  // it and sort "99" after "943" (pages repeating and skipping events).
  const rows = await sequelize.query<AuditEventView & { created_at: Date; id: string | number }>(
    `SELECT e.id::text AS id, e.type, e.user_id, e.actor_id, e.ip, e.request_id, e.data, e.created_at FROM audit_events e
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY e.id DESC LIMIT :limit`,
    { replacements: rep, type: QueryTypes.SELECT },
  );
  const page = rows.slice(0, opts.limit).map((r) => ({ ...r, id: String(r.id), created_at: new Date(r.created_at).toISOString() }));
  return { events: page, nextCursor: rows.length > opts.limit && page.length ? String(page[page.length - 1].id) : null };
}

export interface ResetOutcome {
  user: User;
  sessionsEnded: number;
  devicesForgotten: number;
  recoveryCodesDeleted: number;
}

/**
 * The account reset (admin): ends every session, removes MFA (secret, pending secret, recovery
 * codes, open MFA challenges), forgets every known device and invalidates the password, so the
 * only way back in is the password-reset e-mail the caller starts in the same transaction.
 */
export async function resetAccount(sequelize: Sequelize, t: Transaction, userId: string, meta: AuditMeta): Promise<ResetOutcome> {
  const user = await lockUser(userId, t);
  if (user.status === 'deleted' || user.status === 'pending_deletion') {
    throw new AppError('invalid_transition', `cannot reset an account that is ${user.status.replace(/_/g, ' ')}`, { status_now: user.status, event: 'reset' });
  }
  const { recoveryCodesDeleted, devicesForgotten } = await wipeCredentials(sequelize, t, user.id);
  const hadMfa = user.mfa_enabled;
  await user.update(
    {
      ...MFA_CLEARED,
      password_hash: null,
      failed_logins: 0,
      failed_window_start: null,
      updated_at: new Date(),
    },
    { transaction: t },
  );
  const sessionsEnded = await endUserSessions(sequelize, t, user.id, 'account_reset');
  await audit(t, 'account.reset', user.id, meta, {
    sessions_ended: sessionsEnded,
    devices_forgotten: devicesForgotten,
    recovery_codes_deleted: recoveryCodesDeleted,
    mfa_removed: hadMfa,
  });
  return { user, sessionsEnded, devicesForgotten, recoveryCodesDeleted };
}

/** Password-reset start for an admin reset (platform/temporal/flows.ts implements it). */
export interface PasswordResetFlows {
  forcePasswordReset(userId: string): Promise<void>;
}

/**
 * What the admin API does to accounts, each change one transaction through the state machine:
 * reading one user (with the deletion workflow's state), lock, unlock, suspend, reactivate (which
 * cancels a pending deletion), reset (the reset flow starts inside the transaction: if Temporal
 * refuses, nothing was reset), and the search and audit listings.
 */
export class AdminService {
  constructor(
    private readonly sequelize: Sequelize,
    private readonly deletions: DeletionService,
    private readonly flows: PasswordResetFlows,
  ) {}

  /** Users, newest first, by text (e-mail, name or id) and status; cursor pagination. */
  search(opts: Parameters<typeof searchUsers>[1]) {
    return searchUsers(this.sequelize, opts);
  }

  /** Audit events, newest first, by user and type; cursor pagination. */
  auditEvents(opts: Parameters<typeof listAuditEvents>[1]) {
    return listAuditEvents(this.sequelize, opts);
  }

  async user(id: string): Promise<{ user: User; deletion: { due_at: string; workflow_status: string | null } | null }> {
    const user = await User.findByPk(id);
    if (!user) throw new AppError('not_found', 'no such user');
    let deletion = null;
    if (user.status === 'pending_deletion' && user.deletion_due_at) {
      const wf = await this.deletions.state(id);
      deletion = { due_at: user.deletion_due_at.toISOString(), workflow_status: wf?.status ?? null };
    }
    return { user, deletion };
  }

  async lock(id: string, opts: { until: Date | null; note?: string }, meta: AuditMeta): Promise<User> {
    const { user } = await withTx(this.sequelize, async (t) => {
      await assertNotLastAdmin(this.sequelize, t, id);
      return transition(t, id, 'lock', {
        meta,
        lockedUntil: opts.until,
        endSessions: true,
        data: { reason: 'admin', ...(opts.note ? { note: opts.note } : {}), until: opts.until?.toISOString() ?? null },
      });
    });
    return user;
  }

  async unlock(id: string, note: string | undefined, meta: AuditMeta): Promise<User> {
    const { user } = await withTx(this.sequelize, (t) =>
      transition(t, id, 'unlock', {
        meta,
        restoreTo: 'active',
        patch: { lock_level: 0, last_lock_ended_at: null },
        data: { reason: 'admin', ...(note ? { note } : {}) },
      }),
    );
    return user;
  }

  async suspend(id: string, note: string | undefined, meta: AuditMeta): Promise<User> {
    const { user } = await withTx(this.sequelize, async (t) => {
      await assertNotLastAdmin(this.sequelize, t, id);
      return transition(t, id, 'suspend', { meta, data: note ? { note } : {} });
    });
    return user;
  }

  /** A suspended account becomes active; a pending deletion is cancelled (the account becomes active). */
  async reactivate(id: string, note: string | undefined, meta: AuditMeta & { requestId?: string }): Promise<User> {
    const current = await User.findByPk(id, { attributes: ['id', 'status'] });
    if (!current) throw new AppError('not_found', 'no such user');
    if (current.status === 'pending_deletion') return this.deletions.cancel(id, meta, 'active');
    const { user } = await withTx(this.sequelize, (t) => transition(t, id, 'reactivate', { meta, data: note ? { note } : {} }));
    return user;
  }

  /** Grants one role (domain/accounts/roles.ts); `changed` is false when the account had it. */
  grantRole(id: string, role: string, meta: AuditMeta): Promise<{ user: User; changed: boolean }> {
    return grantRole(this.sequelize, id, role, meta);
  }

  /** Revokes one role; access tokens issued before are refused at once (roles.ts). */
  revokeRole(id: string, role: string, meta: AuditMeta): Promise<{ user: User; changed: boolean }> {
    return revokeRole(this.sequelize, id, role, meta);
  }

  async reset(id: string, meta: AuditMeta): Promise<User> {
    const { user } = await withTx(this.sequelize, async (t) => {
      const outcome = await resetAccount(this.sequelize, t, id, meta);
      await this.flows.forcePasswordReset(id);
      return outcome;
    });
    return user;
  }
}

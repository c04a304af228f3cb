/**
 * The account state machine: the one place that changes `users.status`. Each transition is
 * checked against the table of legal moves, applied to a row locked FOR UPDATE, recorded as an
 * audit event and, where the transition calls for it, ends the user's sessions: all in the
 * caller's transaction. The schema refuses illegal states too (migrations/002-lifecycle.ts).
 *
 *   pending_verification --verify--> active
 *   active --lock--> locked --unlock--> (status before the lock: active)
 *   active | locked | pending_verification --suspend--> suspended --reactivate--> active
 *   any but deleted --request_deletion--> pending_deletion --cancel_deletion--> (status before)
 *   pending_deletion --erase--> deleted (terminal)
 */
import { Transaction } from 'sequelize';
import { audit, AuditMeta } from '../audit';
import { User, UserStatus } from '../../platform/db/models';
import { AppError } from '../../platform/errors';
import { endUserSessions } from '../sessions/sessions';

export type AccountEvent = 'verify' | 'lock' | 'unlock' | 'suspend' | 'reactivate' | 'request_deletion' | 'cancel_deletion' | 'erase';

interface Rule {
  from: readonly UserStatus[];
  /** The new status; `restore` returns to `status_before` (falling back to `active`). */
  to: UserStatus | 'restore';
  audit: string;
  /** Whether the user's sessions end with this transition. */
  endSessions: boolean;
}

export const TRANSITIONS: Record<AccountEvent, Rule> = {
  verify: { from: ['pending_verification'], to: 'active', audit: 'user.email_verified', endSessions: false },
  lock: { from: ['active'], to: 'locked', audit: 'account.locked', endSessions: false },
  unlock: { from: ['locked'], to: 'restore', audit: 'account.unlocked', endSessions: false },
  suspend: { from: ['active', 'locked', 'pending_verification'], to: 'suspended', audit: 'account.suspended', endSessions: true },
  reactivate: { from: ['suspended'], to: 'active', audit: 'account.reactivated', endSessions: false },
  request_deletion: {
    from: ['pending_verification', 'active', 'locked', 'suspended'],
    to: 'pending_deletion',
    audit: 'account.deletion_requested',
    endSessions: true,
  },
  cancel_deletion: { from: ['pending_deletion'], to: 'restore', audit: 'account.deletion_cancelled', endSessions: false },
  erase: { from: ['pending_deletion'], to: 'deleted', audit: 'account.erased', endSessions: true },
};

/** States a user may return to through `restore` (what `status_before` may hold). */
const RESTORABLE: readonly UserStatus[] = ['pending_verification', 'active', 'locked', 'suspended'];

export function canTransition(from: UserStatus, event: AccountEvent): boolean {
  return TRANSITIONS[event].from.includes(from);
}

export interface TransitionOptions {
  meta?: AuditMeta;
  /** Extra audit data (reason, level, ...). Never secrets or personal data. */
  data?: Record<string, unknown>;
  /** Lock: when the lock ends (null: until an admin unlocks). */
  lockedUntil?: Date | null;
  /** Deletion: when erasure happens. */
  deletionDueAt?: Date;
  /** Restore target override (e.g. a lock that ended is treated as `active`). */
  restoreTo?: UserStatus;
  /** Column changes applied together with the status (e.g. erasure of personal data). */
  patch?: Partial<Record<keyof User, unknown>>;
  /** Overrides the rule's default (an admin lock ends sessions; a brute-force lock does not). */
  endSessions?: boolean;
  /** Keep this session alive when sessions end. */
  exceptSessionId?: string;
}

export interface TransitionResult {
  user: User;
  from: UserStatus;
  to: UserStatus;
  sessionsEnded: number;
}

/** Loads and locks the user row, or 404. */
export async function lockUser(userId: string, t: Transaction): Promise<User> {
  const user = await User.findByPk(userId, { transaction: t, lock: t.LOCK.UPDATE });
  if (!user) throw new AppError('not_found', 'no such user');
  return user;
}

/**
 * Applies `event` to the user in `t`. Illegal transitions are 409 `invalid_transition` with the
 * current status and the event, so a client can tell "already unlocked" from "not found".
 */
export async function transition(t: Transaction, userOrId: User | string, event: AccountEvent, opts: TransitionOptions = {}): Promise<TransitionResult> {
  const user = typeof userOrId === 'string' ? await lockUser(userOrId, t) : userOrId;
  const rule = TRANSITIONS[event];
  const from = user.status;
  if (!rule.from.includes(from)) {
    throw new AppError('invalid_transition', `cannot ${event.replace(/_/g, ' ')} an account that is ${from.replace(/_/g, ' ')}`, { status_now: from, event });
  }
  let to: UserStatus;
  if (rule.to === 'restore') {
    const before = (opts.restoreTo ?? user.status_before ?? 'active') as UserStatus;
    to = RESTORABLE.includes(before) ? before : 'active';
    // A lock that was in force when deletion was requested has no meaning any more.
    if (to === 'locked' && event === 'cancel_deletion') to = 'active';
  } else {
    to = rule.to;
  }
  // Only a verified address can be active (schema rule): an unverified account goes back to waiting.
  if (to === 'active' && !user.email_verified_at && !opts.patch?.email_verified_at) to = 'pending_verification';
  const now = new Date();
  const patch: Record<string, unknown> = { status: to, updated_at: now };
  // Columns that belong to one status are cleared when leaving it (the schema checks this).
  if (to === 'locked') {
    patch.locked_until = opts.lockedUntil ?? null;
    patch.failed_logins = 0;
    patch.failed_window_start = null;
  } else {
    patch.locked_until = null;
  }
  if (to === 'pending_deletion') {
    if (!opts.deletionDueAt) throw new Error('request_deletion needs deletionDueAt');
    patch.deletion_due_at = opts.deletionDueAt;
  } else {
    patch.deletion_due_at = null;
  }
  // status_before remembers where a detour (lock, suspension, deletion) started.
  if (to === 'locked' || to === 'suspended' || to === 'pending_deletion') patch.status_before = from;
  else patch.status_before = null;
  if (to === 'active' && (event === 'unlock' || event === 'reactivate')) {
    patch.failed_logins = 0;
    patch.failed_window_start = null;
  }
  Object.assign(patch, opts.patch ?? {});
  await user.update(patch as Partial<User>, { transaction: t });
  let sessionsEnded = 0;
  if (opts.endSessions ?? rule.endSessions) {
    sessionsEnded = await endUserSessions(User.sequelize!, t, user.id, `account_${event}`, opts.exceptSessionId);
  }
  await audit(t, rule.audit, user.id, opts.meta ?? {}, { from, to, ...(sessionsEnded ? { sessions_ended: sessionsEnded } : {}), ...(opts.data ?? {}) });
  return { user, from, to, sessionsEnded };
}

/** True when the user is locked by a lock that has run out (the next login may lift it). */
export function lockExpired(user: Pick<User, 'status' | 'locked_until'>, now = new Date()): boolean {
  return user.status === 'locked' && !!user.locked_until && user.locked_until.getTime() <= now.getTime();
}

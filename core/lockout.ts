/**
 * Brute-force lockout. Failed credentials (passwords, MFA codes) are counted per user within a
 * window; reaching the threshold locks the account for an escalating period (LOCKOUT_DURATIONS)
 * through the state machine, and the user is e-mailed by a notification workflow. A successful
 * authentication resets the counter. Failures while a lock is in force are not counted, so an
 * attacker cannot extend a lock forever; the escalation level decays after a quiet period.
 *
 * These are plain functions (the MFA code calls them too): they use the global models, the
 * process configuration and the Temporal client the API registers at start (`configureLockout`,
 * called by api/server.ts), which carries the encrypting payload codec.
 */
import { type Client, WorkflowIdConflictPolicy } from '@temporalio/client';
import { Op, type Transaction } from 'sequelize';
import { lockExpired, transition } from './account-state';
import { loadConfig } from './config';
import { User } from './db/models';
import { mapDbError } from './db';
import type { Logger } from './logger';
import type { RequestMeta } from './sessions';
import { FlowAttr, UserIdAttr, workflowIds } from './temporal';

export interface LockoutSettings {
  threshold: number;
  windowSeconds: number;
  durations: number[];
  levelResetSeconds: number;
  taskQueue: string;
}

interface LockoutDeps {
  settings?: LockoutSettings;
  temporal?: Client;
  logger?: Logger;
}

const deps: LockoutDeps = {};

/** Registers the process's Temporal client and logger (and optionally settings, for tests). */
export function configureLockout(d: LockoutDeps): void {
  Object.assign(deps, d);
}

export function lockoutSettings(): LockoutSettings {
  if (deps.settings) return deps.settings;
  const c = loadConfig();
  deps.settings = {
    threshold: c.LOCKOUT_THRESHOLD,
    windowSeconds: c.LOCKOUT_WINDOW,
    durations: c.LOCKOUT_DURATIONS,
    levelResetSeconds: c.LOCKOUT_LEVEL_RESET,
    taskQueue: c.TEMPORAL_TASK_QUEUE,
  };
  return deps.settings;
}

/** Lock duration (seconds) for escalation level `level` (1-based); the last entry repeats. */
export function lockDuration(level: number, durations: number[]): number {
  return durations[Math.min(Math.max(level, 1), durations.length) - 1];
}

/** Starts the lock notice; at most one per lock (the id carries the lock's end). */
async function notifyLocked(userId: string, until: Date, level: number): Promise<void> {
  if (!deps.temporal) {
    // Only a client with the production payload codec may start flows; none was registered here.
    deps.logger?.warn({ userId }, 'account-locked notice not started: no Temporal client registered');
    return;
  }
  try {
    await deps.temporal.workflow.start('notificationWorkflow', {
      workflowId: workflowIds.notification(`account-locked:${userId}:${until.getTime()}`),
      taskQueue: lockoutSettings().taskQueue,
      args: [{ userId, template: 'account_locked', params: { until: until.toISOString(), level: String(level) } }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      typedSearchAttributes: [{ key: UserIdAttr, value: userId }, { key: FlowAttr, value: 'notification' }],
    });
  } catch (err) {
    // The lock stands either way; the notice is best effort from here (it is audited).
    deps.logger?.warn({ userId, err: (err as Error).message }, 'account-locked notice not started');
  }
}

/** Counts a failed credential (password or MFA code) against the user; may lock the account. */
export async function registerFailedAttempt(userId: string, kind: 'password' | 'mfa', meta: RequestMeta): Promise<{ locked: boolean; lockedUntil?: Date }> {
  const s = lockoutSettings();
  const sequelize = User.sequelize!;
  let result: { locked: boolean; lockedUntil?: Date; notify?: { until: Date; level: number } };
  try {
    result = await sequelize.transaction(async (t) => {
      const user = await User.findByPk(userId, { transaction: t, lock: t.LOCK.UPDATE });
      if (!user) return { locked: false };
      const now = new Date();
      if (user.status === 'locked') {
        // A lock in force (or an admin lock) is not extended by more failures.
        if (!lockExpired(user, now)) return { locked: true, lockedUntil: user.locked_until ?? undefined };
        await transition(t, user, 'unlock', { meta, restoreTo: 'active', data: { reason: 'lock_expired' } });
      }
      // Only active accounts are counted: others cannot sign in anyway.
      if (user.status !== 'active') return { locked: false };
      const windowStart = user.failed_window_start;
      const inWindow = !!windowStart && now.getTime() - windowStart.getTime() < s.windowSeconds * 1000;
      const failed = inWindow ? user.failed_logins + 1 : 1;
      if (failed < s.threshold) {
        await user.update({ failed_logins: failed, failed_window_start: inWindow ? windowStart : now }, { transaction: t });
        return { locked: false };
      }
      // Escalation decays: a long quiet period since the last lock ended starts over at level 1.
      const lastLockEnd = user.last_lock_ended_at;
      const decayed = !lastLockEnd || now.getTime() - lastLockEnd.getTime() > s.levelResetSeconds * 1000;
      const level = (decayed ? 0 : user.lock_level) + 1;
      const seconds = lockDuration(level, s.durations);
      const until = new Date(now.getTime() + seconds * 1000);
      await transition(t, user, 'lock', {
        meta,
        lockedUntil: until,
        patch: { lock_level: level, last_lock_ended_at: until },
        data: { reason: 'failed_attempts', kind, failures: failed, level, seconds, until: until.toISOString() },
      });
      return { locked: true, lockedUntil: until, notify: { until, level } };
    });
  } catch (err) {
    throw mapDbError(err);
  }
  if (result.notify) await notifyLocked(userId, result.notify.until, result.notify.level);
  return { locked: result.locked, ...(result.lockedUntil ? { lockedUntil: result.lockedUntil } : {}) };
}

/** A successful authentication resets the counter. */
export async function clearFailedAttempts(userId: string, t?: Transaction): Promise<void> {
  try {
    await User.update(
      { failed_logins: 0, failed_window_start: null },
      { where: { id: userId, [Op.or]: [{ failed_logins: { [Op.gt]: 0 } }, { failed_window_start: { [Op.ne]: null } }] }, transaction: t },
    );
  } catch (err) {
    throw mapDbError(err);
  }
}

/**
 * Guessing limits for passwords and second factors (NIST SP 800-63B §5.2.2: throttle rather than
 * lock out). Two mechanisms:
 *
 * - **Throttle per (account, device).** A device is what the service can recognise of a request:
 *   today the header fingerprint (domain/sessions/fingerprint.ts) and the client IP. After
 *   `throttleFree` failures of one device against one address, that device waits the next of
 *   `throttleDelays` (escalating, the last repeats) before an attempt of its own is evaluated
 *   again. The row is keyed by a hash of the normalised address, so unknown addresses are throttled
 *   exactly like real ones and the bookkeeping costs the same on both paths. The owner's own device
 *   has its own row: a guesser elsewhere never slows it down, and a successful sign-in clears it.
 * - **Account-wide cap.** `threshold` consecutive failures of evaluated credentials (wrong
 *   passwords that were not throttled, wrong MFA codes) lock the account for the next of
 *   `durations` through the state machine and e-mail the owner. A success resets the count; so does
 *   the lock itself, so a lock is never re-armed by a single later guess.
 *
 * While a throttle or lock applies, every password attempt answers exactly like a wrong password
 * (the caller enforces that) and is counted against the device's throttle, so a device that keeps
 * hammering keeps escalating its own delay.
 *
 * One `GuessingLimits` per process, built by domain/services.ts; the lock notice goes out through
 * the `LockNotices` port (a Temporal flow with the encrypting payload codec).
 */
import { createHash } from 'node:crypto';
import { Op, QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { lockExpired, transition } from './account-state';
import { User } from '../../platform/db/models';
import { mapDbError } from '../../platform/db';
import { deriveFingerprint } from '../sessions/fingerprint';
import type { Logger } from '../../platform/logger';
import type { RequestMeta } from '../sessions/sessions';

export interface LockoutSettings {
  /** Consecutive failed credentials that lock the account. */
  threshold: number;
  durations: number[];
  levelResetSeconds: number;
  /** Failures of one device against one account before its attempts are delayed. */
  throttleFree: number;
  /** Escalating waits (seconds) of a throttled device; the last repeats. */
  throttleDelays: number[];
  /** A device's throttle is forgotten after this many quiet seconds. */
  throttleResetSeconds: number;
}

/** The e-mail to the owner when a lock starts (platform/temporal/flows.ts implements it). */
export interface LockNotices {
  accountLocked(userId: string, until: Date, level: number): Promise<void>;
}

/** Lock duration (seconds) for escalation level `level` (1-based); the last entry repeats. */
export function lockDuration(level: number, durations: number[]): number {
  return durations[Math.min(Math.max(level, 1), durations.length) - 1];
}

// ---- Throttle per (account, device) -------------------------------------------------------------

/** The throttle row's account key: a hash of the normalised address (also for unknown ones). */
export function throttleAccountKey(normalisedEmail: string): Buffer {
  return createHash('sha256').update(`login-throttle:account:${normalisedEmail}`).digest();
}

/** The throttle row's device key: the header fingerprint and the client IP, hashed together. */
export function throttleDeviceKey(meta: RequestMeta): Buffer {
  return createHash('sha256')
    .update('login-throttle:device:')
    .update(deriveFingerprint(meta).hash)
    .update(`|${meta.ip ?? ''}`)
    .digest();
}

export interface AttemptReservation {
  /** The device was throttled: this attempt is refused whatever the password (and not evaluated). */
  throttled: boolean;
  /** The account's consecutive failures including this attempt (null: no active account counted). */
  failures: number | null;
}

/**
 * The guessing limits of one process: built once by domain/services.ts with the database, the
 * settings and the lock notices, and handed to the account and MFA services.
 */
export class GuessingLimits {
  constructor(
    private readonly sequelize: Sequelize,
    private readonly s: LockoutSettings,
    private readonly notices: LockNotices,
    private readonly logger: Logger,
  ) {}

  /** The consecutive failures that lock an account. */
  get threshold(): number {
    return this.s.threshold;
  }

  /**
   * Counts one password attempt before it is evaluated, in one statement that costs the same for
   * known and unknown addresses: the device's failure count goes up and its next allowed time is
   * set (a success clears both), and, unless the device was throttled, the active account's
   * consecutive-failure count goes up too (a success resets it). Counting first means parallel
   * requests cannot slip past either limit: each one holds its own slot.
   */
  async reserveAttempt(normalisedEmail: string, userId: string | null, meta: RequestMeta): Promise<AttemptReservation> {
    const s = this.s;
    // The device's failure count after this one (a row quiet for the reset period starts over).
    const n = `(CASE WHEN lt.last_failure_at > now() - make_interval(secs => $5) THEN lt.failures + 1 ELSE 1 END)`;
    try {
      const rows = await this.sequelize.query<{ throttled: boolean; failures: number | null }>(
        `WITH dev AS (
           INSERT INTO login_throttles AS lt (account_key, device_key, failures, blocked_until, last_failure_at, throttled)
           VALUES ($1, $2, 1, CASE WHEN 1 > $3 THEN now() + make_interval(secs => ($4::int[])[1]) END, now(), false)
           ON CONFLICT (account_key, device_key) DO UPDATE SET
             throttled = COALESCE(lt.blocked_until > now(), false),
             failures = ${n},
             last_failure_at = now(),
             blocked_until = CASE WHEN ${n} > $3 THEN now() + make_interval(secs => ($4::int[])[LEAST(${n} - $3, cardinality($4::int[]))]) END
           RETURNING throttled
         ), acct AS (
           UPDATE users SET failed_logins = failed_logins + 1, failed_window_start = COALESCE(failed_window_start, now())
            WHERE id = $6::uuid AND status = 'active' AND NOT (SELECT throttled FROM dev)
           RETURNING failed_logins
         )
         SELECT (SELECT throttled FROM dev) AS throttled, (SELECT failed_logins FROM acct) AS failures`,
        {
          bind: [throttleAccountKey(normalisedEmail), throttleDeviceKey(meta), s.throttleFree, s.throttleDelays, s.throttleResetSeconds, userId],
          type: QueryTypes.SELECT,
        },
      );
      // Forgotten throttles go now and then (about one attempt in fifty), without a scheduler.
      if (Math.random() < 0.02) {
        await this.sequelize.query(`DELETE FROM login_throttles WHERE last_failure_at < now() - make_interval(secs => $1)`, { bind: [s.throttleResetSeconds] });
      }
      return { throttled: !!rows[0]?.throttled, failures: rows[0]?.failures ?? null };
    } catch (err) {
      throw mapDbError(err);
    }
  }

  /** Whether an account's count (after a reserved attempt) has reached the cap. */
  capReached(failures: number | null): boolean {
    return failures !== null && failures >= this.s.threshold;
  }

  /**
   * A right password: clears this device's throttle against the address and settles the account's
   * count, in one statement. `release` (an MFA user's password step) gives back only this attempt's
   * slot, since the count is reset when the second factor succeeds; otherwise the count starts over.
   */
  async settleAttempt(normalisedEmail: string, userId: string, meta: RequestMeta, release: boolean): Promise<void> {
    try {
      await this.sequelize.query(
        `WITH d AS (DELETE FROM login_throttles WHERE account_key = $1 AND device_key = $2)
         UPDATE users SET failed_logins = CASE WHEN $4 THEN GREATEST(failed_logins - 1, 0) ELSE 0 END,
                          failed_window_start = CASE WHEN $4 AND failed_logins > 1 THEN failed_window_start END
          WHERE id = $3 AND (failed_logins > 0 OR failed_window_start IS NOT NULL)`,
        { bind: [throttleAccountKey(normalisedEmail), throttleDeviceKey(meta), userId, release] },
      );
    } catch (err) {
      throw mapDbError(err);
    }
  }

  /** Starts the lock notice; at most one per lock (the id carries the lock's end). */
  private async notifyLocked(userId: string, until: Date, level: number): Promise<void> {
    try {
      await this.notices.accountLocked(userId, until, level);
    } catch (err) {
      // The lock stands either way; the notice is best effort from here (it is audited).
      this.logger.warn({ userId, err: (err as Error).message }, 'account-locked notice not started');
    }
  }

  /**
   * Locks an active account whose consecutive failures reached the cap (the next of `durations`,
   * escalating) and e-mails the owner. Re-checked on the locked row, so of racing requests one locks.
   */
  async lockForFailures(userId: string, kind: 'password' | 'mfa', meta: RequestMeta): Promise<{ locked: boolean; lockedUntil?: Date }> {
    return this.countAndLock(userId, kind, meta, false);
  }

  /**
   * Counts an evaluated failed MFA code against the account; the `threshold`-th consecutive failed
   * credential locks it. Failures while a lock is in force are not counted, so a lock cannot be
   * extended or re-armed by more guesses.
   */
  async registerFailedAttempt(userId: string, kind: 'password' | 'mfa', meta: RequestMeta): Promise<{ locked: boolean; lockedUntil?: Date }> {
    return this.countAndLock(userId, kind, meta, true);
  }

  private async countAndLock(userId: string, kind: 'password' | 'mfa', meta: RequestMeta, count: boolean): Promise<{ locked: boolean; lockedUntil?: Date }> {
    const s = this.s;
    const sequelize = this.sequelize;
    let result: { locked: boolean; lockedUntil?: Date; notify?: { until: Date; level: number } };
    try {
      result = await sequelize.transaction(async (t) => {
        const user = await User.findByPk(userId, { transaction: t, lock: t.LOCK.UPDATE });
        if (!user) return { locked: false };
        const now = new Date();
        if (user.status === 'locked') {
          if (!lockExpired(user, now)) return { locked: true, lockedUntil: user.locked_until ?? undefined };
          await transition(t, user, 'unlock', { meta, restoreTo: 'active', data: { reason: 'lock_expired' } });
        }
        // Only active accounts are counted: others cannot sign in anyway.
        if (user.status !== 'active') return { locked: false };
        const failed = count ? user.failed_logins + 1 : user.failed_logins;
        if (failed < s.threshold) {
          if (count) await user.update({ failed_logins: failed, failed_window_start: user.failed_window_start ?? now }, { transaction: t });
          return { locked: false };
        }
        // Escalation decays: a long quiet period since the last lock ended starts over at level 1.
        const lastLockEnd = user.last_lock_ended_at;
        const decayed = !lastLockEnd || now.getTime() - lastLockEnd.getTime() > s.levelResetSeconds * 1000;
        const level = (decayed ? 0 : user.lock_level) + 1;
        const seconds = lockDuration(level, s.durations);
        const until = new Date(now.getTime() + seconds * 1000);
        // The lock resets the count (account-state clears failed_logins on entering `locked`).
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
    if (result.notify) await this.notifyLocked(userId, result.notify.until, result.notify.level);
    return { locked: result.locked, ...(result.lockedUntil ? { lockedUntil: result.lockedUntil } : {}) };
  }

  /**
   * Reserves one evaluation of a second-factor code against the account-wide cap, before the code
   * is checked: one conditional statement, so of parallel requests at most the cap's remaining
   * slots get one. Returns the account's consecutive failures including this attempt, or null
   * when the cap is reached or the account is no longer in `status` (the caller asks
   * `lockForFailures`). `status` is the one the caller found: `active`, or `pending_deletion`
   * for a reactivation.
   */
  async reserveMfaAttempt(userId: string, status: 'active' | 'pending_deletion' = 'active'): Promise<number | null> {
    try {
      const rows = await this.sequelize.query<{ failed_logins: number }>(
        `UPDATE users SET failed_logins = failed_logins + 1, failed_window_start = COALESCE(failed_window_start, now())
          WHERE id = $1 AND status = $3 AND failed_logins < $2
          RETURNING failed_logins`,
        { bind: [userId, this.s.threshold, status], type: QueryTypes.SELECT },
      );
      return rows[0]?.failed_logins ?? null;
    } catch (err) {
      throw mapDbError(err);
    }
  }

  /** Gives back one reserved slot (a code that was right, or that could not be checked). */
  async releaseAttempt(userId: string, t?: Transaction): Promise<void> {
    try {
      await this.sequelize.query(
        `UPDATE users SET failed_logins = failed_logins - 1,
                          failed_window_start = CASE WHEN failed_logins > 1 THEN failed_window_start END
          WHERE id = $1 AND failed_logins > 0`,
        { bind: [userId], transaction: t },
      );
    } catch (err) {
      throw mapDbError(err);
    }
  }

  /** A successful authentication resets the counter. */
  async clearFailedAttempts(userId: string, t?: Transaction): Promise<void> {
    try {
      await User.update(
        { failed_logins: 0, failed_window_start: null },
        { where: { id: userId, [Op.or]: [{ failed_logins: { [Op.gt]: 0 } }, { failed_window_start: { [Op.ne]: null } }] }, transaction: t },
      );
    } catch (err) {
      throw mapDbError(err);
    }
  }
}

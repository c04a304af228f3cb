/** Account lifecycle: lockout bookkeeping columns, the state rules as check constraints (the
 * database refuses states that domain/accounts/account-state.ts never produces), `deleted` as a terminal
 * state (trigger), the shared rate-limit counters, and indexes for the admin listings. */
import { Sequelize } from 'sequelize';

export async function up(sequelize: Sequelize): Promise<void> {
  await sequelize.query(`
    ALTER TABLE users
      ADD COLUMN failed_window_start timestamptz,
      ADD COLUMN last_lock_ended_at  timestamptz;

    ALTER TABLE users
      ADD CONSTRAINT users_counters_nonnegative CHECK (failed_logins >= 0 AND lock_level >= 0),
      -- locked_until belongs to a lock (NULL while locked: until an admin unlocks).
      ADD CONSTRAINT users_locked_until_only_locked CHECK (status = 'locked' OR locked_until IS NULL),
      -- a pending deletion always has its due time, and only then.
      ADD CONSTRAINT users_deletion_due_iff_pending CHECK ((status = 'pending_deletion') = (deletion_due_at IS NOT NULL)),
      -- status_before records where a detour started; only detours have one.
      ADD CONSTRAINT users_status_before_valid CHECK (
        status_before IS NULL OR (
          status IN ('locked','suspended','pending_deletion')
          AND status_before IN ('pending_verification','active','locked','suspended'))),
      -- an active account has a verified address.
      ADD CONSTRAINT users_active_verified CHECK (status <> 'active' OR email_verified_at IS NOT NULL),
      -- a deleted account is a tombstone: no personal data, no credentials.
      ADD CONSTRAINT users_deleted_is_tombstone CHECK (
        status <> 'deleted' OR (
          email IS NULL AND name IS NULL AND password_hash IS NULL AND totp_secret_enc IS NULL
          AND totp_pending_enc IS NULL AND NOT mfa_enabled AND email_verified_at IS NULL));

    -- deleted is terminal: no update may bring a tombstone back.
    CREATE FUNCTION users_deleted_is_terminal() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF OLD.status = 'deleted' AND NEW.status <> 'deleted' THEN
        RAISE EXCEPTION 'a deleted account cannot change status (to %)', NEW.status USING ERRCODE = 'check_violation';
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER users_deleted_is_terminal BEFORE UPDATE OF status ON users
      FOR EACH ROW EXECUTE FUNCTION users_deleted_is_terminal();

    CREATE INDEX users_created ON users (created_at DESC, id DESC);

    -- rate-limiter-flexible's RateLimiterPostgres table (created here, so the API needs no DDL).
    CREATE TABLE rate_limits (
      key    varchar(255) PRIMARY KEY,
      points integer NOT NULL DEFAULT 0,
      expire bigint
    );
    CREATE INDEX rate_limits_expire ON rate_limits (expire);
  `);
}

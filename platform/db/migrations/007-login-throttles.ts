/**
 * Login throttles per (account, device) (domain/accounts/lockout.ts). `account_key` is a SHA-256 of the
 * normalised address (unknown addresses get rows too, so both paths cost the same), `device_key`
 * a SHA-256 of the header fingerprint and the client IP; neither holds the address or headers.
 * `blocked_until` is when the device's next attempt is evaluated again. Quiet rows are deleted.
 */
import { Sequelize } from 'sequelize';

export async function up(sequelize: Sequelize): Promise<void> {
  await sequelize.query(`
    CREATE TABLE login_throttles (
      account_key     bytea NOT NULL CHECK (length(account_key) = 32),
      device_key      bytea NOT NULL CHECK (length(device_key) = 32),
      failures        integer NOT NULL CHECK (failures > 0),
      blocked_until   timestamptz,
      last_failure_at timestamptz NOT NULL,
      -- whether the latest attempt was refused by the throttle (set from the row before it)
      throttled       boolean NOT NULL DEFAULT false,
      PRIMARY KEY (account_key, device_key)
    );
    CREATE INDEX login_throttles_last_failure ON login_throttles (last_failure_at);
  `);
}

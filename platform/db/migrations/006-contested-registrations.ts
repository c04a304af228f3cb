/**
 * Contested registrations. A second registration of an address whose account is still
 * unverified cannot tell the mailbox owner from someone who merely typed the address, so neither
 * registrant's password is kept: `registration_contested_at` records when the address was
 * contested, the password hash is cleared, and the verification step asks whoever holds the
 * e-mailed token to choose the password (domain/accounts/accounts.ts `register` / `verifyEmail`).
 * The schema keeps the invariant: a contested account holds no password.
 */
import { Sequelize } from 'sequelize';

export async function up(sequelize: Sequelize): Promise<void> {
  await sequelize.query(`
    ALTER TABLE users
      ADD COLUMN registration_contested_at timestamptz,
      ADD CONSTRAINT users_contested_has_no_password CHECK (registration_contested_at IS NULL OR password_hash IS NULL);
  `);
}

/**
 * Invitations (domain/accounts/invitations.ts): an administrator invites an address; the account
 * exists at once as `pending_verification` without a password, and this row records who invited
 * it, with which roles, until when, and how it ended. The e-mailed code is an
 * `email_verification` one-time token (accepting means proving the address and choosing the
 * password). One row per account; erasure deletes it.
 */
import { Sequelize } from 'sequelize';

export async function up(sequelize: Sequelize): Promise<void> {
  await sequelize.query(`
    CREATE TABLE invitations (
      user_id     uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
      invited_by  uuid REFERENCES users(id) ON DELETE SET NULL,
      roles       text[] NOT NULL,
      created_at  timestamptz NOT NULL DEFAULT now(),
      expires_at  timestamptz NOT NULL,
      status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'expired')),
      finished_at timestamptz,
      CHECK ((status = 'pending') = (finished_at IS NULL))
    );
    CREATE INDEX invitations_invited_by ON invitations (invited_by);
  `);
}

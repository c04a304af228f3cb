/**
 * MFA login challenges. A password login of an MFA user creates one row; the client gets the
 * opaque `mfa_token`, the table keeps only its SHA-256. The row is bound to the login attempt
 * (user, device fingerprint of the password request), expires, allows a few code attempts and is
 * spent by the one that succeeds. The schema enforces what it can: attempts never negative, one
 * row per token hash, expiry after creation.
 * On `users` (one live and one pending TOTP secret per user, columns from 001): checks that MFA on
 * implies a secret, and that both secret columns only ever hold Vault transit ciphertext.
 */
import { Sequelize } from 'sequelize';

export async function up(sequelize: Sequelize): Promise<void> {
  await sequelize.query(`
    CREATE TABLE mfa_challenges (
      id            uuid PRIMARY KEY,
      user_id       uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      token_hash    bytea NOT NULL UNIQUE,
      fingerprint   bytea NOT NULL,
      created_at    timestamptz NOT NULL DEFAULT now(),
      expires_at    timestamptz NOT NULL,
      attempts      integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
      used_at       timestamptz,
      ip            text,
      CONSTRAINT mfa_challenges_expiry CHECK (expires_at > created_at)
    );
    CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id);
    CREATE INDEX mfa_challenges_expires ON mfa_challenges (expires_at);

    -- MFA on means a live secret; secrets are only ever stored as Vault transit ciphertext.
    ALTER TABLE users
      ADD CONSTRAINT users_mfa_has_secret CHECK (NOT mfa_enabled OR totp_secret_enc IS NOT NULL),
      ADD CONSTRAINT users_totp_secret_ciphertext CHECK (totp_secret_enc IS NULL OR totp_secret_enc ~ '^vault:v[0-9]+:'),
      ADD CONSTRAINT users_totp_pending_ciphertext CHECK (totp_pending_enc IS NULL OR totp_pending_enc ~ '^vault:v[0-9]+:');
  `);
}

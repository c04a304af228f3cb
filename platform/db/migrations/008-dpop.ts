/**
 * DPoP device-bound sessions (RFC 9449, domain/sessions/dpop.ts). `jkt` is the RFC 7638 SHA-256
 * thumbprint (base64url, 43 characters) of the client's proof key: a session bound to a key
 * (`sessions.jkt`) refreshes only with a fresh proof from it, and so do the MFA step of a login
 * (`mfa_challenges.jkt`) and a step-up (`step_up_challenges.jkt`). A key-bound device row records
 * its key (`device_fingerprints.jkt`); its `fingerprint` is then derived from the key, not from
 * headers. `dpop_proof_jtis` is the replay store of the token endpoints, shared by every API
 * instance: a proof's `jti` is claimed once (primary key), rows past `expires_at` are deleted.
 */
import { Sequelize } from 'sequelize';

export async function up(sequelize: Sequelize): Promise<void> {
  await sequelize.query(`
    ALTER TABLE sessions ADD COLUMN jkt text CHECK (jkt ~ '^[A-Za-z0-9_-]{43}$');
    ALTER TABLE mfa_challenges ADD COLUMN jkt text CHECK (jkt ~ '^[A-Za-z0-9_-]{43}$');
    ALTER TABLE step_up_challenges ADD COLUMN jkt text CHECK (jkt ~ '^[A-Za-z0-9_-]{43}$');
    ALTER TABLE device_fingerprints ADD COLUMN jkt text CHECK (jkt ~ '^[A-Za-z0-9_-]{43}$');
    CREATE INDEX device_fingerprints_user_jkt ON device_fingerprints (user_id) WHERE jkt IS NOT NULL;

    CREATE TABLE dpop_proof_jtis (
      jkt        text NOT NULL,
      jti        text NOT NULL,
      expires_at timestamptz NOT NULL,
      PRIMARY KEY (jkt, jti)
    );
    CREATE INDEX dpop_proof_jtis_expires ON dpop_proof_jtis (expires_at);
  `);
}

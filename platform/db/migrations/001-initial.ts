/** The initial schema. State rules live in the schema too: status check, unique e-mail,
 * one live token hash, foreign keys. */
import { Sequelize } from 'sequelize';

export async function up(sequelize: Sequelize): Promise<void> {
  await sequelize.query(`
    CREATE TABLE users (
      id               uuid PRIMARY KEY,
      email            text,
      name             text,
      password_hash    text,
      status           text NOT NULL DEFAULT 'pending_verification'
                       CHECK (status IN ('pending_verification','active','locked','suspended','pending_deletion','deleted')),
      roles            text[] NOT NULL DEFAULT ARRAY['user']::text[]
                       CHECK (roles <@ ARRAY['user','admin']::text[]),
      email_verified_at timestamptz,
      mfa_enabled      boolean NOT NULL DEFAULT false,
      totp_secret_enc  text,
      totp_pending_enc text,
      totp_last_step   bigint,
      failed_logins    integer NOT NULL DEFAULT 0,
      lock_level       integer NOT NULL DEFAULT 0,
      locked_until     timestamptz,
      status_before    text,
      deletion_due_at  timestamptz,
      created_at       timestamptz NOT NULL DEFAULT now(),
      updated_at       timestamptz NOT NULL DEFAULT now(),
      password_changed_at timestamptz,
      CONSTRAINT users_email_lower CHECK (email IS NULL OR email = lower(email)),
      CONSTRAINT users_live_have_email CHECK (status = 'deleted' OR email IS NOT NULL)
    );
    CREATE UNIQUE INDEX users_email_key ON users (email) WHERE email IS NOT NULL;
    CREATE INDEX users_status_created ON users (status, created_at, id);

    CREATE TABLE sessions (
      id              uuid PRIMARY KEY,
      user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      amr             text[] NOT NULL,
      device_id       uuid,
      created_at      timestamptz NOT NULL DEFAULT now(),
      last_used_at    timestamptz NOT NULL DEFAULT now(),
      expires_at      timestamptz NOT NULL,
      revoked_at      timestamptz,
      revoke_reason   text,
      ip              text,
      user_agent      text
    );
    CREATE INDEX sessions_user_live ON sessions (user_id) WHERE revoked_at IS NULL;

    CREATE TABLE refresh_tokens (
      id          uuid PRIMARY KEY,
      session_id  uuid NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
      token_hash  bytea NOT NULL UNIQUE,
      created_at  timestamptz NOT NULL DEFAULT now(),
      expires_at  timestamptz NOT NULL,
      spent_at    timestamptz,
      replaced_by uuid
    );
    CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

    CREATE TABLE one_time_tokens (
      id          uuid PRIMARY KEY,
      user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      purpose     text NOT NULL CHECK (purpose IN ('email_verification','password_reset','step_up')),
      token_hash  bytea NOT NULL UNIQUE,
      flow_id     text,
      created_at  timestamptz NOT NULL DEFAULT now(),
      expires_at  timestamptz NOT NULL,
      used_at     timestamptz,
      superseded_at timestamptz
    );
    CREATE INDEX one_time_tokens_user_purpose ON one_time_tokens (user_id, purpose);

    CREATE TABLE device_fingerprints (
      id            uuid PRIMARY KEY,
      user_id       uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      fingerprint   bytea NOT NULL,
      label         text,
      trusted       boolean NOT NULL DEFAULT true,
      first_seen_at timestamptz NOT NULL DEFAULT now(),
      last_seen_at  timestamptz NOT NULL DEFAULT now(),
      last_ip       text,
      UNIQUE (user_id, fingerprint)
    );

    CREATE TABLE mfa_recovery_codes (
      id        uuid PRIMARY KEY,
      user_id   uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      code_hash bytea NOT NULL,
      used_at   timestamptz,
      UNIQUE (user_id, code_hash)
    );

    CREATE TABLE audit_events (
      id         bigserial PRIMARY KEY,
      user_id    uuid,
      actor_id   uuid,
      type       text NOT NULL,
      ip         text,
      request_id text,
      data       jsonb NOT NULL DEFAULT '{}'::jsonb,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX audit_events_user ON audit_events (user_id, id);
    CREATE INDEX audit_events_type ON audit_events (type, id);

    -- Idempotent e-mail: one row per (workflow, activity) key; a retried send sees 'sent'.
    CREATE TABLE email_outbox (
      idempotency_key text PRIMARY KEY,
      user_id     uuid,
      template    text NOT NULL,
      status      text NOT NULL CHECK (status IN ('pending','sent')),
      message_id  text,
      created_at  timestamptz NOT NULL DEFAULT now(),
      sent_at     timestamptz
    );
  `);
}

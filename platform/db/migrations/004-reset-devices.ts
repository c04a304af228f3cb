/**
 * Password reset and device-bound refresh (issue 6). Known devices already have their table
 * (device_fingerprints, 001); this adds the step-up challenges a refresh from an unknown device
 * opens, and an index to end a device's sessions when the user forgets it.
 *
 * A challenge belongs to one session and one refresh token (the one presented from the unknown
 * device; it is spent only when the challenge succeeds). `public_id` is the `verification_id`
 * handed to the client: 256 random bits, unguessable, and never written to workflow history (the
 * workflow knows the row by `id`). At most one challenge per session is pending (partial unique
 * index); a newer one supersedes it. The fingerprint is the server-side hash, never raw headers.
 */
import { Sequelize } from 'sequelize';

export async function up(sequelize: Sequelize): Promise<void> {
  await sequelize.query(`
    CREATE TABLE step_up_challenges (
      id               uuid PRIMARY KEY,
      public_id        text NOT NULL UNIQUE CHECK (length(public_id) >= 40),
      session_id       uuid NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
      user_id          uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      refresh_token_id uuid NOT NULL REFERENCES refresh_tokens(id) ON DELETE CASCADE,
      fingerprint      bytea NOT NULL CHECK (length(fingerprint) = 32),
      label            text,
      ip               text,
      method           text NOT NULL CHECK (method IN ('email','totp')),
      status           text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending','verified','failed','expired','superseded')),
      created_at       timestamptz NOT NULL DEFAULT now(),
      expires_at       timestamptz NOT NULL,
      finished_at      timestamptz,
      CONSTRAINT step_up_finished CHECK ((status = 'pending') = (finished_at IS NULL))
    );
    CREATE UNIQUE INDEX step_up_one_pending_per_session ON step_up_challenges (session_id) WHERE status = 'pending';
    CREATE INDEX step_up_session_created ON step_up_challenges (session_id, created_at);
    CREATE INDEX sessions_device ON sessions (device_id) WHERE device_id IS NOT NULL;
    CREATE INDEX one_time_tokens_flow ON one_time_tokens (flow_id) WHERE flow_id IS NOT NULL;
  `);
}

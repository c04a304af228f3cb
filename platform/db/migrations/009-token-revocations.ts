/**
 * Revocations that reach access tokens (domain/sessions/revocations.ts). A trigger records every
 * ended session (`sessions.revoked_at` set) and every account leaving `active` (suspension, lock,
 * deletion) in `token_revocations` and announces it with NOTIFY on `authflow_revocations`, in the
 * same transaction: listeners hear it when (and only if) it commits, in commit order. The API
 * instances keep the last ACCESS_TOKEN_TTL of rows in memory and read the table when their feed
 * lags; each instance deletes rows older than a day.
 */
import { Sequelize } from 'sequelize';

export async function up(sequelize: Sequelize): Promise<void> {
  await sequelize.query(`
    CREATE TABLE token_revocations (
      id          bigserial PRIMARY KEY,
      -- a session ended: every access token of it is refused
      session_id  uuid,
      -- an account left 'active' (session_id NULL): its access tokens issued at or before "at" are refused
      user_id     uuid NOT NULL,
      at          timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    CREATE INDEX token_revocations_at ON token_revocations (at);
    CREATE INDEX token_revocations_session ON token_revocations (session_id) WHERE session_id IS NOT NULL;
    CREATE INDEX token_revocations_user ON token_revocations (user_id, at) WHERE session_id IS NULL;

    CREATE FUNCTION authflow_session_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      t timestamptz := clock_timestamp();
    BEGIN
      INSERT INTO token_revocations (session_id, user_id, at) VALUES (NEW.id, NEW.user_id, t);
      PERFORM pg_notify('authflow_revocations', 's:' || NEW.id || ':' || NEW.user_id || ':' || floor(extract(epoch FROM t) * 1000)::bigint);
      RETURN NULL;
    END $$;
    CREATE TRIGGER sessions_revoked AFTER UPDATE OF revoked_at ON sessions
      FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
      EXECUTE FUNCTION authflow_session_revoked();

    CREATE FUNCTION authflow_user_deactivated() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      t timestamptz := clock_timestamp();
    BEGIN
      INSERT INTO token_revocations (session_id, user_id, at) VALUES (NULL, NEW.id, t);
      PERFORM pg_notify('authflow_revocations', 'u:' || NEW.id || ':' || floor(extract(epoch FROM t) * 1000)::bigint);
      RETURN NULL;
    END $$;
    CREATE TRIGGER users_deactivated AFTER UPDATE OF status ON users
      FOR EACH ROW WHEN (OLD.status = 'active' AND NEW.status <> 'active')
      EXECUTE FUNCTION authflow_user_deactivated();
  `);
}

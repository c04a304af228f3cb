/**
 * The flow outbox (domain/flow-outbox.ts): one row per flow event a request commits (start the
 * e-mail verification, a verification resend, a password-reset request), written in the request's
 * own transaction and turned into the Temporal start, signal or update by the relay once Temporal
 * answers. `payload` holds ids only (no address, no token: tokens are created inside the flows'
 * activities). `available_at` is when the relay may try the row (next), `attempts`/`last_error`
 * what the tries so far met; `relayed_at` marks the row done (pruned after a retention period),
 * so a later consumer (webhooks) can read the same events.
 */
import { Sequelize } from 'sequelize';

export async function up(sequelize: Sequelize): Promise<void> {
  await sequelize.query(`
    CREATE TABLE flow_outbox (
      id           bigserial PRIMARY KEY,
      kind         text NOT NULL,
      user_id      uuid,
      payload      jsonb NOT NULL DEFAULT '{}'::jsonb,
      created_at   timestamptz NOT NULL DEFAULT now(),
      available_at timestamptz NOT NULL DEFAULT now(),
      attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
      last_error   text,
      relayed_at   timestamptz
    );
    CREATE INDEX flow_outbox_pending ON flow_outbox (available_at, id) WHERE relayed_at IS NULL;
    CREATE INDEX flow_outbox_relayed ON flow_outbox (relayed_at) WHERE relayed_at IS NOT NULL;
  `);
}

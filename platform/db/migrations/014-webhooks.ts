/**
 * Durable webhooks (domain/webhooks.ts). `webhook_subscriptions`: an HTTPS endpoint and the event
 * types it wants (its signing secret is in Vault, never here). `webhook_deliveries`: one row per
 * event and subscription, its id the stable `webhook-id` receivers deduplicate by, its body the
 * exact bytes that are signed and sent, its status pending → delivered | failed (parked after the
 * retries of a day).
 *
 * Events leave through the flow outbox, in the transaction of the change itself: a trigger on
 * `audit_events` turns each audit type that is a webhook event into a `webhook.event` outbox row,
 * but only while some live subscription wants that type (nothing is written otherwise). The relay
 * fans each row out into deliveries and starts one delivery workflow per delivery. The mapping
 * from audit types to event types is `authflow_webhook_event_type` (domain/webhooks.ts
 * WEBHOOK_EVENTS states the same; webhooks.test.ts checks both agree).
 */
import { Sequelize } from 'sequelize';

export async function up(sequelize: Sequelize): Promise<void> {
  await sequelize.query(`
    CREATE TABLE webhook_subscriptions (
      id          uuid PRIMARY KEY,
      url         text NOT NULL CHECK (url LIKE 'https://%'),
      event_types text[] NOT NULL CHECK (cardinality(event_types) > 0),
      created_by  uuid REFERENCES users(id) ON DELETE SET NULL,
      created_at  timestamptz NOT NULL DEFAULT now(),
      disabled_at timestamptz
    );
    CREATE INDEX webhook_subscriptions_live ON webhook_subscriptions USING gin (event_types) WHERE disabled_at IS NULL;

    CREATE TABLE webhook_deliveries (
      id              text PRIMARY KEY,
      subscription_id uuid NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
      event_type      text NOT NULL,
      user_id         uuid,
      body            text NOT NULL,
      created_at      timestamptz NOT NULL DEFAULT now(),
      status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
      attempts        integer NOT NULL DEFAULT 0,
      last_error      text,
      finished_at     timestamptz,
      CHECK ((status = 'pending') = (finished_at IS NULL))
    );
    CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (subscription_id, created_at DESC);
    CREATE INDEX webhook_deliveries_user_pending ON webhook_deliveries (user_id) WHERE status = 'pending';

    CREATE FUNCTION authflow_webhook_event_type(audit_type text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
      SELECT CASE audit_type
        WHEN 'user.registered' THEN 'user.registered'
        WHEN 'user.email_verified' THEN 'user.verified'
        WHEN 'account.locked' THEN 'user.locked'
        WHEN 'account.suspended' THEN 'user.suspended'
        WHEN 'account.erased' THEN 'user.deleted'
        WHEN 'password.changed' THEN 'user.password_changed'
        WHEN 'password.reset' THEN 'user.password_changed'
        WHEN 'mfa.enabled' THEN 'user.mfa_changed'
        WHEN 'mfa.disabled' THEN 'user.mfa_changed'
        WHEN 'token_reused' THEN 'session.token_reused'
        WHEN 'device.new_key' THEN 'session.new_device'
        WHEN 'refresh.unknown_device' THEN 'session.new_device'
        WHEN 'step_up.failed' THEN 'session.step_up_failed'
      END
    $$;

    CREATE FUNCTION authflow_webhook_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      ev text := authflow_webhook_event_type(NEW.type);
    BEGIN
      IF ev IS NOT NULL AND EXISTS (SELECT 1 FROM webhook_subscriptions WHERE disabled_at IS NULL AND event_types @> ARRAY[ev]) THEN
        INSERT INTO flow_outbox (kind, user_id, payload)
          VALUES ('webhook.event', NEW.user_id, jsonb_build_object('eventType', ev, 'auditId', NEW.id::text, 'at', to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')));
      END IF;
      RETURN NULL;
    END $$;
    CREATE TRIGGER audit_events_webhooks AFTER INSERT ON audit_events
      FOR EACH ROW EXECUTE FUNCTION authflow_webhook_outbox();
  `);
}

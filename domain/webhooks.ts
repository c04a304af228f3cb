/**
 * Durable webhooks: administrators subscribe an HTTPS endpoint to event types; every such event
 * leaves through the flow outbox in the transaction of the change (a trigger on audit_events,
 * migration 014) and is delivered by its own workflow (workflows/webhook-delivery.ts), signed per
 * Standard Webhooks, retried with backoff for WEBHOOK_RETRY_SECONDS (a day), then parked as
 * failed (visible here and in the Temporal UI). At least once: the delivery id is the stable
 * `webhook-id` receivers deduplicate by. Bodies hold ids and the event type only, never an
 * address or a name. Signing secrets live in Vault (`WebhookSecrets`), shown once at creation
 * and at each rotation (the old one signs along for WEBHOOK_SECRET_OVERLAP_SECONDS).
 * The tables' one writer.
 */
import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { newWebhookSecret } from '../crypto/standard-webhooks';
import { mapDbError } from '../platform/db';
import { AppError } from '../platform/errors';
import { isPublicAddress } from '../platform/webhook-http';
import { audit, type AuditMeta } from './audit';

/** Audit type → webhook event type; the SQL function `authflow_webhook_event_type` (migration 014) says the same. */
export const WEBHOOK_EVENTS: Readonly<Record<string, string>> = {
  'user.registered': 'user.registered',
  'user.email_verified': 'user.verified',
  'account.locked': 'user.locked',
  'account.suspended': 'user.suspended',
  'account.erased': 'user.deleted',
  'password.changed': 'user.password_changed',
  'password.reset': 'user.password_changed',
  'mfa.enabled': 'user.mfa_changed',
  'mfa.disabled': 'user.mfa_changed',
  token_reused: 'session.token_reused',
  'device.new_key': 'session.new_device',
  'refresh.unknown_device': 'session.new_device',
  'step_up.failed': 'session.step_up_failed',
};
export const WEBHOOK_EVENT_TYPES = [...new Set(Object.values(WEBHOOK_EVENTS))].sort();

/** Where the signing secrets are kept (platform/webhook-secrets.ts: Vault KV). */
export interface WebhookSecrets {
  put(subscriptionId: string, secret: string): Promise<void>;
  /** The secrets to sign with now (the current one first, then the previous one during a rotation's overlap); empty when none. */
  signing(subscriptionId: string): Promise<string[]>;
  /** Makes `next` the secret, the current one signing on until `previousUntil`; false when the subscription has no secret. */
  rotate(subscriptionId: string, next: string, previousUntil: Date): Promise<boolean>;
  remove(subscriptionId: string): Promise<void>;
}

export interface WebhookSubscription {
  id: string;
  url: string;
  event_types: string[];
  created_by: string | null;
  created_at: Date;
  disabled_at: Date | null;
}

export interface WebhookDelivery {
  id: string;
  subscription_id: string;
  event_type: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  last_error: string | null;
  created_at: Date;
  finished_at: Date | null;
}

const invalidUrl = (message: string) => new AppError('validation_failed', message, { errors: [{ field: 'url', message }] });

export class WebhookService {
  constructor(
    private readonly sequelize: Sequelize,
    private readonly secrets: WebhookSecrets,
    /** WEBHOOK_PRIVATE_HOSTS: host names that may resolve to non-public addresses. */
    private readonly privateHosts: readonly string[],
    /** WEBHOOK_SECRET_OVERLAP_SECONDS: how long a rotated-out secret still signs. */
    private readonly overlapSeconds = 24 * 3600,
  ) {}

  /** Checks a target before it is stored: https, no credentials, no fragment, not a non-public address literal or `localhost` unless allowed. */
  checkTarget(url: string): URL {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw invalidUrl('not an absolute URL');
    }
    if (u.protocol !== 'https:') throw invalidUrl('only https:// endpoints');
    if (u.username || u.password) throw invalidUrl('no credentials in the URL');
    if (u.hash) throw invalidUrl('no fragment');
    const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    if (this.privateHosts.includes(host)) return u;
    if ((isIP(host) && !isPublicAddress(host)) || host === 'localhost' || host.endsWith('.localhost') || !host.includes('.')) {
      throw invalidUrl(`${host} is not a public address (server-side request forgery guard; WEBHOOK_PRIVATE_HOSTS allows named hosts)`);
    }
    return u;
  }

  /** A new subscription and its secret (returned once). The secret is in Vault before the row exists. */
  async subscribe(input: { url: string; eventTypes: string[] }, meta: AuditMeta): Promise<{ subscription: WebhookSubscription; secret: string }> {
    const url = this.checkTarget(input.url).toString();
    const eventTypes = [...new Set(input.eventTypes)];
    const unknown = eventTypes.filter((e) => !WEBHOOK_EVENT_TYPES.includes(e));
    if (unknown.length || !eventTypes.length) {
      throw new AppError('validation_failed', `unknown event types: ${unknown.join(', ') || '(none given)'}`, {
        errors: [{ field: 'event_types', message: 'unknown or empty' }],
      });
    }
    const id = randomUUID();
    const secret = newWebhookSecret();
    await this.secrets.put(id, secret);
    try {
      const subscription = await this.sequelize.transaction(async (t) => {
        const [row] = await this.sequelize.query<WebhookSubscription>(
          `INSERT INTO webhook_subscriptions (id, url, event_types, created_by) VALUES ($1, $2, $3, $4) RETURNING *`,
          { bind: [id, url, eventTypes, meta.actorId ?? null], transaction: t, type: QueryTypes.SELECT },
        );
        await audit(t, 'webhook.subscribed', null, meta, { subscription_id: id, host: new URL(url).host, event_types: eventTypes });
        return row;
      });
      return { subscription, secret };
    } catch (err) {
      await this.secrets.remove(id).catch(() => undefined);
      throw mapDbError(err);
    }
  }

  list(): Promise<WebhookSubscription[]> {
    return this.sequelize.query<WebhookSubscription>(`SELECT * FROM webhook_subscriptions WHERE disabled_at IS NULL ORDER BY created_at DESC LIMIT 200`, {
      type: QueryTypes.SELECT,
    });
  }

  /** Ends a subscription: no new deliveries; pending ones end as failed at their next try. Its secret leaves Vault. */
  async remove(id: string, meta: AuditMeta): Promise<void> {
    const gone = await this.sequelize.transaction(async (t) => {
      const rows = await this.sequelize.query(`UPDATE webhook_subscriptions SET disabled_at = now() WHERE id = $1 AND disabled_at IS NULL RETURNING id`, {
        bind: [id],
        transaction: t,
        type: QueryTypes.SELECT,
      });
      if (rows.length) await audit(t, 'webhook.removed', null, meta, { subscription_id: id });
      return rows.length === 1;
    });
    if (!gone) throw new AppError('not_found', 'no such webhook subscription');
    await this.secrets.remove(id);
  }

  /**
   * A new signing secret for a live subscription (answered once). Deliveries carry a signature
   * with the new and one with the old secret for the overlap, so the receiver can switch without
   * losing a message; after it only the new one signs.
   */
  async rotateSecret(id: string, meta: AuditMeta): Promise<{ secret: string; previousValidUntil: Date }> {
    const live = await this.sequelize.query(`SELECT 1 FROM webhook_subscriptions WHERE id = $1 AND disabled_at IS NULL`, {
      bind: [id],
      type: QueryTypes.SELECT,
    });
    if (!live.length) throw new AppError('not_found', 'no such webhook subscription');
    const secret = newWebhookSecret();
    const previousValidUntil = new Date(Date.now() + this.overlapSeconds * 1000);
    if (!(await this.secrets.rotate(id, secret, previousValidUntil))) throw new AppError('not_found', 'the subscription has no secret');
    await audit(undefined, 'webhook.secret_rotated', null, meta, { subscription_id: id, previous_valid_until: previousValidUntil.toISOString() });
    return { secret, previousValidUntil };
  }

  async deliveries(subscriptionId: string, opts: { status?: WebhookDelivery['status']; limit: number }): Promise<WebhookDelivery[]> {
    const exists = await this.sequelize.query(`SELECT 1 FROM webhook_subscriptions WHERE id = $1`, { bind: [subscriptionId], type: QueryTypes.SELECT });
    if (!exists.length) throw new AppError('not_found', 'no such webhook subscription');
    return this.sequelize.query<WebhookDelivery>(
      `SELECT id, subscription_id, event_type, status, attempts, last_error, created_at, finished_at FROM webhook_deliveries
        WHERE subscription_id = $1 AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC, id DESC LIMIT $3`,
      { bind: [subscriptionId, opts.status ?? null, opts.limit], type: QueryTypes.SELECT },
    );
  }

  /**
   * One outbox event into one delivery per live subscription that wants it (ids derived from the
   * outbox row, so a relay that runs twice creates nothing twice). Returns the delivery ids.
   */
  async fanOut(rowId: string, event: { eventType: string; userId: string | null; auditId: string; at: string }): Promise<string[]> {
    const body = JSON.stringify({ type: event.eventType, timestamp: event.at, data: { user_id: event.userId, audit_event_id: event.auditId } });
    // One statement: the new deliveries (RETURNING), plus those a previous relay of the row created
    // that are still pending (found by primary key, also for a subscription removed since).
    const rows = await this.sequelize.query<{ id: string }>(
      `WITH subs AS (
         SELECT 'msg_' || $1 || '_' || replace(s.id::text, '-', '') AS id, s.id AS subscription_id, s.disabled_at IS NULL AS live
           FROM webhook_subscriptions s WHERE s.event_types @> ARRAY[$2]
       ), ins AS (
         INSERT INTO webhook_deliveries (id, subscription_id, event_type, user_id, body)
         SELECT id, subscription_id, $2, $3, $4 FROM subs WHERE live
         ON CONFLICT (id) DO NOTHING RETURNING id
       )
       SELECT id FROM ins
       UNION SELECT d.id FROM webhook_deliveries d JOIN subs USING (id) WHERE d.status = 'pending'`,
      { bind: [rowId, event.eventType, event.userId, body], type: QueryTypes.SELECT },
    );
    return rows.map((r) => r.id);
  }

  /** What one try needs: the pending delivery, its live subscription's URL and secret; null when there is nothing to send any more. */
  async forDelivery(id: string): Promise<{ id: string; url: string; body: string; secrets: string[] } | null> {
    const [row] = await this.sequelize.query<{ id: string; url: string; body: string; subscription_id: string; live: boolean; status: string }>(
      `SELECT d.id, d.body, d.status, d.subscription_id, s.url, s.disabled_at IS NULL AS live
         FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id WHERE d.id = $1`,
      { bind: [id], type: QueryTypes.SELECT },
    );
    if (!row || row.status !== 'pending') return null;
    if (!row.live) {
      await this.finish(id, 'failed', 'the subscription was removed');
      return null;
    }
    const secrets = await this.secrets.signing(row.subscription_id);
    if (!secrets.length) {
      await this.finish(id, 'failed', 'the subscription has no secret');
      return null;
    }
    return { id: row.id, url: row.url, body: row.body, secrets };
  }

  /** Counts a try that failed (the workflow retries). */
  async failedTry(id: string, error: string): Promise<void> {
    await this.sequelize.query(`UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $2 WHERE id = $1 AND status = 'pending'`, {
      bind: [id, error.slice(0, 500)],
    });
  }

  /** Delivered (a 2xx), or parked as failed after the retries; idempotent. */
  async finish(id: string, status: 'delivered' | 'failed', error?: string): Promise<void> {
    await this.sequelize.query(
      `UPDATE webhook_deliveries SET status = $2, finished_at = now(), attempts = attempts + CASE WHEN $2 = 'delivered' THEN 1 ELSE 0 END,
              last_error = COALESCE($3, last_error) WHERE id = $1 AND status = 'pending'`,
      { bind: [id, status, error?.slice(0, 500) ?? null] },
    );
  }
}

/** Erasure: a deleted user's deliveries that have not left yet are dropped (their workflows then find nothing to send). */
export async function dropPendingDeliveries(sequelize: Sequelize, t: Transaction, userId: string): Promise<void> {
  await sequelize.query(`DELETE FROM webhook_deliveries WHERE user_id = $1 AND status = 'pending'`, { bind: [userId], transaction: t });
}

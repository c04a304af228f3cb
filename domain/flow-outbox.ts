/**
 * The flow outbox (`flow_outbox`, migrations/010; this module is its one writer and its relay).
 * A request that starts, signals or updates a flow after answering writes a row here inside its
 * own transaction (`enqueue`): the answer waits for the commit only, never for Temporal, so its
 * time tells nothing about which path it took, and nothing is lost while Temporal is down. The
 * relay (`startRelay`, run by every API process) turns each committed row into the Temporal call
 * through a handler the API passes in (api/flow-relay.ts: the domain never sees Temporal), and
 * marks it relayed only after Temporal accepted it. Failures are retried with exponential backoff.
 *
 * Delivery is at least once: a crash between the call and the mark repeats the call, so every
 * handler is idempotent (deterministic workflow ids with USE_EXISTING, update ids derived from the
 * row id; a repeated reset request falls under the reset flow's e-mail interval). Several processes
 * may relay at once: a row is claimed with FOR UPDATE SKIP LOCKED. The relay is woken right after
 * a commit of this process (no poll delay) and polls every `pollMs` for the rest (other processes'
 * rows, retries). The rows are generic events (kind + ids, never an address or a token) so another
 * consumer (webhooks) can read them; relayed rows are pruned after `retentionSeconds`.
 */
import { QueryTypes, Sequelize, type Transaction } from 'sequelize';
import type { Logger } from '../platform/logger';

/** Why a verification e-mail is sent again (part of the event, for the logs and later consumers). */
export type ResendReason = 'register' | 'resend' | 'login';

/** The events a committed request leaves for its flows. Ids only. */
export type FlowEvent =
  | { kind: 'email_verification.start'; userId: string }
  | { kind: 'email_verification.resend'; userId: string; reason: ResendReason }
  | { kind: 'invitation.start'; userId: string }
  /** Written by the database (trigger on audit_events, migration 014) while a subscription wants the type. */
  | { kind: 'webhook.event'; userId: string | null; eventType: string; auditId: string; at: string }
  | { kind: 'password_reset.requested'; userId: string }
  /** A forgot request as it arrived, written before the answer for any address: `userId` is the
   * account the address belonged to then (null when none); the relay decides whether it is served. */
  | { kind: 'password_reset.forgot'; userId: string | null; requestId?: string; ip?: string };

export const FLOW_EVENT_KINDS: ReadonlyArray<FlowEvent['kind']> = [
  'email_verification.start',
  'email_verification.resend',
  'password_reset.requested',
  'password_reset.forgot',
  'invitation.start',
  'webhook.event',
];

/** One claimed row: `id` is stable across retries (handlers derive idempotency keys from it). */
export interface FlowEventRow {
  id: string;
  event: FlowEvent;
  attempts: number;
  createdAt: Date;
}

/** Does the event's Temporal call; resolves once Temporal accepted it, throws to retry later. */
export type FlowEventHandler = (row: FlowEventRow) => Promise<void>;

export interface FlowOutboxSettings {
  /** Fallback poll of the relay (other processes' rows, due retries), milliseconds. */
  pollMs: number;
  /** The longest wait between two tries of one row, milliseconds (the first retry waits 250 ms). */
  maxBackoffMs: number;
  /** A relay call that has not answered within this long counts as failed (retried), milliseconds. */
  callTimeoutMs: number;
  /** Relayed rows are deleted after this many seconds. */
  retentionSeconds: number;
}

export interface FlowOutboxBacklog {
  /** Rows not relayed yet. */
  pending: number;
  /** Age of the oldest of them in seconds (0 when none). */
  oldestAgeSeconds: number;
}

interface Row {
  id: string;
  kind: string;
  user_id: string | null;
  payload: Record<string, unknown>;
  attempts: number;
  created_at: Date;
}

const FIRST_BACKOFF_MS = 250;
const PRUNE_EVERY_MS = 60_000;

class CallTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'CallTimeout';
  }
}

export class FlowOutbox {
  private handler: FlowEventHandler | undefined;
  private timer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private lastPrune = 0;

  constructor(
    private readonly sequelize: Sequelize,
    private readonly s: FlowOutboxSettings,
    private readonly logger: Logger,
  ) {}

  /** Writes the event inside `t`; the relay of this process is woken once `t` commits. */
  async enqueue(t: Transaction, event: FlowEvent): Promise<void> {
    const { kind, userId, ...rest } = event;
    await this.sequelize.query('INSERT INTO flow_outbox (kind, user_id, payload) VALUES (:kind, :userId, CAST(:payload AS jsonb))', {
      replacements: { kind, userId, payload: JSON.stringify(rest) },
      transaction: t,
      type: QueryTypes.INSERT,
    });
    t.afterCommit(() => this.kick());
  }

  /** `enqueue` in a transaction of its own. */
  async enqueueNow(event: FlowEvent): Promise<void> {
    await this.sequelize.transaction((t) => this.enqueue(t, event));
  }

  /** Rows waiting for the relay and the oldest one's age (the metrics read it). */
  async backlog(): Promise<FlowOutboxBacklog> {
    const [r] = await this.sequelize.query<{ pending: string; oldest: number | null }>(
      'SELECT count(*) AS pending, EXTRACT(EPOCH FROM now() - min(created_at))::float8 AS oldest FROM flow_outbox WHERE relayed_at IS NULL',
      { type: QueryTypes.SELECT },
    );
    return { pending: Number(r?.pending ?? 0), oldestAgeSeconds: Math.max(0, r?.oldest ?? 0) };
  }

  // ---- relay ------------------------------------------------------------------------------------

  /** Starts relaying committed rows through `handler` (once per process). */
  startRelay(handler: FlowEventHandler): void {
    this.handler = handler;
    this.stopped = false;
    this.kick();
  }

  /** Wakes the relay now (a commit of this process, or the poll). */
  kick(): void {
    if (this.stopped) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      this.schedule();
    });
  }

  /** Stops the relay; waits for a call in flight (its row is marked or retried as usual). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.draining;
  }

  private schedule() {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.kick(), this.again ? 0 : this.s.pollMs);
    this.timer.unref();
    this.again = false;
  }

  private async drain(): Promise<void> {
    try {
      do {
        this.again = false;
        while (!this.stopped && (await this.relayOne())) {
          /* next row */
        }
      } while (this.again && !this.stopped);
      if (Date.now() - this.lastPrune > PRUNE_EVERY_MS) {
        this.lastPrune = Date.now();
        await this.sequelize.query(`DELETE FROM flow_outbox WHERE relayed_at < now() - make_interval(secs => :secs)`, {
          replacements: { secs: this.s.retentionSeconds },
        });
      }
    } catch (err) {
      // The database is away: the poll tries again.
      this.logger.warn({ err: (err as Error).message }, 'flow outbox relay could not read its rows');
    }
  }

  /** Claims one due row and relays it; false when none is due or the call failed (try later). */
  private async relayOne(): Promise<boolean> {
    return this.sequelize.transaction(async (t) => {
      const [row] = await this.sequelize.query<Row>(
        `SELECT id, kind, user_id, payload, attempts, created_at FROM flow_outbox
          WHERE relayed_at IS NULL AND available_at <= now()
          ORDER BY available_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`,
        { transaction: t, type: QueryTypes.SELECT },
      );
      if (!row) return false;
      const claimed: FlowEventRow = {
        id: String(row.id),
        event: { ...row.payload, kind: row.kind, userId: row.user_id } as FlowEvent,
        attempts: row.attempts,
        createdAt: row.created_at,
      };
      try {
        await this.withTimeout(this.handler!(claimed));
      } catch (err) {
        const waitMs = Math.min(this.s.maxBackoffMs, FIRST_BACKOFF_MS * 2 ** Math.min(row.attempts, 20));
        await this.sequelize.query(
          `UPDATE flow_outbox SET attempts = attempts + 1, last_error = :error, available_at = now() + make_interval(secs => :wait) WHERE id = :id`,
          { replacements: { id: row.id, error: String((err as Error)?.message ?? err).slice(0, 500), wait: waitMs / 1000 }, transaction: t },
        );
        this.logger.warn(
          { id: claimed.id, kind: row.kind, attempts: row.attempts + 1, retryInMs: waitMs, err: (err as Error)?.message },
          'flow event not relayed yet',
        );
        return false;
      }
      await this.sequelize.query('UPDATE flow_outbox SET attempts = attempts + 1, relayed_at = now(), last_error = NULL WHERE id = :id', {
        replacements: { id: row.id },
        transaction: t,
      });
      this.logger.debug({ id: claimed.id, kind: row.kind, latencyMs: Date.now() - new Date(row.created_at).getTime() }, 'flow event relayed');
      return true;
    });
  }

  private async withTimeout(p: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        p,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new CallTimeout(this.s.callTimeoutMs)), this.s.callTimeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

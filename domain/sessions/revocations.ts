/**
 * Revocations that reach access tokens. Access tokens are stateless JWTs; without this, a session
 * ended by logout, logout-all, refresh-token reuse, a password change or reset, a suspension, a
 * lock, a forgotten device or a deletion kept its access tokens working until they expired.
 *
 * Postgres announces every revocation (migration 009: a trigger on `sessions.revoked_at` and on
 * users leaving 'active' writes `token_revocations` and NOTIFYs `authflow_revocations` in the same
 * transaction). Each API instance holds one dedicated LISTEN connection and keeps in memory the
 * revoked session ids and deactivated users of the last access-token lifetime, loaded after every
 * (re)connect; requests are checked against memory, with no database call.
 *
 * Lag: the instance NOTIFYs a heartbeat of its own every REVOCATION_HEARTBEAT_MS. Notifications
 * arrive in commit order, so hearing back a heartbeat sent at T means every revocation committed
 * before T has been heard. While the newest heartbeat heard back was sent more than
 * REVOCATION_MAX_LAG_MS ago, or the listener is down, the feed fails closed: each request's session
 * (and account) is checked in the database, and a request that cannot be checked gets 503.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Notification } from 'pg';
import { QueryTypes, Sequelize } from 'sequelize';
import { mapDbError } from '../../platform/db';
import type { ListenClient } from '../../platform/db/listen';
import type { Logger } from '../../platform/logger';

export const REVOCATION_CHANNEL = 'authflow_revocations';

export interface RevocationFeedSettings {
  /** ACCESS_TOKEN_TTL seconds: how long a revocation must be remembered. */
  accessTtl: number;
  maxLagMs: number;
  heartbeatMs: number;
}

/** What a check needs of an access token's claims. */
export interface RevocationSubject {
  sid: string;
  sub: string;
  /** Issued-at, seconds. */
  iat?: number;
}

export interface RevocationFeedState {
  connected: boolean;
  healthy: boolean;
  /** Milliseconds since the newest heartbeat heard back was sent (Infinity before the first). */
  lagMs: number;
  sessions: number;
  users: number;
}

/** Clock slack between API instances and Postgres when remembering a revocation. */
const SKEW_MS = 60_000;
/** A heartbeat not heard back for this many lag periods: the connection is presumed dead and replaced. */
const DEAD_AFTER_LAGS = 3;

export class RevocationFeed {
  /** Revoked session id -> when to forget it (epoch ms). */
  private readonly sessions = new Map<string, number>();
  /** User id -> the newest time (epoch ms) the account left 'active'; tokens issued at or before it are refused. */
  private readonly users = new Map<string, number>();
  private readonly instance = randomUUID();
  private client?: ListenClient;
  private connected = false;
  /** performance.now() at which the newest heartbeat heard back was sent. */
  private lastHeardSentAt = -Infinity;
  private readonly sent = new Map<number, number>();
  private seq = 0;
  private stopped = false;
  private heartbeat?: NodeJS.Timeout;
  private pruner?: NodeJS.Timeout;
  private reconnectTimer?: NodeJS.Timeout;
  private backoffMs = 100;
  private readonly dead = new WeakSet<ListenClient>();
  private lastError: unknown;

  constructor(
    private readonly sequelize: Sequelize,
    /** A new, not yet connected dedicated connection (platform/db/listen.ts); `lastError` is why the previous one failed. */
    private readonly connect: (lastError?: unknown) => Promise<ListenClient>,
    private readonly s: RevocationFeedSettings,
    private readonly logger: Logger,
  ) {}

  /** Starts listening in the background; until the first heartbeat is heard, checks go to the database. */
  start(): void {
    this.stopped = false;
    void this.open();
    this.pruner = setInterval(() => this.prune(), 30_000);
    this.pruner.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    clearInterval(this.pruner);
    clearTimeout(this.reconnectTimer);
    const c = this.client;
    this.client = undefined;
    this.connected = false;
    await c?.end().catch(() => undefined);
  }

  state(): RevocationFeedState {
    const lagMs = performance.now() - this.lastHeardSentAt;
    return { connected: this.connected, healthy: this.healthy(), lagMs, sessions: this.sessions.size, users: this.users.size };
  }

  healthy(): boolean {
    return this.connected && performance.now() - this.lastHeardSentAt <= this.s.maxLagMs;
  }

  /**
   * Whether the token's session was ended (or its account left 'active' after the token was
   * issued). From memory while the feed is healthy (synchronous); from the database otherwise, a
   * database failure being a DependencyError (503).
   */
  isRevoked(c: RevocationSubject): boolean | Promise<boolean> {
    if (this.healthy()) return this.revokedInMemory(c);
    return this.revokedInDatabase(c);
  }

  private revokedInMemory(c: RevocationSubject): boolean {
    if (this.sessions.has(c.sid)) return true;
    const at = this.users.get(c.sub);
    return at !== undefined && (c.iat ?? 0) * 1000 <= at;
  }

  private async revokedInDatabase(c: RevocationSubject): Promise<boolean> {
    const rows = await this.sequelize
      .query<{ revoked: boolean }>(
        `SELECT (s.id IS NULL OR s.revoked_at IS NOT NULL OR u.status <> 'active'
                 OR EXISTS (SELECT 1 FROM token_revocations r
                             WHERE r.session_id IS NULL AND r.user_id = $2 AND r.at >= to_timestamp($3))) AS revoked
           FROM (SELECT 1) one
           LEFT JOIN sessions s ON s.id = $1 AND s.user_id = $2
           LEFT JOIN users u ON u.id = s.user_id`,
        { bind: [c.sid, c.sub, c.iat ?? 0], type: QueryTypes.SELECT },
      )
      .catch((err) => Promise.reject(mapDbError(err)));
    return rows[0]?.revoked !== false;
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    let client: ListenClient | undefined;
    try {
      client = await this.connect(this.lastError);
      client.on('error', (err) => this.lost(client!, err));
      client.on('end', () => this.lost(client!, new Error('connection ended')));
      client.on('notification', (n) => this.onNotification(n));
      await client.connect();
      // LISTEN before loading: a revocation committed in between is heard, not missed.
      await client.query(`LISTEN ${REVOCATION_CHANNEL}`);
      const ttlSeconds = this.s.accessTtl + SKEW_MS / 1000;
      const rows = await client.query<{ session_id: string | null; user_id: string; at: string }>(
        `SELECT session_id, user_id, floor(extract(epoch FROM at) * 1000)::bigint AS at
           FROM token_revocations WHERE at > now() - make_interval(secs => $1)`,
        [ttlSeconds],
      );
      for (const r of rows.rows) this.remember(r.session_id, r.user_id, Number(r.at));
      // Old rows are no use to anyone (tokens issued before them have expired): any instance may delete them.
      await client.query(`DELETE FROM token_revocations WHERE at < now() - make_interval(secs => $1)`, [Math.max(24 * 3600, 2 * ttlSeconds)]);
      if (this.stopped) {
        await client.end().catch(() => undefined);
        return;
      }
      this.client = client;
      this.connected = true;
      this.backoffMs = 100;
      this.lastError = undefined;
      this.logger.info({ sessions: this.sessions.size, users: this.users.size }, 'revocation feed listening');
      clearInterval(this.heartbeat);
      this.heartbeat = setInterval(() => this.beat(), this.s.heartbeatMs);
      this.heartbeat.unref();
      this.beat();
    } catch (err) {
      if (client) this.lost(client, err as Error);
      else this.scheduleReconnect(err as Error);
    }
  }

  private lost(client: ListenClient, err: Error) {
    // Once per connection (an error is often followed by an end), and never for a replaced one.
    if (this.dead.has(client) || (this.client && this.client !== client)) return;
    this.dead.add(client);
    this.client = undefined;
    if (this.connected) this.logger.warn({ err: err.message }, 'revocation feed lost its connection; checking sessions in the database until it is back');
    this.connected = false;
    this.lastHeardSentAt = -Infinity;
    this.sent.clear();
    clearInterval(this.heartbeat);
    client.removeAllListeners('notification');
    client.on('error', () => undefined);
    void client.end().catch(() => undefined);
    this.scheduleReconnect(err);
  }

  private scheduleReconnect(err: Error) {
    this.lastError = err;
    if (this.stopped || this.reconnectTimer) return;
    this.logger.debug({ err: err.message, inMs: this.backoffMs }, 'revocation feed reconnecting');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.open();
    }, this.backoffMs);
    this.reconnectTimer.unref();
    this.backoffMs = Math.min(2000, this.backoffMs * 2);
  }

  private beat() {
    const client = this.client;
    if (!client) return;
    // A connection that stopped answering (no error, no end: a dead peer) is replaced.
    const oldest = this.sent.size ? Math.min(...this.sent.values()) : undefined;
    if (oldest !== undefined && performance.now() - oldest > DEAD_AFTER_LAGS * this.s.maxLagMs) {
      this.lost(client, new Error('heartbeats not heard back'));
      return;
    }
    const seq = ++this.seq;
    this.sent.set(seq, performance.now());
    client.query(`SELECT pg_notify('${REVOCATION_CHANNEL}', $1)`, [`h:${this.instance}:${seq}`]).catch((err: Error) => this.lost(client, err));
  }

  private onNotification(n: Notification) {
    if (n.channel !== REVOCATION_CHANNEL || !n.payload) return;
    const [kind, a, b, c] = n.payload.split(':');
    if (kind === 'h') {
      if (a !== this.instance) return;
      const seq = Number(b);
      const at = this.sent.get(seq);
      if (at === undefined) return;
      for (const k of this.sent.keys()) if (k <= seq) this.sent.delete(k);
      if (at > this.lastHeardSentAt) this.lastHeardSentAt = at;
    } else if (kind === 's') this.remember(a, b, Number(c));
    else if (kind === 'u') this.remember(null, a, Number(b));
  }

  private remember(sessionId: string | null, userId: string, at: number) {
    if (!Number.isFinite(at)) at = Date.now();
    if (sessionId) this.sessions.set(sessionId, at + this.s.accessTtl * 1000 + SKEW_MS);
    else if ((this.users.get(userId) ?? -Infinity) < at) this.users.set(userId, at);
  }

  private prune() {
    const now = Date.now();
    for (const [sid, until] of this.sessions) if (until < now) this.sessions.delete(sid);
    const forget = now - this.s.accessTtl * 1000 - SKEW_MS;
    for (const [uid, at] of this.users) if (at < forget) this.users.delete(uid);
  }
}

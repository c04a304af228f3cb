/**
 * Sessions and refresh-token rotation. One session per login; each refresh spends the presented
 * token and issues a new one in the same transaction. The token row is locked (FOR UPDATE), so of
 * concurrent uses exactly one succeeds and the others see a spent token: reuse, which revokes
 * the whole session. Device checks plug in through `DeviceCheck` (the step-up seam).
 *
 * Refresh grace (REFRESH_GRACE_SECONDS, DPoP-bound sessions only): when a bound token is spent,
 * its successor is kept sealed under a key only the spent token yields (crypto/refresh-grace.ts).
 * The spent token presented again within the interval with a fresh proof of the session's key,
 * while the successor is still unspent, returns that same successor and a new access token
 * (audited as refresh.grace_reissued). Anything else (header mode, another key or none, after the
 * interval, a successor already used) is reuse. Sealed successors are cleared after the interval.
 */
import { OidcStore } from '../oidc/store';
import { randomUUID } from 'node:crypto';
import { QueryTypes, Sequelize, Transaction } from 'sequelize';
import { audit, AuditMeta } from '../audit';
import { mapDbError } from '../../platform/db';
import { AppError } from '../../platform/errors';
import { hashOpaque, looksLikeRefreshToken, newRefreshToken } from '../../crypto/opaque-tokens';
import { openSuccessor, sealSuccessor } from '../../crypto/refresh-grace';
import { TokenService } from './tokens';
import { hasSecondFactor } from './authentication-methods';

export interface RequestMeta extends AuditMeta {
  userAgent?: string;
  acceptLanguage?: string;
  deviceId?: string;
  /** RFC 9449: the thumbprint of the key whose fresh DPoP proof came with the request (verified by the route). */
  dpopJkt?: string;
}

/**
 * The SQL condition "device row `d` is trusted now": marked trusted and seen within the trust
 * period. `ttl` is the placeholder bound to DEVICE_TRUST_TTL seconds. The refresh fast path, the
 * locked device check and the device list all use this one expression, so they cannot disagree.
 */
export const trustedNowSql = (d: string, ttl: string) => `(${d}.trusted AND ${d}.last_seen_at > now() - make_interval(secs => ${ttl}::double precision))`;

/**
 * How long a session lives: at most `idle` seconds (SESSION_IDLE_TIMEOUT) past its last sign-in
 * or refresh, never more than `max` seconds (SESSION_MAX_LIFETIME) past its sign-in, and each
 * refresh token at most `refreshTtl` seconds (REFRESH_TOKEN_TTL). A refresh token expires with
 * its session.
 */
export interface SessionLifetimes {
  idle: number;
  max: number;
  refreshTtl: number;
}

export function sessionLifetimes(c: { SESSION_IDLE_TIMEOUT: number; SESSION_MAX_LIFETIME: number; REFRESH_TOKEN_TTL: number }): SessionLifetimes {
  return { idle: c.SESSION_IDLE_TIMEOUT, max: c.SESSION_MAX_LIFETIME, refreshTtl: c.REFRESH_TOKEN_TTL };
}

/** The expiry a session (and its new refresh token) gets when it is created or refreshed at `now`. */
export function nextSessionExpiry(l: SessionLifetimes, createdAt: Date, now = Date.now()): Date {
  return new Date(Math.min(now + Math.min(l.idle, l.refreshTtl) * 1000, createdAt.getTime() + l.max * 1000));
}

/** The same in SQL: `created` the session's created_at, `idle`/`max` placeholders bound to seconds (idle already capped by REFRESH_TOKEN_TTL). */
export const nextSessionExpirySql = (created: string, idle: string, max: string) =>
  `LEAST(now() + make_interval(secs => ${idle}::double precision), ${created} + make_interval(secs => ${max}::double precision))`;

export interface IssuedTokens {
  access_token: string;
  /** `DPoP` when the session is bound to a key (the access token carries `cnf.jkt`). */
  token_type: 'Bearer' | 'DPoP';
  expires_in: number;
  refresh_token: string;
  refresh_expires_in: number;
}

export interface RefreshContext {
  userId: string;
  sessionId: string;
  /** The presented (not yet spent) refresh token's row id. */
  refreshTokenId: string;
  meta: RequestMeta;
  t: Transaction;
}

/**
 * Decides, inside the refresh transaction, whether this request's device may rotate the token.
 * `allow` proceeds; a thrown AppError aborts the refresh and rolls back (the token is not spent).
 * `deny` commits the transaction (so its audit rows and revocations persist) and then throws.
 */
export type DeviceDecision = { kind: 'allow'; deviceId?: string | null } | { kind: 'deny'; error: AppError };
export type DeviceCheck = (ctx: RefreshContext) => Promise<DeviceDecision>;
/** Records the device of a new session inside its transaction; returns the device id (domain/sessions/devices.ts). */
export type DeviceRecorder = (t: Transaction, userId: string, meta: RequestMeta) => Promise<string | null>;
/** What the one-statement refresh needs to recognise the session's own, trusted device. */
export interface KnownDeviceShortcut {
  /** The fingerprint hash of a request's device (domain/sessions/fingerprint.ts). */
  fingerprint: (meta: RequestMeta) => Buffer;
  /** DEVICE_TRUST_TTL: seconds a device stays trusted after it was last seen. */
  trustTtl: number;
}

/** What a session needs of the device rules: the refresh check, the login recorder, the shortcut. */
export interface DevicePolicy {
  check: DeviceCheck;
  recordAtLogin: DeviceRecorder;
  knownDevice?: KnownDeviceShortcut;
}

interface TokenRow {
  id: string;
  session_id: string;
  expires_at: Date;
  spent_at: Date | null;
  user_id: string;
  amr: string[];
  revoked_at: Date | null;
  session_expires_at: Date;
  session_created_at: Date;
  status: string;
  roles: string[];
  jkt: string | null;
  replaced_by: string | null;
  grace_successor: Buffer | null;
  /** Spent within the grace interval. */
  in_grace: boolean;
}

export class SessionService {
  private readonly deviceCheck: DeviceCheck;
  private readonly deviceRecorder: DeviceRecorder;
  /**
   * When given, a refresh first tries the common case in one statement: a live token of a live
   * session of an active user, presented from that session's own device while it is trusted
   * (`trustedNowSql`), is spent and replaced at once. Anything else (reuse, expiry, another device
   * of the user, a device unseen too long, a session without a device) falls through to the full,
   * locked transaction below, whose device check applies the same rule.
   */
  private readonly knownDevice?: KnownDeviceShortcut;
  private readonly lifetimes: SessionLifetimes;
  private lastGraceCleanup = 0;

  constructor(
    private readonly sequelize: Sequelize,
    private readonly tokens: TokenService,
    refreshTtl: number,
    /** The device rules (domain/sessions/devices.ts); without them every device is allowed and none recorded (tools). */
    devices: DevicePolicy = { check: () => Promise.resolve({ kind: 'allow' }), recordAtLogin: () => Promise.resolve(null) },
    /** Idle timeout and absolute lifetime; without them (tools) a session lives REFRESH_TOKEN_TTL past its last refresh. */
    lifetimes?: Omit<SessionLifetimes, 'refreshTtl'>,
    /** REFRESH_GRACE_SECONDS (see the module comment); 0, the tools' default, keeps every reuse strict. */
    private readonly graceSeconds = 0,
  ) {
    this.deviceCheck = devices.check;
    this.deviceRecorder = devices.recordAtLogin;
    this.knownDevice = devices.knownDevice;
    this.lifetimes = { idle: lifetimes?.idle ?? refreshTtl, max: lifetimes?.max ?? Number.MAX_SAFE_INTEGER / 1e6, refreshTtl };
  }

  /**
   * The token response. `session` is the session's sign-in time (`auth_time`) and the expiry its
   * new refresh token got; read from the database when the caller does not have them. `jkt`: the
   * key the session is bound to (DPoP), if any.
   */
  async issue(
    userId: string,
    sessionId: string,
    amr: string[],
    roles: string[],
    refresh: string,
    session?: { authTime: Date; expiresAt: Date },
    jkt?: string | null,
  ): Promise<IssuedTokens> {
    if (!session) {
      const rows = await this.sequelize.query<{ created_at: Date; expires_at: Date }>(`SELECT created_at, expires_at FROM sessions WHERE id = $1`, {
        bind: [sessionId],
        type: QueryTypes.SELECT,
      });
      session = rows[0] ? { authTime: new Date(rows[0].created_at), expiresAt: new Date(rows[0].expires_at) } : { authTime: new Date(), expiresAt: new Date() };
    }
    return {
      access_token: await this.tokens.issueAccessToken({ sub: userId, sid: sessionId, amr, roles, authTime: session.authTime, jkt }),
      token_type: jkt ? 'DPoP' : 'Bearer',
      expires_in: this.tokens.accessTtl,
      refresh_token: refresh,
      refresh_expires_in: Math.max(0, Math.floor((session.expiresAt.getTime() - Date.now()) / 1000)),
    };
  }

  /** Creates a session with its first refresh token inside `t`; sign after commit with `finish`. */
  async createSession(
    t: Transaction,
    user: { id: string; roles: string[] },
    amr: string[],
    meta: RequestMeta,
    deviceId?: string | null,
  ): Promise<() => Promise<IssuedTokens>> {
    const sessionId = randomUUID();
    const { token, hash } = newRefreshToken();
    if (deviceId === undefined) deviceId = await this.deviceRecorder(t, user.id, meta);
    // The session's created_at is its sign-in time (auth_time) and the start of its absolute lifetime.
    const createdAt = new Date();
    const expires = nextSessionExpiry(this.lifetimes, createdAt, createdAt.getTime());
    await this.sequelize.query(
      `WITH s AS (INSERT INTO sessions (id, user_id, amr, device_id, expires_at, ip, user_agent, created_at, last_used_at, jkt) VALUES ($1, $2, $3, $4, $5, $6, $7, $10, $10, $11))
       INSERT INTO refresh_tokens (id, session_id, token_hash, expires_at) VALUES ($8, $1, $9, $5)`,
      {
        bind: [
          sessionId,
          user.id,
          amr,
          deviceId ?? null,
          expires,
          meta.ip ?? null,
          (meta.userAgent ?? '').slice(0, 512) || null,
          randomUUID(),
          hash,
          createdAt,
          meta.dpopJkt ?? null,
        ],
        transaction: t,
        type: QueryTypes.INSERT,
      },
    );
    return () => this.issue(user.id, sessionId, amr, user.roles, token, { authTime: createdAt, expiresAt: expires }, meta.dpopJkt);
  }

  async refresh(presented: string, meta: RequestMeta): Promise<IssuedTokens> {
    if (!looksLikeRefreshToken(presented)) throw new AppError('invalid_grant', 'the refresh token is not valid');
    const hash = hashOpaque(presented);
    this.clearExpiredGrace();
    const next = newRefreshToken();
    // Only a proof-carrying request can rotate a key-bound token, so only then is a seal needed.
    const sealed = this.graceSeconds > 0 && meta.dpopJkt ? sealSuccessor(presented, hash, next.token) : null;
    if (this.knownDevice) {
      const fast = await this.rotateFromKnownDevice(hash, next, sealed, this.knownDevice, meta).catch((err) => Promise.reject(mapDbError(err)));
      if (fast) return fast;
    }
    let outcome: { ok: true; finish: () => Promise<IssuedTokens> } | { ok: false; error: AppError };
    try {
      outcome = await this.sequelize.transaction(async (t) => {
        const rows = await this.sequelize.query<TokenRow>(
          `SELECT rt.id, rt.session_id, rt.expires_at, rt.spent_at, s.user_id, s.amr, s.revoked_at,
                  s.expires_at AS session_expires_at, s.created_at AS session_created_at, u.status, u.roles, s.jkt,
                  rt.replaced_by, rt.grace_successor, (rt.spent_at > now() - make_interval(secs => $2::double precision)) AS in_grace
             FROM refresh_tokens rt
             JOIN sessions s ON s.id = rt.session_id
             JOIN users u ON u.id = s.user_id
            WHERE rt.token_hash = $1
            FOR UPDATE OF rt`,
          { bind: [hash, this.graceSeconds], transaction: t, type: QueryTypes.SELECT },
        );
        const row = rows[0];
        if (!row) return { ok: false, error: new AppError('invalid_grant', 'the refresh token is not valid') };
        if (row.spent_at) {
          const again = await this.graceReissue(t, row, presented, hash, meta);
          if (again) return { ok: true, finish: again };
          // A spent token again, and not a retry the grace covers: someone holds a copy. End the whole session.
          if (!row.revoked_at) {
            await this.sequelize.query(`UPDATE sessions SET revoked_at = now(), revoke_reason = 'token_reused' WHERE id = $1`, {
              bind: [row.session_id],
              transaction: t,
            });
          }
          await audit(t, 'token_reused', row.user_id, meta, { session_id: row.session_id });
          return { ok: false, error: new AppError('token_reused', 'this refresh token was already used; the session has been ended') };
        }
        if (row.jkt && meta.dpopJkt !== row.jkt) {
          // A key-bound token without a proof of its key: whoever sends it does not hold the
          // device. Nothing changes (the token stays good for its device, no e-mail); audited.
          const reason = meta.dpopJkt ? 'other_key' : 'no_proof';
          await audit(t, 'refresh.dpop_refused', row.user_id, meta, { session_id: row.session_id, reason });
          return { ok: false, error: new AppError('invalid_dpop_proof', 'this refresh token is bound to a key: send a fresh DPoP proof made with it') };
        }
        // A session that is not bound keeps the header fingerprint (the weaker mode), proof or not.
        const deviceMeta: RequestMeta = row.jkt ? meta : { ...meta, dpopJkt: undefined };
        const now = Date.now();
        if (row.revoked_at || new Date(row.expires_at).getTime() <= now || new Date(row.session_expires_at).getTime() <= now) {
          return { ok: false, error: new AppError('invalid_grant', 'the refresh token is expired or revoked') };
        }
        if (row.status !== 'active') {
          const code = row.status === 'suspended' ? 'account_suspended' : row.status === 'locked' ? 'account_locked' : 'invalid_grant';
          return { ok: false, error: new AppError(code, 'the account cannot receive tokens in its current state') };
        }
        const decision = await this.deviceCheck({ userId: row.user_id, sessionId: row.session_id, refreshTokenId: row.id, meta: deviceMeta, t });
        if (decision.kind === 'deny') return { ok: false, error: decision.error };

        const nextId = randomUUID();
        const authTime = new Date(row.session_created_at);
        const expires = nextSessionExpiry(this.lifetimes, authTime, now);
        await this.sequelize.query(
          `WITH spent AS (UPDATE refresh_tokens SET spent_at = now(), replaced_by = $2, grace_successor = $7 WHERE id = $1),
                ins AS (INSERT INTO refresh_tokens (id, session_id, token_hash, expires_at) VALUES ($2, $3, $4, $5))
           UPDATE sessions SET last_used_at = now(), expires_at = $5, device_id = COALESCE($6, device_id) WHERE id = $3`,
          { bind: [row.id, nextId, row.session_id, next.hash, expires, decision.deviceId ?? null, row.jkt ? sealed : null], transaction: t },
        );
        return { ok: true, finish: () => this.issue(row.user_id, row.session_id, row.amr, row.roles, next.token, { authTime, expiresAt: expires }, row.jkt) };
      });
    } catch (err) {
      throw mapDbError(err);
    }
    if (!outcome.ok) throw outcome.error;
    return outcome.finish();
  }

  /**
   * The refresh hot path in one round trip. The UPDATE re-checks `spent_at IS NULL` under the row
   * lock, so of concurrent uses at most one rotates; the losers get no row here and take the
   * locked path, which treats the spent token as reuse. The device is the session's own
   * (`s.device_id`), never just any device of the user with the same fingerprint. A key-bound
   * session takes this path only with a proof of its key (`s.jkt`), an unbound one only without.
   */
  private async rotateFromKnownDevice(
    hash: Buffer,
    next: { token: string; hash: Buffer },
    sealed: Buffer | null,
    known: KnownDeviceShortcut,
    meta: RequestMeta,
  ): Promise<IssuedTokens | null> {
    const nextId = randomUUID();
    const rows = await this.sequelize.query<{
      session_id: string;
      user_id: string;
      amr: string[];
      roles: string[];
      created_at: Date;
      expires_at: Date;
      jkt: string | null;
    }>(
      `WITH cand AS (
         SELECT rt.id, rt.session_id, s.user_id, s.amr, u.roles, d.id AS device_id, s.created_at, s.jkt,
                ${nextSessionExpirySql('s.created_at', '$5', '$8')} AS expires_at
           FROM refresh_tokens rt
           JOIN sessions s ON s.id = rt.session_id
           JOIN users u ON u.id = s.user_id
           JOIN device_fingerprints d ON d.id = s.device_id AND d.user_id = s.user_id AND d.fingerprint = $2
                AND ${trustedNowSql('d', '$7')}
          WHERE rt.token_hash = $1 AND rt.spent_at IS NULL AND rt.expires_at > now()
            AND s.revoked_at IS NULL AND s.expires_at > now() AND u.status = 'active'
            AND s.jkt IS NOT DISTINCT FROM $9::text
       ), spent AS (
         UPDATE refresh_tokens rt SET spent_at = now(), replaced_by = $3, grace_successor = CASE WHEN cand.jkt IS NOT NULL THEN $10::bytea END
           FROM cand WHERE rt.id = cand.id AND rt.spent_at IS NULL
         RETURNING cand.session_id, cand.user_id, cand.amr, cand.roles, cand.device_id, cand.created_at, cand.expires_at, cand.jkt
       ), ins AS (
         INSERT INTO refresh_tokens (id, session_id, token_hash, expires_at)
         SELECT $3, session_id, $4, expires_at FROM spent
       ), ses AS (
         UPDATE sessions s SET last_used_at = now(), expires_at = spent.expires_at
           FROM spent WHERE s.id = spent.session_id
       ), dev AS (
         UPDATE device_fingerprints d SET last_seen_at = now(), last_ip = $6
           FROM spent WHERE d.id = spent.device_id
       )
       SELECT session_id, user_id, amr, roles, created_at, expires_at, jkt FROM spent`,
      {
        bind: [
          hash,
          known.fingerprint(meta),
          nextId,
          next.hash,
          Math.min(this.lifetimes.idle, this.lifetimes.refreshTtl),
          meta.ip ?? null,
          known.trustTtl,
          this.lifetimes.max,
          meta.dpopJkt ?? null,
          sealed,
        ],
        type: QueryTypes.SELECT,
      },
    );
    const row = rows[0];
    if (!row) return null;
    return this.issue(
      row.user_id,
      row.session_id,
      row.amr,
      row.roles,
      next.token,
      { authTime: new Date(row.created_at), expiresAt: new Date(row.expires_at) },
      row.jkt,
    );
  }

  /**
   * The grace for a spent token (see the module comment), inside the refresh transaction that
   * holds the spent token's row lock: the successor's `finish`, or undefined when the grace does
   * not cover this request (the caller then treats it as reuse).
   */
  private async graceReissue(
    t: Transaction,
    row: TokenRow,
    presented: string,
    hash: Buffer,
    meta: RequestMeta,
  ): Promise<(() => Promise<IssuedTokens>) | undefined> {
    if (!row.jkt || meta.dpopJkt !== row.jkt || !row.in_grace || !row.grace_successor || !row.replaced_by) return undefined;
    const now = Date.now();
    if (row.revoked_at || row.status !== 'active' || new Date(row.session_expires_at).getTime() <= now) return undefined;
    const successor = openSuccessor(presented, hash, row.grace_successor);
    if (!successor) return undefined;
    const succ = (
      await this.sequelize.query<{ token_hash: Buffer; spent_at: Date | null; expires_at: Date }>(
        `SELECT token_hash, spent_at, expires_at FROM refresh_tokens WHERE id = $1 AND session_id = $2 FOR UPDATE`,
        { bind: [row.replaced_by, row.session_id], transaction: t, type: QueryTypes.SELECT },
      )
    )[0];
    // Only the successor nobody has used yet: a successor already rotated means the grace is over.
    if (!succ || succ.spent_at || new Date(succ.expires_at).getTime() <= now || !hashOpaque(successor).equals(succ.token_hash)) return undefined;
    await audit(t, 'refresh.grace_reissued', row.user_id, meta, { session_id: row.session_id });
    const session = { authTime: new Date(row.session_created_at), expiresAt: new Date(row.session_expires_at) };
    return () => this.issue(row.user_id, row.session_id, row.amr, row.roles, successor, session, row.jkt);
  }

  /** Clears sealed successors whose grace is over (at most every few seconds, from any refresh). */
  private clearExpiredGrace(): void {
    const every = Math.max(this.graceSeconds, 5) * 1000;
    if (this.graceSeconds <= 0 || Date.now() - this.lastGraceCleanup < every) return;
    this.lastGraceCleanup = Date.now();
    this.sequelize
      .query(
        `UPDATE refresh_tokens SET grace_successor = NULL WHERE grace_successor IS NOT NULL AND spent_at <= now() - make_interval(secs => $1::double precision)`,
        {
          bind: [this.graceSeconds],
        },
      )
      .catch(() => undefined);
  }

  /** Ends the session a refresh token belongs to. Unknown tokens are ignored (nothing to end). */
  async logout(presented: string, meta: RequestMeta): Promise<void> {
    if (!looksLikeRefreshToken(presented)) return;
    await this.sequelize.transaction(async (t) => {
      const rows = await this.sequelize.query<{ session_id: string; user_id: string }>(
        `UPDATE sessions s SET revoked_at = now(), revoke_reason = 'logout'
           FROM refresh_tokens rt
          WHERE rt.token_hash = $1 AND rt.session_id = s.id AND s.revoked_at IS NULL
          RETURNING s.id AS session_id, s.user_id`,
        { bind: [hashOpaque(presented)], transaction: t, type: QueryTypes.SELECT },
      );
      if (rows[0]) await audit(t, 'logout', rows[0].user_id, meta, { session_id: rows[0].session_id });
    });
  }

  async revokeSession(t: Transaction, sessionId: string, reason: string): Promise<boolean> {
    const [, n] = await this.sequelize.query(`UPDATE sessions SET revoked_at = now(), revoke_reason = $2 WHERE id = $1 AND revoked_at IS NULL`, {
      bind: [sessionId, reason],
      transaction: t,
    });
    return Number(n ?? 0) > 0;
  }

  /** Ends every live session of a user, optionally keeping one (the caller's). Returns how many. */
  revokeAllForUser(t: Transaction, userId: string, reason: string, exceptSessionId?: string): Promise<number> {
    return endUserSessions(this.sequelize, t, userId, reason, exceptSessionId);
  }

  /** Logout-all: ends every session of the user, audited, in one transaction. */
  async logoutAll(userId: string, meta: RequestMeta): Promise<number> {
    return this.sequelize
      .transaction(async (t) => {
        const n = await this.revokeAllForUser(t, userId, 'logout_all');
        await audit(t, 'logout_all', userId, meta, { sessions_ended: n });
        return n;
      })
      .catch((err) => Promise.reject(mapDbError(err)));
  }

  /** The user owning a refresh token (one indexed lookup), or undefined. */
  async refreshTokenOwner(presented: string): Promise<string | undefined> {
    if (!looksLikeRefreshToken(presented)) return undefined;
    const rows = await this.sequelize.query<{ user_id: string }>(
      'SELECT s.user_id FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id WHERE rt.token_hash = $1',
      { bind: [hashOpaque(presented)], type: QueryTypes.SELECT },
    );
    return rows[0]?.user_id;
  }

  /**
   * Whether a session may use the admin API: live, its account active and still an admin, and,
   * when `requireSecondFactor`, signed in with a second factor (the session's amr, not the token's).
   */
  async liveAdmin(sessionId: string, userId: string, requireSecondFactor = false): Promise<'ok' | 'ended' | 'not_admin' | 'no_second_factor'> {
    const rows = await this.sequelize
      .query<{ status: string; roles: string[]; amr: string[]; live: boolean }>(
        `SELECT u.status, u.roles, s.amr, (s.revoked_at IS NULL AND s.expires_at > now()) AS live
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1 AND u.id = $2`,
        { bind: [sessionId, userId], type: QueryTypes.SELECT },
      )
      .catch((err) => Promise.reject(mapDbError(err)));
    const row = rows[0];
    if (!row?.live || row.status !== 'active') return 'ended';
    if (!row.roles.includes('admin')) return 'not_admin';
    return requireSecondFactor && !hasSecondFactor(row.amr) ? 'no_second_factor' : 'ok';
  }

  /** Whether a session is still live (used where an endpoint must not trust a stateless token alone). */
  async isLive(sessionId: string): Promise<boolean> {
    const rows = await this.sequelize.query<{ ok: boolean }>(`SELECT (revoked_at IS NULL AND expires_at > now()) AS ok FROM sessions WHERE id = $1`, {
      bind: [sessionId],
      type: QueryTypes.SELECT,
    });
    return !!rows[0]?.ok;
  }
}

/**
 * The one way a user's sessions end (logout-all, password change or reset, suspension, reset,
 * erasure, ...): every live session, optionally but one, and every grant of the OpenID provider
 * (domain/oidc/store.ts), inside the caller's transaction.
 */
export async function endUserSessions(sequelize: Sequelize, t: Transaction, userId: string, reason: string, exceptSessionId?: string): Promise<number> {
  // The OpenID provider's grants, tokens and sign-in sessions of the user end with ours.
  await new OidcStore(sequelize).endAllForAccount(userId, t);
  const rows = await sequelize.query<{ id: string }>(
    `UPDATE sessions SET revoked_at = now(), revoke_reason = $2
      WHERE user_id = $1 AND revoked_at IS NULL AND ($3::uuid IS NULL OR id <> $3::uuid)
      RETURNING id`,
    { bind: [userId, reason, exceptSessionId ?? null], transaction: t, type: QueryTypes.SELECT },
  );
  return rows.length;
}

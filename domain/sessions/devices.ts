/**
 * Known devices and the device check of a refresh (API.md "Refresh rules", steps 3–6).
 *
 * A device is a row of `device_fingerprints`: the SHA-256 fingerprint that domain/sessions/fingerprint.ts
 * derives on the server from the request's `X-Device-Id`, `User-Agent` (family + major version +
 * OS family) and first `Accept-Language` tag. Not the IP address: it changes with every network
 * (mobile, Wi-Fi, VPN), which would make every move a "new device"; it is kept as `last_ip` for
 * the user's device list only. Only the hash and a human label ("Firefox 128 on Linux") are
 * stored, never the raw headers.
 *
 * Rows are written (trusted) when a session is created (password login, MFA login: the
 * SessionService `deviceRecorder` seam), when a refresh comes from the session's device (last seen),
 * when a session without a device is bound (below), and when a step-up verification succeeds.
 *
 * A refresh token is good only on its own session's device: `sessions.device_id` names one row,
 * and the request's fingerprint must be that row's. Another trusted device of the same user is an
 * unknown device for this session (its headers are easy to copy: a thief holding the laptop's
 * token and the phone's User-Agent is not the phone). A device is trusted while it has been seen
 * within DEVICE_TRUST_TTL (`trustedNowSql`, shared with the one-statement fast path in
 * domain/sessions/sessions.ts and the device list); one unseen for longer needs a step-up even for its own
 * session. A sign-in with the password re-trusts the device it comes from (it proves the user);
 * a verified step-up trusts the new device and moves the session onto it.
 *
 * A session with no device recorded (`device_id` null: sessions from before devices were bound)
 * is bound to the first device that refreshes it only when the user has no device at all
 * (API.md rule 5, "none yet"); when the user has any device row (even an untrusted one), that
 * refresh needs a step-up, which binds the session to the verified device.
 *
 * A refresh from an unknown device never rotates: it opens a step-up challenge (one pending per
 * session, bound to the presented refresh token, which stays unspent) and hands it to the
 * step-up workflow through a `StepUpLauncher` (the API's Temporal side). Starting that workflow
 * happens inside the refresh transaction, so when Temporal is unreachable the whole refresh rolls
 * back (503) and the token is not spent. More than K different unknown fingerprints on one session
 * within the window end the session at once.
 *
 * A key-bound session (DPoP, RFC 9449; domain/sessions/dpop.ts) has its key as its device: the
 * row records the key's thumbprint (`jkt`) and its `fingerprint` is derived from the thumbprint
 * alone (`deviceFingerprint`), so copied headers are worth nothing and a key is one device
 * whatever its headers say. A sign-in with a key the account has not used while it has other
 * keys is a new device: audited (`device.new_key`) and e-mailed to the owner after the commit.
 *
 * The DB halves of the step-up outcome (`completeStepUp`, `failStepUp`) are here too; the
 * workflow reaches them through activities, so the code itself never enters its history.
 */
import { createHash, randomUUID } from 'node:crypto';
import { QueryTypes, Sequelize, Transaction } from 'sequelize';
import { audit, AuditMeta } from '../audit';
import { mapDbError } from '../../platform/db';
import { AppError, DependencyError } from '../../platform/errors';
import { deriveFingerprint, Fingerprint } from './fingerprint';
import {
  nextSessionExpiry,
  trustedNowSql,
  type DeviceDecision,
  type SessionLifetimes,
  type DevicePolicy,
  type KnownDeviceShortcut,
  type RefreshContext,
  type RequestMeta,
} from './sessions';
import {
  endChallenges,
  looksLikeVerificationId,
  newVerificationId,
  sameBytes,
  stepUpCodeHash,
  stepUpFlowId,
  stepUpRequired,
  type ChallengeRow,
  type StepUpFailure,
  type StepUpFlows,
  type StepUpMethod,
} from './step-up';

/** The new-device e-mail (platform/temporal/flows.ts `notify`); one notice per key. */
export interface NewDeviceNotices {
  notify(key: string, input: { userId: string; template: 'generic'; params: Record<string, string> }): Promise<void>;
}

/**
 * The device of a request: its key when a DPoP proof came with it (hash of the thumbprint only,
 * labelled from the headers), else the header fingerprint (domain/sessions/fingerprint.ts).
 */
export function deviceFingerprint(meta: RequestMeta): Fingerprint & { jkt: string | null } {
  const headers = deriveFingerprint(meta);
  if (!meta.dpopJkt) return { ...headers, jkt: null };
  return { hash: createHash('sha256').update(`dpop-jkt:${meta.dpopJkt}`, 'utf8').digest(), label: `${headers.label} (device key)`, jkt: meta.dpopJkt };
}

export interface DeviceSettings {
  /** Seconds a step-up challenge (and its e-mailed code) lives. */
  stepUpTtl: number;
  /** K: more than this many different unknown fingerprints per session within the window revoke it. */
  maxUnknownDevices: number;
  /** Seconds of the many-devices window. */
  unknownWindow: number;
  /** DEVICE_TRUST_TTL: seconds a device stays trusted after it was last seen. */
  trustTtl: number;
  /** Whether MFA users confirm a step-up with a TOTP code (the MFA service checks it); otherwise by e-mail. */
  totpStepUp: boolean;
}

/** Why a refresh counts as coming from an unknown device (audit `refresh.unknown_device` `reason`). */
export type UnknownDeviceReason = 'not_session_device' | 'trust_expired' | 'session_without_device';

export interface DeviceView {
  id: string;
  label: string | null;
  trusted: boolean;
  current: boolean;
  first_seen_at: string;
  last_seen_at: string;
  last_ip: string | null;
}

/** Records a fingerprint (and, for a key-bound device, its key) as a trusted device of the user (insert or touch); returns its id. */
export async function recordDevice(
  sequelize: Sequelize,
  t: Transaction,
  userId: string,
  fp: Fingerprint & { jkt?: string | null },
  ip: string | null | undefined,
): Promise<string> {
  return (await upsertDevice(sequelize, t, userId, fp, ip)).id;
}

async function upsertDevice(sequelize: Sequelize, t: Transaction, userId: string, fp: Fingerprint & { jkt?: string | null }, ip: string | null | undefined) {
  const rows = await sequelize.query<{ id: string; inserted: boolean }>(
    `INSERT INTO device_fingerprints (id, user_id, fingerprint, label, trusted, last_ip, jkt)
     VALUES ($1, $2, $3, $4, true, $5, $6)
     ON CONFLICT (user_id, fingerprint) DO UPDATE
       SET trusted = true, last_seen_at = now(), last_ip = EXCLUDED.last_ip, label = EXCLUDED.label
     RETURNING id, (xmax = 0) AS inserted`,
    { bind: [randomUUID(), userId, fp.hash, fp.label, ip ?? null, fp.jkt ?? null], transaction: t, type: QueryTypes.SELECT },
  );
  return rows[0];
}

export class DeviceService implements DevicePolicy {
  readonly knownDevice: KnownDeviceShortcut;

  constructor(
    private readonly sequelize: Sequelize,
    private readonly s: DeviceSettings,
    private readonly flows: StepUpFlows & Partial<NewDeviceNotices>,
  ) {
    this.knownDevice = { fingerprint: (meta) => deviceFingerprint(meta).hash, trustTtl: s.trustTtl };
  }

  /**
   * SessionService.deviceRecorder: the device of a new session (login) is trusted (the password
   * proves the user). A key the account has not signed in with, while it has other keys, is a
   * new device: audited, and the owner is e-mailed once the sign-in commits.
   */
  readonly recordAtLogin = async (t: Transaction, userId: string, meta: RequestMeta): Promise<string> => {
    const fp = deviceFingerprint(meta);
    const row = await upsertDevice(this.sequelize, t, userId, fp, meta.ip);
    if (fp.jkt && row.inserted) {
      const known = await this.sequelize.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM device_fingerprints WHERE user_id = $1 AND jkt IS NOT NULL AND id <> $2`,
        { bind: [userId, row.id], transaction: t, type: QueryTypes.SELECT },
      );
      if (known[0].n > 0) {
        await audit(t, 'device.new_key', userId, meta, { device_id: row.id, device: fp.label, known_keys: known[0].n });
        const notices = this.flows.notify?.bind(this.flows);
        if (notices) {
          t.afterCommit(() => {
            notices(`new-device:${row.id}`, {
              userId,
              template: 'generic',
              params: {
                subject: 'A sign-in from a new device',
                body: `Your account was signed in to from a new device (${fp.label}${meta.ip ? `, IP ${meta.ip}` : ''}). If this was not you, change your password and end the session under your devices.`,
              },
            }).catch(() => undefined);
          });
        }
      }
    }
    return row.id;
  };

  /** SessionService.deviceCheck: runs inside the refresh transaction, after the token checks. */
  readonly check = async (ctx: RefreshContext): Promise<DeviceDecision> => {
    const { userId, sessionId, meta, t } = ctx;
    const fp = deviceFingerprint(meta);
    // Step 4: compare with this session's device (not with any device of the user).
    const rows = await this.sequelize.query<{ device_id: string | null; fingerprint: Buffer | null; trusted_now: boolean | null; user_has_devices: boolean }>(
      `SELECT s.device_id, d.fingerprint, ${trustedNowSql('d', '$3')} AS trusted_now,
              EXISTS (SELECT 1 FROM device_fingerprints x WHERE x.user_id = $2) AS user_has_devices
         FROM sessions s LEFT JOIN device_fingerprints d ON d.id = s.device_id AND d.user_id = s.user_id
        WHERE s.id = $1`,
      { bind: [sessionId, userId, this.s.trustTtl], transaction: t, type: QueryTypes.SELECT },
    );
    const own = rows[0];
    const allow = async (): Promise<DeviceDecision> => ({ kind: 'allow', deviceId: await recordDevice(this.sequelize, t, userId, fp, meta.ip) });
    if (own?.fingerprint) {
      // Step 5: the session's own device, still trusted → rotate (and mark it seen).
      if (!sameBytes(own.fingerprint, fp.hash)) return this.unknownDevice(ctx, fp, 'not_session_device');
      return own.trusted_now ? allow() : this.unknownDevice(ctx, fp, 'trust_expired');
    }
    // Step 5, "none yet": a session without a device, of a user without any device, is bound to this one.
    if (own && own.device_id === null && !own.user_has_devices) return allow();
    return this.unknownDevice(ctx, fp, 'session_without_device');
  };

  /** Step 6: an unknown device. Everything written here commits with the deny decision. */
  private async unknownDevice(ctx: RefreshContext, fp: Fingerprint & { jkt: string | null }, reason: UnknownDeviceReason): Promise<DeviceDecision> {
    const { userId, sessionId, meta, t } = ctx;
    const launcher = this.flows;
    const q = <T extends object>(sql: string, bind: unknown[]) => this.sequelize.query<T>(sql, { bind, transaction: t, type: QueryTypes.SELECT });
    // One decision per session at a time (concurrent refreshes of other tokens of this session).
    await q(`SELECT id FROM sessions WHERE id = $1 FOR UPDATE`, [sessionId]);

    const others = await q<{ n: number }>(
      `SELECT count(DISTINCT fingerprint)::int AS n FROM step_up_challenges
        WHERE session_id = $1 AND created_at > now() - make_interval(secs => $2) AND fingerprint <> $3`,
      [sessionId, this.s.unknownWindow, fp.hash],
    );
    const unknownDevices = others[0].n + 1;
    if (unknownDevices > this.s.maxUnknownDevices) {
      await this.sequelize.query(`UPDATE sessions SET revoked_at = now(), revoke_reason = 'too_many_devices' WHERE id = $1 AND revoked_at IS NULL`, {
        bind: [sessionId],
        transaction: t,
      });
      await endChallenges(this.sequelize, t, sessionId, 'failed');
      await audit(t, 'refresh.unknown_device', userId, meta, { session_id: sessionId, device: fp.label, reason, unknown_devices: unknownDevices });
      await audit(t, 'session.revoked', userId, meta, {
        session_id: sessionId,
        reason: 'too_many_devices',
        unknown_devices: unknownDevices,
        window_seconds: this.s.unknownWindow,
      });
      await wrapTemporal(() => launcher.notifySessionRevoked({ userId, sessionId, reason: 'sign-in attempts from too many new devices' }));
      await launcher.cancel(sessionId, 'too_many_devices').catch(() => undefined);
      return { kind: 'deny', error: new AppError('invalid_grant', 'this session was used from too many new devices and has been ended; sign in again') };
    }

    const pending = (
      await q<ChallengeRow>(
        `SELECT id, public_id, fingerprint, refresh_token_id, method, expires_at, (expires_at > now()) AS live
         FROM step_up_challenges WHERE session_id = $1 AND status = 'pending' FOR UPDATE`,
        [sessionId],
      )
    )[0];
    // The same device retrying with the same token: the same challenge, no second e-mail.
    if (pending && pending.live && sameBytes(pending.fingerprint, fp.hash) && pending.refresh_token_id === ctx.refreshTokenId) {
      await audit(t, 'refresh.unknown_device', userId, meta, { session_id: sessionId, challenge_id: pending.id, device: fp.label, reason, repeated: true });
      return { kind: 'deny', error: stepUpRequired(pending.public_id, pending.method, pending.expires_at) };
    }
    if (pending) {
      await this.sequelize.query(`UPDATE step_up_challenges SET status = 'superseded', finished_at = now() WHERE id = $1`, {
        bind: [pending.id],
        transaction: t,
      });
    }

    const user = (await q<{ mfa_enabled: boolean }>(`SELECT mfa_enabled FROM users WHERE id = $1`, [userId]))[0];
    const method: StepUpMethod = user?.mfa_enabled && this.s.totpStepUp ? 'totp' : 'email';
    const challengeId = randomUUID();
    const publicId = newVerificationId();
    const rows = await q<{ expires_at: Date }>(
      `INSERT INTO step_up_challenges (id, public_id, session_id, user_id, refresh_token_id, fingerprint, label, ip, method, expires_at, jkt)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + make_interval(secs => $10), $11)
       RETURNING expires_at`,
      [challengeId, publicId, sessionId, userId, ctx.refreshTokenId, fp.hash, fp.label, meta.ip ?? null, method, this.s.stepUpTtl, fp.jkt],
    );
    await audit(t, 'refresh.unknown_device', userId, meta, { session_id: sessionId, challenge_id: challengeId, device: fp.label, reason, method });
    // Temporal down → DependencyError → the refresh transaction rolls back: nothing written, token unspent.
    await wrapTemporal(() => launcher.challenge({ sessionId, userId, challengeId, method }));
    return { kind: 'deny', error: stepUpRequired(publicId, method, rows[0].expires_at) };
  }

  /** A challenge by its public verification_id, or undefined. */
  async findChallenge(publicId: string): Promise<ChallengeRow | undefined> {
    if (!looksLikeVerificationId(publicId)) return undefined;
    const rows = await this.sequelize
      .query<ChallengeRow>(
        `SELECT id, public_id, session_id, user_id, refresh_token_id, fingerprint, label, method, status, expires_at, jkt,
              (status = 'pending' AND expires_at > now()) AS live
         FROM step_up_challenges WHERE public_id = $1`,
        { bind: [publicId], type: QueryTypes.SELECT },
      )
      .catch((err) => Promise.reject(mapDbError(err)));
    return rows[0];
  }

  /** Compares an e-mailed code with the stored hash of the challenge's live code (constant time). */
  async emailCodeMatches(ch: ChallengeRow, code: string): Promise<boolean> {
    const rows = await this.sequelize
      .query<{ token_hash: Buffer }>(
        `SELECT token_hash FROM one_time_tokens
        WHERE purpose = 'step_up' AND flow_id = $1 AND used_at IS NULL AND superseded_at IS NULL AND expires_at > now()`,
        { bind: [stepUpFlowId(ch.session_id, ch.id)], type: QueryTypes.SELECT },
      )
      .catch((err) => Promise.reject(mapDbError(err)));
    const typed = stepUpCodeHash(ch.id, code);
    let ok = false;
    for (const r of rows) ok = sameBytes(r.token_hash, typed) || ok;
    return ok;
  }

  /** What an access token of a session carries (after a step-up issued a new refresh token). */
  async sessionClaims(sessionId: string): Promise<{ userId: string; amr: string[]; roles: string[]; jkt: string | null }> {
    const rows = await this.sequelize
      .query<{ user_id: string; amr: string[]; roles: string[]; jkt: string | null }>(
        `SELECT s.user_id, s.amr, u.roles, s.jkt FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1`,
        { bind: [sessionId], type: QueryTypes.SELECT },
      )
      .catch((err) => Promise.reject(mapDbError(err)));
    if (!rows[0]) throw new AppError('invalid_grant', 'the session no longer exists');
    return { userId: rows[0].user_id, amr: rows[0].amr, roles: rows[0].roles, jkt: rows[0].jkt };
  }

  /** The user's known devices; `current` marks the device of the caller's session; `trusted` is
   * false for a device unseen for longer than the trust period (its next refresh needs a step-up). */
  async list(userId: string, sessionId: string): Promise<DeviceView[]> {
    const rows = await this.sequelize
      .query<{ id: string; label: string | null; trusted: boolean; first_seen_at: Date; last_seen_at: Date; last_ip: string | null; current: boolean }>(
        `SELECT d.id, d.label, ${trustedNowSql('d', '$3')} AS trusted, d.first_seen_at, d.last_seen_at, d.last_ip,
              EXISTS (SELECT 1 FROM sessions s WHERE s.id = $2 AND s.device_id = d.id) AS current
         FROM device_fingerprints d WHERE d.user_id = $1 ORDER BY d.last_seen_at DESC, d.id`,
        { bind: [userId, sessionId, this.s.trustTtl], type: QueryTypes.SELECT },
      )
      .catch((err) => Promise.reject(mapDbError(err)));
    return rows.map((r) => ({
      id: r.id,
      label: r.label,
      trusted: r.trusted,
      current: r.current,
      first_seen_at: new Date(r.first_seen_at).toISOString(),
      last_seen_at: new Date(r.last_seen_at).toISOString(),
      last_ip: r.last_ip,
    }));
  }

  /** Forgets a device and ends the sessions last used from it. Unknown (or someone else's) id → 404. */
  async forget(userId: string, deviceId: string, meta: AuditMeta): Promise<{ sessionsEnded: number }> {
    const notFound = () => new AppError('not_found', 'no such device');
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(deviceId)) throw notFound();
    try {
      return await this.sequelize.transaction(async (t) => {
        const gone = await this.sequelize.query<{ id: string; label: string | null }>(
          `DELETE FROM device_fingerprints WHERE id = $1 AND user_id = $2 RETURNING id, label`,
          { bind: [deviceId, userId], transaction: t, type: QueryTypes.SELECT },
        );
        if (!gone[0]) throw notFound();
        const ended = await this.sequelize.query<{ id: string }>(
          `UPDATE sessions SET revoked_at = now(), revoke_reason = 'device_forgotten'
            WHERE user_id = $1 AND device_id = $2 AND revoked_at IS NULL RETURNING id`,
          { bind: [userId, deviceId], transaction: t, type: QueryTypes.SELECT },
        );
        await audit(t, 'device.forgotten', userId, meta, { device_id: deviceId, label: gone[0].label, sessions_ended: ended.length });
        return { sessionsEnded: ended.length };
      });
    } catch (err) {
      throw mapDbError(err);
    }
  }
}

async function wrapTemporal(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new DependencyError('temporal', err);
  }
}

// ---- The step-up outcome (called by activities of the step-up workflow) ------------------------

export type CompleteResult = { ok: true; deviceId: string } | { ok: false; reason: 'not_pending' | 'token_reused' | 'session_ended' };

/**
 * A verified step-up: spends the refresh token the challenge was opened with, stores the new one
 * (its hash, computed by the API, which alone holds the token), trusts the fingerprint, and marks
 * the challenge and its code used; one transaction. A token that was spent meanwhile is reuse:
 * the session ends. Idempotent: a retry after success finds the challenge verified and the token.
 */
export async function completeStepUp(
  sequelize: Sequelize,
  input: { challengeId: string; newTokenId: string; newTokenHash: string },
  lifetimes: SessionLifetimes,
): Promise<CompleteResult> {
  return sequelize.transaction(async (t) => {
    const q = <T extends object>(sql: string, bind: unknown[]) => sequelize.query<T>(sql, { bind, transaction: t, type: QueryTypes.SELECT });
    const found = (
      await q<{ refresh_token_id: string; session_id: string }>(`SELECT refresh_token_id, session_id FROM step_up_challenges WHERE id = $1`, [
        input.challengeId,
      ])
    )[0];
    if (!found) return { ok: false, reason: 'not_pending' };
    // Lock order as in a refresh (token, session, challenge), so the two never deadlock.
    const rt = (
      await q<{
        id: string;
        spent_at: Date | null;
        expires_at: Date;
        revoked_at: Date | null;
        session_expires_at: Date;
        session_created_at: Date;
        status: string;
      }>(
        `SELECT rt.id, rt.spent_at, rt.expires_at, s.revoked_at, s.expires_at AS session_expires_at, s.created_at AS session_created_at, u.status
         FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id JOIN users u ON u.id = s.user_id
        WHERE rt.id = $1 FOR UPDATE OF rt`,
        [found.refresh_token_id],
      )
    )[0];
    await q(`SELECT id FROM sessions WHERE id = $1 FOR UPDATE`, [found.session_id]);
    const ch = (await q<ChallengeRow & { ip: string | null }>(`SELECT * FROM step_up_challenges WHERE id = $1 FOR UPDATE`, [input.challengeId]))[0];
    if (ch.status === 'verified') {
      const again = await q<{ device_id: string }>(`SELECT s.device_id FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id WHERE rt.id = $1`, [
        input.newTokenId,
      ]);
      return again[0] ? { ok: true, deviceId: again[0].device_id } : { ok: false, reason: 'not_pending' };
    }
    if (ch.status !== 'pending') return { ok: false, reason: 'not_pending' };
    const meta: AuditMeta = { ip: ch.ip };
    const fail = async (reason: 'token_reused' | 'session_ended'): Promise<CompleteResult> => {
      await endChallenges(sequelize, t, ch.session_id, 'failed');
      await audit(t, 'step_up.failed', ch.user_id, meta, { session_id: ch.session_id, challenge_id: ch.id, reason });
      return { ok: false, reason };
    };
    if (rt?.spent_at) {
      // The token was used meanwhile (by the known device, or a copy): reuse ends the session.
      await sequelize.query(`UPDATE sessions SET revoked_at = now(), revoke_reason = 'token_reused' WHERE id = $1 AND revoked_at IS NULL`, {
        bind: [ch.session_id],
        transaction: t,
      });
      await audit(t, 'token_reused', ch.user_id, meta, { session_id: ch.session_id, via: 'step_up' });
      return fail('token_reused');
    }
    const now = Date.now();
    if (!rt || rt.revoked_at || rt.status !== 'active' || new Date(rt.expires_at).getTime() <= now || new Date(rt.session_expires_at).getTime() <= now) {
      return fail('session_ended');
    }
    const deviceId = await recordDevice(sequelize, t, ch.user_id, { hash: ch.fingerprint, label: ch.label ?? 'Unknown device', jkt: ch.jkt }, ch.ip);
    const expires = nextSessionExpiry(lifetimes, new Date(rt.session_created_at), now);
    await sequelize.query(
      `WITH spent AS (UPDATE refresh_tokens SET spent_at = now(), replaced_by = $2 WHERE id = $1),
            ins AS (INSERT INTO refresh_tokens (id, session_id, token_hash, expires_at) VALUES ($2, $3, $4, $5))
       UPDATE sessions SET last_used_at = now(), expires_at = $5, device_id = $6 WHERE id = $3`,
      { bind: [rt.id, input.newTokenId, ch.session_id, Buffer.from(input.newTokenHash, 'hex'), expires, deviceId], transaction: t },
    );
    await sequelize.query(`UPDATE step_up_challenges SET status = 'verified', finished_at = now() WHERE id = $1`, { bind: [ch.id], transaction: t });
    await sequelize.query(`UPDATE one_time_tokens SET used_at = now() WHERE purpose = 'step_up' AND flow_id = $1 AND used_at IS NULL`, {
      bind: [stepUpFlowId(ch.session_id, ch.id)],
      transaction: t,
    });
    await audit(t, 'step_up.verified', ch.user_id, meta, { session_id: ch.session_id, challenge_id: ch.id, device_id: deviceId, method: ch.method });
    return { ok: true, deviceId };
  });
}

/**
 * A failed (too many wrong codes) or expired step-up: ends the session (all its refresh tokens
 * stop working) and its pending challenges. Only a challenge that is still pending does that; a
 * superseded or finished one changes nothing (`revoked: false`). Idempotent on retry.
 */
export async function failStepUp(sequelize: Sequelize, input: { challengeId: string; reason: StepUpFailure }): Promise<{ revoked: boolean }> {
  const status = input.reason === 'expired' ? 'expired' : 'failed';
  const revokeReason = input.reason === 'expired' ? 'step_up_expired' : 'step_up_failed';
  return sequelize.transaction(async (t) => {
    const q = <T extends object>(sql: string, bind: unknown[]) => sequelize.query<T>(sql, { bind, transaction: t, type: QueryTypes.SELECT });
    const found = (await q<{ session_id: string }>(`SELECT session_id FROM step_up_challenges WHERE id = $1`, [input.challengeId]))[0];
    if (!found) return { revoked: false };
    // Session before challenge, as in a refresh.
    const session = (await q<{ revoke_reason: string | null }>(`SELECT revoke_reason FROM sessions WHERE id = $1 FOR UPDATE`, [found.session_id]))[0];
    const ch = (await q<ChallengeRow & { ip: string | null }>(`SELECT * FROM step_up_challenges WHERE id = $1 FOR UPDATE`, [input.challengeId]))[0];
    const revokeReasonNow = session?.revoke_reason ?? null;
    if (ch.status !== 'pending') return { revoked: ch.status === status && revokeReasonNow === revokeReason };
    const ended = await q<{ id: string }>(`UPDATE sessions SET revoked_at = now(), revoke_reason = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING id`, [
      ch.session_id,
      revokeReason,
    ]);
    await endChallenges(sequelize, t, ch.session_id, status);
    await audit(
      t,
      `step_up.${status}`,
      ch.user_id,
      { ip: ch.ip },
      { session_id: ch.session_id, challenge_id: ch.id, reason: input.reason, session_ended: ended.length > 0 },
    );
    return { revoked: ended.length > 0 };
  });
}

/**
 * Bulk seeding with SQL. Every seeded user has an address at @bench.invalid (a reserved TLD), so
 * seeded rows are identifiable and removed by `cleanup` (also at the start of a run, for leftovers
 * of an interrupted one). Users are active, verified, have the password hash of BENCH_PASSWORD at
 * the configured argon2id cost, and know the benchmark's device (one of their fingerprint rows),
 * so logins and refreshes take the known-device path.
 */
import { randomUUID } from 'node:crypto';
import type { Client as PgClient } from 'pg';
import { deriveFingerprint, FingerprintHeaders } from '../../domain/sessions/fingerprint';
import { newRefreshToken } from '../../crypto/opaque-tokens';

export const BENCH_DOMAIN = 'bench.invalid';
export const BENCH_PASSWORD = 'bench-correct-horse-battery-9';

/** The one device every benchmark client claims to be. */
export const DEVICE: Required<FingerprintHeaders> = {
  userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  acceptLanguage: 'en-US,en;q=0.9',
  deviceId: 'bench-device-0001',
};
export const DEVICE_HEADERS: Record<string, string> = {
  'user-agent': DEVICE.userAgent,
  'accept-language': DEVICE.acceptLanguage,
  'x-device-id': DEVICE.deviceId,
};

export class Seeder {
  /** Distinguishes this run's addresses from a previous run's (maildev may still hold those). */
  readonly tag = Date.now().toString(36);
  private seeded = 0;
  readonly fingerprint = deriveFingerprint(DEVICE);

  constructor(
    private readonly db: PgClient,
    private readonly passwordHash: string,
    private readonly devicesPerUser: number,
    private readonly log: (m: string) => void,
  ) {}

  email(n: number): string {
    return `u${n}-${this.tag}@${BENCH_DOMAIN}`;
  }

  get count() {
    return this.seeded;
  }

  /** Grows the seeded population to `total` users, each with `devicesPerUser` fingerprint rows. */
  async growTo(total: number): Promise<void> {
    const chunk = 50_000;
    const t0 = Date.now();
    await this.db.query('SET synchronous_commit = off');
    while (this.seeded < total) {
      const from = this.seeded + 1;
      const to = Math.min(total, this.seeded + chunk);
      await this.db.query(
        `WITH u AS (
           INSERT INTO users (id, email, name, password_hash, status, roles, email_verified_at, created_at, updated_at)
           SELECT gen_random_uuid(), 'u' || g || '-' || $2 || '@${BENCH_DOMAIN}', 'Bench User', $1, 'active', ARRAY['user'], now(), now(), now()
             FROM generate_series($3::int, $4::int) g
           RETURNING id)
         INSERT INTO device_fingerprints (id, user_id, fingerprint, label, trusted, first_seen_at, last_seen_at, last_ip)
         SELECT gen_random_uuid(), u.id,
                CASE WHEN k = 1 THEN $5::bytea ELSE sha256(uuid_send(gen_random_uuid())) END,
                $6, true, now(), now(), '127.0.0.1'
           FROM u CROSS JOIN generate_series(1, $7::int) k`,
        [this.passwordHash, this.tag, from, to, this.fingerprint.hash, this.fingerprint.label, this.devicesPerUser],
      );
      this.seeded = to;
      if (total - from > chunk) this.log(`seeded ${this.seeded.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} users`);
    }
    await this.db.query('SET synchronous_commit = on');
    await this.db.query('ANALYZE users; ANALYZE device_fingerprints');
    if (Date.now() - t0 > 5000) this.log(`seeding took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }

  /** Ids of `n` distinct seeded users picked at random across the whole seeded population. */
  async randomUsers(n: number): Promise<string[]> {
    const picks = new Set<number>();
    n = Math.min(n, this.seeded);
    while (picks.size < n) picks.add(1 + Math.floor(Math.random() * this.seeded));
    const emails = [...picks].map((i) => this.email(i));
    const r = await this.db.query<{ id: string }>('SELECT id FROM users WHERE email = ANY($1::text[])', [emails]);
    return r.rows.map((x) => x.id);
  }

  /**
   * Opens one session per user id with a fresh refresh token (what a login would have written),
   * bound to the benchmark device; returns the opaque tokens. With `dpop`, the sessions are bound to
   * that key (`sessions.jkt`) and to a key-bound device row of it (created once per user, seen and
   * trusted now), as a DPoP login from that key would have left them.
   */
  async sessions(userIds: string[], dpop?: { jkt: string; fingerprint: Buffer }): Promise<string[]> {
    const sids = userIds.map(() => randomUUID());
    const tokens = userIds.map(() => newRefreshToken());
    if (dpop) {
      await this.db.query(
        `INSERT INTO device_fingerprints (id, user_id, fingerprint, label, trusted, first_seen_at, last_seen_at, last_ip, jkt)
         SELECT gen_random_uuid(), u, $2, 'bench device (device key)', true, now(), now(), '127.0.0.1', $3 FROM unnest($1::uuid[]) u
         ON CONFLICT DO NOTHING`,
        [userIds, dpop.fingerprint, dpop.jkt],
      );
    }
    await this.db.query(
      `WITH s AS (
         INSERT INTO sessions (id, user_id, amr, device_id, expires_at, ip, user_agent, jkt)
         SELECT x.sid, x.uid, ARRAY['pwd'],
                (SELECT d.id FROM device_fingerprints d WHERE d.user_id = x.uid AND d.fingerprint = $4),
                now() + interval '30 days', '127.0.0.1', $5, $6
           FROM unnest($1::uuid[], $2::uuid[]) AS x(sid, uid))
       INSERT INTO refresh_tokens (id, session_id, token_hash, expires_at)
       SELECT gen_random_uuid(), y.sid, y.th, now() + interval '30 days'
         FROM unnest($1::uuid[], $3::bytea[]) AS y(sid, th)`,
      [sids, userIds, tokens.map((t) => t.hash), dpop ? dpop.fingerprint : this.fingerprint.hash, DEVICE.userAgent, dpop?.jkt ?? null],
    );
    return tokens.map((t) => t.token);
  }
}

export async function tableCounts(db: PgClient): Promise<{ users: number; devices: number; sessions: number; refreshTokens: number }> {
  // Exact counts: the tables are at most a few million rows, this takes a second.
  const r = await db.query<{ u: string; d: string; s: string; t: string }>(
    `SELECT (SELECT count(*) FROM users) u, (SELECT count(*) FROM device_fingerprints) d,
            (SELECT count(*) FROM sessions) s, (SELECT count(*) FROM refresh_tokens) t`,
  );
  const row = r.rows[0];
  return { users: Number(row.u), devices: Number(row.d), sessions: Number(row.s), refreshTokens: Number(row.t) };
}

/** Ids of every seeded user (any run). */
export async function benchUserIds(db: PgClient): Promise<string[]> {
  const r = await db.query<{ id: string }>(`SELECT id FROM users WHERE email LIKE '%@${BENCH_DOMAIN}'`);
  return r.rows.map((x) => x.id);
}

/**
 * Deletes every seeded user and what hangs off them. Children first, in set-based statements
 * (the per-row cascade from `users` would be slow for millions of rows).
 */
export async function cleanup(db: PgClient, log: (m: string) => void): Promise<number> {
  const t0 = Date.now();
  await db.query('SET synchronous_commit = off');
  await db.query(`CREATE TEMP TABLE IF NOT EXISTS bench_ids (id uuid PRIMARY KEY)`);
  await db.query('TRUNCATE bench_ids');
  const r = await db.query(`INSERT INTO bench_ids SELECT id FROM users WHERE email LIKE '%@${BENCH_DOMAIN}'`);
  const n = r.rowCount ?? 0;
  if (n === 0) return 0;
  await db.query('ANALYZE bench_ids');
  const steps: Array<[string, string]> = [
    ['audit events', 'DELETE FROM audit_events a USING bench_ids b WHERE a.user_id = b.id'],
    ['e-mail outbox', 'DELETE FROM email_outbox o USING bench_ids b WHERE o.user_id = b.id'],
    ['device fingerprints', 'DELETE FROM device_fingerprints d USING bench_ids b WHERE d.user_id = b.id'],
    ['refresh tokens', 'DELETE FROM refresh_tokens t USING sessions s, bench_ids b WHERE t.session_id = s.id AND s.user_id = b.id'],
    ['sessions', 'DELETE FROM sessions s USING bench_ids b WHERE s.user_id = b.id'],
    ['one-time tokens', 'DELETE FROM one_time_tokens o USING bench_ids b WHERE o.user_id = b.id'],
    ['users', 'DELETE FROM users u USING bench_ids b WHERE u.id = b.id'],
  ];
  for (const [what, sql] of steps) {
    try {
      await db.query(sql);
    } catch (err) {
      log(`cleanup: could not delete seeded ${what}: ${(err as Error).message}`);
      if (what === 'users') throw err;
    }
  }
  await db.query('DROP TABLE bench_ids');
  await db.query('SET synchronous_commit = on');
  // VACUUM refuses to run inside a (multi-statement) transaction: one statement per table.
  if (n > 1000) for (const t of ['users', 'device_fingerprints', 'sessions', 'refresh_tokens']) await db.query(`VACUUM ANALYZE ${t}`);
  log(`removed ${n.toLocaleString('en-US')} seeded users and their rows in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return n;
}

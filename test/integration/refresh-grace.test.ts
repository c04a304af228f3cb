/**
 * Refresh grace (issue 19 item 9, RFC 9700 §4.14.2) over the real stack: for a DPoP-bound session
 * the spent refresh token presented again within REFRESH_GRACE_SECONDS (the stack's default, 5 s)
 * with a fresh proof of the session's key returns the same successor instead of ending the
 * session; two tabs racing, or a retry after a lost answer, keep the session. Header-mode
 * sessions, another key, no proof, a use after the interval, or a successor already rotated keep
 * strict reuse detection. The successor is never at rest in plaintext, and its seal is cleared
 * once the interval is over.
 */
import { decodeJwt } from 'jose';
import { api, query, sleep, until } from '../helpers/stack';
import { login, registerAndVerify } from '../helpers/users';
import { deviceKey, dpopPost, type DeviceKey } from '../helpers/dpop';

jest.setTimeout(120_000);

const HEADERS = {
  'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
  'Accept-Language': 'en-GB,en;q=0.8',
  'X-Device-Id': 'install-grace-laptop',
};

interface Tokens {
  access_token: string;
  refresh_token: string;
  token_type: string;
}

async function boundSession(): Promise<{ userId: string; key: DeviceKey; t: Tokens; sid: string }> {
  const u = await registerAndVerify();
  const key = await deviceKey();
  const r = await dpopPost('/v1/auth/login', { email: u.email, password: u.password }, key, HEADERS);
  expect([r.status, r.body.token_type]).toEqual([200, 'DPoP']);
  return { userId: u.user.id, key, t: r.body, sid: decodeJwt(r.body.access_token).sid as string };
}

const refresh = (token: string, key?: DeviceKey) => dpopPost('/v1/auth/refresh', { refresh_token: token }, key, HEADERS);
const sessionRow = async (sid: string) => (await query('SELECT revoked_at, revoke_reason FROM sessions WHERE id = $1', [sid]))[0];
const auditCount = async (userId: string, type: string) =>
  Number((await query('SELECT count(*) AS n FROM audit_events WHERE user_id = $1 AND type = $2', [userId, type]))[0].n);

function expectReuse(r: { status: number; body: any }) {
  expect([r.status, r.body.code]).toEqual([401, 'token_reused']);
  expect(r.body.refresh_token).toBeUndefined();
}

describe('DPoP-bound sessions: the grace', () => {
  test('two tabs racing with the same token and the same key: every request gets the same successor, the session lives on', async () => {
    const s = await boundSession();
    const answers = await Promise.all(Array.from({ length: 6 }, () => refresh(s.t.refresh_token, s.key)));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const successors = new Set(answers.map((r) => r.body.refresh_token));
    expect(successors.size).toBe(1);
    const [successor] = [...successors];
    expect(successor).not.toBe(s.t.refresh_token);
    for (const r of answers) {
      expect(r.body.token_type).toBe('DPoP');
      expect(decodeJwt(r.body.access_token)).toMatchObject({ sid: s.sid, cnf: { jkt: s.key.jkt } });
    }
    // One rotation happened: the session has exactly two tokens, the first spent.
    const rows = await query('SELECT token_hash, spent_at FROM refresh_tokens WHERE session_id = $1 ORDER BY created_at', [s.sid]);
    expect(rows.map((x) => x.spent_at !== null)).toEqual([true, false]);
    expect(await auditCount(s.userId, 'refresh.grace_reissued')).toBe(5);
    expect(await auditCount(s.userId, 'token_reused')).toBe(0);
    expect((await sessionRow(s.sid)).revoked_at).toBeNull();
    // The successor rotates normally, and the access tokens of the grace answers work.
    const next = await refresh(successor, s.key);
    expect(next.status).toBe(200);
    expect(next.body.refresh_token).not.toBe(successor);
  });

  test('a retry after a lost answer gets the same successor; after the successor was used, the old token is reuse and ends the session', async () => {
    const s = await boundSession();
    const first = await refresh(s.t.refresh_token, s.key);
    const retry = await refresh(s.t.refresh_token, s.key);
    expect([first.status, retry.status]).toEqual([200, 200]);
    expect(retry.body.refresh_token).toBe(first.body.refresh_token);
    // The app goes on with the successor; the old token comes back within the interval: no grace any more.
    const second = await refresh(first.body.refresh_token, s.key);
    expect(second.status).toBe(200);
    expectReuse(await refresh(s.t.refresh_token, s.key));
    expect(await sessionRow(s.sid)).toMatchObject({ revoke_reason: 'token_reused' });
    expect((await refresh(second.body.refresh_token, s.key)).status).toBe(401);
  });

  test('the spent token with another key, or without a proof, within the interval: reuse, the session ends', async () => {
    for (const thief of ['other_key', 'no_proof'] as const) {
      const s = await boundSession();
      const first = await refresh(s.t.refresh_token, s.key);
      expect(first.status).toBe(200);
      expectReuse(await refresh(s.t.refresh_token, thief === 'other_key' ? await deviceKey() : undefined));
      expect(await sessionRow(s.sid)).toMatchObject({ revoke_reason: 'token_reused' });
      // The successor the device holds is dead too.
      expect((await refresh(first.body.refresh_token, s.key)).status).toBe(401);
      expect(await auditCount(s.userId, 'refresh.grace_reissued')).toBe(0);
    }
  });

  test('the spent token with the same key after the interval: reuse, the session ends', async () => {
    const s = await boundSession();
    const first = await refresh(s.t.refresh_token, s.key);
    expect(first.status).toBe(200);
    // Move the spend back past the interval instead of sleeping through it.
    await query(`UPDATE refresh_tokens SET spent_at = spent_at - interval '6 seconds' WHERE session_id = $1 AND spent_at IS NOT NULL`, [s.sid]);
    expectReuse(await refresh(s.t.refresh_token, s.key));
    expect(await sessionRow(s.sid)).toMatchObject({ revoke_reason: 'token_reused' });
  });

  test('the successor is never at rest in plaintext; its seal opens only with the spent token and is cleared after the interval', async () => {
    const s = await boundSession();
    const first = await refresh(s.t.refresh_token, s.key);
    expect(first.status).toBe(200);
    const successor: string = first.body.refresh_token;
    const [spent] = await query('SELECT id, grace_successor FROM refresh_tokens WHERE session_id = $1 AND spent_at IS NOT NULL', [s.sid]);
    const sealed: Buffer = spent.grace_successor;
    expect(sealed).toBeInstanceOf(Buffer);
    expect(sealed.includes(Buffer.from(successor))).toBe(false);
    expect(sealed.includes(Buffer.from(successor.slice(3), 'base64url'))).toBe(false);
    // No column of any token row holds the successor's text.
    const dump = JSON.stringify(await query('SELECT * FROM refresh_tokens WHERE session_id = $1', [s.sid]));
    expect(dump).not.toContain(successor.slice(3));
    // A tampered seal opens to nothing: the spent token is then plain reuse.
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 1] ^= 1;
    await query('UPDATE refresh_tokens SET grace_successor = $2 WHERE id = $1', [spent.id, flipped]);
    expectReuse(await refresh(s.t.refresh_token, s.key));

    // Cleared once the interval is over (by the next refreshes of anyone, within a few seconds).
    const other = await boundSession();
    await refresh(other.t.refresh_token, other.key);
    await query(`UPDATE refresh_tokens SET spent_at = spent_at - interval '1 minute' WHERE session_id = $1 AND spent_at IS NOT NULL`, [other.sid]);
    const driver = await boundSession();
    let token = driver.t.refresh_token;
    await until(
      'the expired seal to be cleared',
      async () => {
        await sleep(1000);
        const r = await refresh(token, driver.key);
        if (r.status === 200) token = r.body.refresh_token;
        const [row] = await query('SELECT grace_successor FROM refresh_tokens WHERE session_id = $1 AND spent_at IS NOT NULL', [other.sid]);
        return row.grace_successor === null;
      },
      20_000,
    );
  });
});

describe('header-mode sessions: strict reuse detection', () => {
  test('parallel refreshes with the same token: one rotates, the others are reuse and end the session; nothing is sealed', async () => {
    const u = await registerAndVerify();
    const t = await login(u.email, u.password, HEADERS);
    const sid = decodeJwt(t.access_token).sid as string;
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => api('POST', '/v1/auth/refresh', { body: { refresh_token: t.refresh_token }, headers: HEADERS })),
    );
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 401, 401, 401, 401, 401]);
    for (const r of answers.filter((x) => x.status === 401)) expectReuse(r);
    expect(await sessionRow(sid)).toMatchObject({ revoke_reason: 'token_reused' });
    const winner = answers.find((r) => r.status === 200)!;
    expect((await api('POST', '/v1/auth/refresh', { body: { refresh_token: winner.body.refresh_token }, headers: HEADERS })).status).toBe(401);
    expect(await query('SELECT 1 FROM refresh_tokens WHERE session_id = $1 AND grace_successor IS NOT NULL', [sid])).toHaveLength(0);
  });

  test('a retry of a header-mode refresh is reuse, even a second later', async () => {
    const u = await registerAndVerify();
    const t = await login(u.email, u.password, HEADERS);
    const first = await api('POST', '/v1/auth/refresh', { body: { refresh_token: t.refresh_token }, headers: HEADERS });
    expect(first.status).toBe(200);
    expectReuse(await api('POST', '/v1/auth/refresh', { body: { refresh_token: t.refresh_token }, headers: HEADERS }));
  });
});

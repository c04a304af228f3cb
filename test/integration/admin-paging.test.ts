/**
 * Admin listings page through everything exactly once (issue 19, bug 1). Thousands of rows are
 * written straight into the tables, then paged through the API with its cursors: every audit
 * event once, newest first (ids past 99, 999 and 9999 sort as numbers, not as text), and every
 * user of a search once, including users created in the same instant. Forged cursors are 400s.
 */
import { randomUUID } from 'node:crypto';
import { makeAdmin } from '../helpers/ops';
import { api, query } from '../helpers/stack';

jest.setTimeout(180_000);

let admin: Awaited<ReturnType<typeof makeAdmin>>;
beforeAll(async () => {
  admin = await makeAdmin();
});

async function pageAll<T>(path: string, key: 'events' | 'users', limit: number): Promise<T[]> {
  const seen: T[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 1000; pages++) {
    const sep = path.includes('?') ? '&' : '?';
    const r: { status: number; body: any } = await api('GET', `${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, {
      token: await admin.token(),
    });
    expect(r.status).toBe(200);
    seen.push(...(r.body[key] as T[]));
    cursor = r.body.next_cursor;
    if (!cursor) return seen;
  }
  throw new Error('more than 1000 pages');
}

test('audit events: 3,000 events of one user, paged 97 at a time, each exactly once, newest first', async () => {
  const userId = randomUUID();
  const n = 3000;
  const inserted = await query<{ id: string }>(
    `INSERT INTO audit_events (type, user_id, data) SELECT 'paging.test', $1, jsonb_build_object('i', i) FROM generate_series(1, $2) i RETURNING id::text AS id`,
    [userId, n],
  );
  const events = await pageAll<{ id: string }>(`/v1/admin/audit-events?user_id=${userId}`, 'events', 97);
  const ids = events.map((e) => e.id);
  expect(ids.length).toBe(n);
  expect(new Set(ids).size).toBe(n);
  const want = inserted.map((r) => BigInt(r.id)).sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
  expect(ids).toEqual(want.map(String));
  // The same over the whole table with a type prefix filter (ids well past 999 here).
  const byType = await pageAll<{ id: string; user_id: string }>('/v1/admin/audit-events?type=paging.*', 'events', 100);
  const mine = byType.filter((e) => e.user_id === userId).map((e) => e.id);
  expect(mine).toEqual(ids);
  expect(new Set(byType.map((e) => e.id)).size).toBe(byType.length);
});

test('user search: 1,500 users, many created in the same instant, paged 41 at a time, each exactly once', async () => {
  const tag = `pager${randomUUID().slice(0, 8)}`;
  const n = 1500;
  // Groups of 50 share one created_at: the id breaks the tie.
  await query(
    `INSERT INTO users (id, email, name, status, created_at, updated_at)
       SELECT gen_random_uuid(), $1 || '-' || i || '@example.com', 'Pager', 'pending_verification',
              now() - make_interval(secs => (i / 50)), now()
         FROM generate_series(1, $2) i`,
    [tag, n],
  );
  const users = await pageAll<{ id: string; email: string; created_at: string }>(`/v1/admin/users?query=${tag}`, 'users', 41);
  expect(users.length).toBe(n);
  expect(new Set(users.map((u) => u.id)).size).toBe(n);
  const times = users.map((u) => Date.parse(u.created_at));
  expect(times).toEqual([...times].sort((a, b) => b - a));
});

test('cursors outside the documented grammar are 400 validation_failed; any cursor inside it is a valid position', async () => {
  for (const [path, cursor] of [
    ['/v1/admin/audit-events', '9999999999999999999'],
    ['/v1/admin/audit-events', '-1'],
    ['/v1/admin/audit-events', 'not-a-number'],
    ['/v1/admin/users', `12345678901234567_${randomUUID()}`],
    ['/v1/admin/users', '1796290000000000_not-a-uuid'],
    ['/v1/admin/users', `yesterday_${randomUUID()}`],
    ['/v1/admin/users', Buffer.from(JSON.stringify(['2026-12-02 10:00:00+00', randomUUID()])).toString('base64url')],
  ] as const) {
    const r = await api('GET', `${path}?cursor=${encodeURIComponent(cursor)}`, { token: await admin.token() });
    expect([path, cursor, r.status, r.body.code]).toEqual([path, cursor, 400, 'validation_failed']);
  }
  // What a schema-driven client (or fuzzer) may send: the smallest and largest values of the grammar.
  for (const [path, cursor] of [
    ['/v1/admin/audit-events', '0'],
    ['/v1/admin/audit-events', '999999999999999999'],
    ['/v1/admin/users', `0_${randomUUID()}`],
    ['/v1/admin/users', `9999999999999999_${randomUUID().toUpperCase()}`],
  ] as const) {
    const r = await api('GET', `${path}?cursor=${encodeURIComponent(cursor)}`, { token: await admin.token() });
    expect([path, cursor, r.status]).toEqual([path, cursor, 200]);
  }
});

/**
 * The flow outbox (domain/flow-outbox.ts, finding 7): routes that start or signal a flow after
 * answering commit a `flow_outbox` row with the request and never wait for Temporal.
 *
 * - timing: a registration of a taken (still pending) address takes as long as one of a free
 *   address, and a verification resend for a pending address as long as one for an unknown one;
 * - durability: with the Temporal server killed, register, resend-verification and forgot-password
 *   answer at once, and their e-mails arrive once it is back;
 * - idempotency: a row relayed twice (a relay that crashed after Temporal accepted, before the
 *   mark) sends no second e-mail, and a committed row nobody relayed yet (its API died right
 *   after the commit) is picked up by the poll and sends exactly one;
 * - forgot-password commits its request before the 202 for any address (a crash right after the
 *   answer loses nothing), and with the database away answers 503 instead of a 202 that is lost.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { api, mailsTo, query, sleep, uniqueEmail, until, waitForMail } from '../helpers/stack';
import { restartPostgres, temporal } from '../helpers/ops';
import { workflowIds } from '../../platform/temporal/ids';
import { resetRequestedSignal } from '../../workflows/password-reset';
import { startTemporal, stopTemporal, withWorkerPaused } from '../helpers/temporal-server';
import { GOOD_PASSWORD, registerAndVerify } from '../helpers/users';

jest.setTimeout(300000);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function timed(fn: () => Promise<{ status: number }>, expected: number): Promise<number> {
  const t0 = performance.now();
  const r = await fn();
  const ms = performance.now() - t0;
  expect(r.status).toBe(expected);
  return ms;
}

const register = (email: string) => api('POST', '/v1/auth/register', { body: { email, password: GOOD_PASSWORD } });

async function outboxRows(userId: string): Promise<Array<{ kind: string; attempts: number; relayed_at: Date | null }>> {
  return query('SELECT kind, attempts, relayed_at FROM flow_outbox WHERE user_id = $1 ORDER BY id', [userId]);
}

async function allRelayed(userId: string, n: number, minAttempts = 1) {
  await until(
    `${n} relayed flow outbox rows of ${userId}`,
    async () => {
      const rows = await outboxRows(userId);
      return rows.length === n && rows.every((r) => r.relayed_at && r.attempts >= minAttempts);
    },
    60000,
  );
}

describe('answers that start a flow do not tell taken addresses from free ones by their time', () => {
  const SAMPLES = 31;
  // Medians over interleaved samples; the bound is far below the Temporal round trip the taken
  // path used to wait for (an update accepted by the worker, or executed to its e-mail), and far
  // above the extra row one path writes.
  const BOUND_MS = 25;

  test('register: a taken, still unverified address vs a free one', async () => {
    const taken: string[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const email = uniqueEmail('timing-taken');
      expect((await register(email)).status).toBe(201);
      taken.push(email);
    }
    // Warm both paths.
    await register(taken[0]);
    await register(uniqueEmail('timing-warm'));
    const takenMs: number[] = [];
    const freeMs: number[] = [];
    for (let i = 1; i < taken.length; i++) {
      const t = () => timed(() => register(taken[i]), 201).then((ms) => takenMs.push(ms));
      const f = () => timed(() => register(uniqueEmail('timing-free')), 201).then((ms) => freeMs.push(ms));
      if (i % 2) await t().then(f);
      else await f().then(t);
    }
    // The median of the paired differences: each pair ran back to back, so load changes cancel.
    const diff = median(takenMs.map((t, i) => t - freeMs[i]));
    console.log(`register median taken ${median(takenMs).toFixed(1)} ms, free ${median(freeMs).toFixed(1)} ms, paired diff ${diff.toFixed(1)} ms`);
    expect(Math.abs(diff)).toBeLessThan(BOUND_MS);
  });

  test('register while no worker takes workflow tasks: a taken, still unverified address answers as fast as a free one', async () => {
    // The worker is frozen (busy, restarting): Temporal still accepts starts, but nothing accepts
    // an update. A taken path that waited for the flow would stand out by seconds.
    const PAIRS = 5;
    const taken: string[] = [];
    for (let i = 0; i < PAIRS; i++) {
      const email = uniqueEmail('paused-taken');
      expect((await register(email)).status).toBe(201);
      taken.push(email);
    }
    await waitForMail(taken[PAIRS - 1], /Verify/);
    const takenMs: number[] = [];
    const freeMs: number[] = [];
    await withWorkerPaused(async () => {
      for (let i = 0; i < PAIRS; i++) {
        takenMs.push(await timed(() => register(taken[i]), 201));
        freeMs.push(await timed(() => register(uniqueEmail('paused-free')), 201));
      }
    });
    const diff = median(takenMs.map((t, i) => t - freeMs[i]));
    console.log(
      `register (worker paused) median taken ${median(takenMs).toFixed(1)} ms, free ${median(freeMs).toFixed(1)} ms, paired diff ${diff.toFixed(1)} ms`,
    );
    expect(Math.abs(diff)).toBeLessThan(BOUND_MS * 4);
    // Each taken address still gets its fresh code once the worker runs again.
    for (const email of taken) await waitForMail(email, /Verify/, 60000, 1);
  });

  test('resend-verification: a pending address vs an unknown one', async () => {
    const pending: string[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const email = uniqueEmail('timing-pending');
      expect((await register(email)).status).toBe(201);
      pending.push(email);
    }
    await waitForMail(pending[pending.length - 1], /Verify/);
    const resend = (email: string) => api('POST', '/v1/auth/verify-email/resend', { body: { email } });
    await resend(pending[0]);
    await resend(uniqueEmail('timing-warm'));
    const pendingMs: number[] = [];
    const unknownMs: number[] = [];
    for (let i = 1; i < pending.length; i++) {
      const p = () => timed(() => resend(pending[i]), 202).then((ms) => pendingMs.push(ms));
      const u = () => timed(() => resend(uniqueEmail('timing-unknown')), 202).then((ms) => unknownMs.push(ms));
      if (i % 2) await p().then(u);
      else await u().then(p);
    }
    const diff = median(pendingMs.map((p, i) => p - unknownMs[i]));
    console.log(`resend median pending ${median(pendingMs).toFixed(1)} ms, unknown ${median(unknownMs).toFixed(1)} ms, paired diff ${diff.toFixed(1)} ms`);
    expect(Math.abs(diff)).toBeLessThan(BOUND_MS);
    // The resends still happen (the relay, after the answer).
    await waitForMail(pending[SAMPLES - 1], /Verify/, 30000, 1);
  });
});

describe('flows requested while Temporal is down', () => {
  test('register, resend-verification and forgot-password answer at once; the e-mails arrive once Temporal is back, one each', async () => {
    const verified = await registerAndVerify();
    const pendingEmail = uniqueEmail('down-pending');
    const pending = await register(pendingEmail);
    expect(pending.status).toBe(201);
    await waitForMail(pendingEmail, /Verify/);

    const argv = await stopTemporal();
    let back = false;
    try {
      const fresh = uniqueEmail('down-fresh');
      const t0 = Date.now();
      const reg = await register(fresh);
      expect(reg.status).toBe(201);
      expect((await api('POST', '/v1/auth/verify-email/resend', { body: { email: pendingEmail } })).status).toBe(202);
      expect((await api('POST', '/v1/auth/password/forgot', { body: { email: verified.email } })).status).toBe(202);
      // Nothing waited for Temporal (its client would have waited seconds for a connection).
      expect(Date.now() - t0).toBeLessThan(2000);
      // Temporal is degradable: still ready for the core traffic.
      const ready = await api('GET', '/readyz');
      expect([ready.status, ready.body.status, ready.body.degraded]).toEqual([200, 'degraded', ['temporal']]);
      const freshId = reg.body.user.id as string;
      // Some seconds of outage: the relay tries and backs off meanwhile.
      await sleep(6000);
      expect(await mailsTo(verified.email, /Reset/)).toHaveLength(0);
      expect(await mailsTo(fresh, /Verify/)).toHaveLength(0);

      await startTemporal(argv);
      back = true;
      await waitForMail(fresh, /Verify/, 90000);
      await waitForMail(verified.email, /Reset/, 90000);
      await waitForMail(pendingEmail, /Verify/, 90000, 1);
      await sleep(3000);
      expect(await mailsTo(fresh, /Verify/)).toHaveLength(1);
      expect(await mailsTo(verified.email, /Reset/)).toHaveLength(1);
      expect(await mailsTo(pendingEmail, /Verify/)).toHaveLength(2);
      // The rows were written during the outage and relayed after failed tries.
      const [{ id: pendingId }] = await query<{ id: string }>('SELECT id FROM users WHERE email = $1', [pendingEmail]);
      const rows = await query<{ kind: string; attempts: number; relayed_at: Date | null; created_at: Date }>(
        'SELECT kind, attempts, relayed_at, created_at FROM flow_outbox WHERE user_id = ANY($1) AND created_at >= $2 ORDER BY id',
        [[freshId, pendingId, verified.user.id], new Date(t0)],
      );
      expect(rows.map((r) => r.kind)).toEqual(['email_verification.start', 'email_verification.resend', 'password_reset.forgot']);
      expect(rows.every((r) => r.relayed_at)).toBe(true);
      // The relay tried during the outage (rows behind a failing one wait their turn).
      expect(rows.some((r) => r.attempts >= 2)).toBe(true);
    } finally {
      if (!back) await startTemporal(argv);
    }
  });
});

describe('the relay delivers each event once', () => {
  test('rows relayed again (a relay that crashed after Temporal accepted, before the mark) send no second e-mail', async () => {
    const email = uniqueEmail('relay-twice');
    const reg = await register(email);
    expect(reg.status).toBe(201);
    const userId = reg.body.user.id as string;
    await waitForMail(email, /Verify/);
    expect((await api('POST', '/v1/auth/verify-email/resend', { body: { email } })).status).toBe(202);
    await waitForMail(email, /Verify/, 30000, 1);
    await allRelayed(userId, 2);
    expect((await outboxRows(userId)).map((r) => r.kind)).toEqual(['email_verification.start', 'email_verification.resend']);

    const verified = await registerAndVerify();
    expect((await api('POST', '/v1/auth/password/forgot', { body: { email: verified.email } })).status).toBe(202);
    await waitForMail(verified.email, /Reset/);
    await allRelayed(verified.user.id, 2);
    // Past the reset flow's e-mail interval (2 s in the tests): only the relay keeps a second one out.
    await sleep(3000);

    await query('UPDATE flow_outbox SET relayed_at = NULL, available_at = now() WHERE user_id = ANY($1)', [[userId, verified.user.id]]);
    await allRelayed(userId, 2, 2);
    await allRelayed(verified.user.id, 2, 2);
    await sleep(4000);
    expect(await mailsTo(email, /Verify/)).toHaveLength(2);
    expect(await mailsTo(verified.email, /Reset/)).toHaveLength(1);
    // Its registration's start, relayed again after the flow ended (verified): no new flow.
    expect(await mailsTo(verified.email, /Verify/)).toHaveLength(1);
  });

  test('a forgot request delivered twice before its token exists counts once in the flow (the signal carries the row id)', async () => {
    const verified = await registerAndVerify();
    expect((await api('POST', '/v1/auth/password/forgot', { body: { email: verified.email } })).status).toBe(202);
    await waitForMail(verified.email, /Reset/);
    const [row] = await query<{ id: string }>(`SELECT id::text AS id FROM flow_outbox WHERE user_id = $1 AND kind = 'password_reset.forgot'`, [
      verified.user.id,
    ]);
    // Past the flow's e-mail interval (2 s in the tests), the same request again, as a relay whose
    // first answer was lost would send it: nothing new. A request of its own (another key) is served.
    await sleep(3000);
    const { client } = await temporal();
    const handle = client.workflow.getHandle(workflowIds.passwordReset(verified.user.id));
    await handle.signal(resetRequestedSignal, `flow-outbox:${row.id}`);
    await sleep(3000);
    expect(await mailsTo(verified.email, /Reset/)).toHaveLength(1);
    await handle.signal(resetRequestedSignal, 'flow-outbox:another-request');
    await waitForMail(verified.email, /Reset/, 30000, 1);
  });

  test('a committed row no process relayed yet (its API died after the commit) is found by the poll: one e-mail', async () => {
    const email = uniqueEmail('relay-orphan');
    const id = randomUUID();
    await query('INSERT INTO users (id, email) VALUES ($1, $2)', [id, email]);
    await query(`INSERT INTO flow_outbox (kind, user_id) VALUES ('email_verification.start', $1)`, [id]);
    await waitForMail(email, /Verify/, 30000);
    await allRelayed(id, 1);
    await sleep(3000);
    expect(await mailsTo(email, /Verify/)).toHaveLength(1);
  });
});

describe('forgot-password keeps its request before it answers', () => {
  const forgot = (email: string) => api('POST', '/v1/auth/password/forgot', { body: { email } });
  const rowOf = (requestId: string) =>
    query<{ kind: string; user_id: string | null }>(`SELECT kind, user_id FROM flow_outbox WHERE payload->>'requestId' = $1`, [requestId]);

  test('the 202 comes after the commit of one outbox row, for a known and for an unknown address alike', async () => {
    const verified = await registerAndVerify();
    const known = await forgot(verified.email);
    expect(known.status).toBe(202);
    // Read at once: a process killed right after this answer has already committed the request.
    expect(await rowOf(known.headers.get('x-request-id')!)).toEqual([{ kind: 'password_reset.forgot', user_id: verified.user.id }]);
    const unknown = await forgot(uniqueEmail('forgot-nobody'));
    expect(unknown.status).toBe(202);
    expect(unknown.body).toEqual(known.body);
    expect(await rowOf(unknown.headers.get('x-request-id')!)).toEqual([{ kind: 'password_reset.forgot', user_id: null }]);
    await waitForMail(verified.email, /Reset/);
  });

  test('with Postgres away the answer is 503 with Retry-After, not a 202 that is lost; the retry gets its e-mail', async () => {
    const verified = await registerAndVerify();
    let during: Awaited<ReturnType<typeof forgot>> | undefined;
    let ready: Awaited<ReturnType<typeof forgot>> | undefined;
    await restartPostgres(0, async () => {
      during = await forgot(verified.email);
      ready = await api('GET', '/readyz');
    });
    // Postgres is core: not ready.
    expect([ready!.status, ready!.body.failed]).toEqual([503, ['postgres']]);
    expect(during!.status).toBe(503);
    expect(during!.headers.get('retry-after')).toBeTruthy();
    expect(during!.headers.get('content-type')).toMatch(/application\/problem\+json/);
    await sleep(3000);
    expect(await mailsTo(verified.email, /Reset/)).toHaveLength(0);
    // The client retries once the database is back (the pool reconnects within a few tries).
    await until('forgot accepted again', async () => (await forgot(verified.email)).status === 202, 30000);
    await waitForMail(verified.email, /Reset/, 60000);
  });
});

/**
 * Password guessing, played by the attacker over the real stack: throttles per (account, device)
 * that close the "right password gets another answer" oracle and cannot lock the owner out, the
 * account-wide cap of consecutive failures (lock + e-mail), parallel bursts that try to slip past
 * the cap, and reactivation as a second way to test passwords. Settings from
 * test/env/lifecycle.json: 3 free failures per device, then 3 s / 6 s / 12 s; cap 5; locks 4 s,
 * 8 s, 16 s.
 */
import { authenticator } from 'otplib';
import { throttleAccountKey } from '../../domain/accounts/lockout';
import { api, mailsTo, query, sleep, uniqueEmail, waitForMail, until } from '../helpers/stack';
import { login, registerAndVerify } from '../helpers/users';

jest.setTimeout(120_000);

const WRONG = 'not-the-password-at-all';
let deviceCounter = 0;
/** A device the service can recognise: its own install id and browser. */
const newDevice = (tag = 'attacker') => ({
  'X-Device-Id': `${tag}-${Date.now().toString(36)}-${deviceCounter++}`,
  'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  'Accept-Language': 'en-GB,en;q=0.8',
});
type Device = ReturnType<typeof newDevice>;

const attempt = (email: string, password: string, device: Device) => api('POST', '/v1/auth/login', { body: { email, password }, headers: device });
const userRow = async (id: string) => (await query('SELECT * FROM users WHERE id = $1', [id]))[0];
const failureReasons = async (id: string) =>
  (await query<{ reason: string }>("SELECT data->>'reason' AS reason FROM audit_events WHERE user_id = $1 AND type = 'login.failed' ORDER BY id", [id])).map(
    (r) => r.reason,
  );

/** What a guesser sees for an address nobody registered: the answer every refusal must equal. */
async function baseline(device = newDevice()) {
  const r = await attempt(uniqueEmail('nobody'), WRONG, device);
  expect(r.status).toBe(401);
  return { status: r.status, body: r.body, contentType: r.headers.get('content-type') };
}

function expectLikeWrongPassword(r: { status: number; body: any; headers: Headers }, like: Awaited<ReturnType<typeof baseline>>) {
  expect({ status: r.status, body: r.body, contentType: r.headers.get('content-type') }).toEqual(like);
  expect(r.body.mfa_token).toBeUndefined();
  expect(r.body.access_token).toBeUndefined();
  expect(r.headers.get('retry-after')).toBeNull();
}

describe('throttling per account and device', () => {
  test('a throttled device gets the wrong-password answer even for the right password, while the owner signs in from a known device', async () => {
    const { email, password, user } = await registerAndVerify();
    const owner = newDevice('owner');
    await login(email, password, owner);
    const like = await baseline();

    const attacker = newDevice();
    for (let i = 0; i < 4; i++) expectLikeWrongPassword(await attempt(email, WRONG, attacker), like);
    // The fifth guess is the right password, but the device is throttled: nothing tells it apart.
    expectLikeWrongPassword(await attempt(email, password, attacker), like);
    expect(await failureReasons(user.id)).toEqual(['bad_password', 'bad_password', 'bad_password', 'bad_password', 'throttled']);

    // The owner is not slowed down by the guesser.
    const mine = await attempt(email, password, owner);
    expect(mine.status).toBe(200);
    expect(mine.body.access_token).toBeDefined();
    expect((await userRow(user.id)).failed_logins).toBe(0);

    // Throttled attempts keep counting: the device waits longer, then its attempts are evaluated again.
    const [row] = await query<{ failures: number; blocked_until: Date }>(
      'SELECT failures, blocked_until FROM login_throttles WHERE account_key = $1 AND failures = 5',
      [throttleAccountKey(email)],
    );
    expect(row.failures).toBe(5);
    const wait = new Date(row.blocked_until).getTime() - Date.now();
    expect(wait).toBeGreaterThan(3000); // the 5th failure's delay (6 s), not the 4th's (3 s)
    await sleep(wait + 300);
    expect((await attempt(email, password, attacker)).status).toBe(200);
    expect(await query('SELECT 1 FROM login_throttles WHERE account_key = $1 AND failures >= 5', [throttleAccountKey(email)])).toHaveLength(0);
  });

  test('an unknown address is throttled exactly like a registered one', async () => {
    const { email } = await registerAndVerify();
    const nobody = uniqueEmail('nobody');
    const a = newDevice();
    const b = newDevice();
    const known: unknown[] = [];
    const unknown: unknown[] = [];
    for (let i = 0; i < 6; i++) {
      known.push((await attempt(email, WRONG, a)).body);
      unknown.push((await attempt(nobody, WRONG, b)).body);
    }
    expect(known).toEqual(unknown);
    const rows = await query<{ failures: number; throttled: boolean }>(
      'SELECT failures, throttled FROM login_throttles WHERE account_key = ANY($1) ORDER BY account_key',
      [[throttleAccountKey(email), throttleAccountKey(nobody)]],
    );
    expect(rows.map((r) => [r.failures, r.throttled])).toEqual([
      [6, true],
      [6, true],
    ]);
  });
});

describe('account-wide cap of consecutive failures', () => {
  test('failures spread over many devices lock the account and e-mail the owner; during the lock every attempt answers like a wrong password', async () => {
    const { email, password, user } = await registerAndVerify();
    const owner = newDevice('owner');
    await login(email, password, owner);
    const like = await baseline();

    for (let i = 0; i < 5; i++) expectLikeWrongPassword(await attempt(email, WRONG, newDevice()), like);
    const locked = await userRow(user.id);
    expect(locked.status).toBe('locked');
    const until1 = new Date(locked.locked_until).getTime();
    expect(until1 - Date.now()).toBeGreaterThan(1000);
    expect(until1 - Date.now()).toBeLessThanOrEqual(4000);
    const mail = await waitForMail(email, /locked/);
    expect(mail.text).toContain(new Date(until1).toISOString());

    // The right password, even from the owner's device, learns nothing of the lock; guesses neither extend nor re-arm it.
    expectLikeWrongPassword(await attempt(email, password, owner), like);
    expectLikeWrongPassword(await attempt(email, WRONG, newDevice()), like);
    expect(new Date((await userRow(user.id)).locked_until).getTime()).toBe(until1);
    expect(await failureReasons(user.id)).toEqual([...Array(5).fill('bad_password'), 'locked', 'locked']);

    // The lock lifts itself; one more guess afterwards does not lock again (the lock reset the count).
    await sleep(Math.max(0, until1 - Date.now()) + 300);
    expectLikeWrongPassword(await attempt(email, WRONG, newDevice()), like);
    expect((await userRow(user.id)).status).toBe('active');
    await login(email, password, owner);

    // The next lock lasts longer (level 2: 8 s).
    for (let i = 0; i < 5; i++) await attempt(email, WRONG, newDevice());
    const second = await userRow(user.id);
    expect(second.status).toBe('locked');
    expect(new Date(second.locked_until).getTime() - Date.now()).toBeGreaterThan(5000);
    const levels = await query<{ data: any }>("SELECT data FROM audit_events WHERE user_id = $1 AND type = 'account.locked' ORDER BY id", [user.id]);
    expect(levels.map((e) => [e.data.level, e.data.seconds, e.data.reason])).toEqual([
      [1, 4, 'failed_attempts'],
      [2, 8, 'failed_attempts'],
    ]);
    await until('two lock notices', async () => (await mailsTo(email, /locked/)).length === 2);
  });

  test('a successful sign-in resets the consecutive count', async () => {
    const { email, password, user } = await registerAndVerify();
    for (let i = 0; i < 4; i++) await attempt(email, WRONG, newDevice());
    expect((await userRow(user.id)).failed_logins).toBe(4);
    await login(email, password, newDevice('owner'));
    expect((await userRow(user.id)).failed_logins).toBe(0);
    for (let i = 0; i < 4; i++) await attempt(email, WRONG, newDevice());
    await login(email, password, newDevice('owner')); // 4 + 4 failures, never 5 in a row
    expect((await userRow(user.id)).status).toBe('active');
  });

  test('a parallel burst over many devices gets no more guesses evaluated than the cap', async () => {
    const { email, user } = await registerAndVerify();
    const like = await baseline();
    const answers = await Promise.all(Array.from({ length: 20 }, () => attempt(email, WRONG, newDevice())));
    for (const r of answers) expectLikeWrongPassword(r, like);
    expect((await userRow(user.id)).status).toBe('locked');
    const reasons = await failureReasons(user.id);
    expect(reasons).toHaveLength(20);
    expect(reasons.filter((r) => r === 'bad_password')).toHaveLength(5);
    const locks = await query("SELECT 1 FROM audit_events WHERE user_id = $1 AND type = 'account.locked'", [user.id]);
    expect(locks).toHaveLength(1);
  });

  test('an admin lock answers every password attempt like a wrong password', async () => {
    const { email, password, user } = await registerAndVerify();
    const owner = newDevice('owner');
    await login(email, password, owner);
    const like = await baseline();
    await query("UPDATE users SET status = 'locked', status_before = 'active', locked_until = NULL WHERE id = $1", [user.id]);
    expectLikeWrongPassword(await attempt(email, password, owner), like);
    expect(await failureReasons(user.id)).toEqual(['locked']);
  });
});

describe('reactivation is no password oracle', () => {
  const reactivate = (body: Record<string, string>, device: Device) => api('POST', '/v1/me/reactivate', { body, headers: device });

  async function pendingDeletion(opts: { mfa?: boolean } = {}) {
    const { email, password, user } = await registerAndVerify();
    const device = newDevice('owner');
    const t = await login(email, password, device);
    let recovery: string[] = [];
    if (opts.mfa) {
      const enrol = await api('POST', '/v1/me/mfa/totp', { token: t.access_token, headers: device, body: { password } });
      const secret = new URL(enrol.body.otpauth_url).searchParams.get('secret')!;
      const confirm = await api('POST', '/v1/me/mfa/totp/confirm', { token: t.access_token, headers: device, body: { code: authenticator.generate(secret) } });
      expect(confirm.status).toBe(200);
      recovery = confirm.body.recovery_codes;
    }
    const del = await api('DELETE', '/v1/me', { token: t.access_token, headers: device, body: { password, ...(opts.mfa ? { code: recovery.pop()! } : {}) } });
    expect(del.status).toBe(202);
    return { email, password, user, device, recovery };
  }

  test('every case but the right credentials of an account pending deletion answers like a wrong password', async () => {
    const { email: activeEmail, password } = await registerAndVerify();
    const pending = await pendingDeletion();
    const like = await reactivate({ email: uniqueEmail('nobody'), password: WRONG }, newDevice());
    expect([like.status, like.body.code]).toEqual([401, 'invalid_credentials']);
    const same = (r: { status: number; body: unknown }) => expect({ status: r.status, body: r.body }).toEqual({ status: like.status, body: like.body });

    // An active account with its right password: no 409, no status_now.
    same(await reactivate({ email: activeEmail, password }, newDevice()));
    // A pending deletion with a wrong password.
    same(await reactivate({ email: pending.email, password: WRONG }, newDevice()));
    // The same body as a wrong login.
    expect(like.body).toEqual((await attempt(uniqueEmail('nobody'), WRONG, newDevice())).body);

    // Failures count like logins: a device that guessed too often is refused even the right password.
    const guesser = newDevice();
    for (let i = 0; i < 4; i++) same(await reactivate({ email: pending.email, password: WRONG }, guesser));
    same(await reactivate({ email: pending.email, password: pending.password }, guesser));
    const audited = await query<{ reason: string; purpose: string }>(
      "SELECT data->>'reason' AS reason, data->>'purpose' AS purpose FROM audit_events WHERE user_id = $1 AND type = 'login.failed' ORDER BY id",
      [pending.user.id],
    );
    expect(audited.map((a) => a.purpose)).toEqual(Array(6).fill('pending_deletion'));
    expect(audited.at(-1)!.reason).toBe('throttled');

    // The owner's own device reactivates.
    const ok = await reactivate({ email: pending.email, password: pending.password }, pending.device);
    expect([ok.status, ok.body.user?.status]).toEqual([200, 'active']);
  });

  test('an MFA user reactivates only with a valid code; without one or with a wrong one the answer is a wrong password', async () => {
    const pending = await pendingDeletion({ mfa: true });
    const like = await reactivate({ email: uniqueEmail('nobody'), password: WRONG }, newDevice());
    const same = (r: { status: number; body: unknown }) => expect({ status: r.status, body: r.body }).toEqual({ status: like.status, body: like.body });
    same(await reactivate({ email: pending.email, password: pending.password }, pending.device));
    same(await reactivate({ email: pending.email, password: pending.password, code: '000000' }, pending.device));
    const ok = await reactivate({ email: pending.email, password: pending.password, code: pending.recovery.pop()! }, pending.device);
    expect([ok.status, ok.body.user?.status]).toEqual([200, 'active']);
  });
});

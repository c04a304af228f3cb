/**
 * The races (issue 17, 1d): one secret spent by many parallel requests at once, spread over every
 * API instance, many rounds each. Per round the invariants are checked from the HTTP answers and
 * the database rows; any 5xx (or no answer) fails the round.
 *
 * - one refresh token: at most one 200 (exactly one: the token was good), the others 401
 *   `token_reused`; the reuse ends the whole session (docs/security.md, accounts.test.ts "a spent
 *   token presented again revokes the whole session"), so the winner's successor is refused too;
 *   one successor row, the spent token points at it.
 * - one password reset token with a different new password per request: exactly one 204, the
 *   others 400 `invalid_token`; the stored hash is the winner's password and nobody else's, the
 *   sessions from before are ended (`password_reset`), one `password.reset` audit event.
 * - one mfa_token with the valid TOTP code: exactly one 200, the others 401 (`invalid_mfa_code`
 *   for the replayed code or `invalid_grant` for the spent token); one session with amr pwd+otp,
 *   the token spent, the TOTP step recorded, the code refused on a new mfa_token afterwards.
 * - one step-up verification with the e-mailed code: exactly one 200, the others 404 (finished) or
 *   409 (another code being checked); the session lives on with one new refresh token, which
 *   works from the new device.
 * - deletion racing reactivation: parallel `POST /v1/me/reactivate` fired around the end of the
 *   grace period (ACCOUNT_DELETION_GRACE, 5 s in this stack; the firing moment swept across the
 *   rounds); after the workflow closed the account is either wholly active (exactly one 200, can
 *   sign in, not scheduled, nothing erased) or wholly erased (no 200, tombstone without personal
 *   data, no sessions, devices, codes or tokens, no sign-in, audited once) — never a mix.
 *
 * Users are written straight into the database (active, verified, the race password's argon2id
 * hash), so a round costs what its race needs and no registration e-mail.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import type { Client as PgClient } from 'pg';
import { hashPassword, verifyPassword, type Argon2Params } from '../crypto/argon2';
import { argon2Params, parseConfig, parseTemporalConnectionConfig } from '../platform/config';
import { temporalConnectionOptions } from '../platform/temporal/connection';
import type { StackInfo } from '../infra/stack/stack';
import { authenticatorApp } from '../test/helpers/totp-app';
import { codeFrom } from '../test/helpers/users';
import type { PartResult, ReliabilityContext, Row } from './lib/context';

export const RACE_PASSWORD = 'races-amber-quokka-lantern-57';
const App = authenticatorApp();

export interface Answer {
  status: number;
  code?: string;
  body: any;
  /** which API instance answered */
  api: number;
}

/** What every race needs: the instances, the database, mail, Temporal, the password hash. */
export interface RaceEnv {
  apis: string[];
  db: PgClient;
  mailUi: string;
  temporal: TemporalClient;
  params: Argon2Params;
  passwordHash: string;
  tag: string;
  serial: number;
  graceMs: number;
  close(): Promise<void>;
}

export interface RoundResult {
  ok: boolean;
  /** what broke (empty when ok) */
  problems: string[];
  /** e.g. the deletion race's outcome: 'active' | 'deleted' */
  outcome?: string;
  /** the raced requests' answers */
  answers?: Answer[];
}

export async function raceEnv(info: StackInfo, apis: string[], db: PgClient): Promise<RaceEnv> {
  const config = parseConfig({ ...info.serviceEnv, VAULT_ROLE_ID: info.roleIds.api, VAULT_SECRET_ID_FILE: info.secretIdFiles.api });
  const params = argon2Params(config);
  const connection = await Connection.connect({ ...temporalConnectionOptions(parseTemporalConnectionConfig(info.serviceEnv)), connectTimeout: 5000 });
  return {
    apis,
    db,
    mailUi: info.urls.mailUi,
    temporal: new TemporalClient({ connection, namespace: info.serviceEnv.TEMPORAL_NAMESPACE ?? 'default' }),
    params,
    passwordHash: await hashPassword(RACE_PASSWORD, params),
    tag: Date.now().toString(36),
    serial: 0,
    graceMs: config.ACCOUNT_DELETION_GRACE * 1000,
    close: () => connection.close(),
  };
}

// ---- HTTP, users, mail ------------------------------------------------------------------------

export async function call(env: RaceEnv, i: number, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const api = i % env.apis.length;
  const h: Record<string, string> = { ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  try {
    const res = await fetch(`${env.apis[api]}${path}`, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30000),
    });
    const text = await res.text();
    let parsed: any = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON */
    }
    return { status: res.status, code: typeof parsed?.code === 'string' ? parsed.code : undefined, body: parsed, api };
  } catch (err) {
    return { status: 0, code: (err as Error).name, body: undefined, api };
  }
}

/** Fires `n` requests at once (built first, then sent together), request i to instance i mod count. */
export function fire(n: number, one: (i: number) => Promise<Answer>): Promise<Answer[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => one(i)));
}

const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';
/** Request headers of one device (a client install with its own X-Device-Id). */
export function device(ua = FIREFOX): Record<string, string> {
  return { 'User-Agent': ua, 'Accept-Language': 'en-US,en;q=0.9', 'X-Device-Id': `race-${randomUUID()}` };
}

export interface RaceUser {
  id: string;
  email: string;
  password: string;
}

/** An active, verified user written straight into the database, with the race password. */
export async function seedUser(env: RaceEnv, kind: string): Promise<RaceUser> {
  const id = randomUUID();
  const email = `race-${kind}-${env.tag}-${++env.serial}@reliability.invalid`;
  await env.db.query(
    `INSERT INTO users (id, email, name, password_hash, status, roles, email_verified_at, created_at, updated_at)
     VALUES ($1, $2, 'Race User', $3, 'active', ARRAY['user'], now(), now(), now())`,
    [id, email, env.passwordHash],
  );
  return { id, email, password: RACE_PASSWORD };
}

interface MaildevMessage {
  id: string;
  subject?: string;
  text?: string;
  to?: Array<{ address: string }>;
}

/** Waits for a message to `address` whose subject matches, returns its text and deletes it from maildev. */
export async function takeMail(env: RaceEnv, address: string, subject: RegExp, timeoutMs = 30000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const res = await fetch(`${env.mailUi}/email`, { signal: AbortSignal.timeout(10000) }).catch(() => undefined);
    if (res?.ok) {
      const list = (await res.json()) as MaildevMessage[];
      const m = list.find((x) => x.to?.some((t) => t.address.toLowerCase() === address.toLowerCase()) && subject.test(x.subject ?? ''));
      if (m) {
        await fetch(`${env.mailUi}/email/${m.id}`, { method: 'DELETE' }).catch(() => undefined);
        return m.text ?? '';
      }
    }
    await sleep(150);
  }
  throw new Error(`no e-mail matching ${subject} within ${timeoutMs} ms`);
}

async function login(env: RaceEnv, u: RaceUser, headers: Record<string, string>, password = u.password): Promise<Answer> {
  return call(env, 0, 'POST', '/v1/auth/login', { email: u.email, password }, headers);
}

async function mustLogin(env: RaceEnv, u: RaceUser, headers: Record<string, string>, password = u.password) {
  const r = await login(env, u, headers, password);
  if (r.status !== 200) throw new Error(`setup: sign-in answered ${r.status} ${r.code ?? ''}`);
  return r.body as { access_token?: string; refresh_token?: string; mfa_token?: string; mfa_required?: boolean };
}

const sidOf = (accessToken: string): string => JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString()).sid as string;
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** The answers as a short histogram, e.g. "1×200, 7×401 token_reused". */
export function histogram(answers: Answer[]): string {
  const m = new Map<string, number>();
  for (const a of answers) {
    const k = `${a.status}${a.code && a.status >= 300 ? ` ${a.code}` : ''}`;
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return [...m]
    .sort()
    .map(([k, n]) => `${n}×${k}`)
    .join(', ');
}

/** Checks every answer is `winner` once (or `winners` times) and otherwise one of `losers`; no 5xx, no missing answer. */
function checkAnswers(answers: Answer[], winner: number, losers: Array<[number, string[]]>, problems: string[], winners = 1): Answer | undefined {
  const won = answers.filter((a) => a.status === winner);
  if (won.length !== winners) problems.push(`${won.length} answers ${winner} (expected ${winners}): ${histogram(answers)}`);
  for (const a of answers) {
    if (a.status === winner) continue;
    const ok = losers.some(([s, codes]) => s === a.status && (codes.length === 0 || codes.includes(a.code ?? '')));
    if (!ok) {
      problems.push(`unexpected answer ${a.status} ${a.code ?? ''} from instance ${a.api + 1}: ${histogram(answers)}`);
      break;
    }
  }
  return won[0];
}

// ---- the races ----------------------------------------------------------------------------------

/** One refresh token, `n` parallel refreshes. */
export async function refreshRace(env: RaceEnv, u: RaceUser, n: number): Promise<RoundResult> {
  const problems: string[] = [];
  const dev = device();
  const t = await mustLogin(env, u, dev);
  const sid = sidOf(t.access_token!);
  const answers = await fire(n, (i) => call(env, i, 'POST', '/v1/auth/refresh', { refresh_token: t.refresh_token }, dev));
  const win = checkAnswers(answers, 200, [[401, ['token_reused', 'invalid_grant']]], problems);
  const rows = await env.db.query<{ id: string; spent_at: Date | null; replaced_by: string | null }>(
    'SELECT id, spent_at, replaced_by FROM refresh_tokens WHERE session_id = $1 ORDER BY created_at, id',
    [sid],
  );
  const spent = rows.rows.filter((r) => r.spent_at);
  if (rows.rows.length !== 2 || spent.length !== 1 || !spent[0].replaced_by || !rows.rows.some((r) => r.id === spent[0].replaced_by))
    problems.push(`refresh tokens of the session: ${rows.rows.length} rows, ${spent.length} spent (expected the first spent, replaced by its one successor)`);
  const s = await env.db.query<{ revoked_at: Date | null; revoke_reason: string | null }>('SELECT revoked_at, revoke_reason FROM sessions WHERE id = $1', [
    sid,
  ]);
  if (n > 1 && (!s.rows[0]?.revoked_at || s.rows[0].revoke_reason !== 'token_reused'))
    problems.push(`session after the reuse: revoked_at ${s.rows[0]?.revoked_at ? 'set' : 'null'}, reason ${s.rows[0]?.revoke_reason} (expected token_reused)`);
  if (win) {
    const after = await call(env, 1, 'POST', '/v1/auth/refresh', { refresh_token: win.body.refresh_token }, dev);
    if (after.status !== 401)
      problems.push(`the winner's successor answered ${after.status} ${after.code ?? ''} after the reuse (expected 401: the session ended)`);
  }
  return { ok: problems.length === 0, problems, answers };
}

/** State of the reset race's user across rounds: its current password. */
export interface ResetUser extends RaceUser {
  round: number;
}

/** One reset token, `n` parallel resets with a different new password each. */
export async function resetRace(env: RaceEnv, u: ResetUser, n: number): Promise<RoundResult> {
  const problems: string[] = [];
  const dev = device();
  const before = [await mustLogin(env, u, dev), await mustLogin(env, u, dev)].map((t) => sidOf(t.access_token!));
  const forgot = await call(env, 0, 'POST', '/v1/auth/password/forgot', { email: u.email });
  if (forgot.status !== 202) throw new Error(`setup: forgot answered ${forgot.status} ${forgot.code ?? ''}`);
  const token = codeFrom(await takeMail(env, u.email, /^Reset your password$/));
  const auditsBefore = await countAudit(env, u.id, 'password.reset');
  u.round++;
  const passwords = Array.from({ length: n }, (_, i) => `${randomBytes(6).toString('base64url')}-orchid-${u.round}-${i}`);
  const answers = await fire(n, (i) => call(env, i, 'POST', '/v1/auth/password/reset', { token, new_password: passwords[i] }));
  const win = checkAnswers(answers, 204, [[400, ['invalid_token']]], problems);
  const old = u.password;
  if (win) u.password = passwords[answers.indexOf(win)];
  const [row] = (await env.db.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = $1', [u.id])).rows;
  if (win) {
    // The stored hash is the winner's password, and none of the others' (checked on the hash, so
    // the losers' passwords cost no failed sign-ins).
    if (!(await verifyPassword(row.password_hash, u.password, env.params))) problems.push("the stored password is not the winner's");
    for (const [i, p] of passwords.entries())
      if (answers[i] !== win && (await verifyPassword(row.password_hash, p, env.params))) problems.push(`the stored password is loser ${i}'s`);
    const ok = await login(env, u, dev);
    if (ok.status !== 200 || !ok.body?.access_token) problems.push(`sign-in with the winner's password answered ${ok.status} ${ok.code ?? ''}`);
  }
  if (await verifyPassword(row.password_hash, old, env.params)) problems.push('the old password still works');
  const tok = await env.db.query<{ used_at: Date | null }>('SELECT used_at FROM one_time_tokens WHERE token_hash = $1', [sha256(token)]);
  if (tok.rows.length !== 1 || !tok.rows[0].used_at)
    problems.push(`the reset token row: ${tok.rows.length} rows, used_at ${tok.rows[0]?.used_at ? 'set' : 'null'}`);
  const sessions = await env.db.query<{ revoke_reason: string | null }>('SELECT revoke_reason FROM sessions WHERE id = ANY($1::uuid[])', [before]);
  const ended = sessions.rows.filter((s) => s.revoke_reason === 'password_reset').length;
  if (ended !== before.length) problems.push(`${ended} of ${before.length} sessions from before the reset ended with password_reset`);
  const audits = (await countAudit(env, u.id, 'password.reset')) - auditsBefore;
  if (audits !== (win ? 1 : 0)) problems.push(`${audits} password.reset audit events for one reset`);
  return { ok: problems.length === 0, problems, answers };
}

async function countAudit(env: RaceEnv, userId: string, type: string): Promise<number> {
  const r = await env.db.query<{ n: string }>('SELECT count(*) AS n FROM audit_events WHERE user_id = $1 AND type = $2', [userId, type]);
  return Number(r.rows[0].n);
}

/** A user with TOTP enrolled and confirmed (through the API), and its authenticator app. */
export interface MfaUser extends RaceUser {
  app: InstanceType<typeof App>;
}

export async function mfaUser(env: RaceEnv): Promise<MfaUser> {
  const u = await seedUser(env, 'mfa');
  const dev = device();
  const t = await mustLogin(env, u, dev);
  const auth = { ...dev, Authorization: `Bearer ${t.access_token}` };
  const enrol = await call(env, 0, 'POST', '/v1/me/mfa/totp', { password: u.password }, auth);
  if (enrol.status !== 200) throw new Error(`setup: TOTP enrolment answered ${enrol.status} ${enrol.code ?? ''}`);
  const app = App.fromUrl(enrol.body.otpauth_url as string);
  const confirm = await call(env, 0, 'POST', '/v1/me/mfa/totp/confirm', { code: await app.fresh() }, auth);
  if (confirm.status !== 200) throw new Error(`setup: TOTP confirmation answered ${confirm.status} ${confirm.code ?? ''}`);
  return { ...u, app };
}

/** One mfa_token, `n` parallel second steps with the same valid code. */
export async function mfaRace(env: RaceEnv, u: MfaUser, n: number): Promise<RoundResult> {
  const problems: string[] = [];
  const dev = device(CHROME);
  const step1 = await mustLogin(env, u, dev);
  if (!step1.mfa_token) throw new Error('setup: the password step gave no mfa_token');
  const stepBefore = (await env.db.query<{ s: string | null }>('SELECT totp_last_step AS s FROM users WHERE id = $1', [u.id])).rows[0].s;
  const code = await u.app.fresh();
  const answers = await fire(n, (i) => call(env, i, 'POST', '/v1/auth/login/mfa', { mfa_token: step1.mfa_token, code }, dev));
  const win = checkAnswers(answers, 200, [[401, ['invalid_mfa_code', 'invalid_grant']]], problems);
  const sessions = await env.db.query<{ id: string }>("SELECT id FROM sessions WHERE user_id = $1 AND amr = ARRAY['pwd','otp']::text[]", [u.id]);
  if (sessions.rows.length !== 1) problems.push(`${sessions.rows.length} sessions with amr pwd+otp (expected exactly one token pair)`);
  const rts = await env.db.query<{ n: string }>('SELECT count(*) AS n FROM refresh_tokens WHERE session_id = ANY($1::uuid[])', [
    sessions.rows.map((s) => s.id),
  ]);
  if (sessions.rows.length === 1 && Number(rts.rows[0].n) !== 1) problems.push(`${rts.rows[0].n} refresh tokens in the MFA session (expected 1)`);
  const ch = await env.db.query<{ used_at: Date | null }>('SELECT used_at FROM mfa_challenges WHERE token_hash = $1', [sha256(step1.mfa_token)]);
  if (ch.rows.length === 1 && !ch.rows[0].used_at) problems.push('the mfa_token is not spent');
  const [after] = (await env.db.query<{ s: string | null; status: string }>('SELECT totp_last_step AS s, status FROM users WHERE id = $1', [u.id])).rows;
  if (after.s === null || (stepBefore !== null && Number(after.s) <= Number(stepBefore))) problems.push('the TOTP step was not recorded');
  if (after.status !== 'active') problems.push(`the account is ${after.status} after the race`);
  if (win) {
    if (sidOf(win.body.access_token as string) !== sessions.rows[0]?.id) problems.push("the winner's access token is not the MFA session's");
    const r = await call(env, 1, 'POST', '/v1/auth/refresh', { refresh_token: win.body.refresh_token }, dev);
    if (r.status !== 200) problems.push(`the winner's refresh token answered ${r.status} ${r.code ?? ''}`);
  }
  // Replay protection outlives the mfa_token: the same code on a new one is refused.
  const again = await mustLogin(env, u, dev);
  const replay = await call(env, 0, 'POST', '/v1/auth/login/mfa', { mfa_token: again.mfa_token, code }, dev);
  if (replay.status !== 401 || replay.code !== 'invalid_mfa_code')
    problems.push(`the spent code on a new mfa_token answered ${replay.status} ${replay.code ?? ''}`);
  return { ok: problems.length === 0, problems, answers };
}

/** A user signed in from device A, whose session is about to refresh from a new device. */
export interface StepUpUser extends RaceUser {
  refreshToken: string;
  sessionId: string;
}

export async function stepUpUser(env: RaceEnv): Promise<StepUpUser> {
  const u = await seedUser(env, 'stepup');
  const t = await mustLogin(env, u, device());
  return { ...u, refreshToken: t.refresh_token!, sessionId: sidOf(t.access_token!) };
}

/** A refresh from a new device, the e-mailed code, then `n` parallel submissions of it. */
export async function stepUpRace(env: RaceEnv, u: StepUpUser, n: number): Promise<RoundResult> {
  const problems: string[] = [];
  const b = device(CHROME);
  const ask = await call(env, 0, 'POST', '/v1/auth/refresh', { refresh_token: u.refreshToken }, b);
  if (ask.status !== 401 || ask.code !== 'step_up_required') throw new Error(`setup: the refresh from a new device answered ${ask.status} ${ask.code ?? ''}`);
  const vid = ask.body.verification_id as string;
  const code = codeFrom(await takeMail(env, u.email, /^Confirm a sign-in from a new device$/));
  const answers = await fire(n, (i) => call(env, i, 'POST', `/v1/auth/step-up/${vid}`, { code }, b));
  const win = checkAnswers(
    answers,
    200,
    [
      [404, []],
      [409, ['conflict']],
    ],
    problems,
  );
  const sessions = await env.db.query<{ id: string; revoked_at: Date | null }>('SELECT id, revoked_at FROM sessions WHERE user_id = $1', [u.id]);
  if (sessions.rows.length !== 1 || sessions.rows[0].revoked_at)
    problems.push(`${sessions.rows.length} sessions, revoked: ${sessions.rows.some((s) => s.revoked_at)} (expected one live session)`);
  const rows = await env.db.query<{ id: string; spent_at: Date | null; replaced_by: string | null }>(
    'SELECT id, spent_at, replaced_by FROM refresh_tokens WHERE session_id = $1',
    [u.sessionId],
  );
  const spent = rows.rows.filter((r) => r.spent_at);
  if (rows.rows.length !== 2 || spent.length !== 1 || !rows.rows.some((r) => r.id === spent[0]?.replaced_by))
    problems.push(`refresh tokens of the session: ${rows.rows.length} rows, ${spent.length} spent (expected the first spent, replaced by one new token)`);
  const ch = await env.db.query<{ status: string }>('SELECT status FROM step_up_challenges WHERE session_id = $1', [u.sessionId]);
  if (ch.rows.length !== 1 || ch.rows[0].status !== 'verified')
    problems.push(`step-up challenges of the session: ${ch.rows.map((c) => c.status).join(', ')} (expected one verified)`);
  if (win) {
    if (sidOf(win.body.access_token as string) !== u.sessionId) problems.push("the winner's access token is not the session's");
    const r = await call(env, 1, 'POST', '/v1/auth/refresh', { refresh_token: win.body.refresh_token }, b);
    if (r.status !== 200) problems.push(`the winner's refresh token from the new device answered ${r.status} ${r.code ?? ''}`);
  }
  const late = await call(env, 0, 'POST', `/v1/auth/step-up/${vid}`, { code }, b);
  if (late.status !== 404) problems.push(`the code submitted again afterwards answered ${late.status} ${late.code ?? ''} (expected 404)`);
  return { ok: problems.length === 0, problems, answers };
}

export interface DeletionUser extends RaceUser {
  accessToken: string;
}

export async function deletionUser(env: RaceEnv): Promise<DeletionUser> {
  const u = await seedUser(env, 'deletion');
  const t = await mustLogin(env, u, device());
  return { ...u, accessToken: t.access_token! };
}

/**
 * Deletion racing reactivation: `DELETE /v1/me`, then `n` parallel reactivations fired at
 * `offsetMs` from the due time (negative: before it), while the workflow's timer fires.
 */
export async function deletionRace(env: RaceEnv, u: DeletionUser, n: number, offsetMs: number): Promise<RoundResult> {
  const problems: string[] = [];
  const dev = device();
  const del = await call(env, 0, 'DELETE', '/v1/me', { password: u.password }, { ...dev, Authorization: `Bearer ${u.accessToken}` });
  if (del.status !== 202) throw new Error(`setup: DELETE /v1/me answered ${del.status} ${del.code ?? ''}`);
  const due = Date.parse(del.body.deletion.due_at as string);
  await sleep(Math.max(0, due + offsetMs - Date.now()));
  const answers = await fire(n, (i) => call(env, i, 'POST', '/v1/me/reactivate', { email: u.email, password: u.password }, dev));
  const won = answers.filter((a) => a.status === 200);
  for (const a of answers) {
    if (a.status === 200 || (a.status === 401 && a.code === 'invalid_credentials') || (a.status === 409 && a.code === 'invalid_transition')) continue;
    problems.push(`unexpected answer ${a.status} ${a.code ?? ''} from instance ${a.api + 1}: ${histogram(answers)}`);
    break;
  }
  if (won.length > 1) problems.push(`${won.length} reactivations answered 200: ${histogram(answers)}`);

  // Wait for the workflow to close: nothing may change the account after that.
  const handle = env.temporal.workflow.getHandle(`account-deletion:${u.id}`);
  const deadline = Date.now() + 30000;
  let wf: string;
  for (;;) {
    wf = (await handle.describe()).status.name;
    if (wf !== 'RUNNING' || Date.now() > deadline) break;
    await sleep(100);
  }
  if (wf !== 'COMPLETED') problems.push(`the deletion workflow is ${wf}`);

  const [row] = (
    await env.db.query<{ status: string; email: string | null; name: string | null; password_hash: string | null; deletion_due_at: Date | null }>(
      'SELECT status, email, name, password_hash, deletion_due_at FROM users WHERE id = $1',
      [u.id],
    )
  ).rows;
  const count = async (table: string) => Number((await env.db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE user_id = $1`, [u.id])).rows[0].n);
  const left = {
    sessions: await count('sessions'),
    device_fingerprints: await count('device_fingerprints'),
    mfa_recovery_codes: await count('mfa_recovery_codes'),
    mfa_challenges: await count('mfa_challenges'),
    one_time_tokens: await count('one_time_tokens'),
  };
  const erased = await countAudit(env, u.id, 'account.erased');
  const cancelled = await countAudit(env, u.id, 'account.deletion_cancelled');
  const signIn = await login(env, u, dev);
  let outcome: string;
  if (row?.status === 'active') {
    outcome = 'active';
    if (won.length !== 1) problems.push(`the account is active but ${won.length} reactivations answered 200: ${histogram(answers)}`);
    if (row.email !== u.email || !row.password_hash || row.deletion_due_at)
      problems.push('the active account lost its e-mail or password hash, or is still scheduled');
    if (erased !== 0 || cancelled !== 1) problems.push(`active account audited ${erased} × account.erased, ${cancelled} × account.deletion_cancelled`);
    if (signIn.status !== 200) problems.push(`the reactivated account cannot sign in: ${signIn.status} ${signIn.code ?? ''}`);
  } else if (row?.status === 'deleted') {
    outcome = 'deleted';
    if (won.length !== 0) problems.push(`the account was erased after ${won.length} reactivation answered 200: ${histogram(answers)}`);
    if (row.email !== null || row.name !== null || row.password_hash !== null || row.deletion_due_at) problems.push('the tombstone still holds personal data');
    const kept = Object.entries(left).filter(([, v]) => v > 0);
    if (kept.length) problems.push(`rows left after erasure: ${kept.map(([k, v]) => `${v} ${k}`).join(', ')}`);
    if (erased !== 1 || cancelled !== 0) problems.push(`erased account audited ${erased} × account.erased, ${cancelled} × account.deletion_cancelled`);
    if (signIn.status !== 401) problems.push(`the erased account's sign-in answered ${signIn.status} ${signIn.code ?? ''}`);
    const re = await call(env, 1, 'POST', '/v1/me/reactivate', { email: u.email, password: u.password }, dev);
    if (re.status !== 401) problems.push(`a reactivation of the erased account answered ${re.status} ${re.code ?? ''}`);
  } else {
    outcome = row?.status ?? 'missing';
    problems.push(`the account is ${outcome} after the workflow closed`);
  }
  return { ok: problems.length === 0, problems, outcome, answers };
}

// ---- the part -----------------------------------------------------------------------------------

export const parallelOf = (round: number) => 8 + (round % 9); // 8..16

interface Tally {
  name: string;
  held: number;
  rounds: number;
  parallel: number[];
  failures: string[];
  outcomes: Map<string, number>;
  /** every raced answer over all rounds, as "status code" → count */
  answers: Map<string, number>;
  ms: number;
}

function tallyRound(t: Tally, res: RoundResult) {
  if (res.outcome) t.outcomes.set(res.outcome, (t.outcomes.get(res.outcome) ?? 0) + 1);
  for (const a of res.answers ?? []) {
    const k = `${a.status}${a.code && a.status >= 300 ? ` ${a.code}` : ''}`;
    t.answers.set(k, (t.answers.get(k) ?? 0) + 1);
  }
}

async function rounds(name: string, count: number, log: (m: string) => void, one: (round: number, n: number) => Promise<RoundResult>): Promise<Tally> {
  const t: Tally = { name, held: 0, rounds: count, parallel: [], failures: [], outcomes: new Map(), answers: new Map(), ms: 0 };
  const t0 = Date.now();
  for (let r = 0; r < count; r++) {
    const n = parallelOf(r);
    t.parallel.push(n);
    let res: RoundResult;
    try {
      res = await one(r, n);
    } catch (err) {
      res = { ok: false, problems: [`round could not run: ${(err as Error).message}`] };
    }
    if (res.ok) t.held++;
    else t.failures.push(`round ${r + 1} (${n} parallel): ${res.problems.join('; ')}`);
    tallyRound(t, res);
  }
  t.ms = Date.now() - t0;
  log(`races: ${name}: ${t.held}/${count} rounds held (${(t.ms / 1000).toFixed(1)} s)${t.failures.length ? `; first failure: ${t.failures[0]}` : ''}`);
  return t;
}

/** Prepares `count` users with at most `concurrency` at once. */
async function prepare<T>(count: number, concurrency: number, make: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < count; i += concurrency) out.push(...(await Promise.all(Array.from({ length: Math.min(concurrency, count - i) }, make))));
  return out;
}

export const INVARIANTS: Record<string, string> = {
  'one refresh token':
    'exactly one 200, every other answer 401 token_reused (or invalid_grant); one successor row, the spent token replaced by it; the reuse ended the session (revoke_reason token_reused), so the successor is refused afterwards',
  'one password reset token':
    "exactly one 204, every other answer 400 invalid_token; the stored hash verifies the winner's password and no loser's nor the old one; the winner signs in; the token row used; both sessions from before ended (password_reset); one password.reset audit event",
  'one mfa_token':
    'exactly one 200, every other answer 401 invalid_mfa_code (replayed code) or invalid_grant (spent token); one session with amr pwd+otp holding one refresh token, which refreshes; the mfa_token spent; the TOTP step recorded; the account still active; the same code refused on a new mfa_token',
  'one step-up verification':
    'exactly one 200, every other answer 404 (finished) or 409 conflict (a code being checked); one live session whose first refresh token is spent and replaced by one new token, which refreshes from the new device; the challenge verified; the code answered 404 afterwards',
  'deletion racing reactivation':
    'answers only 200, 401 invalid_credentials or 409 invalid_transition; after the workflow completed the account is either active (exactly one 200, e-mail and password kept, not scheduled, signs in, deletion_cancelled audited once, no erasure) or erased (no 200, tombstone without e-mail, name or password hash, no sessions, devices, recovery codes, mfa challenges or one-time tokens, no sign-in or reactivation, erased audited once)',
};

export async function racesPart(ctx: ReliabilityContext, opts: { rounds: number }): Promise<PartResult> {
  const t0 = Date.now();
  const env = await raceEnv(ctx.info, ctx.apis, ctx.db);
  const tallies: Tally[] = [];
  try {
    const n = opts.rounds;
    const refreshUser = await seedUser(env, 'refresh');
    tallies.push(await rounds('one refresh token', n, ctx.log, (_r, p) => refreshRace(env, refreshUser, p)));

    const resetUser: ResetUser = { ...(await seedUser(env, 'reset')), round: 0 };
    tallies.push(await rounds('one password reset token', n, ctx.log, (_r, p) => resetRace(env, resetUser, p)));

    ctx.log(`races: preparing ${n} TOTP users`);
    const mfaUsers = await prepare(n, 4, () => mfaUser(env));
    tallies.push(await rounds('one mfa_token', n, ctx.log, (r, p) => mfaRace(env, mfaUsers[r], p)));

    const stepUpUsers = await prepare(n, 4, () => stepUpUser(env));
    tallies.push(await rounds('one step-up verification', n, ctx.log, (r, p) => stepUpRace(env, stepUpUsers[r], p)));

    // Deletion rounds overlap (each waits out the grace period), started 2 s apart so their
    // firing moments do not meet; the firing moment sweeps from 1.5 s before the due time to
    // 0.5 s after it.
    const delUsers = await prepare(n, 4, () => deletionUser(env));
    const offset = (r: number) => (n === 1 ? 0 : Math.round(-1500 + (2000 * r) / (n - 1)));
    const results: RoundResult[] = new Array(n);
    const d0 = Date.now();
    await Promise.all(
      delUsers.map(async (u, r) => {
        await sleep(r * 2000);
        try {
          results[r] = await deletionRace(env, u, parallelOf(r), offset(r));
        } catch (err) {
          results[r] = { ok: false, problems: [`round could not run: ${(err as Error).message}`] };
        }
      }),
    );
    const del: Tally = {
      name: 'deletion racing reactivation',
      held: 0,
      rounds: n,
      parallel: [],
      failures: [],
      outcomes: new Map(),
      answers: new Map(),
      ms: Date.now() - d0,
    };
    results.forEach((res, r) => {
      del.parallel.push(parallelOf(r));
      if (res.ok) del.held++;
      else del.failures.push(`round ${r + 1} (${parallelOf(r)} parallel, fired ${offset(r)} ms from the due time): ${res.problems.join('; ')}`);
      tallyRound(del, res);
    });
    ctx.log(
      `races: ${del.name}: ${del.held}/${n} rounds held (${(del.ms / 1000).toFixed(1)} s)${del.failures.length ? `; first failure: ${del.failures[0]}` : ''}`,
    );
    tallies.push(del);
  } finally {
    await env.close().catch(() => undefined);
  }

  const rows: Row[] = tallies.map((t) => {
    const lo = Math.min(...t.parallel);
    const hi = Math.max(...t.parallel);
    const outcomes = t.outcomes.size ? `; ended ${[...t.outcomes].map(([k, v]) => `${k} ${v}`).join(', ')}` : '';
    return {
      part: `races: ${t.name}`,
      measure: 'rounds where the invariant held',
      figure: `${t.held}/${t.rounds} (${lo === hi ? lo : `${lo}–${hi}`} parallel each, over ${ctx.apis.length} API instances)${outcomes}`,
      target: 'every round',
      verdict: t.held === t.rounds ? 'PASS' : 'FAIL',
    };
  });
  const details = [
    ...tallies.map(
      (t) =>
        `races: ${t.name}: ${INVARIANTS[t.name]}; answers over all rounds: ${[...t.answers]
          .sort()
          .map(([k, v]) => `${v}×${k}`)
          .join(', ')}; ${(t.ms / 1000).toFixed(0)} s`,
    ),
    'races: every round sends its N requests at once (request i to instance i mod 2); any 5xx or missing answer fails the round; users are written into the database (active, verified)',
    `races: deletion rounds fire 1.5 s before to 0.5 s after the due time (ACCOUNT_DELETION_GRACE ${env.graceMs / 1000} s); both outcomes are allowed, a mix of them is not`,
    `races: the whole part took ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    ...tallies.flatMap((t) => t.failures.slice(0, 5).map((f) => `races: ${t.name}: ${f}`)),
  ];
  return { rows, details };
}

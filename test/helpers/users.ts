/** Account helpers for integration tests: register, read the e-mailed token, verify, log in. */
import { authenticatorApp } from './totp-app';
import { api, query, uniqueEmail, waitForMail } from './stack';

export const GOOD_PASSWORD = 'violet-tangerine-lighthouse-42';

export function codeFrom(text: string): string {
  const m = /code(?: is)?: (\S+)/i.exec(text) ?? /Use this code to reset your password: (\S+)/.exec(text);
  if (!m) throw new Error(`no code in e-mail: ${text.slice(0, 200)}`);
  return m[1];
}

export async function registerAndVerify(opts: { email?: string; password?: string; name?: string } = {}) {
  const email = opts.email ?? uniqueEmail();
  const password = opts.password ?? GOOD_PASSWORD;
  const reg = await api('POST', '/v1/auth/register', { body: { email, password, name: opts.name ?? 'Test User' } });
  if (reg.status !== 201) throw new Error(`register failed: ${reg.status} ${JSON.stringify(reg.body)}`);
  const mail = await waitForMail(email, /Verify/);
  const ver = await api('POST', '/v1/auth/verify-email', { body: { token: codeFrom(mail.text) } });
  if (ver.status !== 200) throw new Error(`verify failed: ${ver.status} ${JSON.stringify(ver.body)}`);
  return { email, password, user: ver.body.user as { id: string; email: string } };
}

export async function login(email: string, password: string, headers: Record<string, string> = {}) {
  const r = await api('POST', '/v1/auth/login', { body: { email, password }, headers });
  if (r.status !== 200 || !r.body.access_token) throw new Error(`login failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as { access_token: string; refresh_token: string; expires_in: number; refresh_expires_in: number; token_type: string };
}

type Tokens = Awaited<ReturnType<typeof login>>;
type Authenticator = { fresh(): Promise<string> };

/** Signs in with the password and then a code of the account's authenticator app (a session with amr pwd+otp). */
export async function loginWithTotp(email: string, password: string, app: Authenticator, headers: Record<string, string> = {}): Promise<Tokens> {
  const first = await api('POST', '/v1/auth/login', { body: { email, password }, headers });
  if (first.status !== 200 || !first.body.mfa_required) throw new Error(`password step failed: ${first.status} ${JSON.stringify(first.body)}`);
  const r = await api('POST', '/v1/auth/login/mfa', { body: { mfa_token: first.body.mfa_token, code: await app.fresh() }, headers });
  if (r.status !== 200 || !r.body.access_token) throw new Error(`MFA step failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as Tokens;
}

/**
 * Enrols and confirms TOTP for a signed-in account, with the app made by `App` (test/helpers/totp-app.ts);
 * returns the app and the recovery codes. The session that enrolled keeps its amr: a second factor
 * counts from the next sign-in with it.
 */
export async function enrolTotp<A extends Authenticator>(
  accessToken: string,
  password: string,
  App: { fromUrl(url: string): A },
): Promise<{ app: A; recoveryCodes: string[] }> {
  const enrol = await api('POST', '/v1/me/mfa/totp', { token: accessToken, body: { password } });
  if (enrol.status !== 200) throw new Error(`TOTP enrolment failed: ${enrol.status} ${JSON.stringify(enrol.body)}`);
  const app = App.fromUrl(enrol.body.otpauth_url);
  const confirm = await api('POST', '/v1/me/mfa/totp/confirm', { token: accessToken, body: { code: await app.fresh() } });
  if (confirm.status !== 200) throw new Error(`TOTP confirmation failed: ${confirm.status} ${JSON.stringify(confirm.body)}`);
  return { app, recoveryCodes: confirm.body.recovery_codes as string[] };
}

/**
 * An administrator as the admin API expects one: a verified account promoted in Postgres with TOTP
 * enrolled (admin endpoints need a session signed in with a second factor). Sign it in with
 * `loginWithTotp(a.email, a.password, a.app)`.
 */
export async function adminAccount(opts: { name?: string; seen?: string[] } = {}) {
  const u = await registerAndVerify({ name: opts.name ?? 'Test Admin' });
  await query("UPDATE users SET roles = ARRAY['user','admin'] WHERE id = $1", [u.user.id]);
  const { app, recoveryCodes } = await enrolTotp((await login(u.email, u.password)).access_token, u.password, authenticatorApp(opts.seen));
  return { ...u, app, recoveryCodes };
}

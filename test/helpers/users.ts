/** Account helpers for integration tests: register, read the e-mailed token, verify, log in. */
import { api, uniqueEmail, waitForMail } from './stack';

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

/**
 * Every link in every e-mail leads somewhere that works (issue 19 item 2). By default the links
 * lead to the hosted pages: a GET (a person, a mail scanner, a link preview) only shows a form
 * and spends nothing; the form's POST spends the token. Configured link templates (an app's own
 * URLs) put the token where the app asked, and the app finishes with the JSON API. Attacker
 * inputs get 4xx pages, values are escaped, and the pages carry the strict headers.
 */
import { parseConfig } from '../../platform/config';
import { createSequelize, readDbCredentials } from '../../platform/db';
import { createLogger } from '../../platform/logger';
import { Mailer } from '../../platform/mailer';
import { vaultFromConfig } from '../../platform/vault';
import { Outbox } from '../../domain/outbox';
import { OneTimeCodes } from '../../domain/one-time-tokens';
import { ResetTokenMailer } from '../../domain/accounts/password-reset';
import { api, apiUrl, query, stackInfo, uniqueEmail, vaultRoot, waitForMail, type Mail } from '../helpers/stack';
import { GOOD_PASSWORD, login, registerAndVerify } from '../helpers/users';

jest.setTimeout(120_000);

const NEW_PASSWORD = 'harbour-thistle-comet-481';
const linkIn = (m: Mail) => /Or open: (\S+)/.exec(m.text)![1];
const page = (url: string, init: RequestInit = {}) => fetch(url, { redirect: 'manual', ...init });
const postForm = (url: string, fields: Record<string, string>) =>
  page(url, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
const userStatus = async (email: string) => (await query('SELECT status FROM users WHERE email = $1', [email]))[0]?.status;
const register = (email: string, password = GOOD_PASSWORD) => api('POST', '/v1/auth/register', { body: { email, password, name: 'Link Follower' } });

/** The form's action resolved against the page, and its hidden token. */
function formOf(html: string, pageUrl: string): { action: string; token: string; fields: string[] } {
  const action = /<form method="post" action="([^"]+)">/.exec(html)![1];
  const token = /<input type="hidden" name="token" value="([^"]*)">/.exec(html)![1];
  const fields = [...html.matchAll(/<input [^>]*name="([^"]+)"/g)].map((m) => m[1]);
  return { action: new URL(action, pageUrl).toString(), token, fields };
}

async function expectPage(r: Response, status: number): Promise<string> {
  const html = await r.text();
  expect([r.status, r.headers.get('content-type')]).toEqual([status, 'text/html; charset=utf-8']);
  expect(r.headers.get('content-security-policy')).toBe(
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  );
  expect(r.headers.get('referrer-policy')).toBe('no-referrer');
  expect(r.headers.get('cache-control')).toBe('no-store');
  expect(html).not.toMatch(/<script/i);
  return html;
}

describe('the hosted pages (the default links)', () => {
  test('the verification link: opening it (twice, as a mail scanner would) spends nothing; the form confirms the address once', async () => {
    const email = uniqueEmail('link');
    expect((await register(email)).status).toBe(201);
    const link = linkIn(await waitForMail(email, /Verify/));
    expect(link.startsWith(`${apiUrl()}/verify-email?token=`)).toBe(true);
    for (let i = 0; i < 2; i++) await expectPage(await page(link), 200);
    expect((await page(link, { method: 'HEAD' })).status).toBe(200);
    expect(await userStatus(email)).toBe('pending_verification');
    const html = await expectPage(await page(link), 200);
    const f = formOf(html, link);
    expect(f.action).toBe(`${apiUrl()}/verify-email`);
    expect(f.token).toBe(new URL(link).searchParams.get('token'));
    const done = await expectPage(await postForm(f.action, { token: f.token }), 200);
    expect(done).toContain(`${email} is confirmed. You can now sign in.`);
    expect(await userStatus(email)).toBe('active');
    await login(email, GOOD_PASSWORD);
    // The same form again: the token is spent.
    expect(await expectPage(await postForm(f.action, { token: f.token }), 400)).toContain('was already used');
    // The stylesheet the page links is served, from our origin.
    const css = await page(new URL('assets/pages.css', link).toString());
    expect([css.status, css.headers.get('content-type')]).toEqual([200, 'text/css; charset=utf-8']);
  });

  test('a contested registration: the form asks for the password, then confirms with it', async () => {
    const email = uniqueEmail('contested-link');
    await register(email, 'squatter-chosen-passphrase-31');
    await waitForMail(email, /Verify/);
    await register(email, 'owner-chosen-passphrase-58');
    const link = linkIn(await waitForMail(email, /Verify/, 20000, 1));
    const first = formOf(await expectPage(await page(link), 200), link);
    expect(first.fields).toEqual(['token']);
    const ask = await expectPage(await postForm(first.action, { token: first.token }), 409);
    const withPassword = formOf(ask, first.action);
    expect(withPassword.fields).toEqual(['token', 'password']);
    expect(ask).toMatch(/<label for="password">Password<\/label>/);
    const done = await expectPage(await postForm(withPassword.action, { token: withPassword.token, password: NEW_PASSWORD }), 200);
    expect(done).toContain('with the password you chose');
    await login(email, NEW_PASSWORD);
  });

  test('the reset link: the form refuses a weak password without spending the token, then sets the new one', async () => {
    const u = await registerAndVerify();
    expect((await api('POST', '/v1/auth/password/forgot', { body: { email: u.email } })).status).toBe(202);
    const link = linkIn(await waitForMail(u.email, /Reset your password/));
    expect(link.startsWith(`${apiUrl()}/reset-password?token=`)).toBe(true);
    const html = await expectPage(await page(link), 200);
    const f = formOf(html, link);
    expect(f.fields).toEqual(['token', 'password']);
    expect(html).toMatch(/<input id="password" name="password" type="password" autocomplete="new-password"/);
    expect(html.match(/<button/g)).toHaveLength(1);
    // Opening the link changed nothing: the old password still works.
    await login(u.email, u.password);
    const weak = await expectPage(await postForm(f.action, { token: f.token, password: 'password' }), 400);
    expect(weak).toMatch(/That password cannot be used/);
    expect(weak).not.toContain('value="password"');
    expect(await expectPage(await postForm(f.action, { token: f.token }), 400)).toContain('Enter the new password.');
    const done = await expectPage(await postForm(f.action, { token: f.token, password: NEW_PASSWORD }), 200);
    expect(done).toContain('Your password was changed and every session was signed out.');
    await login(u.email, NEW_PASSWORD);
    expect(await expectPage(await postForm(f.action, { token: f.token, password: 'another-fine-passphrase-93' }), 400)).toContain('was already used');
  });

  test('what an attacker can send gets a 4xx page or problem, never a 500, and nothing is reflected unescaped', async () => {
    const base = apiUrl();
    const xss = '"><img src=x onerror=alert(1)><script>alert(2)</script>';
    const reflected = await expectPage(await page(`${base}/reset-password?token=${encodeURIComponent(xss)}`), 200);
    expect(reflected).toContain('value="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;"');
    expect(reflected).not.toContain('<img');
    await expectPage(await page(`${base}/verify-email`), 400);
    await expectPage(await page(`${base}/verify-email?token=short`), 400);
    await expectPage(await page(`${base}/verify-email?token=aaaaaaaaaaaa&token=bbbbbbbbbbbb`), 400);
    for (const path of ['/verify-email', '/reset-password']) {
      const json = await page(`${base}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"token":"x"}' });
      await expectPage(json, 415);
      await expectPage(await postForm(`${base}${path}`, { token: 'a'.repeat(20_000) }), 413);
      await expectPage(
        await page(`${base}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'token=a&token=b' }),
        400,
      );
      await expectPage(await postForm(`${base}${path}`, { token: 'aaaaaaaaaaaaaaaaaaaa', role: 'admin' }), 400);
      await expectPage(await postForm(`${base}${path}`, { token: 'not-a-real-token-at-all-0123456789', password: NEW_PASSWORD }), 400);
      await expectPage(await page(`${base}${path}`, { method: 'POST' }), 415);
      const put = await page(`${base}${path}`, { method: 'PUT' });
      expect([put.status, put.headers.get('allow')]).toEqual([405, 'HEAD, GET, POST']);
    }
  });
});

describe("configured link templates (an app's own pages)", () => {
  let close: () => Promise<void>;
  let codes: OneTimeCodes;
  let resets: ResetTokenMailer;
  const VERIFY = 'https://app.example.test/welcome/verify#token={token}';
  const RESET = 'https://app.example.test/account/reset?t={token}&from=mail';

  beforeAll(async () => {
    const info = stackInfo();
    // The worker's configuration with the app's templates: the same classes the worker's activities use.
    const config = parseConfig({
      ...info.serviceEnv,
      VAULT_ROLE_ID: info.roleIds.worker,
      VAULT_SECRET_ID: await vaultRoot().secretId('authflow-worker'),
      LOG_LEVEL: 'silent',
      EMAIL_VERIFY_LINK: VERIFY,
      PASSWORD_RESET_LINK: RESET,
    });
    const logger = createLogger('silent', 'email-links-test');
    const vault = vaultFromConfig(config, logger);
    await vault.start();
    const sequelize = createSequelize(config, await readDbCredentials(vault));
    const mailer = new Mailer(config, vault);
    const outbox = new Outbox(mailer, logger);
    codes = new OneTimeCodes(sequelize, outbox, { verifyLink: config.EMAIL_VERIFY_LINK });
    resets = new ResetTokenMailer(sequelize, outbox, { ttl: 600, interval: 0, perDay: 100, resetLink: config.PASSWORD_RESET_LINK }, logger);
    close = async () => {
      mailer.close();
      await sequelize.close();
      vault.stop();
    };
  });
  afterAll(async () => {
    await close?.();
  });

  test('the verification mail links to the app with the token in the fragment; the app confirms through the API', async () => {
    const email = uniqueEmail('app-link');
    const reg = await register(email);
    await waitForMail(email, /Verify/);
    await codes.issue(`test-verify:${email}`, {
      userId: reg.body.user.id,
      purpose: 'email_verification',
      flowId: `email-verification:${reg.body.user.id}`,
      ttlSeconds: 600,
      template: 'email_verification',
    });
    const link = new URL(linkIn(await waitForMail(email, /Verify/, 20000, 1)));
    expect(`${link.origin}${link.pathname}`).toBe('https://app.example.test/welcome/verify');
    expect(link.search).toBe('');
    const token = new URLSearchParams(link.hash.slice(1)).get('token')!;
    const r = await api('POST', '/v1/auth/verify-email', { body: { token } });
    expect([r.status, r.body.user?.status]).toEqual([200, 'active']);
  });

  test("the reset mail links to the app with the token in the app's query parameter; the app resets through the API", async () => {
    const u = await registerAndVerify();
    await resets.issue(`test-reset:${u.email}`, { userId: u.user.id, flowId: `password-reset:${u.user.id}`, force: true });
    const link = new URL(linkIn(await waitForMail(u.email, /Reset your password/)));
    expect(`${link.origin}${link.pathname}`).toBe('https://app.example.test/account/reset');
    expect(link.searchParams.get('from')).toBe('mail');
    const r = await api('POST', '/v1/auth/password/reset', { body: { token: link.searchParams.get('t'), new_password: NEW_PASSWORD } });
    expect(r.status).toBe(204);
    await login(u.email, NEW_PASSWORD);
  });
});

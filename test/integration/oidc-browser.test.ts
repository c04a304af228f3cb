/**
 * The hosted sign-in in a real browser (Debian's Chromium through playwright-core): a relying
 * party (openid-client) starts an authorization; the person types the e-mail and password, then
 * the TOTP code, into the pages exactly as they are (labelled inputs, one submit button per step,
 * the page's strict CSP in force); the browser lands on the client's redirect URI with a code
 * the relying party exchanges. Screenshots of each step go to .data/screenshots/.
 */
import type { Browser } from 'playwright-core';
import { launchChromium, screenshotPath } from '../helpers/browser';
import { RelyingParty } from '../helpers/oidc';
import { api, apiUrl } from '../helpers/stack';
import { authenticatorApp } from '../helpers/totp-app';
import { makeAdmin } from '../helpers/ops';
import { enrolTotp, login, registerAndVerify } from '../helpers/users';

jest.setTimeout(120_000);

const CALLBACK = 'http://127.0.0.1:9/callback';
let browser: Browser;
let rp: RelyingParty;

beforeAll(async () => {
  browser = await launchChromium();
  rp = new RelyingParty();
});
afterAll(async () => {
  rp?.close();
  await browser?.close();
});

test('a person signs in with password and TOTP in Chromium; the relying party gets verified tokens', async () => {
  const admin = await makeAdmin();
  const reg = await api('POST', '/v1/admin/clients', {
    token: await admin.token(),
    body: {
      client_name: 'Browser Test App',
      redirect_uris: [CALLBACK],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'none',
      first_party: true,
    },
  });
  expect(reg.status).toBe(201);
  const u = await registerAndVerify({ name: 'Grace Hopper' });
  const { app } = await enrolTotp((await login(u.email, u.password)).access_token, u.password, authenticatorApp());

  const { id: config } = await rp.call('discover', { issuer: apiUrl(), clientId: reg.body.client_id, authMethod: 'none' });
  const p = await rp.call('pkce');
  const url = await rp.call('authorizationUrl', {
    config,
    params: { redirect_uri: CALLBACK, scope: 'openid email', code_challenge: p.challenge, code_challenge_method: 'S256', state: p.state, nonce: p.nonce },
  });

  const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
  const page = await context.newPage();
  const violations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  let callback: string | undefined;
  await page.route(`${CALLBACK}**`, async (route) => {
    callback = route.request().url();
    await route.fulfill({ status: 200, contentType: 'text/plain', body: 'back at the app' });
  });

  await page.goto(url);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.screenshot({ path: screenshotPath('oidc-sign-in-password'), fullPage: true });
  await page.getByLabel('E-mail address').fill(u.email);
  await page.getByLabel('Password').fill(u.password);
  await page.getByRole('button', { name: 'Sign in' }).click();

  await page.getByRole('heading', { name: 'Enter your code' }).waitFor();
  await page.screenshot({ path: screenshotPath('oidc-sign-in-code'), fullPage: true });
  await page.getByLabel('Code').fill(await app.fresh());
  await page.getByRole('button', { name: 'Continue' }).click();

  await page.waitForURL(`${CALLBACK}**`);
  expect(callback).toBeDefined();
  expect(violations).toEqual([]);
  const tokens = await rp.call('codeGrant', {
    config,
    callbackUrl: callback,
    checks: { pkceCodeVerifier: p.verifier, expectedState: p.state, expectedNonce: p.nonce },
  });
  expect(tokens.claims).toMatchObject({ sub: u.user.id, amr: ['pwd', 'otp'], acr: 'urn:authflow:acr:mfa' });
  expect(await rp.call('userinfo', { config, accessToken: tokens.access_token, sub: u.user.id })).toMatchObject({ email: u.email, email_verified: true });
  await context.close();
});

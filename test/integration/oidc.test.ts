/**
 * The OpenID provider against a real relying party (openid-client) over the real stack: discovery,
 * authorization code with PKCE through the hosted sign-in (password, then TOTP), refresh rotation
 * and reuse, replayed and raced codes, DPoP-bound tokens, client credentials, revocation,
 * introspection, RP-initiated logout; id tokens and JWT access tokens verified with jose against
 * the JWKS; and what an attacker tries: a foreign redirect URI, a wrong or missing PKCE verifier,
 * a wrong client secret, forms without the CSRF token, a suspended account, a logout-all.
 */
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { makeAdmin } from '../helpers/ops';
import { alert, FormBrowser, heading, RelyingParty, type Page } from '../helpers/oidc';
import { api, apiUrl, query, until } from '../helpers/stack';
import { adminAccount, enrolTotp, GOOD_PASSWORD, login, registerAndVerify } from '../helpers/users';
import { authenticatorApp } from '../helpers/totp-app';

jest.setTimeout(120_000);

const CALLBACK = 'http://127.0.0.1:9/callback';
const LOGGED_OUT = 'http://127.0.0.1:9/logged-out';

let rp: RelyingParty;
let admin: Awaited<ReturnType<typeof makeAdmin>>;
const issuer = () => apiUrl();

interface Registered {
  client_id: string;
  client_secret?: string;
}

async function registerClient(body: Record<string, unknown>): Promise<Registered> {
  const r = await api('POST', '/v1/admin/clients', { token: await admin.token(), body });
  if (r.status !== 201) throw new Error(`client registration failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

const webClient = (extra: Record<string, unknown> = {}) =>
  registerClient({
    client_name: 'Test Web App',
    redirect_uris: [CALLBACK],
    post_logout_redirect_uris: [LOGGED_OUT],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_basic',
    first_party: true,
    ...extra,
  });

async function discover(c: Registered, authMethod = c.client_secret ? 'client_secret_basic' : 'none') {
  const d = await rp.call('discover', { issuer: issuer(), clientId: c.client_id, clientSecret: c.client_secret, authMethod });
  return d.id as string;
}

interface Started {
  url: string;
  verifier: string;
  state: string;
  nonce: string;
}

async function authorizationUrl(config: string, params: Record<string, string> = {}): Promise<Started> {
  const p = await rp.call('pkce');
  const all: Record<string, string> = {
    redirect_uri: CALLBACK,
    scope: 'openid email profile offline_access',
    code_challenge: p.challenge,
    code_challenge_method: 'S256',
    state: p.state,
    nonce: p.nonce,
    // offline_access needs consent (OpenID Connect Core 11); a first-party client's is given at sign-in.
    prompt: 'consent',
    ...params,
  };
  for (const k of Object.keys(all)) if (all[k] === '') delete all[k];
  const url = await rp.call('authorizationUrl', { config, params: all });
  return { url, verifier: p.verifier, state: p.state, nonce: p.nonce };
}

/** Walks the hosted sign-in; returns the callback URL the browser was sent to. */
async function signIn(browser: FormBrowser, start: Started, creds: { email: string; password: string; code?: () => Promise<string> }): Promise<string> {
  let page = await browser.go(start.url, {}, CALLBACK);
  expect(heading(page.html)).toBe('Sign in');
  page = await browser.submit(page, '/login', { email: creds.email, password: creds.password }, CALLBACK);
  if (creds.code) {
    expect(heading(page.html)).toBe('Enter your code');
    page = await browser.submit(page, '/code', { code: await creds.code() }, CALLBACK);
  }
  if (page.status !== 0 && heading(page.html) === 'Allow access?') page = await browser.submit(page, '/consent', {}, CALLBACK);
  if (page.status !== 0) throw new Error(`sign-in did not return to the client: ${page.status} ${heading(page.html)} ${alert(page.html)}`);
  return page.url;
}

async function codeFlow(config: string, user: { email: string; password: string; code?: () => Promise<string> }, extra: Record<string, unknown> = {}) {
  const start = await authorizationUrl(config);
  const callbackUrl = await signIn(new FormBrowser(), start, user);
  const tokens = await rp.call('codeGrant', {
    config,
    callbackUrl,
    checks: { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce },
    ...extra,
  });
  return { start, callbackUrl, tokens };
}

beforeAll(async () => {
  rp = new RelyingParty();
  admin = await makeAdmin();
});
afterAll(() => rp?.close());

describe('discovery and keys', () => {
  test('the discovery document names our endpoints, S256 only, asymmetric algorithms, our acr values', async () => {
    const r = await fetch(`${issuer()}/.well-known/openid-configuration`);
    expect(r.status).toBe(200);
    const d: any = await r.json();
    expect(d.issuer).toBe(issuer());
    expect(d.authorization_endpoint).toBe(`${issuer()}/oidc/auth`);
    expect(d.token_endpoint).toBe(`${issuer()}/oidc/token`);
    expect(d.jwks_uri).toBe(`${issuer()}/.well-known/jwks.json`);
    expect(d.code_challenge_methods_supported).toEqual(['S256']);
    expect(d.id_token_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256', 'RS256']));
    expect(d.id_token_signing_alg_values_supported.some((a: string) => a.startsWith('HS'))).toBe(false);
    expect(d.token_endpoint_auth_methods_supported).not.toContain('client_secret_jwt');
    expect(d.acr_values_supported).toEqual(['urn:authflow:acr:1fa', 'urn:authflow:acr:mfa', 'urn:authflow:acr:phr']);
    expect(d.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token', 'client_credentials']));
    expect(d.introspection_endpoint).toBeDefined();
    expect(d.revocation_endpoint).toBeDefined();
    expect(d.end_session_endpoint).toBe(`${issuer()}/oidc/session/end`);
    expect(d.dpop_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256']));
  });

  test('the JWKS publishes ES256 and RS256 keys beside EdDSA, public halves only', async () => {
    const jwks: any = await (await fetch(`${issuer()}/.well-known/jwks.json`)).json();
    const algs = new Set(jwks.keys.map((k: { alg: string }) => k.alg));
    expect([...algs]).toEqual(expect.arrayContaining(['EdDSA', 'ES256', 'RS256']));
    for (const k of jwks.keys) {
      expect(k.d).toBeUndefined();
      expect(k.p).toBeUndefined();
    }
  });
});

describe('authorization code with PKCE through the hosted sign-in', () => {
  test('a password user signs in; openid-client verifies the id token; jose verifies it against the JWKS', async () => {
    const u = await registerAndVerify({ name: 'Ada Lovelace' });
    const client = await webClient();
    const config = await discover(client);
    const { tokens } = await codeFlow(config, u);
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.refresh_token).toBeDefined();
    expect(tokens.claims).toMatchObject({ sub: u.user.id, iss: issuer(), aud: client.client_id, amr: ['pwd'], acr: 'urn:authflow:acr:1fa' });
    const { payload, protectedHeader } = await jwtVerify(tokens.id_token, createRemoteJWKSet(new URL(`${issuer()}/.well-known/jwks.json`)), {
      issuer: issuer(),
      audience: client.client_id,
      algorithms: ['ES256', 'RS256'],
    });
    expect(['ES256', 'RS256']).toContain(protectedHeader.alg);
    expect(payload.sub).toBe(u.user.id);
    const info = await rp.call('userinfo', { config, accessToken: tokens.access_token, sub: u.user.id });
    expect(info).toMatchObject({ sub: u.user.id, email: u.email, email_verified: true, name: 'Ada Lovelace' });
    const audit = await query("SELECT data FROM audit_events WHERE user_id = $1 AND type = 'login.succeeded' ORDER BY id DESC LIMIT 1", [u.user.id]);
    expect(audit[0].data).toMatchObject({ via: 'oidc', client_id: client.client_id, amr: ['pwd'] });
    const granted = await until(
      'the grant to be audited',
      async () => (await query("SELECT data FROM audit_events WHERE user_id = $1 AND type = 'oidc.grant_issued'", [u.user.id]))[0],
    );
    expect(granted.data).toMatchObject({ client_id: client.client_id });
  });

  test('an account with TOTP is asked for its code; the id token says pwd+otp and multi-factor', async () => {
    const u = await registerAndVerify();
    const { app } = await enrolTotp((await login(u.email, u.password)).access_token, u.password, authenticatorApp());
    const config = await discover(await webClient());
    const { tokens } = await codeFlow(config, { ...u, code: () => app.fresh() });
    expect(tokens.claims).toMatchObject({ sub: u.user.id, amr: ['pwd', 'otp'], acr: 'urn:authflow:acr:mfa' });
  });

  test('a wrong password and an unknown address get the same page; the sign-in stays on the password step', async () => {
    const u = await registerAndVerify();
    const config = await discover(await webClient());
    const pages: Page[] = [];
    for (const creds of [
      { email: u.email, password: 'wrong-password-entirely-9' },
      { email: `nobody-${Date.now()}@example.com`, password: GOOD_PASSWORD },
    ]) {
      const b = new FormBrowser();
      const first = await b.go((await authorizationUrl(config)).url, {}, CALLBACK);
      pages.push(await b.submit(first, '/login', creds, CALLBACK));
    }
    for (const p of pages) {
      expect(p.status).toBe(401);
      expect(heading(p.html)).toBe('Sign in');
      expect(alert(p.html)).toBe('The e-mail or password is incorrect.');
    }
  });

  test('guessing TOTP codes on the code page locks the account like the API does; the right code then fails too', async () => {
    const u = await registerAndVerify();
    const { app } = await enrolTotp((await login(u.email, u.password)).access_token, u.password, authenticatorApp());
    const config = await discover(await webClient());
    const b = new FormBrowser();
    let page = await b.submit(await b.go((await authorizationUrl(config)).url, {}, CALLBACK), '/login', { email: u.email, password: u.password }, CALLBACK);
    expect(heading(page.html)).toBe('Enter your code');
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      page = await b.submit(page, '/code', { code: String(100000 + i) }, CALLBACK);
      statuses.push(page.status);
    }
    expect(statuses.slice(0, 4)).toEqual([401, 401, 401, 401]);
    expect((await query('SELECT status FROM users WHERE id = $1', [u.user.id]))[0].status).toBe('locked');
    page = await b.submit(page, '/code', { code: await app.fresh() }, CALLBACK);
    expect(page.status).not.toBe(0); // no redirect back to the client with a code
    expect(heading(page.html)).toBe('Enter your code');
  });

  test('acr_values asking for multi-factor: a TOTP account must give its code, a password-only account is refused', async () => {
    const config = await discover(await webClient());
    const weak = await registerAndVerify();
    const b = new FormBrowser();
    const start = await authorizationUrl(config, { acr_values: 'urn:authflow:acr:mfa' });
    const first = await b.go(start.url, {}, CALLBACK);
    const done = await b.submit(first, '/login', { email: weak.email, password: weak.password }, CALLBACK);
    const back = new URL(done.url);
    expect(back.searchParams.get('error')).toBe('unmet_authentication_requirements');
    expect(back.searchParams.get('code')).toBeNull();
  });

  test('a third-party client shows the consent page; the grant follows the Allow', async () => {
    const u = await registerAndVerify();
    const config = await discover(await webClient({ first_party: false, client_name: 'Someone Else’s App' }));
    const b = new FormBrowser();
    const start = await authorizationUrl(config);
    let page = await b.go(start.url, {}, CALLBACK);
    page = await b.submit(page, '/login', { email: u.email, password: u.password }, CALLBACK);
    expect(heading(page.html)).toBe('Allow access?');
    expect(page.html).toContain('Someone Else’s App');
    page = await b.submit(page, '/consent', {}, CALLBACK);
    expect(new URL(page.url).searchParams.get('code')).toBeTruthy();
  });
});

describe('tokens', () => {
  test('refresh rotates; the spent token again revokes the grant (its successor dies too)', async () => {
    const u = await registerAndVerify();
    const config = await discover(await webClient());
    const { tokens } = await codeFlow(config, u);
    const second = await rp.call('refreshGrant', { config, refreshToken: tokens.refresh_token });
    expect(second.refresh_token).not.toBe(tokens.refresh_token);
    const reuse = await rp.refused('refreshGrant', { config, refreshToken: tokens.refresh_token });
    expect(reuse.error).toBe('invalid_grant');
    const successor = await rp.refused('refreshGrant', { config, refreshToken: second.refresh_token });
    expect(successor.error).toBe('invalid_grant');
    await until(
      'the reuse to be audited',
      async () => (await query("SELECT data FROM audit_events WHERE user_id = $1 AND type = 'token_reused'", [u.user.id]))[0],
    );
    const [reused] = await query("SELECT data FROM audit_events WHERE user_id = $1 AND type = 'token_reused'", [u.user.id]);
    expect(reused.data).toMatchObject({ via: 'oidc', model: 'RefreshToken' });
  });

  test('the same refresh token sent four times at once: one rotation at most, and the reuse ends the grant', async () => {
    const u = await registerAndVerify();
    const config = await discover(await webClient());
    const { tokens } = await codeFlow(config, u);
    const results = await Promise.allSettled([0, 1, 2, 3].map(() => rp.call('refreshGrant', { config, refreshToken: tokens.refresh_token })));
    const won = results.filter((r): r is PromiseFulfilledResult<any> => r.status === 'fulfilled');
    expect(won.length).toBeLessThanOrEqual(1);
    // Whatever won, the grant was revoked by the losers' reuse: its successor is dead too.
    for (const w of won) expect((await rp.refused('refreshGrant', { config, refreshToken: w.value.refresh_token })).error).toBe('invalid_grant');
  });

  test('a replayed authorization code is refused and revokes what the first exchange issued', async () => {
    const u = await registerAndVerify();
    const config = await discover(await webClient());
    const { start, callbackUrl, tokens } = await codeFlow(config, u);
    const again = await rp.refused('codeGrant', {
      config,
      callbackUrl,
      checks: { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce },
    });
    expect(again.error).toBe('invalid_grant');
    expect((await rp.refused('refreshGrant', { config, refreshToken: tokens.refresh_token })).error).toBe('invalid_grant');
  });

  test('the same code sent twice at once: exactly one exchange succeeds', async () => {
    const u = await registerAndVerify();
    const config = await discover(await webClient());
    const start = await authorizationUrl(config);
    const callbackUrl = await signIn(new FormBrowser(), start, u);
    const checks = { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce };
    const results = await Promise.allSettled([0, 1, 2, 3].map(() => rp.call('codeGrant', { config, callbackUrl, checks })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });

  test('a wrong PKCE verifier is refused', async () => {
    const u = await registerAndVerify();
    const config = await discover(await webClient());
    const start = await authorizationUrl(config);
    const callbackUrl = await signIn(new FormBrowser(), start, u);
    const other = await rp.call('pkce');
    const r = await rp.refused('codeGrant', {
      config,
      callbackUrl,
      checks: { pkceCodeVerifier: other.verifier, expectedState: start.state, expectedNonce: start.nonce },
    });
    expect(r.error).toBe('invalid_grant');
  });

  test('an authorization request without PKCE, or with plain, is refused', async () => {
    const client = await webClient();
    for (const extra of [{}, { code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' }] as Array<Record<string, string>>) {
      const q = new URLSearchParams({
        client_id: client.client_id,
        redirect_uri: CALLBACK,
        response_type: 'code',
        scope: 'openid',
        state: 'abcdefgh',
        ...extra,
      });
      const b = new FormBrowser();
      const page = await b.go(`${issuer()}/oidc/auth?${q.toString()}`, {}, CALLBACK);
      expect(page.status).toBe(0);
      expect(new URL(page.url).searchParams.get('error')).toBe('invalid_request');
    }
  });

  test('a redirect URI that is not registered gets an error page, never a redirect', async () => {
    const client = await webClient();
    const q = new URLSearchParams({
      client_id: client.client_id,
      redirect_uri: 'https://attacker.example/cb',
      response_type: 'code',
      scope: 'openid',
      code_challenge: 'a'.repeat(43),
      code_challenge_method: 'S256',
    });
    const r = await fetch(`${issuer()}/oidc/auth?${q.toString()}`, { redirect: 'manual' });
    expect(r.status).toBe(400);
    expect(r.headers.get('location')).toBeNull();
    const html = await r.text();
    expect(html).toContain('redirect_uri');
    expect(r.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  });

  test('a wrong client secret is invalid_client', async () => {
    const client = await webClient();
    const config = await discover({ client_id: client.client_id, client_secret: `${client.client_secret}x` });
    const r = await rp.refused('refreshGrant', { config, refreshToken: 'x'.repeat(43) });
    expect(r.error).toBe('invalid_client');
  });

  test('DPoP-bound tokens of a confidential client: the refresh token works only with a proof of the same key', async () => {
    const u = await registerAndVerify();
    const config = await discover(await webClient());
    const key = await rp.call('dpopKey');
    const { tokens } = await codeFlow(config, u, { dpopKey: key.id });
    expect(tokens.token_type.toLowerCase()).toBe('dpop');
    const other = await rp.call('dpopKey');
    expect((await rp.refused('refreshGrant', { config, refreshToken: tokens.refresh_token, dpopKey: other.id })).error).toBe('invalid_grant');
    expect((await rp.refused('refreshGrant', { config, refreshToken: tokens.refresh_token })).error).toBe('invalid_grant');
    const next = await rp.call('refreshGrant', { config, refreshToken: tokens.refresh_token, dpopKey: key.id });
    expect(next.token_type.toLowerCase()).toBe('dpop');
  });

  test('client credentials: a JWT access token for the default resource, which /v1 refuses', async () => {
    const svc = await registerClient({
      client_name: 'Billing Service',
      redirect_uris: [],
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic',
    });
    const config = await discover(svc);
    const t = await rp.call('clientCredentials', { config });
    expect(decodeProtectedHeader(t.access_token).typ).toBe('at+jwt');
    const { payload } = await jwtVerify(t.access_token, createRemoteJWKSet(new URL(`${issuer()}/.well-known/jwks.json`)), {
      issuer: issuer(),
      audience: 'urn:authflow:api',
      typ: 'at+jwt',
      algorithms: ['ES256'],
    });
    expect(payload.client_id).toBe(svc.client_id);
    expect((await api('GET', '/v1/me', { token: t.access_token })).status).toBe(401);
  });

  test('revocation ends a refresh token; introspection is for confidential clients only', async () => {
    const u = await registerAndVerify();
    const client = await webClient();
    const config = await discover(client);
    const { tokens } = await codeFlow(config, u);
    const active = await rp.call('introspect', { config, token: tokens.access_token });
    expect(active).toMatchObject({ active: true, sub: u.user.id, client_id: client.client_id });
    await rp.call('revoke', { config, token: tokens.refresh_token });
    expect((await rp.refused('refreshGrant', { config, refreshToken: tokens.refresh_token })).error).toBe('invalid_grant');
    const pub = await registerClient({
      client_name: 'Public SPA',
      redirect_uris: [CALLBACK],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'none',
    });
    const pubConfig = await discover(pub, 'none');
    // A public client has no credential: the provider tells it nothing about any token.
    expect(await rp.call('introspect', { config: pubConfig, token: tokens.access_token })).toEqual({ active: false });
  });
});

describe('the account decides', () => {
  test('a logout-all through /v1 ends the provider grants too', async () => {
    const u = await registerAndVerify();
    const config = await discover(await webClient());
    const { tokens } = await codeFlow(config, u);
    const mine = await login(u.email, u.password);
    expect((await api('POST', '/v1/auth/logout-all', { token: mine.access_token })).status).toBe(204);
    expect((await rp.refused('refreshGrant', { config, refreshToken: tokens.refresh_token })).error).toBe('invalid_grant');
  });

  test('a suspended account gets no tokens, on refresh either, and cannot sign in', async () => {
    const u = await registerAndVerify();
    const config = await discover(await webClient());
    const { tokens } = await codeFlow(config, u);
    expect((await api('POST', `/v1/admin/users/${u.user.id}/suspend`, { token: await admin.token(), body: { reason: 'test' } })).status).toBe(200);
    expect((await rp.refused('refreshGrant', { config, refreshToken: tokens.refresh_token })).error).toBe('invalid_grant');
    const b = new FormBrowser();
    const page = await b.submit(await b.go((await authorizationUrl(config)).url, {}, CALLBACK), '/login', { email: u.email, password: u.password }, CALLBACK);
    expect(page.status).toBe(403);
    expect(heading(page.html)).toBe('Sign in');
  });
});

test('deleting an account ends its grants at once; erasure leaves no grant, consent or session of it', async () => {
  const u = await registerAndVerify();
  const config = await discover(await webClient({ first_party: false }));
  const { tokens } = await codeFlow(config, u);
  expect(Number((await query('SELECT count(*) FROM oidc_models WHERE account_id = $1', [u.user.id]))[0].count)).toBeGreaterThan(0);
  expect((await api('DELETE', `/v1/admin/users/${u.user.id}`, { token: await admin.token() })).status).toBe(202);
  expect((await rp.refused('refreshGrant', { config, refreshToken: tokens.refresh_token })).error).toBe('invalid_grant');
  await until('the account to be erased', async () => (await query('SELECT status FROM users WHERE id = $1', [u.user.id]))[0].status === 'deleted', 60_000);
  expect(await query('SELECT model FROM oidc_models WHERE account_id = $1', [u.user.id])).toEqual([]);
});

test('deleting a client ends its grants and tokens', async () => {
  const u = await registerAndVerify();
  const client = await webClient();
  const config = await discover(client);
  const { tokens } = await codeFlow(config, u);
  expect((await api('DELETE', `/v1/admin/clients/${client.client_id}`, { token: await admin.token() })).status).toBe(204);
  expect(await query("SELECT model FROM oidc_models WHERE payload->>'clientId' = $1", [client.client_id])).toEqual([]);
  expect((await rp.refused('refreshGrant', { config, refreshToken: tokens.refresh_token })).error).toBe('invalid_client');
});

describe('the pages', () => {
  test('forms without the CSRF token, or from another browser, change nothing', async () => {
    const u = await registerAndVerify();
    const config = await discover(await webClient());
    const b = new FormBrowser();
    const page = await b.go((await authorizationUrl(config)).url, {}, CALLBACK);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'.*frame-ancestors 'none'/);
    expect(page.html).not.toMatch(/<script/i);
    const noCsrf = await b.submit(page, '/login', { email: u.email, password: u.password, csrf: 'forged' }, CALLBACK);
    expect(noCsrf.status).toBe(403);
    const stranger = new FormBrowser();
    const elsewhere = await stranger.submit(page, '/login', { email: u.email, password: u.password }, CALLBACK);
    expect(elsewhere.status).toBe(400);
    expect(heading(elsewhere.html)).toBe('This sign-in cannot continue');
  });

  test('cookies are HttpOnly and SameSite', async () => {
    const config = await discover(await webClient());
    const r = await fetch((await authorizationUrl(config)).url, { redirect: 'manual' });
    const cookies = r.headers.getSetCookie();
    expect(cookies.length).toBeGreaterThan(0);
    for (const c of cookies) {
      expect(c).toMatch(/httponly/i);
      expect(c).toMatch(/samesite=lax/i);
    }
  });

  test('RP-initiated logout asks, then signs the browser out and returns to the client', async () => {
    const u = await registerAndVerify();
    const config = await discover(await webClient());
    const b = new FormBrowser();
    const start = await authorizationUrl(config);
    const callbackUrl = await signIn(b, start, u);
    const tokens = await rp.call('codeGrant', {
      config,
      callbackUrl,
      checks: { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce },
    });
    const url = await rp.call('endSessionUrl', { config, params: { id_token_hint: tokens.id_token, post_logout_redirect_uri: LOGGED_OUT } });
    const confirm = await b.go(url, {}, LOGGED_OUT);
    expect(heading(confirm.html)).toBe('Sign out?');
    const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(confirm.html)!;
    const hidden = Object.fromEntries([...form[2].matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    const out = await b.go(
      new URL(form[1].replace(/&amp;/g, '&'), url).href,
      { method: 'POST', body: new URLSearchParams({ ...hidden, logout: 'yes' }).toString(), headers: { 'Content-Type': 'application/x-www-form-urlencoded' } },
      LOGGED_OUT,
    );
    expect(out.url.startsWith(LOGGED_OUT)).toBe(true);
    await until(
      'the logout to be audited',
      async () => (await query("SELECT 1 FROM audit_events WHERE user_id = $1 AND type = 'logout' AND data->>'via' = 'oidc'", [u.user.id]))[0],
    );
    // Signed out: the next authorization asks for the password again.
    const again = await b.go((await authorizationUrl(config, { prompt: '' })).url, {}, CALLBACK);
    expect(heading(again.html)).toBe('Sign in');
  });
});

test('an admin account is an ordinary user to the provider', async () => {
  const a = await adminAccount();
  const config = await discover(await webClient());
  const { tokens } = await codeFlow(config, { ...a, code: () => a.app.fresh() });
  expect(tokens.claims.amr).toEqual(['pwd', 'otp']);
});

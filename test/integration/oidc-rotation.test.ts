/**
 * A signing-key rotation in the middle of a live sign-in and a live grant: the provider is rebuilt
 * with the new key set (the API reloads it every KEY_REFRESH_SECONDS, 2 s in the test stack), the
 * sign-in that began before the switch finishes after it, its id token is signed by the new RS256
 * key and verifies against the JWKS, and a refresh token issued before the rotation still works.
 * The provider's cookie keys rotate in the same phase; the open sign-in's cookie still verifies.
 */
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { FormBrowser, heading, RelyingParty } from '../helpers/oidc';
import { closeTemporal, makeAdmin, temporal, waitRun } from '../helpers/ops';
import { api, apiUrl, sleep, until, vaultRoot } from '../helpers/stack';
import { registerAndVerify } from '../helpers/users';

jest.setTimeout(180_000);

const CALLBACK = 'http://127.0.0.1:9/callback';
let rp: RelyingParty;
afterAll(async () => {
  rp?.close();
  await closeTemporal();
});

async function activeKid(alg: string): Promise<string> {
  const set = (await vaultRoot().kvGet('authflow/signing-keys')) as { keys: Array<{ kid: string; alg: string; status: string }> };
  return set.keys.find((k) => k.alg === alg && k.status === 'active')!.kid;
}

test('a rotation during a sign-in and a grant: the provider signs with the new keys and nothing in flight breaks', async () => {
  rp = new RelyingParty();
  const admin = await makeAdmin();
  const reg = await api('POST', '/v1/admin/clients', {
    token: await admin.token(),
    body: {
      client_name: 'Rotation App',
      redirect_uris: [CALLBACK],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_basic',
      first_party: true,
    },
  });
  expect(reg.status).toBe(201);
  const { id: config } = await rp.call('discover', {
    issuer: apiUrl(),
    clientId: reg.body.client_id,
    clientSecret: reg.body.client_secret,
    authMethod: 'client_secret_basic',
  });
  const u = await registerAndVerify();

  const start = async () => {
    const p = await rp.call('pkce');
    const url = await rp.call('authorizationUrl', {
      config,
      params: {
        redirect_uri: CALLBACK,
        scope: 'openid offline_access',
        prompt: 'consent',
        code_challenge: p.challenge,
        code_challenge_method: 'S256',
        state: p.state,
        nonce: p.nonce,
      },
    });
    return { ...p, url: url as string };
  };
  const exchange = async (s: Awaited<ReturnType<typeof start>>, callbackUrl: string) =>
    rp.call('codeGrant', { config, callbackUrl, checks: { pkceCodeVerifier: s.verifier, expectedState: s.state, expectedNonce: s.nonce } });

  // A grant from before the rotation.
  const earlier = await start();
  const b1 = new FormBrowser();
  const done1 = await b1.submit(await b1.go(earlier.url, {}, CALLBACK), '/login', { email: u.email, password: u.password }, CALLBACK);
  const before = await exchange(earlier, done1.url);
  const rsaBefore = await activeKid('RS256');
  expect(decodeProtectedHeader(before.id_token).kid).toBe(rsaBefore);

  // A sign-in left open on its password page.
  const open = await start();
  const b2 = new FormBrowser();
  const page = await b2.go(open.url, {}, CALLBACK);
  expect(heading(page.html)).toBe('Sign in');

  const r = await api('POST', '/v1/admin/ops/key-rotation', { token: await admin.token(), body: {} });
  expect(r.status).toBe(202);
  try {
    const rsaAfter = await until(
      'the new RS256 key signs',
      async () => {
        const kid = await activeKid('RS256');
        return kid !== rsaBefore ? kid : undefined;
      },
      60_000,
    );
    // The provider's cookie keys rotated with them: the open sign-in's cookie was signed by the old one.
    const cookieKeys = (await vaultRoot().kvGet('authflow/oidc-cookie-keys')) as { keys: Array<{ rotation_id?: string }> };
    expect(cookieKeys.keys.length).toBeGreaterThanOrEqual(2);
    expect(cookieKeys.keys[0].rotation_id).toBeDefined();
    // Past the API's next key-set reload (KEY_REFRESH_SECONDS = 2).
    await sleep(3000);

    const done2 = await b2.submit(page, '/login', { email: u.email, password: u.password }, CALLBACK);
    const after = await exchange(open, done2.url);
    expect(decodeProtectedHeader(after.id_token).kid).toBe(rsaAfter);
    const jwks = createRemoteJWKSet(new URL(`${apiUrl()}/.well-known/jwks.json`));
    await jwtVerify(after.id_token, jwks, { issuer: apiUrl(), audience: reg.body.client_id });
    // The old key stays published while it retires: the earlier id token still verifies.
    await jwtVerify(before.id_token, jwks, { issuer: apiUrl(), audience: reg.body.client_id });

    const refreshed = await rp.call('refreshGrant', { config, refreshToken: before.refresh_token });
    expect(decodeProtectedHeader(refreshed.id_token).kid).toBe(rsaAfter);
  } finally {
    // Phase 3 would wait for the retiring keys' window: end the run here, as the rotation tests do.
    const { client } = await temporal();
    await client.workflow
      .getHandle('key-rotation:on-demand')
      .cancel()
      .catch(() => undefined);
    await waitRun(admin.token, 'key-rotation:on-demand');
  }
});

/**
 * CORS for browser apps on /v1/* (issue 19 item 8), tried as an attacker's page would: only the
 * exact origins in API_CORS_ORIGINS (test/env/cors.json) get CORS headers, never with credentials;
 * look-alike origins, other schemes and the codec endpoint get none. A single-page app signs in with
 * a DPoP key it cannot export (WebCrypto, extractable false) and reads the answer's DPoP headers.
 */
import { webcrypto } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { api } from '../helpers/stack';
import { dpopGet, dpopPost, type DeviceKey } from '../helpers/dpop';
import { registerAndVerify } from '../helpers/users';

jest.setTimeout(60_000);

const APP = 'https://app.authflow.test';

const preflight = (path: string, origin: string, method = 'POST', headers = 'authorization, dpop, content-type') =>
  api('OPTIONS', path, { headers: { Origin: origin, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': headers } });

test('an allowed origin: the preflight answers 204 with the methods and headers a DPoP client sends, no credentials', async () => {
  for (const [path, method] of [
    ['/v1/auth/login', 'POST'],
    ['/v1/me', 'GET'],
    ['/v1/me/devices/00000000-0000-0000-0000-000000000000', 'DELETE'],
  ] as const) {
    const r = await preflight(path, APP, method);
    expect(r.status).toBe(204);
    expect(r.headers.get('access-control-allow-origin')).toBe(APP);
    expect(r.headers.get('access-control-allow-methods')).toContain(method);
    expect(r.headers.get('access-control-allow-headers')!.toLowerCase().split(/,\s*/)).toEqual(
      expect.arrayContaining(['authorization', 'dpop', 'content-type', 'x-device-id']),
    );
    expect(r.headers.get('access-control-allow-credentials')).toBeNull();
    expect(r.headers.get('vary')).toMatch(/origin/i);
  }
  // The second configured origin is answered with itself, never with the list or a wildcard.
  expect((await preflight('/v1/auth/login', 'http://localhost:5173')).headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
});

test('other origins get no CORS headers: look-alikes, another scheme or port, a trailing slash, null', async () => {
  for (const origin of [
    'https://evil.example',
    'https://app.authflow.test.evil.example',
    'https://evil-app.authflow.test',
    'http://app.authflow.test',
    'https://app.authflow.test:8443',
    'https://app.authflow.test/',
    'null',
    'http://localhost:5174',
  ]) {
    const pre = await preflight('/v1/auth/login', origin);
    expect([origin, pre.headers.get('access-control-allow-origin')]).toEqual([origin, null]);
    expect(pre.headers.get('access-control-allow-headers')).toBeNull();
    const r = await api('POST', '/v1/auth/login', { headers: { Origin: origin }, body: { email: 'nobody@example.com', password: 'x'.repeat(12) } });
    expect([origin, r.headers.get('access-control-allow-origin')]).toEqual([origin, null]);
  }
});

test('the API origins do not open the codec endpoint (its own CORS_ORIGINS, the Temporal UI only)', async () => {
  const r = await api('OPTIONS', '/codec/decode', { headers: { Origin: APP, 'Access-Control-Request-Method': 'POST' } });
  expect(r.headers.get('access-control-allow-origin')).toBeNull();
});

test('a single-page app with a non-extractable WebCrypto key signs in with DPoP and reads the answers it needs', async () => {
  const u = await registerAndVerify();
  const pair = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  expect(pair.privateKey.extractable).toBe(false);
  await expect(webcrypto.subtle.exportKey('jwk', pair.privateKey)).rejects.toThrow();
  const jwk = await exportJWK(pair.publicKey);
  const key: DeviceKey = { alg: 'ES256', privateKey: pair.privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') };
  const headers = { Origin: APP, 'X-Device-Id': 'spa-install-1' };

  const login = await dpopPost('/v1/auth/login', { email: u.email, password: u.password }, key, headers);
  expect([login.status, login.body.token_type]).toEqual([200, 'DPoP']);
  expect(login.headers.get('access-control-allow-origin')).toBe(APP);
  expect(login.headers.get('access-control-allow-credentials')).toBeNull();

  const me = await dpopGet('/v1/me', login.body.access_token, key, {}, headers);
  expect([me.status, me.body.user.email]).toEqual([200, u.email]);
  expect(me.headers.get('access-control-allow-origin')).toBe(APP);

  // A refused request still carries the CORS headers, so the page can read WWW-Authenticate.
  const bad = await api('GET', '/v1/me', { headers: { ...headers, Authorization: `DPoP ${login.body.access_token}` } });
  expect(bad.status).toBe(401);
  expect(bad.headers.get('access-control-allow-origin')).toBe(APP);
  expect(bad.headers.get('access-control-expose-headers')!.split(/,\s*/)).toEqual(expect.arrayContaining(['WWW-Authenticate', 'DPoP-Nonce', 'Retry-After']));
  expect(bad.headers.get('www-authenticate')).toMatch(/^DPoP/);
});

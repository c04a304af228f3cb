/**
 * Bad input on every OpenID provider endpoint and hosted page (they are outside /openapi.json, so
 * the OpenAPI fuzzer never reaches them): every method, garbage bodies and parameters, oversized
 * and malformed values. The answer is always a 4xx (or the endpoint's documented success for a
 * harmless request), never a 5xx, and never a page that echoes the input unescaped.
 */
import { apiUrl } from '../helpers/stack';

jest.setTimeout(120_000);

const PATHS = [
  '/.well-known/openid-configuration',
  '/oidc/auth',
  '/oidc/token',
  '/oidc/me',
  '/oidc/token/revocation',
  '/oidc/token/introspection',
  '/oidc/session/end',
  '/oidc/session/end/confirm',
  '/oidc/request',
  '/oidc/reg',
  '/oidc/nothing-here',
  '/interaction/abcdefghijklmnop',
  '/interaction/abcdefghijklmnop/login',
  '/interaction/abcdefghijklmnop/code',
  '/interaction/abcdefghijklmnop/consent',
  '/interaction/abcdefghijklmnop/abort',
  '/interaction/%00%ff',
  '/interaction/' + 'a'.repeat(5000),
];

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'];

const XSS = '<script>alert(1)</script>';
const BODIES: Array<{ type: string; body: string }> = [
  { type: 'application/x-www-form-urlencoded', body: '' },
  { type: 'application/x-www-form-urlencoded', body: `grant_type=${encodeURIComponent(XSS)}&client_id=${encodeURIComponent(XSS)}&code=%ff%fe` },
  { type: 'application/x-www-form-urlencoded', body: 'grant_type=authorization_code&grant_type=refresh_token&csrf=x&csrf=y' },
  { type: 'application/x-www-form-urlencoded', body: `email=${'a'.repeat(40000)}` },
  { type: 'application/json', body: '{"grant_type": ' },
  { type: 'application/json', body: JSON.stringify({ grant_type: 'client_credentials', client_id: ['a', 'b'] }) },
  { type: 'text/plain', body: '\u0000\u0001\u0002' },
  { type: 'multipart/form-data; boundary=x', body: '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--' },
];

test.each(PATHS)('%s answers every method and body without a server error', async (path) => {
  for (const method of METHODS) {
    const bodies = method === 'GET' || method === 'HEAD' || method === 'OPTIONS' ? [undefined] : BODIES;
    for (const b of bodies) {
      const r = await fetch(`${apiUrl()}${path}`, {
        method,
        redirect: 'manual',
        headers: b ? { 'Content-Type': b.type } : {},
        body: b?.body,
      });
      const text = method === 'HEAD' ? '' : await r.text();
      expect({ method, path, type: b?.type, status: r.status }).toEqual({ method, path, type: b?.type, status: r.status < 500 ? r.status : 'a 4xx' });
      expect(text).not.toContain(XSS);
    }
  }
});

test('authorization requests with hostile parameters get an error page or a redirect, never a 5xx', async () => {
  const cases: Array<Record<string, string>> = [
    {},
    { client_id: XSS },
    { client_id: 'a'.repeat(10000), response_type: 'code' },
    { client_id: 'unknown-client', response_type: 'code', redirect_uri: 'javascript:alert(1)', scope: 'openid' },
    { client_id: 'unknown-client', response_type: 'token', scope: 'openid' },
    { response_type: 'code', scope: 'openid', request: 'not.a.jwt', client_id: 'x' },
    { response_type: 'code', scope: 'openid', claims: '{"id_token":', client_id: 'x' },
    { response_type: 'code', scope: 'openid', max_age: '-1', client_id: 'x' },
    { response_type: 'code', scope: 'openid', prompt: 'none login', client_id: 'x' },
  ];
  for (const params of cases) {
    const r = await fetch(`${apiUrl()}/oidc/auth?${new URLSearchParams(params).toString()}`, { redirect: 'manual' });
    expect({ params, status: r.status < 500 }).toEqual({ params, status: true });
    expect(await r.text()).not.toContain(XSS);
  }
});

test('token endpoint: unknown clients, grants and codes are OAuth errors in JSON', async () => {
  const forms = [
    'grant_type=authorization_code&code=abc&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&client_id=nobody',
    'grant_type=refresh_token&refresh_token=abc&client_id=nobody',
    'grant_type=client_credentials&client_id=nobody&client_secret=x',
    'grant_type=password&username=a&password=b&client_id=nobody',
    'grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=x&client_id=nobody',
  ];
  for (const body of forms) {
    const r = await fetch(`${apiUrl()}/oidc/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    const j = (await r.json()) as { error: string };
    expect(typeof j.error).toBe('string');
  }
});

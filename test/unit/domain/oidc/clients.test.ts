/**
 * The pure rules of registered OpenID Connect clients (domain/oidc/clients.ts): which redirect
 * URIs a client may register, which combinations of grant types and auth methods hold together,
 * and the constant-time comparison of a presented secret with the stored SHA-256.
 */
import { createHash } from 'node:crypto';
import { clientProblems, clientSecretMatches, redirectUriProblem, type ClientSettings } from '../../../../domain/oidc/clients';

const hex = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

describe('clientSecretMatches', () => {
  const secret = 'Zq1v8yH2mQ4pR7sT0uW3xY6zA9bC2dE5fG8hJ1kL4nP';
  test('the presented secret matches the hex of its SHA-256, in either case of hex digits', () => {
    expect(clientSecretMatches(secret, hex(secret))).toBe(true);
    expect(clientSecretMatches(secret, hex(secret).toUpperCase())).toBe(true);
  });
  test('another secret, a one-character change, an empty one or the hash itself do not match', () => {
    expect(clientSecretMatches(secret.slice(0, -1) + 'Q', hex(secret))).toBe(false);
    expect(clientSecretMatches('', hex(secret))).toBe(false);
    expect(clientSecretMatches(hex(secret), hex(secret))).toBe(false);
  });
  test('a stored value that is not 64 hex digits never matches (and does not throw)', () => {
    for (const stored of ['', 'abc', hex(secret).slice(0, 62), `${hex(secret)}00`, 'z'.repeat(64)]) expect(clientSecretMatches(secret, stored)).toBe(false);
    expect(clientSecretMatches(undefined as unknown as string, hex(secret))).toBe(false);
  });
});

describe('redirectUriProblem', () => {
  test.each([
    ['https://app.example.com/callback', 'client_secret_basic'],
    ['https://app.example.com:8443/cb?x=1', 'private_key_jwt'],
    ['http://localhost:8080/cb', 'client_secret_post'],
    ['http://127.0.0.1:51234/cb', 'none'],
    ['http://[::1]/cb', 'none'],
    ['com.example.app:/oauth2redirect', 'none'],
    ['com.example.app:/cb', 'none'],
  ])('%s is fine (%s)', (uri, method) => {
    expect(redirectUriProblem(uri, method)).toBeUndefined();
  });

  test.each([
    ['/callback', /absolute/],
    ['app.example.com/callback', /absolute/],
    ['https://app.example.com/cb#frag', /fragment/],
    ['https://app.example.com/cb#', /fragment/],
    ['http://app.example.com/cb', /loopback/],
    ['http://localhost.evil.example/cb', /loopback/],
    ['http://127.0.0.2/cb', /loopback/],
    ['http://127.1/cb', /allowed form/],
    ['HTTPS://app.example.com/cb', /allowed form/],
    ['https://user:pw@app.example.com/cb', /credentials/],
    ['https://app.example.com/a b', /whitespace/],
    ['https://app.example.com/\u0000', /control/],
    [' https://app.example.com/cb', /whitespace/],
    ['javascript:alert(1)', /scheme javascript: is not allowed/],
    ['data:text/html,x', /scheme data: is not allowed/],
    ['file:///etc/passwd', /scheme file: is not allowed/],
    ['myapp:/cb', /reverse-domain/],
  ])('%s is refused', (uri, why) => {
    expect(redirectUriProblem(uri, 'none')).toMatch(why);
  });

  test('a URI over 2000 characters is refused', () => {
    expect(redirectUriProblem(`https://app.example.com/${'a'.repeat(2000)}`, 'none')).toMatch(/at most 2000/);
  });

  test('a custom scheme is for public native clients only', () => {
    for (const method of ['client_secret_basic', 'client_secret_post', 'private_key_jwt']) {
      expect(redirectUriProblem('com.example.app:/cb', method)).toMatch(/only with token_endpoint_auth_method none/);
    }
  });
});

describe('clientProblems', () => {
  const web: ClientSettings = {
    client_name: 'Web app',
    redirect_uris: ['https://app.example.com/cb'],
    post_logout_redirect_uris: [],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_basic',
    first_party: false,
    jwks_uri: null,
  };
  const fields = (c: Partial<ClientSettings>) => clientProblems({ ...web, ...c }).map((e) => e.field);

  test('a valid web client, a machine client and a native app have no problems', () => {
    expect(fields({})).toEqual([]);
    expect(fields({ grant_types: ['client_credentials'], redirect_uris: [] })).toEqual([]);
    expect(fields({ token_endpoint_auth_method: 'none', redirect_uris: ['com.example.app:/cb'] })).toEqual([]);
    expect(fields({ token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://app.example.com/jwks.json' })).toEqual([]);
  });

  test('each broken rule names its field', () => {
    expect(fields({ grant_types: ['implicit'] })).toEqual(['grant_types']);
    expect(fields({ grant_types: [] })).toEqual(['grant_types']);
    expect(fields({ grant_types: ['refresh_token'] })).toEqual(['grant_types']);
    expect(fields({ grant_types: ['client_credentials', 'refresh_token'] })).toEqual(['grant_types']);
    expect(fields({ redirect_uris: [] })).toEqual(['redirect_uris']);
    expect(fields({ token_endpoint_auth_method: 'none', grant_types: ['client_credentials'], redirect_uris: [] })).toEqual(['grant_types']);
    expect(fields({ token_endpoint_auth_method: 'private_key_jwt' })).toEqual(['jwks_uri']);
    expect(fields({ token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'http://app.example.com/jwks' })).toEqual(['jwks_uri']);
    expect(fields({ token_endpoint_auth_method: 'client_secret_jwt' })).toEqual(['token_endpoint_auth_method']);
    expect(fields({ redirect_uris: ['https://a.example/1', 'http://evil.example/cb'] })).toEqual(['redirect_uris.1']);
    expect(fields({ post_logout_redirect_uris: ['https://a.example/#x'] })).toEqual(['post_logout_redirect_uris.0']);
    expect(fields({ redirect_uris: Array.from({ length: 21 }, (_, i) => `https://a.example/${i}`) })).toEqual(['redirect_uris']);
    expect(fields({ client_name: '' })).toEqual(['client_name']);
    expect(fields({ client_name: 'x'.repeat(201) })).toEqual(['client_name']);
    expect(fields({ client_name: '   ' })).toEqual(['client_name']);
    expect(fields({ client_name: 'a\u0000b' })).toEqual(['client_name']);
  });

  test('a name is counted in characters: 200 emoji are fine', () => {
    expect(fields({ client_name: '😀'.repeat(200) })).toEqual([]);
  });
});

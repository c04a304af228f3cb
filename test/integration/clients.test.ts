/**
 * Registered OpenID Connect clients over the real stack: the admin API (create, list, read,
 * change, delete, rotate the secret) behind the admin guard, every registration rule refused with
 * a 400 that names the field, the secret answered once and kept only as its SHA-256 (nothing of it
 * in the row, the listings or the audit trail), the provider's view of a client
 * (ClientRegistry.findForProvider) and the create-client command as the authflow-cli identity.
 */
import { createHash } from 'node:crypto';
import { Sequelize } from 'sequelize';
import { ClientRegistry, clientSecretMatches } from '../../domain/oidc/clients';
import { makeAdmin, operatorCli } from '../helpers/ops';
import { api, query, stackInfo } from '../helpers/stack';
import { login, registerAndVerify } from '../helpers/users';

jest.setTimeout(120_000);

let admin: Awaited<ReturnType<typeof makeAdmin>>;
let userToken: string;
let sequelize: Sequelize;
let registry: ClientRegistry;
beforeAll(async () => {
  admin = await makeAdmin();
  const u = await registerAndVerify();
  userToken = (await login(u.email, u.password)).access_token;
  sequelize = new Sequelize(stackInfo().pgSuperuserUrl.replace(/\/postgres$/, '/authflow'), { logging: false });
  // The provider's read side only: nothing here writes, so no audit writer is needed.
  registry = new ClientRegistry(sequelize, () => Promise.reject(new Error('not used')));
});
afterAll(async () => {
  await sequelize?.close();
});

const call = async (method: string, path: string, body?: unknown) => api(method, `/v1/admin/clients${path}`, { token: await admin.token(), body });
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();
const web = (extra: Record<string, unknown> = {}) => ({
  client_name: 'Web app',
  redirect_uris: ['https://app.example.com/callback'],
  grant_types: ['authorization_code', 'refresh_token'],
  token_endpoint_auth_method: 'client_secret_basic',
  ...extra,
});
async function create(body: Record<string, unknown>) {
  const r = await call('POST', '', body);
  expect([r.status, r.body.code]).toEqual([201, undefined]);
  return r.body as Record<string, any>;
}

describe('registration', () => {
  test('a secret client: the secret is answered once, the row holds only its SHA-256, no answer or audit event carries either', async () => {
    const c = await create(web({ post_logout_redirect_uris: ['https://app.example.com/bye'], first_party: true }));
    expect(c.client_id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(c.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(c).toMatchObject({
      client_name: 'Web app',
      redirect_uris: ['https://app.example.com/callback'],
      post_logout_redirect_uris: ['https://app.example.com/bye'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_basic',
      jwks_uri: null,
      first_party: true,
    });
    const secret = c.client_secret as string;
    const hashHex = sha256(secret).toString('hex');

    const [row] = await query('SELECT secret_sha256, created_by, row_to_json(c)::text AS whole FROM oidc_clients c WHERE client_id = $1', [c.client_id]);
    expect(Buffer.from(row.secret_sha256).equals(sha256(secret))).toBe(true);
    expect(row.created_by).toBe(admin.user.id);
    expect(row.whole).not.toContain(secret);

    const got = await call('GET', `/${c.client_id}`);
    const listed = await call('GET', '?limit=100');
    for (const text of [JSON.stringify(got.body), JSON.stringify(listed.body)]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(hashHex);
      expect(text).not.toMatch(/"client_secret"|"secret_sha256"/);
    }
    const { client_secret: _s, ...shown } = c;
    expect(got.body).toEqual(shown);

    const events = await query<{ type: string; actor_id: string; data: unknown }>(
      `SELECT type, actor_id, data FROM audit_events WHERE data->>'client_id' = $1 ORDER BY id`,
      [c.client_id],
    );
    expect(events.map((e) => [e.type, e.actor_id])).toEqual([['client.created', admin.user.id]]);
    expect(JSON.stringify(events)).not.toContain(secret);
    expect(JSON.stringify(events)).not.toContain(hashHex);

    // The provider's view: the hash as hex, which the presented secret is compared with.
    const meta = await registry.findForProvider(c.client_id);
    expect(meta).toEqual({
      client_id: c.client_id,
      client_name: 'Web app',
      redirect_uris: ['https://app.example.com/callback'],
      post_logout_redirect_uris: ['https://app.example.com/bye'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      client_secret: hashHex,
      'urn:authflow:first_party': true,
    });
    expect(clientSecretMatches(secret, meta!.client_secret!)).toBe(true);
    expect(clientSecretMatches(`${secret}x`, meta!.client_secret!)).toBe(false);
    expect(await registry.findForProvider('NoSuchClient0000000000')).toBeUndefined();
    expect(await registry.findForProvider("x' OR 1=1 --")).toBeUndefined();
  });

  test('public, machine and private_key_jwt clients get no secret; the provider sees the right response types', async () => {
    const native = await create({
      client_name: 'Phone app',
      redirect_uris: ['com.example.app:/oauth2redirect', 'http://127.0.0.1/cb'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'none',
    });
    const machine = await create({
      client_name: 'Batch job',
      redirect_uris: [],
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_post',
    });
    const jwt = await create(web({ token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://app.example.com/jwks.json' }));
    expect(native.client_secret).toBeUndefined();
    expect(jwt.client_secret).toBeUndefined();
    expect(machine.client_secret).toEqual(expect.any(String));
    const [n, m, j] = await Promise.all([native, machine, jwt].map((c) => registry.findForProvider(c.client_id as string)));
    expect([n!.response_types, n!.client_secret, n!.token_endpoint_auth_method]).toEqual([['code'], undefined, 'none']);
    expect([m!.response_types, m!.grant_types]).toEqual([[], ['client_credentials']]);
    expect([j!.jwks_uri, j!.client_secret]).toEqual(['https://app.example.com/jwks.json', undefined]);
    const rows = await query('SELECT client_id, secret_sha256 FROM oidc_clients WHERE client_id = ANY($1)', [[native.client_id, jwt.client_id]]);
    expect(rows.map((r) => r.secret_sha256)).toEqual([null, null]);
  });

  const refused: Array<[string, Record<string, unknown>, string]> = [
    ['an unknown grant type', web({ grant_types: ['implicit'] }), 'grant_types.0'],
    ['the password grant', web({ grant_types: ['password'] }), 'grant_types.0'],
    ['no grant type', web({ grant_types: [] }), 'grant_types'],
    ['refresh_token without authorization_code', web({ grant_types: ['client_credentials', 'refresh_token'] }), 'grant_types'],
    ['authorization_code without a redirect URI', web({ redirect_uris: [] }), 'redirect_uris'],
    ['a relative redirect URI', web({ redirect_uris: ['/callback'] }), 'redirect_uris.0'],
    ['a redirect URI with a fragment', web({ redirect_uris: ['https://app.example.com/cb#x'] }), 'redirect_uris.0'],
    ['plain http to a public host', web({ redirect_uris: ['http://app.example.com/cb'] }), 'redirect_uris.0'],
    ['http to a host that only starts like localhost', web({ redirect_uris: ['http://localhost.evil.example/cb'] }), 'redirect_uris.0'],
    ['a javascript: redirect URI', web({ token_endpoint_auth_method: 'none', redirect_uris: ['javascript:alert(1)'] }), 'redirect_uris.0'],
    ['credentials in a redirect URI', web({ redirect_uris: ['https://user:pw@app.example.com/cb'] }), 'redirect_uris.0'],
    ['a custom scheme on a secret client', web({ redirect_uris: ['com.example.app:/cb'] }), 'redirect_uris.0'],
    ['a bad post-logout URI', web({ post_logout_redirect_uris: ['http://evil.example/'] }), 'post_logout_redirect_uris.0'],
    [
      'a public client with client_credentials',
      { ...web({ token_endpoint_auth_method: 'none' }), grant_types: ['client_credentials'], redirect_uris: [] },
      'grant_types',
    ],
    ['private_key_jwt without jwks_uri', web({ token_endpoint_auth_method: 'private_key_jwt' }), 'jwks_uri'],
    ['private_key_jwt with an http jwks_uri', web({ token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'http://app.example.com/jwks' }), 'jwks_uri'],
    ['client_secret_jwt (symmetric assertions stay off)', web({ token_endpoint_auth_method: 'client_secret_jwt' }), 'token_endpoint_auth_method'],
    ['21 redirect URIs', web({ redirect_uris: Array.from({ length: 21 }, (_, i) => `https://app.example.com/${i}`) }), 'redirect_uris'],
    ['a redirect URI of 2001 characters', web({ redirect_uris: [`https://app.example.com/${'a'.repeat(1977)}`] }), 'redirect_uris.0'],
    ['an empty name', web({ client_name: '' }), 'client_name'],
    ['a name of 201 characters', web({ client_name: 'x'.repeat(201) }), 'client_name'],
    ['a blank name', web({ client_name: '   ' }), 'client_name'],
    ['a name with a NUL', web({ client_name: 'a\u0000b' }), 'client_name'],
    ['a client_secret chosen by the caller', web({ client_secret: 'mine' }), 'client_secret'],
    ['a client_id chosen by the caller', web({ client_id: 'my-own-client-id' }), 'client_id'],
  ];
  test.each(refused)('refused: %s (400 naming the field, nothing stored)', async (_what, body, field) => {
    const before = (await query('SELECT count(*)::int AS n FROM oidc_clients'))[0].n as number;
    const r = await call('POST', '', body);
    expect([r.status, r.headers.get('content-type'), r.body.code]).toEqual([400, expect.stringContaining('application/problem+json'), 'validation_failed']);
    expect((r.body.errors as Array<{ field: string }>).map((e) => e.field)).toContain(field);
    expect((await query('SELECT count(*)::int AS n FROM oidc_clients'))[0].n).toBe(before);
  });
});

describe('administration', () => {
  test('keyset paging walks every client once, newest first; a malformed cursor is a 400', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await create(web({ client_name: `Paged ${i}` }))).client_id as string);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { clients: Array<{ client_id: string }>; next_cursor: string | null } } = await call(
        'GET',
        `?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(page.status).toBe(200);
      expect(page.body.clients.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.clients.map((c) => c.client_id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    const total = (await query('SELECT count(*)::int AS n FROM oidc_clients'))[0].n as number;
    expect(seen.length).toBe(total);
    // Newest first: the three just created lead, in reverse order.
    expect(seen.slice(0, 3)).toEqual([...ids].reverse());
    const bad = await call('GET', '?cursor=not-a-cursor');
    expect([bad.status, bad.body.errors?.[0]?.field]).toEqual([400, 'cursor']);
  });

  test('patch changes what it names, revalidates the whole client, and is audited; delete removes it for the provider too', async () => {
    const c = await create(web());
    const changed = await call('PATCH', `/${c.client_id}`, {
      client_name: 'Renamed',
      redirect_uris: ['https://app.example.com/new'],
      first_party: true,
    });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({
      client_name: 'Renamed',
      redirect_uris: ['https://app.example.com/new'],
      first_party: true,
      token_endpoint_auth_method: 'client_secret_basic',
    });
    expect(new Date(changed.body.updated_at).getTime()).toBeGreaterThanOrEqual(new Date(c.updated_at).getTime());

    // Valid alone, invalid as a whole: refresh_token without authorization_code; no redirect URIs for authorization_code.
    const badGrants = await call('PATCH', `/${c.client_id}`, { grant_types: ['refresh_token'] });
    expect([badGrants.status, badGrants.body.errors?.map((e: { field: string }) => e.field)]).toEqual([400, ['grant_types']]);
    const noUris = await call('PATCH', `/${c.client_id}`, { redirect_uris: [] });
    expect([noUris.status, noUris.body.errors?.map((e: { field: string }) => e.field)]).toEqual([400, ['redirect_uris']]);
    const fixed = await call('PATCH', `/${c.client_id}`, { token_endpoint_auth_method: 'none' });
    expect([fixed.status, fixed.body.errors?.[0]?.field]).toEqual([400, 'token_endpoint_auth_method']);
    expect((await call('GET', `/${c.client_id}`)).body).toMatchObject({ client_name: 'Renamed', grant_types: ['authorization_code', 'refresh_token'] });

    const gone = await call('DELETE', `/${c.client_id}`);
    expect(gone.status).toBe(204);
    expect((await call('GET', `/${c.client_id}`)).status).toBe(404);
    expect(await registry.findForProvider(c.client_id as string)).toBeUndefined();
    const again = await call('DELETE', `/${c.client_id}`);
    expect([again.status, again.body.code]).toEqual([404, 'not_found']);

    const events = await query<{ type: string; actor_id: string; data: Record<string, unknown> }>(
      `SELECT type, actor_id, data FROM audit_events WHERE data->>'client_id' = $1 ORDER BY id`,
      [c.client_id],
    );
    expect(events.map((e) => e.type)).toEqual(['client.created', 'client.updated', 'client.deleted']);
    expect(events[1].data.fields).toEqual(['client_name', 'redirect_uris', 'first_party']);
    expect(events.every((e) => e.actor_id === admin.user.id)).toBe(true);
  });

  test('rotating the secret answers a new one once; the old one stops matching at once; a client without a secret is a 409', async () => {
    const c = await create(web());
    const rotated = await call('POST', `/${c.client_id}/secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body).toEqual({ client_id: c.client_id, client_secret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(rotated.body.client_secret).not.toBe(c.client_secret);
    const stored = (await registry.findForProvider(c.client_id as string))!.client_secret!;
    expect(clientSecretMatches(rotated.body.client_secret as string, stored)).toBe(true);
    expect(clientSecretMatches(c.client_secret as string, stored)).toBe(false);
    const [row] = await query('SELECT row_to_json(c)::text AS whole FROM oidc_clients c WHERE client_id = $1', [c.client_id]);
    expect(row.whole).not.toContain(rotated.body.client_secret);
    const events = await query(`SELECT type FROM audit_events WHERE data->>'client_id' = $1 ORDER BY id`, [c.client_id]);
    expect(events.map((e) => e.type)).toEqual(['client.created', 'client.secret_rotated']);

    const pub = await create({
      client_name: 'SPA',
      redirect_uris: ['https://spa.example.com/cb'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'none',
    });
    const none = await call('POST', `/${pub.client_id}/secret`);
    expect([none.status, none.body.code]).toEqual([409, 'conflict']);
    expect((await query('SELECT secret_sha256 FROM oidc_clients WHERE client_id = $1', [pub.client_id]))[0].secret_sha256).toBeNull();
  });

  test('an unknown or malformed client id: 404 problem+json on every operation, 400 for a malformed one', async () => {
    for (const [method, path, body] of [
      ['GET', '/NoSuchClient0000000000', undefined],
      ['PATCH', '/NoSuchClient0000000000', { client_name: 'x' }],
      ['DELETE', '/NoSuchClient0000000000', undefined],
      ['POST', '/NoSuchClient0000000000/secret', undefined],
    ] as const) {
      const r = await call(method, path, body);
      expect([method, r.status, r.headers.get('content-type'), r.body.code]).toEqual([
        method,
        404,
        expect.stringContaining('application/problem+json'),
        'not_found',
      ]);
    }
    const bad = await call('GET', '/short');
    expect([bad.status, bad.body.errors?.[0]?.field]).toEqual([400, 'client_id']);
  });

  test('a user who is not an administrator gets 403, a request without a token 401, on every operation', async () => {
    const ops = [
      ['POST', '', web()],
      ['GET', '', undefined],
      ['GET', '/NoSuchClient0000000000', undefined],
      ['PATCH', '/NoSuchClient0000000000', { client_name: 'x' }],
      ['DELETE', '/NoSuchClient0000000000', undefined],
      ['POST', '/NoSuchClient0000000000/secret', undefined],
    ] as const;
    const before = (await query('SELECT count(*)::int AS n FROM oidc_clients'))[0].n as number;
    for (const [method, path, body] of ops) {
      const asUser = await api(method, `/v1/admin/clients${path}`, { token: userToken, body });
      const anonymous = await api(method, `/v1/admin/clients${path}`, { body });
      expect([method, path, asUser.status, asUser.body.code, anonymous.status]).toEqual([method, path, 403, 'forbidden', 401]);
    }
    expect((await query('SELECT count(*)::int AS n FROM oidc_clients'))[0].n).toBe(before);
  });
});

describe('npm run create-client', () => {
  test('registers a client as the authflow-cli identity and prints its secret once; a refused client exits 65 naming the field', async () => {
    const r = await operatorCli('create-client', [
      '--name',
      'CLI client',
      '--redirect-uri',
      'https://cli.example.com/cb',
      '--redirect-uri',
      'http://localhost:8080/cb',
      '--grant-type',
      'authorization_code',
      '--grant-type',
      'refresh_token',
      '--auth-method',
      'client_secret_post',
      '--first-party',
    ]);
    expect([r.code, r.code === 0 ? '' : r.stderr]).toEqual([0, '']);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out).toMatchObject({
      client_name: 'CLI client',
      redirect_uris: ['https://cli.example.com/cb', 'http://localhost:8080/cb'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_post',
      first_party: true,
      client_secret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    });
    const [row] = await query('SELECT secret_sha256, created_by, row_to_json(c)::text AS whole FROM oidc_clients c WHERE client_id = $1', [out.client_id]);
    expect(Buffer.from(row.secret_sha256).equals(sha256(out.client_secret as string))).toBe(true);
    expect(row.created_by).toBeNull();
    expect(row.whole).not.toContain(out.client_secret);
    const [ev] = await query(`SELECT type, actor_id, request_id FROM audit_events WHERE data->>'client_id' = $1`, [out.client_id]);
    expect(ev).toMatchObject({ type: 'client.created', actor_id: null, request_id: expect.stringMatching(/^cli:/) });

    const refused = await operatorCli('create-client', [
      '--name',
      'Bad',
      '--redirect-uri',
      'http://evil.example/cb',
      '--grant-type',
      'authorization_code',
      '--auth-method',
      'none',
    ]);
    expect(refused.code).toBe(65);
    expect(refused.stderr).toMatch(/redirect_uris\.0: http:\/\/ only on a loopback host/);
  });
});

/**
 * The served OpenAPI document says what the server enforces (issue 17, item 3): what a first
 * schemathesis run found — schema-valid requests refused, undocumented statuses, a missing body
 * the document required, no operationIds — checked here against the real server.
 */
import { makeAdmin } from '../helpers/ops';
import { api } from '../helpers/stack';
import { registerAndVerify } from '../helpers/users';

type Op = {
  operationId?: string;
  parameters?: Array<{ name: string; in: string; schema: Record<string, any> }>;
  requestBody?: { required: boolean; content: Record<string, { schema: Record<string, any> }> };
  responses: Record<string, unknown>;
  security?: unknown[];
};
let doc: { paths: Record<string, Record<string, Op>> };
const ops = () => Object.entries(doc.paths).flatMap(([path, ms]) => Object.entries(ms).map(([method, op]) => ({ path, method, op })));
const op = (method: string, path: string) => doc.paths[path][method];
const bodySchema = (o: Op) => o.requestBody!.content['application/json'].schema;

beforeAll(async () => {
  doc = (await api('GET', '/openapi.json')).body;
});

test('every operation has a unique operationId', () => {
  const ids = ops().map((o) => o.op.operationId);
  expect(ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z0-9]+$/.test(id))).toBe(true);
  expect(new Set(ids).size).toBe(ids.length);
  expect(op('post', '/v1/admin/users/{id}/lock').operationId).toBe('postAdminUsersByIdLock');
});

test('statuses the server answers are documented: 400 where input is validated, 413/415 with a body, 403 on admin routes', () => {
  const missing: string[] = [];
  for (const { path, method, op: o } of ops()) {
    const need = new Set<string>(['503']);
    if (o.requestBody) ['400', '413', '415'].forEach((s) => need.add(s));
    if (o.parameters?.some((p) => p.in !== 'header')) need.add('400');
    if (path.startsWith('/v1/admin/')) ['401', '403'].forEach((s) => need.add(s));
    for (const s of need) if (!(s in o.responses)) missing.push(`${method.toUpperCase()} ${path}: ${s}`);
  }
  expect(missing).toEqual([]);
});

test('request bodies are closed (additionalProperties false) and the server refuses an unknown key', async () => {
  const open = ops()
    .filter((o) => o.op.requestBody && o.path !== '/codec/encode' && o.path !== '/codec/decode')
    .filter((o) => bodySchema(o.op).additionalProperties !== false)
    .map((o) => `${o.method} ${o.path}`);
  expect(open).toEqual([]);
  const r = await api('POST', '/v1/auth/password/forgot', { body: { email: 'x@example.com', extra: 1 } });
  expect([r.status, r.body.errors?.[0]?.field]).toEqual([400, 'extra']);
});

test('new passwords are documented with the policy lengths (12–128), presented ones with the hard cap', async () => {
  expect(bodySchema(op('post', '/v1/auth/register')).properties.password).toMatchObject({ minLength: 12, maxLength: 128 });
  expect(bodySchema(op('post', '/v1/auth/password/reset')).properties.new_password).toMatchObject({ minLength: 12, maxLength: 128 });
  expect(bodySchema(op('put', '/v1/me/password')).properties.new_password).toMatchObject({ minLength: 12, maxLength: 128 });
  expect(bodySchema(op('post', '/v1/auth/login')).properties.password).toMatchObject({ minLength: 1, maxLength: 1024 });
  const long = await api('POST', '/v1/auth/register', { body: { email: `len${Date.now()}@example.com`, password: 'x9'.repeat(64) + 'y' } });
  expect([long.status, long.body.errors?.[0]?.reason]).toEqual([400, 'too_long']);
});

test('the display-name pattern is plain (no \\p{..} classes) and is the one the server applies', async () => {
  const pattern: string = bodySchema(op('post', '/v1/auth/register')).properties.name.pattern;
  expect(pattern).not.toContain('\\p{');
  const re = new RegExp(pattern, 'u');
  for (const bad of ['a\u202eb', 'a\u200bb', 'a\nb', 'a\u2028b', 'a\u0000b', 'a\u00adb']) expect(re.test(bad)).toBe(false);
  expect(re.test('Zoë Ñandú 李')).toBe(true);
  const r = await api('POST', '/v1/auth/register', {
    body: { email: `nm${Date.now()}@example.com`, password: 'violet-tangerine-lighthouse-42', name: 'a\u2066b' },
  });
  expect([r.status, r.body.errors?.[0]?.field]).toEqual([400, 'name']);
});

test('an e-mail whose local part is over 64 characters is refused as the format says', async () => {
  const r = await api('POST', '/v1/auth/password/forgot', { body: { email: `${'a'.repeat(65)}@example.com` } });
  expect([r.status, r.body.errors?.[0]?.field]).toEqual([400, 'email']);
});

test('path parameters carry the schemas the routes parse with', () => {
  const param = (method: string, path: string, name: string) => op(method, path).parameters!.find((p) => p.name === name)!.schema;
  expect(param('get', '/v1/admin/users/{id}', 'id').format).toBe('uuid');
  expect(param('get', '/v1/admin/ops/runs/{workflowId}', 'workflowId').pattern).toMatch(/key-rotation/);
});

test('admin bodies that may be left out are optional in the document, and the server takes the bare request', async () => {
  for (const p of ['lock', 'unlock', 'suspend', 'reactivate']) expect(op('post', `/v1/admin/users/{id}/${p}`).requestBody!.required).toBe(false);
  const admin = await makeAdmin();
  const u = await registerAndVerify();
  const locked = await api('POST', `/v1/admin/users/${u.user.id}/lock`, { token: await admin.token() });
  expect([locked.status, locked.body.user?.status]).toEqual([200, 'locked']);
  const unlocked = await api('POST', `/v1/admin/users/${u.user.id}/unlock`, { token: await admin.token() });
  expect([unlocked.status, unlocked.body.user?.status]).toEqual([200, 'active']);
});

test('documented cursor grammar: the first page’s next_cursor matches the parameter pattern', async () => {
  const admin = await makeAdmin();
  for (const path of ['/v1/admin/users', '/v1/admin/audit-events']) {
    const pattern = op('get', path).parameters!.find((p) => p.name === 'cursor')!.schema.pattern as string;
    const r = await api('GET', `${path}?limit=1`, { token: await admin.token() });
    expect(r.status).toBe(200);
    expect(r.body.next_cursor).toMatch(new RegExp(pattern));
  }
});

// What the fuzzing part (reliability/fuzz.ts) found once every operation was reached with real
// credentials: each was a request the document and the server judged differently.
test('an optional admin body that is sent must be the documented object: null, [] or a string are 400', async () => {
  const admin = await makeAdmin();
  const u = await registerAndVerify();
  for (const raw of ['null', '[]', '"x"', '7']) {
    const r = await api('POST', `/v1/admin/users/${u.user.id}/unlock`, { token: await admin.token(), raw, headers: { 'Content-Type': 'application/json' } });
    expect([raw, r.status, r.body.code]).toEqual([raw, 400, 'validation_failed']);
  }
});

test('a blank admin reason is schema-valid (minLength 1) and taken as no reason, not refused', async () => {
  const admin = await makeAdmin();
  const u = await registerAndVerify();
  const r = await api('POST', `/v1/admin/users/${u.user.id}/suspend`, { token: await admin.token(), body: { reason: '\n ' } });
  expect([r.status, r.body.user?.status]).toEqual([200, 'suspended']);
});

test('a malformed confirm_self is a 400 whatever the target, as documented', async () => {
  const admin = await makeAdmin();
  const u = await registerAndVerify();
  const r = await api('POST', `/v1/admin/users/${u.user.id}/lock?confirm_self=AAA`, { token: await admin.token() });
  expect([r.status, r.body.code]).toEqual([400, 'validation_failed']);
  const other = await api('DELETE', `/v1/admin/users/00000000-0000-4000-8000-000000000000?confirm_self=maybe`, { token: await admin.token() });
  expect(other.status).toBe(400);
});

test('the codec preflight is documented, and Allow lists exactly the documented methods', async () => {
  for (const path of ['/codec/encode', '/codec/decode']) {
    expect(Object.keys(doc.paths[path]).sort()).toEqual(['options', 'post']);
    const r = await api('OPTIONS', path);
    expect([r.status, r.headers.get('allow')]).toEqual([204, 'POST, OPTIONS']);
    const wrong = await api('PATCH', path);
    expect([wrong.status, wrong.headers.get('allow')?.split(/,\s*/).sort()]).toEqual([405, ['OPTIONS', 'POST']]);
  }
});

test('lengths are counted in code points, as minLength/maxLength are: 100 emoji are a valid name, 11 characters a short password', async () => {
  expect(bodySchema(op('post', '/v1/auth/register')).properties.name).toMatchObject({ minLength: 1, maxLength: 100 });
  const name = '\u{1F98A}'.repeat(100); // 100 code points, 200 UTF-16 units
  const ok = await api('POST', '/v1/auth/register', { body: { email: `cp${Date.now()}@example.com`, password: 'violet-tangerine-lighthouse-42', name } });
  expect([ok.status, ok.body.user?.name]).toEqual([201, name]);
  const over = await api('POST', '/v1/auth/register', {
    body: { email: `cq${Date.now()}@example.com`, password: 'violet-tangerine-lighthouse-42', name: name + 'x' },
  });
  expect([over.status, over.body.errors?.[0]?.field]).toEqual([400, 'name']);
  // 11 code points as sent (NFKC would make each U+00AF two): below minLength 12, so refused.
  const short = await api('POST', '/v1/auth/register', { body: { email: `cr${Date.now()}@example.com`, password: 'qz\u00afxw\u00afvk\u00afj\u00af' } });
  expect([short.status, short.body.errors?.[0]?.reason ?? short.body.reason ?? short.body.code]).toEqual([400, expect.stringMatching(/too_short|at least 12/)]);
});

test('whitespace-only values that the schema allows are not refused: a blank admin query lists, a blank step-up code is a wrong code', async () => {
  const admin = await makeAdmin();
  const listed = await api('GET', '/v1/admin/users?query=%0D&limit=1', { token: await admin.token() });
  expect(listed.status).toBe(200);
  const blank = await api('POST', '/v1/auth/step-up/no-such-verification', { body: { code: '\t' } });
  expect([blank.status, blank.body.code]).toEqual([404, 'not_found']);
});

test('free text the server stores refuses NUL, as its documented pattern says (it had answered 500: Postgres text cannot hold U+0000)', async () => {
  const admin = await makeAdmin();
  const u = await registerAndVerify();
  const pattern = bodySchema(op('post', '/v1/admin/users/{id}/suspend')).properties.reason.pattern as string;
  expect(new RegExp(pattern, 'u').test('a\u0000b')).toBe(false);
  const r = await api('POST', `/v1/admin/users/${u.user.id}/suspend`, { token: await admin.token(), body: { reason: '*\u0000x' } });
  expect([r.status, r.body.errors?.[0]?.field]).toEqual([400, 'reason']);
  const q = await api('GET', '/v1/admin/users?query=a%00b', { token: await admin.token() });
  expect([q.status, q.body.errors?.[0]?.field]).toEqual([400, 'query']);
});

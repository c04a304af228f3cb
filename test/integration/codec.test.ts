/**
 * Encrypted payloads end to end: what the Temporal server stores is ciphertext; the admin-only
 * codec endpoint decodes it for an operator (CLI and UI), with CORS for the UI origin; codec keys
 * live in Vault, rotate, and older keys keep decrypting; every flow of a user is found by its
 * search attributes.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { ENCRYPTED_ENCODING, isEncrypted, META_KEY_ID, metaString, payloadFromJson, payloadToJson } from '../../platform/temporal/payload-codec';
import { CODEC_KEYSET_NAME } from '../../platform/temporal/codec-keys';
import { provisionTools } from '../../infra/stack/provision';
import { api, apiUrl, pg, sleep, stackInfo, uniqueEmail, waitForMail, mailsTo } from '../helpers/stack';
import { adminAccount, codeFrom, GOOD_PASSWORD, login, loginWithTotp, registerAndVerify } from '../helpers/users';
import { collectPayloads, historyToObject } from '../replay/histories';
import { stackClients, stackCodecKeys, StackClients } from '../replay/stack-codec';

const ROOT = join(__dirname, '..', '..');
let clients: StackClients;
let adminToken: string;
let userToken: string;

async function adminLogin(): Promise<string> {
  const a = await adminAccount({ name: 'Codec Operator' });
  return (await loginWithTotp(a.email, a.password, a.app)).access_token;
}

async function register(tag: string) {
  const email = uniqueEmail(tag);
  const reg = await api('POST', '/v1/auth/register', { body: { email, password: GOOD_PASSWORD } });
  expect(reg.status).toBe(201);
  return { email, userId: reg.body.user.id as string };
}

/** The plaintext JSON value of a payload in a history (decoded with the stack's codec). */
async function value(p: Payload): Promise<unknown> {
  const [plain] = await clients.codec.decode([p]);
  return defaultPayloadConverter.fromPayload(plain);
}

const codecCall = (op: 'decode' | 'encode', body: unknown, opts: { token?: string; headers?: Record<string, string> } = {}) =>
  api('POST', `/codec/${op}`, { body, token: opts.token, headers: { 'X-Namespace': 'default', ...opts.headers } });

beforeAll(async () => {
  clients = await stackClients(stackInfo());
  adminToken = await adminLogin();
  userToken = (await login((await registerAndVerify()).email, GOOD_PASSWORD)).access_token;
});

afterAll(async () => {
  await clients?.close();
});

describe('encrypted workflow payloads', () => {
  test('the Temporal server stores ciphertext: input, activity arguments and results are encrypted, no address anywhere', async () => {
    const { email, userId } = await register('codec.atrest');
    await waitForMail(email, /Verify/);
    const history = historyToObject(await clients.raw.workflow.getHandle(`email-verification:${userId}`).fetchHistory());
    const payloads = collectPayloads(history);
    const encrypted = payloads.filter(isEncrypted);
    const plain = payloads.filter((p) => !isEncrypted(p));
    // Workflow input + activity input + activity result at least.
    expect(encrypted.length).toBeGreaterThanOrEqual(3);
    // What stays plaintext is the search attributes only: the user id and the flow name.
    expect(plain.map((p) => defaultPayloadConverter.fromPayload(p)).sort()).toEqual(['email-verification', userId].sort());
    const text = JSON.stringify(history);
    expect(text).not.toContain(email);
    for (const p of encrypted) expect(metaString(p, 'encoding')).toBe(ENCRYPTED_ENCODING);
    // The service's key decrypts them back into the ids the workflow works with.
    expect(await value(encrypted[0])).toEqual(expect.objectContaining({ userId }));
  });

  test('a client with the production codec reads workflow results in plaintext', async () => {
    const { email, userId } = await register('codec.result');
    const mail = await waitForMail(email, /Verify/);
    expect((await api('POST', '/v1/auth/verify-email', { body: { token: codeFrom(mail.text) } })).status).toBe(200);
    const result = await clients.client.workflow.getHandle(`email-verification:${userId}`).result();
    expect(result).toEqual(expect.objectContaining({ status: 'verified' }));
  });
});

describe('the codec endpoint', () => {
  async function someEncryptedInput() {
    const { email, userId } = await register('codec.endpoint');
    await waitForMail(email, /Verify/);
    const history = historyToObject(await clients.raw.workflow.getHandle(`email-verification:${userId}`).fetchHistory());
    const input = collectPayloads(history).find(isEncrypted)!;
    return { userId, input: payloadToJson(input) };
  }

  test('decodes stored payloads for an admin', async () => {
    const { userId, input } = await someEncryptedInput();
    const r = await codecCall('decode', { payloads: [input] }, { token: adminToken });
    expect(r.status).toBe(200);
    expect(r.body.payloads).toHaveLength(1);
    const decoded = payloadFromJson(r.body.payloads[0]);
    expect(metaString(decoded, 'encoding')).toBe('json/plain');
    expect(defaultPayloadConverter.fromPayload(decoded)).toEqual(expect.objectContaining({ userId }));
    // The decode is audited: who, not what.
    const c = await pg();
    try {
      const rows = await c.query("SELECT actor_id, data FROM audit_events WHERE type = 'codec.decode' ORDER BY id DESC LIMIT 1");
      expect(rows.rows[0].data).toEqual({ namespace: 'default', payloads: 1 });
      expect(JSON.stringify(rows.rows[0])).not.toContain(userId);
    } finally {
      await c.end();
    }
  });

  test('encode then decode round-trips, and encode produces ciphertext under the active key', async () => {
    const plain = payloadToJson(defaultPayloadConverter.toPayload({ hello: 'operator' }));
    const enc = await codecCall('encode', { payloads: [plain] }, { token: adminToken });
    expect(enc.status).toBe(200);
    const encrypted = payloadFromJson(enc.body.payloads[0]);
    expect(isEncrypted(encrypted)).toBe(true);
    const keys = await stackCodecKeys(stackInfo());
    expect(metaString(encrypted, META_KEY_ID)).toBe(keys.active_kid);
    const dec = await codecCall('decode', { payloads: enc.body.payloads }, { token: adminToken });
    expect(defaultPayloadConverter.fromPayload(payloadFromJson(dec.body.payloads[0]))).toEqual({ hello: 'operator' });
  });

  test('needs an admin bearer token: 401 without one, 403 for a user, and never echoes the payload', async () => {
    const { input } = await someEncryptedInput();
    const none = await codecCall('decode', { payloads: [input] });
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('unauthorized');
    const user = await codecCall('decode', { payloads: [input] }, { token: userToken });
    expect(user.status).toBe(403);
    expect(user.body.code).toBe('forbidden');
    expect(JSON.stringify(user.body)).not.toContain(input.data);
  });

  test('rejects tampered ciphertext, unknown key ids, malformed bodies and other namespaces with 400', async () => {
    const { input } = await someEncryptedInput();
    const data = Buffer.from(input.data!, 'base64');
    data[data.length - 1] ^= 1;
    const tampered = await codecCall('decode', { payloads: [{ ...input, data: data.toString('base64') }] }, { token: adminToken });
    expect(tampered.status).toBe(400);
    expect(tampered.body.code).toBe('validation_failed');
    const unknownKid = { ...input, metadata: { ...input.metadata, [META_KEY_ID]: Buffer.from('c-19990101-deadbeef').toString('base64') } };
    const unknown = await codecCall('decode', { payloads: [unknownKid] }, { token: adminToken });
    expect(unknown.status).toBe(400);
    expect(unknown.body.detail).toMatch(/unknown payload key id/);
    for (const body of [[], { payloads: 'x' }, { payloads: [{ metadata: { encoding: '!!not base64!!' } }] }]) {
      const r = await codecCall('decode', body, { token: adminToken });
      expect([JSON.stringify(body), r.status, r.body.code]).toEqual([JSON.stringify(body), 400, 'validation_failed']);
    }
    const other = await codecCall('decode', { payloads: [input] }, { token: adminToken, headers: { 'X-Namespace': 'someone-else' } });
    expect(other.status).toBe(400);
  });

  test("answers the Temporal UI's CORS preflight for its origin, and only for it", async () => {
    const info = stackInfo();
    const uiOrigin = `http://localhost:${info.ports.temporalUi}`;
    const pre = await fetch(`${apiUrl()}/codec/decode`, {
      method: 'OPTIONS',
      headers: { Origin: uiOrigin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'x-namespace, content-type, authorization' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(uiOrigin);
    expect(pre.headers.get('access-control-allow-methods')).toBe('POST, OPTIONS');
    expect(pre.headers.get('access-control-allow-headers')).toBe('X-Namespace, Content-Type, Authorization');
    expect(pre.headers.get('access-control-allow-credentials')).toBe('true');
    const evil = await fetch(`${apiUrl()}/codec/decode`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' },
    });
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    // The real request from the UI origin carries the CORS header, error answers included.
    const denied = await codecCall('decode', { payloads: [] }, { headers: { Origin: uiOrigin } });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('access-control-allow-origin')).toBe(uiOrigin);
    const ok = await codecCall('decode', { payloads: [] }, { token: adminToken, headers: { Origin: uiOrigin } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(uiOrigin);
  });

  test('the Temporal UI is pointed at this endpoint (it posts to <endpoint>/decode)', async () => {
    const info = stackInfo();
    const settings = (await (await fetch(`${info.urls.temporalUi}/api/v1/settings`)).json()) as { Codec: { Endpoint: string } };
    expect(settings.Codec.Endpoint).toBe(`${info.urls.api.replace('127.0.0.1', 'localhost')}/codec`);
  });

  test('an operator reads a decrypted history with the Temporal CLI and an admin token', async () => {
    const { email, userId } = await register('codec.cli');
    await waitForMail(email, /Verify/);
    const info = stackInfo();
    const { temporal } = await provisionTools();
    const show = (extra: string[]) =>
      spawnSync(temporal, ['workflow', 'show', '--address', info.urls.temporal, '-w', `email-verification:${userId}`, '--output', 'json', ...extra], {
        encoding: 'utf8',
        timeout: 30000,
      });
    const encrypted = show([]);
    expect(encrypted.status).toBe(0);
    expect(encrypted.stdout).toContain(Buffer.from(ENCRYPTED_ENCODING).toString('base64'));
    const decoded = show(['--codec-endpoint', `${apiUrl()}/codec`, '--codec-auth', `Bearer ${adminToken}`]);
    expect(decoded.status).toBe(0);
    expect(decoded.stdout).not.toContain(Buffer.from(ENCRYPTED_ENCODING).toString('base64'));
    expect(decoded.stdout).toContain(Buffer.from('json/plain').toString('base64'));
  });
});

describe('codec keys in Vault', () => {
  test('the key set exists in Vault KV, is readable but not writable by the API (the worker rotates it: next test)', async () => {
    const info = stackInfo();
    const keys = await stackCodecKeys(info);
    expect(Object.keys(keys.keys)).toContain(keys.active_kid);
    const asRole = async (svc: 'api' | 'worker') => {
      const secret = readFileSync(info.secretIdFiles[svc], 'utf8').trim();
      const r = await fetch(`${info.urls.vault}/v1/auth/approle/login`, {
        method: 'POST',
        body: JSON.stringify({ role_id: info.roleIds[svc], secret_id: secret }),
      });
      return ((await r.json()) as { auth: { client_token: string } }).auth.client_token;
    };
    const path = `${info.urls.vault}/v1/secret/data/authflow/${CODEC_KEYSET_NAME}`;
    const apiToken = await asRole('api');
    expect((await fetch(path, { headers: { 'X-Vault-Token': apiToken } })).status).toBe(200);
    const write = await fetch(path, { method: 'POST', headers: { 'X-Vault-Token': apiToken }, body: JSON.stringify({ data: { active_kid: 'x', keys: {} } }) });
    expect(write.status).toBe(403);
  });

  test('after a rotation (operator CLI) new flows use the new key, flows under the old key still finish, and both decode', async () => {
    const info = stackInfo();
    // A flow started under the current key, still waiting for its user.
    const before = await register('codec.rotate.before');
    const firstMail = await waitForMail(before.email, /Verify/);
    const oldKid = (await stackCodecKeys(info)).active_kid;

    // An operator rotates with the CLI under the worker's Vault identity (its policy allows
    // update on the key set); under the API's identity the same command is refused.
    const cli = (svc: 'api' | 'worker', cmd: string) =>
      spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'codec-keys.ts'), cmd], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 60000,
        env: { ...process.env, ...info.serviceEnv, VAULT_ROLE_ID: info.roleIds[svc], VAULT_SECRET_ID_FILE: info.secretIdFiles[svc] },
      });
    const refused = cli('api', 'rotate');
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/403/);
    expect((await stackCodecKeys(info)).active_kid).toBe(oldKid);
    const rotate = cli('worker', 'rotate');
    expect(rotate.status).toBe(0);
    const newKid = /new active key: (\S+)/.exec(rotate.stdout)![1];
    // The status output names key ids only, never key material.
    for (const key of Object.values((await stackCodecKeys(info)).keys)) expect(rotate.stdout).not.toContain(key);
    const rotated = await stackCodecKeys(info);
    expect(rotated.active_kid).toBe(newKid);
    expect(Object.keys(rotated.keys)).toEqual(expect.arrayContaining([oldKid, newKid]));
    // The API and the worker re-read the set every CODEC_KEY_REFRESH_SECONDS (2 s in tests).
    await sleep(4500);

    const after = await register('codec.rotate.after');
    await waitForMail(after.email, /Verify/);
    const kidsOf = async (userId: string) =>
      new Set(
        collectPayloads(historyToObject(await clients.raw.workflow.getHandle(`email-verification:${userId}`).fetchHistory()))
          .filter(isEncrypted)
          .map((p) => metaString(p, META_KEY_ID)),
      );
    expect([...(await kidsOf(after.userId))]).toEqual([newKid]);
    expect(await kidsOf(before.userId)).toContain(oldKid);

    // The old flow finishes (the worker reads old-key payloads) and its history still decodes.
    expect((await api('POST', '/v1/auth/verify-email', { body: { token: codeFrom(firstMail.text) } })).status).toBe(200);
    const fresh = await stackClients(info);
    try {
      expect(await fresh.client.workflow.getHandle(`email-verification:${before.userId}`).result()).toEqual(expect.objectContaining({ status: 'verified' }));
    } finally {
      await fresh.close();
    }
    const oldInput = collectPayloads(historyToObject(await clients.raw.workflow.getHandle(`email-verification:${before.userId}`).fetchHistory())).find(
      (p) => metaString(p, META_KEY_ID) === oldKid,
    )!;
    const dec = await codecCall('decode', { payloads: [payloadToJson(oldInput)] }, { token: adminToken });
    expect(dec.status).toBe(200);
    expect(isEncrypted(payloadFromJson(dec.body.payloads[0]))).toBe(false);
    expect(await mailsTo(before.email, /Verify/)).toHaveLength(1);
  });
});

describe('search attributes', () => {
  test('every flow of a user is listed by UserId (the query in docs/workflows.md)', async () => {
    const { email, password, user } = await registerAndVerify({ name: 'Listed User' });
    const tokens = await login(email, password);
    expect(
      (await api('PUT', '/v1/me/password', { token: tokens.access_token, body: { current_password: password, new_password: `${GOOD_PASSWORD}-2` } })).status,
    ).toBe(204);
    await waitForMail(email, /password was changed/);
    const info = stackInfo();
    const { temporal } = await provisionTools();
    let flows: Array<{ type: string; id: string }> = [];
    for (let i = 0; i < 30; i++) {
      const out = spawnSync(temporal, ['workflow', 'list', '--address', info.urls.temporal, '--query', `UserId="${user.id}"`, '--output', 'json'], {
        encoding: 'utf8',
        timeout: 30000,
      });
      expect(out.status).toBe(0);
      const rows = out.stdout.trim() ? (JSON.parse(out.stdout) as Array<{ type: { name: string }; execution: { workflowId: string } }>) : [];
      flows = rows.map((r) => ({ type: r.type.name, id: r.execution.workflowId }));
      if (flows.length >= 2) break;
      await sleep(300);
    }
    expect(flows.map((f) => f.type).sort()).toEqual(['emailVerificationWorkflow', 'notificationWorkflow']);
    expect(flows.every((f) => f.id.includes(user.id))).toBe(true);
  });
});

/**
 * Vault operations over the real stack (issue 7): the Temporal Schedules the worker registers,
 * signing-key rotation under traffic (every token verified against the JWKS URL with jose's
 * remote key set, and by the API), on-demand runs for admins, encrypted backups with manifest and
 * retention, restore drills (passing and failing), a restore after the database is lost, metrics
 * and the Prometheus alert rules.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import type { TypedSearchAttributes } from '@temporalio/common';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { parseConfig } from '../../platform/config';
import { createLogger } from '../../platform/logger';
import { FlowAttr, scheduleIds, UserIdAttr } from '../../platform/temporal/ids';
import { registerSchedules } from '../../worker/schedules';
import { api, metricsText, pg, sleep, stackInfo, uniqueEmail, vaultRoot as vaultRootAdmin } from '../helpers/stack';
import { VaultAdmin } from '../../infra/stack/vault-admin';
import { closeTemporal, logLines, makeAdmin, recordPid, ROOT, startService, stopPid, temporal, waitRun, workerLogName } from '../helpers/ops';
import { GOOD_PASSWORD, login, registerAndVerify } from '../helpers/users';

jest.setTimeout(240_000);

let admin: Awaited<ReturnType<typeof makeAdmin>>;
const backupRoot = () => join(stackInfo().dataDir, 'backups');

beforeAll(async () => {
  admin = await makeAdmin();
});

afterAll(async () => {
  await closeTemporal();
});

const metrics = metricsText;
function metricValue(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line ? Number(line.split(' ').pop()) : undefined;
}
async function opsRuns(workflowId: string) {
  const c = await pg();
  try {
    return (await c.query('SELECT status, phase, actor_id, details FROM ops_runs WHERE workflow_id = $1 ORDER BY started_at DESC', [workflowId])).rows;
  } finally {
    await c.end();
  }
}
async function auditTypes(prefix: string, since: Date): Promise<Array<{ type: string; actor_id: string | null; data: any }>> {
  const c = await pg();
  try {
    return (await c.query('SELECT type, actor_id, data FROM audit_events WHERE type LIKE $1 AND created_at >= $2 ORDER BY id', [`${prefix}%`, since])).rows;
  } finally {
    await c.end();
  }
}
async function keySet(fresh = false) {
  return (await api('GET', '/v1/admin/ops', { token: await admin.token(fresh) })).body.signing_keys as Array<{
    kid: string;
    alg: 'EdDSA' | 'ES256' | 'RS256';
    status: string;
    publish_until: string | null;
  }>;
}
async function jwksKids(url = stackInfo().urls.api): Promise<string[]> {
  return ((await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
}

describe('schedules', () => {
  test('the worker registered the three schedules with the configured intervals, overlap SKIP and codec-encoded arguments', async () => {
    const { client, raw } = await temporal();
    const expected = {
      [scheduleIds.keyRotation]: ['keyRotationWorkflow', 30 * 86400],
      [scheduleIds.backup]: ['backupWorkflow', 86400],
      [scheduleIds.restoreDrill]: ['restoreDrillWorkflow', 7 * 86400],
    } as const;
    for (const [id, [type, every]] of Object.entries(expected)) {
      const d = await client.schedule.getHandle(id).describe();
      expect(d.action.workflowType).toBe(type);
      expect(d.policies.overlap).toBe(ScheduleOverlapPolicy.SKIP);
      expect(d.spec.intervals?.[0]?.every).toBe(every * 1000);
      const attrs = d.action.typedSearchAttributes as TypedSearchAttributes;
      expect(attrs.get(FlowAttr)).toBeTruthy();
      expect(attrs.get(UserIdAttr)).toBe('system');
      // Stored encrypted: a client without the codec cannot read the arguments.
      await expect(raw.schedule.getHandle(id).describe()).rejects.toThrow(/binary\/encrypted/);
    }
    const rot = await client.schedule.getHandle(scheduleIds.keyRotation).describe();
    // Retire window = access-token lifetime + key refresh + 60 s skew; propagation from config.
    expect(rot.action.args).toEqual([{ propagationDelaySeconds: 4, retireAfterSeconds: 900 + 2 + 60 }]);
  });

  test("registration is idempotent: running it again updates in place and keeps an operator's pause", async () => {
    const { client } = await temporal();
    const info = stackInfo();
    const config = parseConfig({ ...info.serviceEnv, VAULT_ROLE_ID: 'x', VAULT_SECRET_ID: 'y', BACKUP_RETENTION: '5' });
    await client.schedule.getHandle(scheduleIds.restoreDrill).pause('paused by the test');
    await registerSchedules(client, config, createLogger('silent', 'test'));
    await registerSchedules(client, config, createLogger('silent', 'test'));
    const ids: string[] = [];
    for await (const s of client.schedule.list()) ids.push(s.scheduleId);
    expect(ids.filter((i) => i.startsWith('authflow-')).sort()).toEqual([scheduleIds.backup, scheduleIds.keyRotation, scheduleIds.restoreDrill].sort());
    expect((await client.schedule.getHandle(scheduleIds.backup).describe()).action.args).toEqual([{ retention: 5 }]);
    const drill = await client.schedule.getHandle(scheduleIds.restoreDrill).describe();
    expect(drill.state.paused).toBe(true);
    expect(drill.state.note).toBe('paused by the test');
    // Back to the stack's configuration.
    await client.schedule.getHandle(scheduleIds.restoreDrill).unpause();
    await registerSchedules(client, parseConfig({ ...info.serviceEnv, VAULT_ROLE_ID: 'x', VAULT_SECRET_ID: 'y' }), createLogger('silent', 'test'));
    expect((await client.schedule.getHandle(scheduleIds.backup).describe()).action.args).toEqual([{ retention: 3 }]);
  });

  test('a triggered schedule runs its workflow (backup:scheduled-<time>) to completion', async () => {
    const { client } = await temporal();
    const h = client.schedule.getHandle(scheduleIds.backup);
    const before = (await h.describe()).info.recentActions.length;
    await h.trigger();
    let wfId: string | undefined;
    for (let i = 0; i < 100 && !wfId; i++) {
      const d = await h.describe();
      if (d.info.recentActions.length > before) wfId = d.info.recentActions[d.info.recentActions.length - 1].action.workflow.workflowId;
      else await sleep(200);
    }
    expect(wfId).toMatch(/^backup:scheduled-/);
    const result = await client.workflow.getHandle(wfId!).result();
    expect(result.backupId).toMatch(/^\d{8}T\d{6}Z-/);
    expect(existsSync(join(backupRoot(), result.backupId, 'manifest.json'))).toBe(true);
    const runs = await opsRuns(wfId!);
    expect(runs[0]).toMatchObject({ status: 'succeeded', phase: 'completed', actor_id: null });
  });
});

describe('signing-key rotation', () => {
  test('on demand: admins only; publishes a key per algorithm first, switches all after the delay; a second request is a 409', async () => {
    const user = await registerAndVerify();
    const userToken = (await login(user.email, user.password)).access_token;
    expect((await api('POST', '/v1/admin/ops/key-rotation', { token: userToken, body: {} })).status).toBe(403);
    expect((await api('POST', '/v1/admin/ops/key-rotation')).status).toBe(401);

    const since = new Date();
    const before = await keySet();
    const activeBefore = before.find((k) => k.status === 'active' && k.alg === 'EdDSA')!.kid;
    const activeBeforeAll = before.filter((k) => k.status === 'active').map((k) => k.kid);
    expect(before.filter((k) => k.status === 'active').map((k) => k.alg)).toEqual(expect.arrayContaining(['EdDSA', 'ES256', 'RS256']));
    const r = await api('POST', '/v1/admin/ops/key-rotation', { token: await admin.token(), body: {} });
    expect(r.status).toBe(202);
    expect(r.body.workflow_id).toBe('key-rotation:on-demand');
    const again = await api('POST', '/v1/admin/ops/key-rotation', { token: await admin.token() });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('conflict');

    // Phase 1: a new key per algorithm is in the JWKS (the API reloads every 2 s) but tokens are signed by the old one.
    let next: string | undefined;
    let nextAll: Array<{ kid: string; alg: string }> = [];
    for (let i = 0; i < 40 && !next; i++) {
      nextAll = (await keySet()).filter((k) => k.status === 'next');
      next = nextAll.find((k) => k.alg === 'EdDSA')?.kid;
      if (!next) await sleep(100);
    }
    expect(next).toBeDefined();
    expect(nextAll.map((k) => k.alg).sort()).toEqual(['ES256', 'EdDSA', 'RS256']);
    for (let i = 0; i < 40 && !(await jwksKids()).includes(next!); i++) await sleep(200);
    expect(await jwksKids()).toEqual(expect.arrayContaining([...activeBeforeAll, ...nextAll.map((k) => k.kid)]));
    expect(decodeProtectedHeader(await admin.token(true)).kid).toBe(activeBefore);

    // Phase 2 after KEY_PROPAGATION_DELAY (4 s): the new key signs, the old one retires but stays published.
    let state: any;
    for (let i = 0; i < 100; i++) {
      state = (await api('GET', '/v1/admin/ops/runs/key-rotation:on-demand', { token: await admin.token() })).body.state;
      if (state?.phase === 'retiring') break;
      await sleep(200);
    }
    expect(state).toMatchObject({ phase: 'retiring', kid: next, retiring: expect.arrayContaining(activeBeforeAll) });
    const switched = await keySet();
    for (const k of nextAll) expect(switched.find((x) => x.kid === k.kid)?.status).toBe('active');
    for (const kid of activeBeforeAll) expect(switched.find((x) => x.kid === kid)?.status).toBe('retiring');
    expect(Date.parse(state.removeAt) - Date.now()).toBeGreaterThan(900 * 1000); // the longest token lifetime
    for (let i = 0; i < 20 && decodeProtectedHeader(await admin.token(true)).kid !== next; i++) await sleep(500);
    expect(decodeProtectedHeader(await admin.token()).kid).toBe(next);
    expect(await jwksKids()).toEqual(expect.arrayContaining([activeBefore, next]));
    const during = await api('POST', '/v1/admin/ops/key-rotation', { token: await admin.token() });
    expect(during.status).toBe(409); // the on-demand run is still in phase 3

    const runs = await opsRuns('key-rotation:on-demand');
    expect(runs[0]).toMatchObject({ status: 'running', phase: 'signing_switched', actor_id: admin.user.id });
    const audited = (await auditTypes('ops.key_rotation.', since)).map((a) => a.type);
    expect(audited).toEqual(
      expect.arrayContaining(['ops.key_rotation.requested', 'ops.key_rotation.started', 'ops.key_rotation.key_published', 'ops.key_rotation.signing_switched']),
    );
    expect(JSON.stringify(await auditTypes('ops.key_rotation.', since))).not.toMatch(/"d":|private/);

    // Phase 3 would wait ~16 minutes here: cancel; the run is recorded as cancelled and the
    // retiring key stays published until its own publish_until (a later rotation removes it).
    const { client } = await temporal();
    await client.workflow.getHandle('key-rotation:on-demand').cancel();
    const done = await waitRun(admin.token, 'key-rotation:on-demand');
    expect(done.status).toBe('CANCELLED');
    expect((await opsRuns('key-rotation:on-demand'))[0]).toMatchObject({ status: 'failed', phase: 'cancelled' });
    expect((await keySet()).find((k) => k.kid === activeBefore)).toMatchObject({ status: 'retiring' });
  });

  test('under traffic no valid token ever fails verification, at the JWKS URL or at the API', async () => {
    // A second API with short access tokens (8 s) and a 1 s key refresh, so phase 3 happens in
    // the test: retire after 8 s + 2 s (slowest key refresh in the stack) + 2 s margin.
    const info = stackInfo();
    const port = info.ports.api + 41;
    const extra = await startService(
      'api',
      { API_PORT: String(port), ACCESS_TOKEN_TTL: '8', KEY_REFRESH_SECONDS: '1', RATE_LIMIT_ENABLED: 'false' },
      'api-rotation',
    );
    try {
      const url = extra.url!;
      const users = await Promise.all([1, 2, 3].map(() => registerAndVerify()));
      // A verifier that re-fetches the JWKS every 2 s and never on an unknown kid (cooldown = max
      // age): it succeeds only if every key is published before it signs.
      const jwks = createRemoteJWKSet(new URL(`${url}/.well-known/jwks.json`), { cacheMaxAge: 2000, cooldownDuration: 2000 });
      const issuer = info.serviceEnv.PUBLIC_BASE_URL;
      const held: Array<{ token: string; kid: string; exp: number; issuedAt: number }> = [];
      const failures: string[] = [];
      const firstSigned = new Map<string, number>();
      const firstPublished = new Map<string, number>();
      let verified = 0;
      let running = true;

      const check = async (t: { token: string; kid: string }, where: string) => {
        try {
          await jwtVerify(t.token, jwks, { issuer, audience: 'authflow', algorithms: ['EdDSA'] });
          verified++;
        } catch (err) {
          failures.push(`${where} jwks ${t.kid}: ${(err as Error).message}`);
        }
        const me = await api('GET', '/v1/me', { token: t.token });
        if (me.status !== 200) failures.push(`${where} api ${t.kid}: ${me.status} ${me.body?.code}`);
      };
      const traffic = users.map(async (u) => {
        let session = (await (
          await fetch(`${url}/v1/auth/login`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ email: u.email, password: u.password }),
          })
        ).json()) as any;
        let n = 0;
        while (running) {
          const res = await fetch(`${url}/v1/auth/refresh`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ refresh_token: session.refresh_token }),
          });
          if (res.status !== 200) {
            failures.push(`refresh ${res.status} ${await res.text()}`);
            break;
          }
          session = await res.json();
          const kid = decodeProtectedHeader(session.access_token).kid!;
          const exp = JSON.parse(Buffer.from(session.access_token.split('.')[1], 'base64url').toString()).exp as number;
          if (!firstSigned.has(kid)) firstSigned.set(kid, Date.now());
          const t = { token: session.access_token, kid, exp, issuedAt: Date.now() };
          held.push(t);
          await check(t, 'fresh');
          // Every held token that is still valid for another half second must verify too.
          if (++n % 3 === 0) {
            for (const old of held.filter((h) => h.exp * 1000 > Date.now() + 500).slice(-30)) await check(old, 'held');
          }
          await sleep(150);
        }
      });
      const watcher = (async () => {
        while (running) {
          for (const kid of await jwksKids(url).catch(() => [])) if (!firstPublished.has(kid)) firstPublished.set(kid, Date.now());
          await sleep(100);
        }
      })();

      const wfId = `key-rotation:test-traffic-${Date.now()}`;
      let oldKid: string;
      let oldKids: string[] = [];
      let result: any;
      try {
        await sleep(2000);
        const actives = (await keySet()).filter((k) => k.status === 'active');
        oldKid = actives.find((k) => k.alg === 'EdDSA')!.kid;
        oldKids = actives.map((k) => k.kid);
        const { client } = await temporal();
        const handle = await client.workflow.start('keyRotationWorkflow', {
          workflowId: wfId,
          taskQueue: 'authflow',
          args: [{ propagationDelaySeconds: 6, retireAfterSeconds: 12 }],
          typedSearchAttributes: [
            { key: UserIdAttr, value: 'system' },
            { key: FlowAttr, value: 'key-rotation' },
          ],
        });
        result = await Promise.race([handle.result(), sleep(90000).then(() => Promise.reject(new Error('rotation did not finish in 90 s')))]);
        await sleep(4000); // keep verifying after the removal too
      } finally {
        running = false;
        await Promise.allSettled([...traffic, watcher]);
      }

      expect(failures).toEqual([]);
      expect(result).toMatchObject({ phase: 'completed', removed: expect.arrayContaining(oldKids) });
      expect(oldKids).toHaveLength(3);
      const newKid = result.kid as string;
      // Tokens were signed by both keys during the test, and many were verified.
      expect(firstSigned.has(oldKid) && firstSigned.has(newKid)).toBe(true);
      expect(verified).toBeGreaterThan(50);
      // The new key was in the JWKS well before the first token it signed.
      expect(firstSigned.get(newKid)! - firstPublished.get(newKid)!).toBeGreaterThan(3000);
      // After phase 3 the old key is gone from the set and from the JWKS; the new one signs.
      expect((await keySet(true)).find((k) => k.kid === oldKid)).toBeUndefined();
      expect(await jwksKids(url)).not.toContain(oldKid);
      expect((await keySet()).find((k) => k.kid === newKid)?.status).toBe('active');
      // Every algorithm rotated: a new active key each, the old ones gone from the set and the JWKS.
      const rotated = (await keySet()).filter((k) => k.status === 'active');
      expect(rotated.map((k) => k.alg).sort()).toEqual(['ES256', 'EdDSA', 'RS256']);
      for (const kid of oldKids) expect(rotated.map((k) => k.kid)).not.toContain(kid);
      for (const kid of oldKids) expect(await jwksKids(url)).not.toContain(kid);
      // No held old-key token was still valid when its key disappeared.
      const lastOld = Math.max(...held.filter((h) => h.kid === oldKid).map((h) => h.exp * 1000));
      expect(lastOld).toBeLessThan(Date.now() - 4000);
      expect((await opsRuns(wfId))[0]).toMatchObject({ status: 'succeeded', phase: 'completed' });
    } finally {
      await stopPid(extra.pid);
    }
  });
});

describe('backups and restore drills', () => {
  test('an on-demand backup writes an encrypted database dump and Vault snapshot with checksums and a manifest', async () => {
    const since = new Date();
    const marker = await registerAndVerify({ email: uniqueEmail('backup-marker') });
    const r = await api('POST', '/v1/admin/ops/backup', { token: await admin.token(), body: {} });
    expect(r.status).toBe(202);
    expect((await api('POST', '/v1/admin/ops/backup', { token: await admin.token() })).status).toBe(409);
    const run = await waitRun(admin.token, 'backup:on-demand');
    expect(run.status).toBe('COMPLETED');
    const id = run.result.backupId as string;
    const dir = join(backupRoot(), id);
    expect(readdirSync(dir).sort()).toEqual(['SHA256SUMS', 'database.dump.enc', 'manifest.json', 'vault.snap.enc']);
    expect(readdirSync(backupRoot()).filter((n) => n.startsWith('.partial-'))).toEqual([]);
    // Checksums verify with standard tools.
    const sums = spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' });
    expect(sums.status).toBe(0);
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    expect(m).toMatchObject({
      format: 'authflow-backup/1',
      id,
      postgres: { database: 'authflow', server_version: expect.stringMatching(/^15\./), pg_dump_version: expect.stringMatching(/15\./) },
      vault: { version: expect.any(String) },
    });
    expect(m.postgres.migrations).toContain('005-vault-ops');
    const c = await pg();
    try {
      const users = Number((await c.query('SELECT count(*) FROM users')).rows[0].count);
      expect(m.postgres.tables.users).toBe(users);
    } finally {
      await c.end();
    }
    for (const p of m.parts) {
      expect(p).toMatchObject({ cipher: 'aes-256-gcm', transit_key: 'authflow-backups', wrapped_key: expect.stringMatching(/^vault:v\d+:/) });
      expect(p.plaintext_bytes).toBeGreaterThan(0);
      const bytes = readFileSync(join(dir, p.file));
      expect(bytes.length).toBe(p.bytes);
      // Ciphertext: no pg_dump header, no e-mail address of a user in the dump.
      expect(bytes.subarray(0, 5).toString()).not.toBe('PGDMP');
      expect(bytes.includes(Buffer.from(marker.email))).toBe(false);
    }
    expect(JSON.stringify(m)).not.toMatch(/plaintext"|"key":/);
    expect((await opsRuns('backup:on-demand'))[0]).toMatchObject({ status: 'succeeded', phase: 'completed', actor_id: admin.user.id });
    const audited = await auditTypes('ops.backup.', since);
    expect(audited.map((a) => a.type)).toEqual(expect.arrayContaining(['ops.backup.requested', 'ops.backup.started', 'ops.backup.completed']));
    expect(audited.find((a) => a.type === 'ops.backup.requested')!.actor_id).toBe(admin.user.id);
    const text = await metrics();
    expect(metricValue(text, 'authflow_ops_last_success_timestamp_seconds', 'operation="backup"')).toBeGreaterThanOrEqual(Math.floor(since.getTime() / 1000));
  });

  test("the Vault snapshot of a backup decrypts with the CLI and restores into a fresh Vault server with the service's secrets", async () => {
    const info = stackInfo();
    const id = readdirSync(backupRoot())
      .filter((n) => /^\d{8}T/.test(n))
      .sort()
      .pop()!;
    const work = join(info.dataDir, 'vault-restore-test');
    rmSync(work, { recursive: true, force: true });
    mkdirSync(join(work, 'raft'), { recursive: true });
    const snap = join(work, 'vault.snap');
    const env = { ...process.env, ...info.serviceEnv, VAULT_ROLE_ID: info.roleIds.worker, VAULT_SECRET_ID_FILE: info.secretIdFiles.worker };
    const dec = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/backup.ts'), 'decrypt-vault', '--backup', id, '--out', snap], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
      timeout: 120000,
    });
    if (dec.status !== 0) throw new Error(dec.stderr.slice(-2000));
    const manifest = JSON.parse(readFileSync(join(backupRoot(), id, 'manifest.json'), 'utf8'));
    expect(JSON.parse(dec.stdout)).toMatchObject({ backup: id, sha256: manifest.parts.find((p: { part: string }) => p.part === 'vault').plaintext_sha256 });
    expect(statSync(snap).mode & 0o777).toBe(0o600);

    // A fresh Vault server (same binary and config, own raft directory and ports), initialised
    // anew. The audit device stays as configured: the restored data declares the same one.
    const port = info.ports.vault + 50;
    const hcl = readFileSync(join(info.dataDir, 'vault', 'vault.hcl'), 'utf8')
      .replaceAll(join(info.dataDir, 'vault', 'raft'), join(work, 'raft'))
      .replaceAll(`:${info.ports.vault}`, `:${port}`)
      .replaceAll(`:${info.ports.vaultCluster}`, `:${info.ports.vaultCluster + 50}`);
    writeFileSync(join(work, 'vault.hcl'), hcl);
    const bin = readFileSync(`/proc/${info.pids.vault}/cmdline`, 'utf8').split('\0')[0];
    const logFd = openSync(join(info.logs, 'vault-restore-test.log'), 'a');
    const child = spawn(bin, ['server', `-config=${join(work, 'vault.hcl')}`], { stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    recordPid('vault-restore-test', child.pid!);
    try {
      const fresh = new VaultAdmin(`http://127.0.0.1:${port}`);
      await fresh.waitReachable(30000);
      const init = await fresh.init();
      await fresh.unseal(init.keys_base64);
      fresh.token = init.root_token;
      for (let i = 0; i < 100; i++) {
        try {
          await fresh.req('GET', 'sys/mounts');
          break;
        } catch {
          await sleep(200);
        }
      }
      expect(await fresh.kvGet('authflow/database').catch(() => null)).toBeNull();
      // The operator's restore: POST the plain snapshot to snapshot-force with the new root token.
      const res = await fetch(`http://127.0.0.1:${port}/v1/sys/storage/raft/snapshot-force`, {
        method: 'POST',
        headers: { 'X-Vault-Token': init.root_token },
        body: readFileSync(snap),
      });
      expect(res.status).toBeLessThan(300);
      // The restored data is the old cluster's: its unseal keys and root token apply from now on.
      const oldRoot = vaultRootAdmin();
      const restored = new VaultAdmin(`http://127.0.0.1:${port}`, oldRoot.token);
      // It seals itself after the restore; it becomes active again with the old cluster's keys.
      let secrets: Array<Record<string, unknown> | null> = [];
      for (let i = 0; i < 150; i++) {
        const h = await restored.health();
        if (h?.sealed) await restored.unseal(JSON.parse(readFileSync(info.vaultInitFile, 'utf8')).keys_base64).catch(() => undefined);
        secrets = await Promise.all(
          ['authflow/database', 'authflow/signing-keys'].map((k) =>
            restored.kvGet(k).catch((err) => {
              if (i === 100) process.stderr.write(`[restore-test] still not readable: ${JSON.stringify(h)} ${String(err).slice(0, 200)}\n`);
              return null;
            }),
          ),
        );
        if (secrets.every(Boolean)) break;
        await sleep(200);
      }
      expect(secrets[0]).toEqual(await oldRoot.kvGet('authflow/database'));
      expect((secrets[1] as { keys: unknown[] }).keys.length).toBeGreaterThan(0);
    } finally {
      child.kill('SIGKILL');
      rmSync(work, { recursive: true, force: true });
    }
  });

  test('retention keeps the newest BACKUP_RETENTION (3) complete backups', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await api('POST', '/v1/admin/ops/backup', { token: await admin.token() })).status).toBe(202);
      expect((await waitRun(admin.token, 'backup:on-demand')).status).toBe('COMPLETED');
    }
    const kept = readdirSync(backupRoot())
      .filter((n) => /^\d{8}T/.test(n))
      .sort();
    expect(kept).toHaveLength(3);
    const last = await waitRun(admin.token, 'backup:on-demand');
    expect(kept[kept.length - 1]).toBe(last.result.backupId);
    expect(last.result.removed.length).toBeGreaterThan(0);
  });

  test('a restore drill before any backup has completed is refused up front (409), not started to fail', async () => {
    const c = await pg();
    try {
      // Hide the completed backups of this stack for the duration of the request, then put them back.
      const hidden = await c.query<{ id: string }>("UPDATE ops_runs SET status = 'failed' WHERE kind = 'backup' AND status = 'succeeded' RETURNING id");
      try {
        const r = await api('POST', '/v1/admin/ops/restore-drill', { token: await admin.token() });
        expect([r.status, r.body.code, r.body.detail]).toEqual([409, 'conflict', expect.stringContaining('no backup has completed yet')]);
      } finally {
        await c.query("UPDATE ops_runs SET status = 'succeeded' WHERE id = ANY($1::text[])", [hidden.rows.map((x) => x.id)]);
      }
    } finally {
      await c.end();
    }
    // With them back, the next test's drill is started (202).
  });

  test('a restore drill restores the newest backup into the scratch database, checks counts and reports success', async () => {
    const since = new Date();
    expect((await api('POST', '/v1/admin/ops/restore-drill', { token: await admin.token(), body: {} })).status).toBe(202);
    const run = await waitRun(admin.token, 'restore-drill:on-demand');
    expect(run.status).toBe('COMPLETED');
    const newest = readdirSync(backupRoot())
      .filter((n) => /^\d{8}T/.test(n))
      .sort()
      .pop();
    expect(run.result).toMatchObject({ ok: true, backupId: newest, problems: [] });
    expect(run.result.rows).toBeGreaterThan(0);
    expect((await opsRuns('restore-drill:on-demand'))[0]).toMatchObject({ status: 'succeeded', phase: 'succeeded' });
    expect((await auditTypes('ops.restore_drill.', since)).map((a) => a.type)).toContain('ops.restore_drill.succeeded');
    const text = await metrics();
    expect(metricValue(text, 'authflow_restore_drill_success')).toBe(1);
    expect(metricValue(text, 'authflow_ops_last_success_timestamp_seconds', 'operation="restore_drill"')).toBeGreaterThanOrEqual(
      Math.floor(since.getTime() / 1000),
    );
    // The scratch database is left empty: no stray copy of personal data.
    const { Client } = await import('pg');
    const d = new Client({ connectionString: stackInfo().pgSuperuserUrl.replace(/\/postgres$/, '/authflow_restore_drill') });
    await d.connect();
    try {
      expect((await d.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'")).rows[0].n).toBe(0);
    } finally {
      await d.end();
    }
  });

  test('a corrupted backup fails the drill: failed workflow, metric 0, audit event, one error log line', async () => {
    const since = new Date();
    const newest = readdirSync(backupRoot())
      .filter((n) => /^\d{8}T/.test(n))
      .sort()
      .pop()!;
    const file = join(backupRoot(), newest, 'database.dump.enc');
    const original = readFileSync(file);
    const bad = Buffer.from(original);
    bad[Math.floor(bad.length / 2)] ^= 0xff;
    writeFileSync(file, bad);
    const worker = workerLogName();
    const workerLogStart = logLines(worker).length;
    try {
      expect((await api('POST', '/v1/admin/ops/restore-drill', { token: await admin.token() })).status).toBe(202);
      const run = await waitRun(admin.token, 'restore-drill:on-demand');
      expect(run.status).toBe('FAILED');
      expect(run.failure).toMatch(/restore drill failed: database.dump.enc checksum mismatch/);
      expect((await opsRuns('restore-drill:on-demand'))[0]).toMatchObject({
        status: 'failed',
        phase: 'failed',
        details: { backup_id: newest, problems: ['database.dump.enc checksum mismatch'] },
      });
      expect((await auditTypes('ops.restore_drill.', since)).map((a) => a.type)).toContain('ops.restore_drill.failed');
      expect(metricValue(await metrics(), 'authflow_restore_drill_success')).toBe(0);
      const errors = logLines(worker)
        .slice(workerLogStart)
        .filter((l) => l.level === 'error' && /restore drill failed/.test(l.msg));
      expect(errors).toHaveLength(1);
    } finally {
      writeFileSync(file, original);
    }
    // Repaired: the next drill passes and the gauge is back to 1.
    expect((await api('POST', '/v1/admin/ops/restore-drill', { token: await admin.token() })).status).toBe(202);
    expect((await waitRun(admin.token, 'restore-drill:on-demand')).status).toBe('COMPLETED');
    expect(metricValue(await metrics(), 'authflow_restore_drill_success')).toBe(1);
  });

  test('restore after losing the database: back up, wipe, restore with the CLI, and a user logs in (no service restart)', async () => {
    const before = await registerAndVerify({ email: uniqueEmail('restore-before') });
    expect((await api('POST', '/v1/admin/ops/backup', { token: await admin.token() })).status).toBe(202);
    const run = await waitRun(admin.token, 'backup:on-demand');
    expect(run.status).toBe('COMPLETED');
    const after = await registerAndVerify({ email: uniqueEmail('restore-after') });

    // The outage: the database is gone; the operator recreates it empty (owned by the service role).
    const { Client } = await import('pg');
    const su = new Client({ connectionString: stackInfo().pgSuperuserUrl });
    await su.connect();
    try {
      await su.query('DROP DATABASE authflow WITH (FORCE)');
      await su.query('CREATE DATABASE authflow OWNER authflow');
    } finally {
      await su.end();
    }
    expect((await api('POST', '/v1/auth/login', { body: { email: before.email, password: GOOD_PASSWORD } })).status).toBeGreaterThanOrEqual(500);

    // The documented procedure: the backup CLI with the worker's identity and configuration.
    const info = stackInfo();
    const env = { ...process.env, ...info.serviceEnv, VAULT_ROLE_ID: info.roleIds.worker, VAULT_SECRET_ID_FILE: info.secretIdFiles.worker };
    const verify = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/backup.ts'), 'verify', '--backup', run.result.backupId], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
      timeout: 120000,
    });
    expect(verify.status).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, problems: [] });
    const refused = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/backup.ts'), 'restore'], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
      timeout: 120000,
    });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/--yes/);
    const restore = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/backup.ts'), 'restore', '--yes'], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
      timeout: 180000,
    });
    if (restore.status !== 0) throw new Error(`restore failed: ${restore.stderr.slice(-3000)}`);
    expect(JSON.parse(restore.stdout)).toMatchObject({ backup: run.result.backupId, database: 'authflow', ok: true, mismatches: [] });

    // The running API (never restarted) serves from the restored database.
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await api('POST', '/v1/auth/login', { body: { email: before.email, password: GOOD_PASSWORD } })).status;
      if (status !== 200) await sleep(200);
    }
    expect(status).toBe(200);
    const tokens = await login(before.email, GOOD_PASSWORD);
    expect((await api('GET', '/v1/me', { token: tokens.access_token })).body.user.email).toBe(before.email);
    // Whoever registered after the backup is not in it.
    expect((await api('POST', '/v1/auth/login', { body: { email: after.email, password: GOOD_PASSWORD } })).status).toBe(401);
    // The worker works on the restored database too.
    expect((await api('POST', '/v1/admin/ops/restore-drill', { token: await admin.token() })).status).toBe(202);
    expect((await waitRun(admin.token, 'restore-drill:on-demand')).status).toBe('COMPLETED');
  });
});

describe('secrets stay out of logs and workflow history', () => {
  test("no database password, signing or data key material in the service logs or in the operations' workflow results", async () => {
    const root = vaultRootAdmin();
    // The KV secret names the static role; Vault's database secrets engine holds the password.
    expect(await root.kvGet('authflow/database')).toEqual({ username: 'authflow', static_role: 'authflow', mount: 'database' });
    const db = (await root.req('GET', 'database/static-creds/authflow')).data as { password: string };
    const keys = ((await root.kvGet('authflow/signing-keys')) as { keys: Array<{ private_jwk: { d: string } }> }).keys;
    const info = stackInfo();
    const logs = readdirSync(info.logs)
      .filter((f) => /^(api|worker)/.test(f))
      .map((f) => readFileSync(join(info.logs, f), 'utf8'))
      .join('\n');
    expect(logs.length).toBeGreaterThan(1000);
    const secrets = [String(db.password), ...keys.map((k) => k.private_jwk.d)];
    for (const x of secrets) expect(logs.includes(x) ? x.slice(0, 4) : null).toBeNull();
    // What the workflows returned (and so what history holds) names kids, ids and counts only.
    const { client } = await temporal();
    for (const id of ['backup:on-demand', 'restore-drill:on-demand']) {
      const out = JSON.stringify(
        await client.workflow
          .getHandle(id)
          .result()
          .catch(() => null),
      );
      for (const x of secrets) expect(out.includes(x)).toBe(false);
    }
  });
});

describe('monitoring', () => {
  test('/metrics counts and times Vault calls and exports the token TTL, availability and the operation gauges', async () => {
    const text = await metrics();
    expect(text).toMatch(/authflow_dependency_calls_total\{dependency="vault",operation="kv_read",outcome="ok"\} [1-9]/);
    expect(text).toMatch(/authflow_dependency_call_duration_seconds_count\{dependency="vault",operation="kv_read"\} [1-9]/);
    expect(metricValue(text, 'authflow_vault_token_ttl_seconds')).toBeGreaterThan(60);
    expect(metricValue(text, 'authflow_vault_available')).toBe(1);
    expect(metricValue(text, 'authflow_vault_sealed')).toBe(0);
    for (const op of ['key_rotation', 'backup', 'restore_drill']) {
      expect(metricValue(text, 'authflow_ops_last_success_timestamp_seconds', `operation="${op}"`)).toBeGreaterThan(Date.now() / 1000 - 3600);
    }
  });

  test('the Prometheus alert rules parse and only use metrics the service exports', async () => {
    // The file's rule blocks (a small reader for its regular layout: `- alert:`, `expr:`, `severity:`).
    const src = readFileSync(join(ROOT, 'infra/prometheus/alerts.yml'), 'utf8');
    const rules = src
      .split(/\n\s+- alert: /)
      .slice(1)
      .map((block) => ({
        alert: block.split('\n')[0].trim(),
        expr: /\n\s+expr: (.+)/.exec(block)?.[1] ?? '',
        labels: { severity: /\n\s+severity: (\w+)/.exec(block)?.[1] ?? '' },
      }));
    expect(src).toMatch(/^groups:$/m);
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining(['VaultSealed', 'VaultTokenRenewalFailing', 'SigningKeyRotationOverdue', 'BackupOverdue', 'RestoreDrillFailed']),
    );
    const text = await metrics();
    const exported = new Set(
      text
        .split('\n')
        .filter((l) => l.startsWith('# TYPE '))
        .map((l) => l.split(' ')[2]),
    );
    for (const r of rules) {
      expect(['critical', 'warning']).toContain(r.labels.severity);
      for (const name of r.expr.match(/authflow_[a-z_]+/g) ?? []) {
        const base = name.replace(/_(count|sum|bucket)$/, '');
        expect([r.alert, exported.has(name) || exported.has(base)]).toEqual([r.alert, true]);
      }
    }
  });
});

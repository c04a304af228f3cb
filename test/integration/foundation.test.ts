/** The real stack: migrations, Vault AppRole and policy, audit device, a workflow through the API
 * to maildev, and /readyz following Vault's seal state. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { registerAndVerify } from '../helpers/users';
import { api, metricsText, pg, stackInfo, uniqueEmail, unsealKeys, vaultRoot, waitForMail } from '../helpers/stack';

describe('the local stack', () => {
  test('migrations are applied to the service database', async () => {
    const c = await pg();
    try {
      const applied = await c.query('SELECT name FROM schema_migrations ORDER BY name');
      expect(applied.rows.map((r) => r.name)).toContain('001-initial');
      const tables = await c.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'");
      const names = tables.rows.map((r) => r.table_name);
      for (const t of ['users', 'sessions', 'refresh_tokens', 'audit_events', 'email_outbox']) expect(names).toContain(t);
    } finally {
      await c.end();
    }
  });

  test('the service logs in with AppRole, reads its secrets, and is denied paths outside its policy', async () => {
    const info = stackInfo();
    const secretId = readFileSync(info.secretIdFiles.api, 'utf8').trim();
    const login = await fetch(`${info.urls.vault}/v1/auth/approle/login`, {
      method: 'POST',
      body: JSON.stringify({ role_id: info.roleIds.api, secret_id: secretId }),
    });
    expect(login.status).toBe(200);
    const auth = ((await login.json()) as { auth: { client_token: string; policies: string[]; lease_duration: number } }).auth;
    expect(auth.policies).toContain('authflow-api');
    expect(auth.policies).not.toContain('root');
    expect(auth.lease_duration).toBeGreaterThan(0);
    const h = { 'X-Vault-Token': auth.client_token };
    const own = await fetch(`${info.urls.vault}/v1/secret/data/authflow/database`, { headers: h });
    expect(own.status).toBe(200);
    const body = (await own.json()) as { data: { data: { username: string } } };
    expect(body.data.data.username).toBe('authflow');
    for (const path of ['secret/data/other-app/config', 'sys/mounts', 'auth/approle/role/authflow-api/secret-id', 'secret/data/authflow/signing-keys-other']) {
      const denied = await fetch(`${info.urls.vault}/v1/${path}`, { headers: h });
      expect([path, denied.status]).toEqual([path, 403]);
    }
    // The root token is nowhere in the service's environment.
    expect(JSON.stringify(info.serviceEnv)).not.toContain(JSON.parse(readFileSync(info.vaultInitFile, 'utf8')).root_token);
  });

  test('the file audit device records requests (with values HMACed)', async () => {
    const root = vaultRoot();
    const audits = await root.req('GET', 'sys/audit');
    const file = audits['file/'] ?? audits.data?.['file/'];
    expect(file?.type).toBe('file');
    const path = file.options.file_path as string;
    expect(existsSync(path)).toBe(true);
    const lines = readFileSync(path, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const logins = lines.filter((l) => l.request?.path === 'auth/approle/login' && l.type === 'response');
    expect(logins.length).toBeGreaterThan(0);
    // Secrets are HMACed in the audit log, never stored plain.
    expect(String(logins[0].auth?.client_token ?? 'hmac-sha256:')).toMatch(/^hmac-sha256:/);
  });

  test('a workflow started through the API runs on the worker and its e-mail arrives', async () => {
    const email = uniqueEmail('flow');
    const reg = await api('POST', '/v1/auth/register', { body: { email, password: 'ample-marmot-orchestra-17' } });
    expect(reg.status).toBe(201);
    const mail = await waitForMail(email, /Verify your e-mail/);
    expect(mail.text).toMatch(/verification code is: \S{20,}/);
    const connection = await Connection.connect({ address: stackInfo().urls.temporal });
    try {
      const client = new Client({ connection });
      const desc = await client.workflow.getHandle(`email-verification:${reg.body.user.id}`).describe();
      expect(desc.type).toBe('emailVerificationWorkflow');
      expect(desc.taskQueue).toBe('authflow');
      expect(desc.searchAttributes.UserId).toEqual([reg.body.user.id]);
    } finally {
      await connection.close();
    }
  });

  test('/readyz stays ready while Vault is sealed (degraded, naming Vault: sign-in keeps working), and ok again after unseal', async () => {
    const before = await api('GET', '/readyz');
    expect([before.status, before.body.status, before.body.degraded]).toEqual([200, 'ok', []]);
    const { email, password } = await registerAndVerify();
    const root = vaultRoot();
    await root.seal();
    try {
      const r = await api('GET', '/readyz');
      // A load balancer keeps the instance: pulling every one at once would stop sign-ins too.
      expect([r.status, r.body.status, r.body.degraded]).toEqual([200, 'degraded', ['vault']]);
      expect(r.body.checks).toMatchObject({ postgres: 'ok', signing_keys: 'ok', vault: expect.stringMatching(/^failed: /) });
      expect(await metricsText()).toMatch(/authflow_readiness_check\{check="vault",kind="degradable"\} 0/);
      expect((await api('POST', '/v1/auth/login', { body: { email, password } })).status).toBe(200);
      expect((await api('GET', '/healthz')).status).toBe(200);
    } finally {
      await root.unseal(unsealKeys());
    }
    let status = '';
    for (let i = 0; i < 50 && status !== 'ok'; i++) {
      status = (await api('GET', '/readyz')).body.status;
      if (status !== 'ok') await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe('ok');
  });

  test('metrics count dependency calls by operation and outcome', async () => {
    const text = await metricsText();
    expect(text).toMatch(/authflow_dependency_calls_total\{dependency="vault",operation="approle_login",outcome="ok"\} \d+/);
    expect(text).toMatch(/authflow_dependency_call_duration_seconds_bucket\{le="[^"]+",dependency="postgres"/);
    expect(text).toMatch(/authflow_vault_token_ttl_seconds \d+/);
  });

  test('secrets never appear in the service logs', () => {
    const info = stackInfo();
    const logs = ['api.log', 'worker.log'].map((f) => readFileSync(join(info.logs, f), 'utf8')).join('\n');
    const secretId = readFileSync(info.secretIdFiles.api, 'utf8').trim();
    expect(logs).not.toContain(secretId);
    expect(logs).not.toContain(JSON.parse(readFileSync(info.vaultInitFile, 'utf8')).root_token);
  });
});

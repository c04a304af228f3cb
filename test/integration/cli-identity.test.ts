/**
 * Operator commands log in to Vault as themselves (issue 19 item 6): `create-admin` uses the
 * authflow-cli AppRole, never a service's secret-id, so running it spends none of the API's or the
 * worker's secret-id uses; the authflow-cli policy reads the database login and nothing else; a
 * used-up secret-id stops the command with a clear refusal and changes nothing.
 */
import { readFileSync } from 'node:fs';
import { query, stackInfo, uniqueEmail, vaultRoot } from '../helpers/stack';
import { createAdminCli } from '../helpers/ops';

jest.setTimeout(120_000);

const PASSWORD = 'cobalt-orchard-lantern-58';

const createAdmin = (email: string, env: Record<string, string> = {}) => createAdminCli(email, { ADMIN_PASSWORD: PASSWORD, ...env });

const secretIdOf = (kind: 'api' | 'worker' | 'cli') => readFileSync(stackInfo().secretIdFiles[kind], 'utf8').trim();

/** Remaining uses of a secret-id (Vault's lookup, as the root token). */
async function usesLeft(role: string, secretId: string): Promise<number> {
  const r = await vaultRoot().req('POST', `auth/approle/role/${role}/secret-id/lookup`, { secret_id: secretId });
  return r.data.secret_id_num_uses as number;
}

async function cliLogin(secretId: string): Promise<string> {
  const r = await vaultRoot().req('POST', 'auth/approle/login', { role_id: stackInfo().roleIds.cli, secret_id: secretId });
  return r.auth.client_token as string;
}

async function readAs(token: string, path: string): Promise<number> {
  return (await fetch(`${stackInfo().urls.vault}/v1/${path}`, { headers: { 'X-Vault-Token': token } })).status;
}

describe('create-admin logs in as authflow-cli', () => {
  test("two runs spend two of the CLI's own secret-id uses and none of the API's or the worker's", async () => {
    const before = {
      api: await usesLeft('authflow-api', secretIdOf('api')),
      worker: await usesLeft('authflow-worker', secretIdOf('worker')),
      cli: await usesLeft('authflow-cli', secretIdOf('cli')),
    };
    for (const email of [uniqueEmail('cli-admin'), uniqueEmail('cli-admin')]) {
      const r = await createAdmin(email);
      expect([r.code, r.code === 0 ? '' : r.stderr]).toEqual([0, '']);
      expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toMatchObject({ result: 'created' });
    }
    expect({
      api: await usesLeft('authflow-api', secretIdOf('api')),
      worker: await usesLeft('authflow-worker', secretIdOf('worker')),
      cli: await usesLeft('authflow-cli', secretIdOf('cli')),
    }).toEqual({ ...before, cli: before.cli - 2 });
  });

  test('the authflow-cli policy reads the database login and nothing else', async () => {
    const secret = (await vaultRoot().req('POST', 'auth/approle/role/authflow-cli/secret-id', { num_uses: 1, ttl: '60s' })).data.secret_id;
    const token = await cliLogin(secret);
    expect(await readAs(token, 'secret/data/authflow/database')).toBe(200);
    expect(await readAs(token, 'database/static-creds/authflow')).toBe(200);
    for (const path of ['secret/data/authflow/signing-keys', 'secret/data/authflow/smtp', 'secret/data/authflow/codec-keys', 'secret/data/authflow/temporal']) {
      expect([path, await readAs(token, path)]).toEqual([path, 403]);
    }
    const transit = await fetch(`${stackInfo().urls.vault}/v1/transit/decrypt/authflow-totp`, {
      method: 'POST',
      headers: { 'X-Vault-Token': token, 'Content-Type': 'application/json' },
      body: JSON.stringify({ ciphertext: 'vault:v1:AAAA' }),
    });
    expect(transit.status).toBe(403);
  });

  test('a used-up secret-id: exit 77 with a refusal that says what to do, no account created', async () => {
    const secret = (await vaultRoot().req('POST', 'auth/approle/role/authflow-cli/secret-id', { num_uses: 1, ttl: '60s' })).data.secret_id;
    await cliLogin(secret); // spends its only use
    const email = uniqueEmail('cli-refused');
    const r = await createAdmin(email, { VAULT_SECRET_ID: secret });
    expect(r.code).toBe(77);
    expect(r.stderr).toMatch(/vault login refused .*secret-id is used up, expired or not this role's; mint a new one/);
    expect(await query('SELECT 1 FROM users WHERE email = $1', [email])).toHaveLength(0);
  });
});

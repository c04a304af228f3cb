/**
 * docker-compose's one-shot bootstrap job (the container counterpart of what infra/stack/stack.ts
 * does for `npm run dev`): initialise/unseal Vault, apply infra/vault/, create the service's
 * database role with a password only Vault knows, store the SMTP credentials in Vault, write each
 * service's role-id and a fresh secret-id into /secrets, and run the migrations.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { readInit, VaultAdmin, writeSecretFile } from './vault-admin';

const env = (name: string) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};
const fileEnv = (name: string) => readFileSync(env(name), 'utf8').trim();

async function main() {
  const dir = process.env.BOOTSTRAP_DIR ?? '/bootstrap';
  const secrets = process.env.SECRETS_DIR ?? '/secrets';
  mkdirSync(dir, { recursive: true });
  mkdirSync(secrets, { recursive: true });
  const admin = new VaultAdmin(env('VAULT_ADDR'));
  await admin.waitReachable(60000);
  const initFile = join(dir, 'vault-init.json');
  const health = (await admin.health())!;
  if (!health.initialized) {
    writeSecretFile(initFile, JSON.stringify(await admin.init()));
    process.stdout.write('vault initialised; move the unseal key and root token out of this volume for anything but a trial\n');
  }
  const init = readInit(initFile);
  if (!init) throw new Error(`vault is initialised but ${initFile} is missing`);
  await admin.unseal(init.keys_base64);
  admin.token = init.root_token;
  for (let i = 0; ; i++) {
    try {
      await admin.req('GET', 'sys/mounts');
      break;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  if (!existsSync(join(dir, 'bootstrapped'))) {
    await admin.bootstrap('/vault/logs');
    writeSecretFile(join(dir, 'bootstrapped'), new Date().toISOString());
  }
  if (!(await admin.kvGet('authflow/database'))) {
    const password = randomBytes(24).toString('base64url');
    const c = new Client({ connectionString: fileEnv('PG_SUPERUSER_URL_FILE') });
    await c.connect();
    const role = await c.query("SELECT 1 FROM pg_roles WHERE rolname = 'authflow'");
    await c.query(`${role.rowCount ? 'ALTER' : 'CREATE'} ROLE authflow LOGIN PASSWORD '${password}'`);
    if (!(await c.query("SELECT 1 FROM pg_database WHERE datname = 'authflow'")).rowCount) await c.query('CREATE DATABASE authflow OWNER authflow');
    await c.end();
    await admin.kvPut('authflow/database', { username: 'authflow', password });
  }
  await admin.kvPut('authflow/smtp', { username: 'authflow', password: fileEnv('SMTP_PASSWORD_FILE') });
  for (const svc of ['api', 'worker', 'cli']) {
    writeSecretFile(join(secrets, `${svc}.role-id`), await admin.roleId(`authflow-${svc}`));
    writeSecretFile(join(secrets, `${svc}.secret-id`), await admin.secretId(`authflow-${svc}`));
  }
  const r = spawnSync(process.execPath, ['dist/cli/migrate.js'], {
    stdio: 'inherit',
    env: { ...process.env, VAULT_ROLE_ID_FILE: join(secrets, 'cli.role-id'), VAULT_SECRET_ID_FILE: join(secrets, 'cli.secret-id') },
  });
  if (r.status !== 0) throw new Error('migrations failed');
  process.stdout.write('bootstrap done\n');
}

main().catch((err) => {
  process.stderr.write(`bootstrap failed: ${(err as Error).message}\n`);
  process.exit(1);
});

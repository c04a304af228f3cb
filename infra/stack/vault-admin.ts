/**
 * What the launcher does to Vault with the root token (the "trusted orchestrator" role):
 * initialise, unseal, bootstrap from infra/vault/, and mint AppRole secret-ids for the service.
 * The service itself never sees the root token: it gets a role-id and a secret-id file.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const INFRA = join(__dirname, '..', 'vault');

export interface VaultInit {
  keys_base64: string[];
  root_token: string;
}

export class VaultAdmin {
  constructor(
    readonly addr: string,
    public token = '',
  ) {}

  async req(method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<any> {
    const res = await fetch(`${this.addr}/v1/${path}`, {
      method,
      headers: { 'X-Vault-Token': this.token, 'Content-Type': 'application/json', ...extraHeaders },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15000),
    });
    const text = await res.text();
    if (!res.ok && !(path === 'sys/health')) {
      throw new Error(`vault ${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    }
    return text ? JSON.parse(text) : null;
  }

  async health(): Promise<{ initialized: boolean; sealed: boolean } | null> {
    try {
      const res = await fetch(`${this.addr}/v1/sys/health`, { signal: AbortSignal.timeout(2000) });
      return (await res.json()) as { initialized: boolean; sealed: boolean };
    } catch {
      return null;
    }
  }

  async waitReachable(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await this.health()) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`vault did not answer at ${this.addr} within ${timeoutMs} ms`);
  }

  async init(): Promise<VaultInit> {
    return this.req('POST', 'sys/init', { secret_shares: 1, secret_threshold: 1 });
  }

  async unseal(keys: string[]): Promise<void> {
    for (const key of keys) {
      const r = await this.req('POST', 'sys/unseal', { key });
      if (!r.sealed) return;
    }
    throw new Error('vault is still sealed after all unseal keys');
  }

  async seal(): Promise<void> {
    await this.req('POST', 'sys/seal');
  }

  /** Applies infra/vault/bootstrap.json and the policies in infra/vault/policies/. Idempotent. */
  async bootstrap(dataDir: string): Promise<void> {
    const spec = JSON.parse(readFileSync(join(INFRA, 'bootstrap.json'), 'utf8'));
    const mounts = await this.req('GET', 'sys/mounts');
    for (const e of spec.secret_engines) {
      if (!mounts[`${e.path}/`] && !mounts.data?.[`${e.path}/`]) {
        await this.req('POST', `sys/mounts/${e.path}`, { type: e.type, options: e.options });
      }
    }
    for (const k of spec.transit_keys) {
      await this.req('POST', `transit/keys/${k.name}`, { type: k.type });
    }
    await this.applyPolicies();
    const auths = await this.req('GET', 'sys/auth');
    if (!auths['approle/'] && !auths.data?.['approle/']) {
      await this.req('POST', 'sys/auth/approle', { type: 'approle' });
    }
    for (const role of spec.approle_roles) {
      const { name, ...rest } = role as Record<string, unknown>;
      // Keys starting with `_` are notes for the reader, not Vault parameters.
      const body = Object.fromEntries(Object.entries(rest).filter(([k]) => !k.startsWith('_')));
      await this.req('POST', `auth/approle/role/${String(name)}`, body);
    }
    const audits = await this.req('GET', 'sys/audit');
    const a = spec.audit;
    if (!audits[`${a.path}/`] && !audits.data?.[`${a.path}/`]) {
      try {
        await this.req('PUT', `sys/audit/${a.path}`, { type: a.type, options: { file_path: join(dataDir, a.file) } });
      } catch (err) {
        // OpenBao (the documented fallback server) only accepts audit devices from its config file.
        if (!String(err).includes('declarative')) throw err;
      }
    }
  }

  /** Writes the policies in infra/vault/policies/ (idempotent). */
  async applyPolicies(): Promise<void> {
    const spec = JSON.parse(readFileSync(join(INFRA, 'bootstrap.json'), 'utf8'));
    for (const name of spec.policies) {
      const policy = readFileSync(join(INFRA, 'policies', `${name}.hcl`), 'utf8');
      await this.req('PUT', `sys/policies/acl/${name}`, { policy });
    }
  }

  /** Whether the database secrets engine already manages the service's Postgres role. */
  async databaseEngineConfigured(): Promise<boolean> {
    const spec = JSON.parse(readFileSync(join(INFRA, 'bootstrap.json'), 'utf8')).database;
    try {
      await this.req('GET', `database/static-roles/${spec.static_roles[0].name}`);
      return true;
    } catch (err) {
      if (/: (404|400) /.test(String(err))) return false;
      throw err;
    }
  }

  /**
   * Hands the service role's password to Vault's database secrets engine (bootstrap.json
   * `database`): the connection as `vault_user` (whose password Vault then rotates, so only Vault
   * knows it), and the static roles, which Vault rotates at once and every rotation_period.
   * Idempotent for a launcher that runs again: callers check databaseEngineConfigured() first.
   */
  async configureDatabaseEngine(o: {
    host: string;
    port: number;
    database: string;
    vaultUserPassword: string;
  }): Promise<{ kvPointer: Record<string, string> }> {
    const spec = JSON.parse(readFileSync(join(INFRA, 'bootstrap.json'), 'utf8'));
    const db = spec.database;
    const mounts = await this.req('GET', 'sys/mounts');
    if (!mounts['database/'] && !mounts.data?.['database/']) await this.req('POST', 'sys/mounts/database', { type: 'database' });
    await this.applyPolicies();
    await this.req('POST', `database/config/${db.connection}`, {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://{{username}}:{{password}}@${o.host}:${o.port}/${o.database}?sslmode=disable`,
      username: db.vault_user,
      password: o.vaultUserPassword,
      allowed_roles: db.static_roles.map((r: { name: string }) => r.name),
      verify_connection: true,
    });
    await this.req('POST', `database/rotate-root/${db.connection}`);
    for (const r of db.static_roles as Array<{ name: string; username: string; rotation_period: string }>) {
      await this.req('POST', `database/static-roles/${r.name}`, { db_name: db.connection, username: r.username, rotation_period: r.rotation_period });
    }
    const first = db.static_roles[0];
    return { kvPointer: { username: first.username, static_role: first.name, mount: 'database' } };
  }

  async roleId(role: string): Promise<string> {
    return (await this.req('GET', `auth/approle/role/${role}/role-id`)).data.role_id;
  }

  /**
   * Mints a secret-id the way production should: response-wrapped, then unwrapped by the
   * consumer side (here the launcher, standing in for it), so the plain secret-id never
   * crosses the orchestrator.
   */
  async secretId(role: string): Promise<string> {
    const wrapped = await this.req('POST', `auth/approle/role/${role}/secret-id`, {}, { 'X-Vault-Wrap-TTL': '120s' });
    const unwrapper = new VaultAdmin(this.addr, wrapped.wrap_info.token);
    const un = await unwrapper.req('POST', 'sys/wrapping/unwrap');
    return un.data.secret_id;
  }

  async kvPut(path: string, data: Record<string, unknown>): Promise<void> {
    await this.req('POST', `secret/data/${path}`, { data });
  }

  async kvGet(path: string): Promise<Record<string, unknown> | null> {
    try {
      return (await this.req('GET', `secret/data/${path}`)).data.data;
    } catch (err) {
      if (String(err).includes(': 404')) return null;
      throw err;
    }
  }
}

export function renderVaultConfig(dataDir: string, port: number, clusterPort: number): string {
  return readFileSync(join(INFRA, 'vault.hcl'), 'utf8')
    .replaceAll('{{DATA_DIR}}', dataDir)
    .replaceAll('{{PORT}}', String(port))
    .replaceAll('{{CLUSTER_PORT}}', String(clusterPort));
}

export function readInit(file: string): VaultInit | null {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as VaultInit) : null;
}

export function writeSecretFile(file: string, content: string) {
  writeFileSync(file, content, { mode: 0o600 });
}

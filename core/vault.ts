/**
 * The service's Vault client. Logs in with AppRole (never a root token), renews its token at two
 * thirds of its TTL, logs in again when renewal fails, and classifies failures: network errors,
 * 5xx and a sealed Vault are `DependencyError('vault')` (503 for clients); 403 is a policy denial.
 * Every call is counted and timed in /metrics.
 */
import { readFile } from 'node:fs/promises';
import nodeVault from 'node-vault';
import { DependencyError } from './errors';
import type { Logger } from './logger';
import { instrument, vaultTokenRenewals, vaultTokenTtl } from './metrics';

export interface VaultOptions {
  addr: string;
  roleId?: string;
  roleIdFile?: string;
  secretId?: string;
  secretIdFile?: string;
  kvMount: string;
  kvPrefix: string;
  transitMount: string;
  timeoutMs: number;
  logger: Logger;
}

/** Vault answered with a status (403, 400, ...) that a retry will not change. */
export class VaultRequestError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(`vault answered ${statusCode}: ${message}`);
    this.name = 'VaultRequestError';
  }
}

interface RawVaultError {
  response?: { statusCode?: number; body?: { errors?: string[] } };
  code?: string;
  message?: string;
}

function classify(err: unknown): Error {
  const e = err as RawVaultError;
  const status = e?.response?.statusCode;
  if (status === undefined) return new DependencyError('vault', err); // network, timeout
  if (status >= 500 || status === 429) return new DependencyError('vault', err); // sealed, standby
  return new VaultRequestError(status, (e.response?.body?.errors ?? []).join('; ') || 'error');
}

export class VaultClient {
  private readonly client: nodeVault.client;
  private renewTimer: NodeJS.Timeout | undefined;
  private tokenExpiresAt = 0;
  private loginInFlight: Promise<void> | undefined;
  private stopped = false;
  /** Whether the last renewal or login attempt failed (logged once per change). */
  private degraded = false;

  constructor(private readonly opts: VaultOptions) {
    this.client = nodeVault({
      apiVersion: 'v1',
      endpoint: opts.addr,
      requestOptions: { timeout: opts.timeoutMs },
    });
    this.client.token = '';
  }

  get kvMount() {
    return this.opts.kvMount;
  }

  /** Seconds the current token has left, as last seen. */
  tokenTtlSeconds(): number {
    return Math.max(0, Math.round((this.tokenExpiresAt - Date.now()) / 1000));
  }

  private async roleId(): Promise<string> {
    if (this.opts.roleId) return this.opts.roleId;
    return (await readFile(this.opts.roleIdFile!, 'utf8')).trim();
  }

  private async secretId(): Promise<string> {
    if (this.opts.secretId) return this.opts.secretId;
    return (await readFile(this.opts.secretIdFile!, 'utf8')).trim();
  }

  /** AppRole login; concurrent callers share one attempt. */
  login(): Promise<void> {
    if (!this.loginInFlight) {
      this.loginInFlight = this.doLogin().finally(() => {
        this.loginInFlight = undefined;
      });
    }
    return this.loginInFlight;
  }

  private async doLogin(): Promise<void> {
    const [roleId, secretId] = [await this.roleId(), await this.secretId()];
    try {
      const res = await instrument('vault', 'approle_login', () =>
        this.client.write('auth/approle/login', { role_id: roleId, secret_id: secretId }),
      );
      this.client.token = res.auth.client_token;
      this.onToken(res.auth.lease_duration, res.auth.renewable);
      vaultTokenRenewals.inc({ kind: 'login', outcome: 'ok' });
      this.setDegraded(false);
      this.opts.logger.info({ ttl: res.auth.lease_duration }, 'vault: logged in with AppRole');
    } catch (err) {
      vaultTokenRenewals.inc({ kind: 'login', outcome: 'error' });
      throw classify(err);
    }
  }

  private onToken(ttlSeconds: number, renewable: boolean) {
    this.tokenExpiresAt = Date.now() + ttlSeconds * 1000;
    vaultTokenTtl.set(ttlSeconds);
    this.schedule(renewable ? (ttlSeconds * 2000) / 3 : Math.max(1000, (ttlSeconds - 10) * 1000));
  }

  private schedule(ms: number) {
    if (this.stopped) return;
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => void this.renewOrLogin(), Math.max(500, ms));
    this.renewTimer.unref();
  }

  private setDegraded(degraded: boolean, err?: unknown) {
    if (degraded === this.degraded) return;
    this.degraded = degraded;
    if (degraded) {
      this.opts.logger.error({ err: String((err as Error)?.message ?? err) }, 'vault: token renewal and re-login failing');
    } else {
      this.opts.logger.info('vault: token healthy again');
    }
  }

  /** Renew the token; if that fails (revoked, expired, max TTL reached), log in again. */
  async renewOrLogin(): Promise<void> {
    try {
      const res = await instrument('vault', 'token_renew_self', () => this.client.tokenRenewSelf());
      vaultTokenRenewals.inc({ kind: 'renew', outcome: 'ok' });
      const ttl: number = res.auth.lease_duration;
      // A token near its max TTL renews to less than asked for: log in before it lapses.
      if (ttl < 30) {
        await this.login();
      } else {
        this.onToken(ttl, res.auth.renewable);
      }
      this.setDegraded(false);
    } catch (renewErr) {
      vaultTokenRenewals.inc({ kind: 'renew', outcome: 'error' });
      this.opts.logger.warn({ err: (renewErr as Error).message }, 'vault: token renewal failed, logging in again');
      try {
        await this.login();
      } catch (loginErr) {
        this.setDegraded(true, loginErr);
        this.schedule(5000);
      }
    }
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.login();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.renewTimer);
  }

  /**
   * Runs one Vault request. A 403 may mean our token was revoked out of band: log in again once
   * and retry before giving up.
   */
  private async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    if (!this.client.token) await this.login();
    try {
      return await instrument('vault', operation, fn);
    } catch (err) {
      const c = classify(err);
      if (c instanceof VaultRequestError && c.statusCode === 403) {
        try {
          await this.login();
        } catch {
          throw c;
        }
        try {
          return await instrument('vault', operation, fn);
        } catch (err2) {
          throw classify(err2);
        }
      }
      throw c;
    }
  }

  private kvPath(kind: 'data' | 'metadata', name: string) {
    return `${this.opts.kvMount}/${kind}/${this.opts.kvPrefix}/${name}`;
  }

  /** Reads a KV v2 secret under the service prefix; null when it does not exist. */
  async kvGet<T = Record<string, unknown>>(name: string): Promise<T | null> {
    try {
      const res = await this.call('kv_read', () => this.client.read(this.kvPath('data', name)));
      return (res?.data?.data ?? null) as T | null;
    } catch (err) {
      if (err instanceof VaultRequestError && err.statusCode === 404) return null;
      throw err;
    }
  }

  /** Writes a KV v2 secret; with `cas` the write only succeeds at that version (0 = create only). */
  async kvPut(name: string, data: Record<string, unknown>, cas?: number): Promise<number> {
    const body: Record<string, unknown> = { data };
    if (cas !== undefined) body.options = { cas };
    const res = await this.call('kv_write', () => this.client.write(this.kvPath('data', name), body));
    return res?.data?.version as number;
  }

  async transit(op: 'sign' | 'encrypt' | 'decrypt' | 'datakey', path: string, body: Record<string, unknown>) {
    const res = await this.call(`transit_${op}`, () =>
      this.client.write(`${this.opts.transitMount}/${path}`, body),
    );
    return res.data as Record<string, string>;
  }

  /** Raw read/write for callers that know their path (tests, ops). */
  read(path: string) {
    return this.call('read', () => this.client.read(path));
  }
  write(path: string, body: Record<string, unknown>) {
    return this.call('write', () => this.client.write(path, body));
  }

  /** Unauthenticated health; resolves with the seal state, rejects when unreachable. */
  async health(): Promise<{ initialized: boolean; sealed: boolean }> {
    try {
      const body = await instrument('vault', 'health', () => this.client.health());
      return { initialized: !!body.initialized, sealed: !!body.sealed };
    } catch (err) {
      throw classify(err);
    }
  }

  /** For /readyz: the token is still valid (lookup-self answers). */
  async checkToken(): Promise<void> {
    const res = await this.call('token_lookup_self', () => this.client.tokenLookupSelf());
    const ttl = res?.data?.ttl;
    if (typeof ttl === 'number') {
      vaultTokenTtl.set(ttl);
      this.tokenExpiresAt = Date.now() + ttl * 1000;
    }
  }
}

export function vaultFromConfig(
  c: {
    VAULT_ADDR: string; VAULT_ROLE_ID?: string; VAULT_ROLE_ID_FILE?: string; VAULT_SECRET_ID?: string; VAULT_SECRET_ID_FILE?: string;
    VAULT_KV_MOUNT: string; VAULT_KV_PREFIX: string; VAULT_TRANSIT_MOUNT: string; VAULT_TIMEOUT_MS: number;
  },
  logger: Logger,
): VaultClient {
  return new VaultClient({
    addr: c.VAULT_ADDR,
    roleId: c.VAULT_ROLE_ID,
    roleIdFile: c.VAULT_ROLE_ID_FILE,
    secretId: c.VAULT_SECRET_ID,
    secretIdFile: c.VAULT_SECRET_ID_FILE,
    kvMount: c.VAULT_KV_MOUNT,
    kvPrefix: c.VAULT_KV_PREFIX,
    transitMount: c.VAULT_TRANSIT_MOUNT,
    timeoutMs: c.VAULT_TIMEOUT_MS,
    logger,
  });
}

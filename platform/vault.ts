/**
 * The service's Vault client. Logs in with AppRole (never a root token), renews its token at two
 * thirds of its TTL, logs in again when renewal fails, and classifies failures: network errors,
 * 5xx and a sealed Vault are `DependencyError('vault')` (503 for clients); 4xx are
 * `VaultRequestError`. Transient failures are retried with exponential backoff (not 4xx, and only
 * once per call while Vault is known to be down, so requests fail fast); a 403 is retried after a
 * fresh login only when our token turns out to be invalid (revoked out of band), never for a
 * policy denial. Conditions (Vault unavailable, available again, a policy denial, renewal
 * failing) are logged once when they start and once when they end, not per request.
 * Every call is counted and timed in /metrics.
 */
import { readFile } from 'node:fs/promises';
import nodeVault from 'node-vault';
import { DependencyError } from './errors';
import type { Logger } from './logger';
import { instrument, vaultAvailable, vaultSealed, vaultTokenRenewalFailing, vaultTokenRenewals } from './metrics';

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
  /** Retries after a transient failure (default 2) and the first backoff in ms (default 100). */
  retries?: number;
  retryBaseMs?: number;
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

/** The parts of Vault's JSON replies this client reads (node-vault types them `any`). */
export interface VaultReply {
  auth: { client_token: string; lease_duration: number; renewable: boolean };
  data?: {
    data?: Record<string, unknown>;
    metadata?: { version?: number };
    version?: number;
    ttl?: number;
    [key: string]: unknown;
  };
}

/** node-vault's client, as this module uses it. */
interface VaultHttp {
  token: string;
  read(path: string): Promise<VaultReply>;
  write(path: string, body: Record<string, unknown>): Promise<VaultReply>;
  delete(path: string): Promise<VaultReply>;
  tokenRenewSelf(): Promise<VaultReply>;
  tokenLookupSelf(): Promise<VaultReply>;
  status(): Promise<{ sealed: boolean; version?: string }>;
  health(): Promise<{ initialized?: boolean; sealed?: boolean }>;
}

/** Why Vault could not answer: the condition that is logged once while it lasts. */
function unavailableReason(err: unknown): string {
  const e = err as RawVaultError;
  const status = e?.response?.statusCode;
  if (status === undefined) return 'unreachable';
  const msg = (e.response?.body?.errors ?? []).join('; ');
  if (status === 503 && /sealed/i.test(msg)) return 'sealed';
  if (status === 429) return 'standby';
  return `http ${status}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function classify(err: unknown): Error {
  const e = err as RawVaultError;
  const status = e?.response?.statusCode;
  if (status === undefined) return new DependencyError('vault', err); // network, timeout
  if (status >= 500 || status === 429) return new DependencyError('vault', err); // sealed, standby
  return new VaultRequestError(status, (e.response?.body?.errors ?? []).join('; ') || 'error');
}

export class VaultClient {
  private readonly client: VaultHttp;
  private renewTimer: NodeJS.Timeout | undefined;
  private tokenExpiresAt = 0;
  private loginInFlight: Promise<void> | undefined;
  private stopped = false;
  /** Whether the last renewal or login attempt failed (logged once per change). */
  private degraded = false;
  /** Why Vault is unavailable (sealed, unreachable, ...), or null while it answers. */
  private unavailable: string | null = null;
  /** Operations Vault denied by policy (logged once each). */
  private readonly denied = new Set<string>();

  constructor(private readonly opts: VaultOptions) {
    this.client = nodeVault({
      apiVersion: 'v1',
      endpoint: opts.addr,
      requestOptions: { timeout: opts.timeoutMs },
    });
    this.client.token = '';
  }

  private get retries() {
    return this.opts.retries ?? 2;
  }

  /** True while the last call found Vault sealed or unreachable. */
  isUnavailable(): boolean {
    return this.unavailable !== null;
  }

  private markUnavailable(reason: string, err: unknown) {
    vaultAvailable.set(0);
    vaultSealed.set(reason === 'sealed' ? 1 : 0);
    if (this.unavailable === reason) return;
    this.unavailable = reason;
    this.opts.logger.error(
      { reason, err: String((err as Error)?.message ?? err).slice(0, 300) },
      `vault unavailable (${reason}): calls that need it answer 503 until it is back; cached keys keep serving`,
    );
  }

  private markAvailable() {
    vaultAvailable.set(1);
    vaultSealed.set(0);
    if (this.unavailable === null) return;
    this.opts.logger.info({ was: this.unavailable }, 'vault available again');
    this.unavailable = null;
  }

  /**
   * One Vault request with retries: transient failures (network, 5xx, sealed, standby) are
   * retried with exponential backoff and jitter; 4xx never are. While Vault is known to be down a
   * call makes a single attempt, so requests that need it fail fast with 503.
   */
  private async attempt<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const attempts = this.unavailable ? 1 : 1 + this.retries;
    for (let i = 1; ; i++) {
      try {
        const res = await instrument('vault', operation, fn);
        this.markAvailable();
        return res;
      } catch (err) {
        const c = classify(err);
        if (!(c instanceof DependencyError)) {
          this.markAvailable(); // it answered
          throw c;
        }
        if (i >= attempts) {
          this.markUnavailable(unavailableReason(err), err);
          throw c;
        }
        const delay = (this.opts.retryBaseMs ?? 100) * 2 ** (i - 1) * (0.5 + Math.random() / 2);
        this.opts.logger.debug({ operation, attempt: i, reason: unavailableReason(err) }, 'vault: transient failure, retrying');
        await sleep(delay);
      }
    }
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
  login(reason?: string): Promise<void> {
    if (!this.loginInFlight) {
      if (reason) this.opts.logger.warn({ reason }, 'vault: token no longer valid, logging in again with AppRole');
      this.loginInFlight = this.doLogin().finally(() => {
        this.loginInFlight = undefined;
      });
    }
    return this.loginInFlight;
  }

  private async doLogin(): Promise<void> {
    const [roleId, secretId] = [await this.roleId(), await this.secretId()];
    try {
      const res = await this.attempt('approle_login', () => this.client.write('auth/approle/login', { role_id: roleId, secret_id: secretId }));
      this.client.token = res.auth.client_token;
      this.onToken(res.auth.lease_duration, res.auth.renewable);
      vaultTokenRenewals.inc({ kind: 'login', outcome: 'ok' });
      this.setDegraded(false);
      this.opts.logger.info({ ttl: res.auth.lease_duration }, 'vault: logged in with AppRole');
    } catch (err) {
      vaultTokenRenewals.inc({ kind: 'login', outcome: 'error' });
      // Vault answered but refused the login (secret-id expired, used up or revoked): a human
      // must deliver a new secret-id. Logged once; an unavailable Vault is logged by attempt().
      if (!(err instanceof DependencyError)) this.setDegraded(true, err);
      throw err;
    }
  }

  private onToken(ttlSeconds: number, renewable: boolean) {
    this.tokenExpiresAt = Date.now() + ttlSeconds * 1000;
    this.schedule(renewable ? (ttlSeconds * 2000) / 3 : Math.max(1000, (ttlSeconds - 10) * 1000));
  }

  private schedule(ms: number) {
    if (this.stopped) return;
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => void this.renewOrLogin(), Math.max(500, ms));
    this.renewTimer.unref();
  }

  private setDegraded(degraded: boolean, err?: unknown) {
    vaultTokenRenewalFailing.set(degraded ? 1 : 0);
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
      const res = await this.attempt('token_renew_self', () => this.client.tokenRenewSelf());
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
      if (renewErr instanceof DependencyError) {
        // Sealed or unreachable: already logged once by attempt(); try again shortly.
        this.schedule(5000);
        return;
      }
      try {
        await this.login(`renewal refused: ${(renewErr as Error).message}`);
      } catch {
        // Logged once (setDegraded or attempt()); keep trying.
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
   * Runs one Vault request. A 403 is either a policy denial or a token that is no longer valid
   * (revoked out of band, expired): lookup-self (allowed by every token's default policy) tells
   * which. Only an invalid token leads to a new login and one more try, so a path outside our
   * policy never burns secret-id uses.
   */
  private async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    if (!this.client.token) await this.login();
    try {
      return await this.attempt(operation, fn);
    } catch (c) {
      if (!(c instanceof VaultRequestError && c.statusCode === 403)) throw c;
      if (await this.tokenStillValid()) {
        this.logDenied(operation, c);
        throw c;
      }
      try {
        await this.login('token rejected (revoked or expired)');
      } catch {
        throw c;
      }
      try {
        return await this.attempt(operation, fn);
      } catch (c2) {
        if (c2 instanceof VaultRequestError && c2.statusCode === 403) this.logDenied(operation, c2);
        throw c2;
      }
    }
  }

  private async tokenStillValid(): Promise<boolean> {
    try {
      await this.attempt('token_lookup_self', () => this.client.tokenLookupSelf());
      return true;
    } catch (err) {
      if (err instanceof VaultRequestError && err.statusCode === 403) return false;
      throw err;
    }
  }

  private logDenied(operation: string, err: VaultRequestError) {
    if (this.denied.has(operation)) return;
    this.denied.add(operation);
    this.opts.logger.error({ operation, err: err.message }, 'vault denied a request by policy (check infra/vault/policies)');
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

  /** Reads a KV v2 secret with its version (for check-and-set writes); null when it does not exist. */
  async kvRead<T = Record<string, unknown>>(name: string): Promise<{ data: T; version: number } | null> {
    try {
      const res = await this.call('kv_read', () => this.client.read(this.kvPath('data', name)));
      if (!res?.data?.data) return null;
      return { data: res.data.data as T, version: Number(res.data.metadata?.version ?? 0) };
    } catch (err) {
      if (err instanceof VaultRequestError && err.statusCode === 404) return null;
      throw err;
    }
  }

  /**
   * A binary GET (a raft snapshot) as a streaming fetch Response: node-vault corrupts binary
   * bodies. The timeout covers the response headers only; `signal` aborts the transfer (activity
   * cancellation). Failures are classified like every other call.
   */
  async download(path: string, operation: string, signal?: AbortSignal): Promise<Response> {
    return this.call(operation, async () => {
      const ac = new AbortController();
      const onAbort = () => ac.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      const t = setTimeout(() => ac.abort(), this.opts.timeoutMs);
      let res: Response;
      try {
        res = await fetch(`${this.opts.addr}/v1/${path}`, { headers: { 'X-Vault-Token': this.client.token }, signal: ac.signal });
      } catch (err) {
        throw Object.assign(new Error(`vault ${path}: ${(err as Error).message}`), { code: 'ENETWORK' });
      } finally {
        clearTimeout(t);
      }
      if (!res.ok) {
        const text = await res.text();
        let body: { errors?: string[] } = {};
        try {
          body = JSON.parse(text) as { errors?: string[] };
        } catch {
          /* not JSON */
        }
        throw Object.assign(new Error(`vault ${path}: ${res.status}`), { response: { statusCode: res.status, body } });
      }
      return res;
    });
  }

  /** Unauthenticated seal status (also carries the server version). */
  async sealStatus(): Promise<{ sealed: boolean; version?: string }> {
    return this.attempt('seal_status', () => this.client.status());
  }

  /** Writes a KV v2 secret; with `cas` the write only succeeds at that version (0 = create only). */
  async kvPut(name: string, data: Record<string, unknown>, cas?: number): Promise<number> {
    const body: Record<string, unknown> = { data };
    if (cas !== undefined) body.options = { cas };
    const res = await this.call('kv_write', () => this.client.write(this.kvPath('data', name), body));
    return Number(res?.data?.version);
  }

  /** Deletes a KV secret with every version of it (its metadata). A missing one is no error. */
  async kvDestroy(name: string): Promise<void> {
    try {
      await this.call('kv_destroy', () => this.client.delete(this.kvPath('metadata', name)));
    } catch (err) {
      if (err instanceof VaultRequestError && err.statusCode === 404) return;
      throw err;
    }
  }

  async transit(op: 'sign' | 'encrypt' | 'decrypt' | 'datakey', path: string, body: Record<string, unknown>) {
    const res = await this.call(`transit_${op}`, () => this.client.write(`${this.opts.transitMount}/${path}`, body));
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
      if (body.sealed) this.markUnavailable('sealed', new Error('vault is sealed'));
      else if (body.initialized) this.markAvailable();
      return { initialized: !!body.initialized, sealed: !!body.sealed };
    } catch (err) {
      this.markUnavailable(unavailableReason(err), err);
      throw classify(err);
    }
  }

  /** For /readyz: the token is still valid (lookup-self answers). */
  async checkToken(): Promise<void> {
    const res = await this.call('token_lookup_self', () => this.client.tokenLookupSelf());
    const ttl = res?.data?.ttl;
    if (typeof ttl === 'number') {
      this.tokenExpiresAt = Date.now() + ttl * 1000;
    }
  }
}

export function vaultFromConfig(
  c: {
    VAULT_ADDR: string;
    VAULT_ROLE_ID?: string;
    VAULT_ROLE_ID_FILE?: string;
    VAULT_SECRET_ID?: string;
    VAULT_SECRET_ID_FILE?: string;
    VAULT_KV_MOUNT: string;
    VAULT_KV_PREFIX: string;
    VAULT_TRANSIT_MOUNT: string;
    VAULT_TIMEOUT_MS: number;
    VAULT_RETRIES?: number;
    VAULT_RETRY_BASE_MS?: number;
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
    retries: c.VAULT_RETRIES,
    retryBaseMs: c.VAULT_RETRY_BASE_MS,
    logger,
  });
}

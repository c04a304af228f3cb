/** Prometheus metrics (prom-client). One registry per process; dependency calls are counted and
 * timed by operation and outcome through `instrument`. */
import client from 'prom-client';

export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry, prefix: 'authflow_' });

export type Dependency = 'postgres' | 'vault' | 'temporal' | 'smtp';

export const dependencyCalls = new client.Counter({
  name: 'authflow_dependency_calls_total',
  help: 'Calls made to a dependency, by operation and outcome',
  labelNames: ['dependency', 'operation', 'outcome'] as const,
  registers: [registry],
});

export const dependencyLatency = new client.Histogram({
  name: 'authflow_dependency_call_duration_seconds',
  help: 'Latency of calls made to a dependency',
  labelNames: ['dependency', 'operation'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [registry],
});

export const httpRequests = new client.Histogram({
  name: 'authflow_http_request_duration_seconds',
  help: 'HTTP requests served, by route and status',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [registry],
});

/**
 * The remaining TTL of the process's Vault token, read at scrape time from `source` (the
 * VaultClient). Built once by the process's composition root (platform/runtime.ts); building it
 * again replaces the earlier gauge.
 */
export class VaultTokenTtlGauge {
  constructor(source: () => number) {
    registry.removeSingleMetric('authflow_vault_token_ttl_seconds');
    new client.Gauge({
      name: 'authflow_vault_token_ttl_seconds',
      help: 'Remaining TTL of the service Vault token',
      registers: [registry],
      collect() {
        this.set(source());
      },
    });
  }
}

/** Set by every /readyz: 1 when the check passed, 0 when it failed (core and degradable checks alike). */
export const readinessCheck = new client.Gauge({
  name: 'authflow_readiness_check',
  help: 'Outcome of the last /readyz probe per check (1 ok, 0 failed); core: postgres, signing_keys; degradable: vault, temporal',
  labelNames: ['check', 'kind'],
  registers: [registry],
});

export const vaultAvailable = new client.Gauge({
  name: 'authflow_vault_available',
  help: '1 while the last Vault call got an answer, 0 while Vault is sealed or unreachable',
  registers: [registry],
});

export const vaultSealed = new client.Gauge({
  name: 'authflow_vault_sealed',
  help: '1 when the last health or call saw Vault sealed, else 0',
  registers: [registry],
});

export const vaultTokenRenewalFailing = new client.Gauge({
  name: 'authflow_vault_token_renewal_failing',
  help: '1 while Vault answers but neither token renewal nor AppRole login succeeds (needs a human: a new secret-id)',
  registers: [registry],
});

/**
 * Vault operations (key rotation, backups, restore drills) run on the worker, which serves no
 * HTTP; their outcomes are rows in Postgres (`ops_runs`), and every API exports them from there
 * at scrape time, so the values survive worker restarts and every API instance reports the same.
 */
export type OpsKind = 'key_rotation' | 'backup' | 'restore_drill' | 'db_credentials';
export const OPS_KINDS: OpsKind[] = ['key_rotation', 'backup', 'restore_drill'];
export interface OpsStatus {
  kind: OpsKind;
  lastSuccessAt: Date | null;
  lastFinishedOk: boolean | null;
}
/**
 * The gauges of the Vault operations' outcomes, read at scrape time from `source` (one read per
 * scrape, shared by both gauges; a failed read leaves them at their last values). Built once by
 * the API's composition root; building them again replaces the earlier gauges.
 */
export class OpsStatusGauges {
  private inFlight: Promise<OpsStatus[]> | undefined;

  constructor(private readonly source: () => Promise<OpsStatus[]>) {
    const read = () => this.read();
    registry.removeSingleMetric('authflow_ops_last_success_timestamp_seconds');
    registry.removeSingleMetric('authflow_restore_drill_success');
    new client.Gauge({
      name: 'authflow_ops_last_success_timestamp_seconds',
      help: 'Unix time the last successful run of a Vault operation finished (key_rotation, backup, restore_drill)',
      labelNames: ['operation'] as const,
      registers: [registry],
      async collect() {
        for (const s of await read()) {
          if (s.lastSuccessAt) this.set({ operation: s.kind }, Math.floor(s.lastSuccessAt.getTime() / 1000));
        }
      },
    });
    new client.Gauge({
      name: 'authflow_restore_drill_success',
      help: '1 when the newest finished restore drill passed, 0 when it failed',
      registers: [registry],
      async collect() {
        const drill = (await read()).find((s) => s.kind === 'restore_drill');
        if (drill && drill.lastFinishedOk !== null) this.set(drill.lastFinishedOk ? 1 : 0);
      },
    });
  }

  private read(): Promise<OpsStatus[]> {
    this.inFlight ??= this.source()
      .catch(() => [] as OpsStatus[])
      .finally(() => {
        this.inFlight = undefined;
      });
    return this.inFlight;
  }
}

/** The flow outbox's backlog (domain/flow-outbox.ts), read from Postgres at each scrape. */
export interface FlowOutboxBacklogSource {
  backlog(): Promise<{ pending: number; oldestAgeSeconds: number }>;
}

export class FlowOutboxGauges {
  private inFlight: Promise<{ pending: number; oldestAgeSeconds: number } | null> | undefined;

  constructor(private readonly source: FlowOutboxBacklogSource) {
    const read = () => this.read();
    registry.removeSingleMetric('authflow_flow_outbox_pending');
    registry.removeSingleMetric('authflow_flow_outbox_oldest_age_seconds');
    new client.Gauge({
      name: 'authflow_flow_outbox_pending',
      help: 'Flow events committed and not yet accepted by Temporal (workflow starts, signals, updates)',
      registers: [registry],
      async collect() {
        const b = await read();
        if (b) this.set(b.pending);
      },
    });
    new client.Gauge({
      name: 'authflow_flow_outbox_oldest_age_seconds',
      help: 'Age of the oldest flow event not yet accepted by Temporal (0 when none waits)',
      registers: [registry],
      async collect() {
        const b = await read();
        if (b) this.set(b.oldestAgeSeconds);
      },
    });
  }

  private read() {
    this.inFlight ??= this.source
      .backlog()
      .catch(() => null)
      .finally(() => {
        this.inFlight = undefined;
      });
    return this.inFlight;
  }
}

export const vaultTokenRenewals = new client.Counter({
  name: 'authflow_vault_token_renewals_total',
  help: 'Vault token renewals and re-logins, by kind and outcome',
  labelNames: ['kind', 'outcome'] as const,
  registers: [registry],
});

/** Runs `fn`, counting and timing it as one call to `dependency`. */
export async function instrument<T>(dependency: Dependency, operation: string, fn: () => Promise<T>): Promise<T> {
  const end = dependencyLatency.startTimer({ dependency, operation });
  try {
    const result = await fn();
    dependencyCalls.inc({ dependency, operation, outcome: 'ok' });
    return result;
  } catch (err) {
    dependencyCalls.inc({ dependency, operation, outcome: 'error' });
    throw err;
  } finally {
    end();
  }
}

/** The revocation feed's state (domain/sessions/revocations.ts), read at scrape time. Built once by api/main.ts. */
export class RevocationFeedGauges {
  constructor(source: () => { healthy: boolean; lagMs: number; sessions: number; users: number }) {
    for (const n of ['authflow_revocation_feed_healthy', 'authflow_revocation_feed_lag_seconds', 'authflow_revocation_feed_entries'])
      registry.removeSingleMetric(n);
    new client.Gauge({
      name: 'authflow_revocation_feed_healthy',
      help: '1 while the revocation feed is connected and within REVOCATION_MAX_LAG_MS (checks from memory), 0 while requests check the database',
      registers: [registry],
      collect() {
        this.set(source().healthy ? 1 : 0);
      },
    });
    new client.Gauge({
      name: 'authflow_revocation_feed_lag_seconds',
      help: 'Seconds since the newest heartbeat the revocation feed heard back was sent (-1 before the first)',
      registers: [registry],
      collect() {
        const lag = source().lagMs;
        this.set(Number.isFinite(lag) ? lag / 1000 : -1);
      },
    });
    new client.Gauge({
      name: 'authflow_revocation_feed_entries',
      help: 'Revocations held in memory, by kind (session: ended sessions; user: accounts that left active)',
      labelNames: ['kind'] as const,
      registers: [registry],
      collect() {
        const s = source();
        this.set({ kind: 'session' }, s.sessions);
        this.set({ kind: 'user' }, s.users);
      },
    });
  }
}

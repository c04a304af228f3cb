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

export const vaultTokenTtl = new client.Gauge({
  name: 'authflow_vault_token_ttl_seconds',
  help: 'Remaining TTL of the service Vault token',
  registers: [registry],
});

export const vaultTokenRenewals = new client.Counter({
  name: 'authflow_vault_token_renewals_total',
  help: 'Vault token renewals and re-logins, by kind and outcome',
  labelNames: ['kind', 'outcome'] as const,
  registers: [registry],
});

/** Runs `fn`, counting and timing it as one call to `dependency`. */
export async function instrument<T>(
  dependency: Dependency,
  operation: string,
  fn: () => Promise<T>,
): Promise<T> {
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

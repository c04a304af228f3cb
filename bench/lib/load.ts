/**
 * HTTP load with autocannon, in this (pinned) process. Latencies are collected per response with
 * sub-millisecond resolution (autocannon's own histogram rounds to whole milliseconds), and the
 * benchmark API's CPU time is read from /proc around every round.
 */
import autocannon from 'autocannon';
import { cpuSeconds, cpuTimes } from './env';
import { DEVICE_HEADERS } from './seed';
import { percentile } from './stats';

export interface Round {
  /** 2xx responses per second of wall time. */
  okPerSec: number;
  ok: number;
  failed: number;
  /** Connection errors and timeouts. */
  errors: number;
  p50: number;
  p99: number;
  wallSec: number;
  /** CPU seconds the API process used in the round, and that over wall time (1.0 = one core busy). */
  apiCpuSec: number;
  apiUtil: number;
  /** Share of the API's CPUs used by other processes, and stolen by the hypervisor (pinned runs). */
  othersOnApiCpus: number;
  stealOnApiCpus: number;
  /** Problem `code`s (or statuses) of failed responses. */
  failures: Record<string, number>;
}

export interface LoadSpec {
  url: string;
  path: string;
  connections: number;
  durationSec: number;
  /** Fixed total request rate; unlimited when absent. */
  overallRate?: number;
  /** The server's processes: their CPU time is summed (a cluster's primary and API processes). */
  apiPids: number[];
  /** Content type of the bodies (default JSON) and the headers of every request (default: the
   * benchmark device's). */
  contentType?: string;
  headers?: Record<string, string>;
  /** Default POST. */
  method?: 'POST' | 'GET';
  /** Extra headers made per request for client `slot` (a DPoP proof). */
  requestHeaders?: (slot: number) => Record<string, string>;
  /** The CPUs the API is pinned to (empty: not pinned). */
  apiCpus: number[];
  /** Body for the next request of client `slot`. */
  body: (slot: number) => string;
  /** Sees every response of client `slot` (to chain tokens). */
  onResponse?: (slot: number, status: number, body: string) => void;
}

function failureKey(status: number, body: string): string {
  try {
    // Our problem+json `code`, or an OAuth error (the Keycloak peer).
    const j = JSON.parse(body) as { code?: string; error?: string };
    const code = j.code ?? j.error;
    if (code) return `${status} ${code}`;
  } catch {
    /* not JSON */
  }
  return String(status);
}

export async function loadRound(spec: LoadSpec): Promise<Round> {
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  let nextSlot = 0;
  const setupClient = (client: autocannon.Client) => {
    const slot = nextSlot++;
    client.setRequests([
      {
        method: spec.method ?? 'POST',
        path: spec.path,
        headers: { 'content-type': spec.contentType ?? 'application/json', ...(spec.headers ?? DEVICE_HEADERS) },
        setupRequest: (req) => ({
          ...req,
          body: spec.body(slot),
          ...(spec.requestHeaders ? { headers: { ...req.headers, ...spec.requestHeaders(slot) } } : {}),
        }),
        onResponse: (status, body) => {
          if (status >= 200 && status < 300) ok++;
          else {
            failed++;
            const k = failureKey(status, body);
            failures[k] = (failures[k] ?? 0) + 1;
          }
          spec.onResponse?.(slot, status, body);
        },
      },
    ]);
    client.on('response', (_status: number, _bytes: number, duration: number) => latencies.push(duration));
  };
  const cpuOf = () => spec.apiPids.reduce((a, p) => a + cpuSeconds(p), 0);
  const cpu0 = cpuOf();
  const core0 = cpuTimes(spec.apiCpus);
  const t0 = performance.now();
  const result = await autocannon({
    url: spec.url,
    connections: spec.connections,
    pipelining: 1,
    duration: spec.durationSec,
    timeout: 10,
    // autocannon needs a request body to create the clients; each client replaces it in setupClient.
    method: 'POST',
    body: '{}',
    setupClient,
    ...(spec.overallRate ? { overallRate: spec.overallRate } : {}),
  });
  const wallSec = (performance.now() - t0) / 1000;
  const apiCpuSec = cpuOf() - cpu0;
  const core1 = cpuTimes(spec.apiCpus);
  const capacity = wallSec * Math.max(1, spec.apiCpus.length);
  return {
    okPerSec: ok / result.duration,
    ok,
    failed,
    errors: result.errors + result.timeouts,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    wallSec: result.duration,
    apiCpuSec,
    apiUtil: apiCpuSec / wallSec,
    othersOnApiCpus: spec.apiCpus.length ? Math.max(0, core1.busy - core0.busy - apiCpuSec) / capacity : NaN,
    stealOnApiCpus: spec.apiCpus.length ? (core1.steal - core0.steal) / capacity : NaN,
    failures,
  };
}

/**
 * Refresh-token chains: client `slot` always presents the token the previous response returned
 * (tokens are single use). Every round starts from fresh sessions, because the request that was in
 * flight when the previous round stopped may have spent its token without us seeing the answer.
 * A broken chain (any non-200) takes a spare session so the client keeps measuring.
 */
export class RefreshChains {
  private slots: string[] = [];
  private spares: string[] = [];
  exhausted = 0;

  /** `format` makes a request body from a token (default: our JSON body). */
  constructor(
    private readonly fresh: (n: number) => Promise<string[]>,
    private readonly format: (token: string) => string = (t) => `{"refresh_token":"${t}"}`,
  ) {}

  async reset(connections: number) {
    const tokens = await this.fresh(connections * 3);
    this.slots = tokens.slice(0, connections);
    this.spares = tokens.slice(connections);
  }

  body = (slot: number) => this.format(this.slots[slot]);

  onResponse = (slot: number, status: number, body: string) => {
    if (status === 200) {
      const m = /"refresh_token":"([^"]+)"/.exec(body);
      if (m) {
        this.slots[slot] = m[1]!;
        return;
      }
    }
    const spare = this.spares.pop();
    if (spare) this.slots[slot] = spare;
    else this.exhausted++;
  };
}

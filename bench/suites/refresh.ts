/**
 * Refresh exchange throughput through HTTP: POST /v1/auth/refresh with token chains (each client
 * presents the token its previous response returned), from the benchmark device (a known
 * fingerprint, so the device check passes without step-up). Covers token lookup, fingerprint
 * check, rotation, the database writes, the rate limiter and signing the new JWT.
 * Then the RSS of the API and the worker.
 */
import type { BenchContext, Row, SuiteResult } from '../lib/context';
import { cmdline, cpuList, pidAlive, rssMB } from '../lib/env';
import { BenchDpopKey } from '../lib/dpop-proof';
import { loadRound, RefreshChains, Round } from '../lib/load';
import { describeSpread, median, ms, num, sleep, spread } from '../lib/stats';

export function roundLine(name: string, i: number, r: Round): string {
  const fails = Object.entries(r.failures)
    .map(([k, v]) => `${v}× ${k}`)
    .join(', ');
  return `${name} round ${i}: ${num(r.okPerSec)} ok/s over ${r.wallSec.toFixed(1)} s, p50 ${ms(r.p50)}, p99 ${ms(r.p99)}, API CPU ${(r.apiUtil * 100).toFixed(0)}% (${num(r.ok / Math.max(r.apiCpuSec, 1e-9))} per API CPU-second)${Number.isFinite(r.othersOnApiCpus) ? `, other processes took ${(r.othersOnApiCpus * 100).toFixed(0)}% of the API's CPU${r.stealOnApiCpus > 0.005 ? ` (+${(r.stealOnApiCpus * 100).toFixed(0)}% steal)` : ''}` : ''}${r.failed ? `, ${r.failed} failed (${fails})` : ''}${r.errors ? `, ${r.errors} connection errors/timeouts` : ''}`;
}

/** ", other processes took x% of its CPU" when that was measured and noticeable. */
export function othersNote(rounds: Round[]): string {
  const o = median(rounds.map((r) => r.othersOnApiCpus + (r.stealOnApiCpus || 0)));
  return Number.isFinite(o) && o >= 0.05 ? ` (other processes took ${(o * 100).toFixed(0)}% of its CPU: the numbers are pessimistic)` : '';
}

export function failureSummary(rounds: Round[]): string {
  const failed = rounds.reduce((a, r) => a + r.failed + r.errors, 0);
  if (!failed) return '0 failed';
  const all: Record<string, number> = {};
  for (const r of rounds) for (const [k, v] of Object.entries(r.failures)) all[k] = (all[k] ?? 0) + v;
  return `${failed} FAILED (${
    Object.entries(all)
      .map(([k, v]) => `${v}× ${k}`)
      .join(', ') || 'connection errors'
  })`;
}

/** What the peer comparison reads from the refresh suite (bench/suites/peer.ts). */
export interface RefreshFigures {
  rounds: Round[];
  okPerSec: number;
  perCpuSec: number;
  p50: number;
  p99: number;
  util: number;
  failures: string;
}

export function refreshFigures(rounds: Round[]): RefreshFigures {
  return {
    rounds,
    okPerSec: median(rounds.map((r) => r.okPerSec)),
    perCpuSec: median(rounds.map((r) => r.ok / Math.max(r.apiCpuSec, 1e-9))),
    p50: median(rounds.map((r) => r.p50)),
    p99: median(rounds.map((r) => r.p99)),
    util: median(rounds.map((r) => r.apiUtil)),
    failures: failureSummary(rounds),
  };
}

/** Warm-up and rounds of chained refreshes, header-bound sessions or DPoP-bound ones (a fresh proof per request). */
async function refreshRounds(ctx: BenchContext, mode: 'header' | 'dpop'): Promise<{ warm: Round; rounds: Round[]; exhausted: number }> {
  const { opts, api, seeder, log } = ctx;
  const key = mode === 'dpop' ? new BenchDpopKey() : undefined;
  const htu = `${ctx.config.PUBLIC_BASE_URL.replace(/\/$/, '')}/v1/auth/refresh`;
  const chains = new RefreshChains(async (n) => seeder.sessions(await seeder.randomUsers(n), key && { jkt: key.jkt, fingerprint: key.fingerprint }));
  const run = async (durationSec: number) => {
    await chains.reset(opts.refreshConnections);
    const r = await loadRound({
      url: api.url,
      path: '/v1/auth/refresh',
      connections: opts.refreshConnections,
      durationSec,
      apiPids: api.pids(),
      apiCpus: ctx.pin.pinned ? cpuList(ctx.pin.apiCpus) : [],
      body: chains.body,
      onResponse: chains.onResponse,
      ...(key ? { requestHeaders: () => ({ dpop: key.proof('POST', htu) }) } : {}),
    });
    await sleep(300);
    return r;
  };
  log(`refresh (${mode}): warm-up ${opts.warmupSec} s, then ${opts.rounds} × ${opts.roundSec} s with ${opts.refreshConnections} connections`);
  const warm = await run(opts.warmupSec);
  const rounds: Round[] = [];
  for (let i = 0; i < opts.rounds; i++) rounds.push(await run(opts.roundSec));
  return { warm, rounds, exhausted: chains.exhausted };
}

export async function refreshSuite(ctx: BenchContext): Promise<SuiteResult & { header: RefreshFigures; dpop: RefreshFigures }> {
  const { pin } = ctx;
  const header = await refreshRounds(ctx, 'header');
  const dpop = await refreshRounds(ctx, 'dpop');
  const h = refreshFigures(header.rounds);
  const d = refreshFigures(dpop.rounds);
  const rps = spread(header.rounds.map((r) => r.okPerSec));
  const perCore = h.okPerSec / pin.apiCores;
  const cores = `${pin.apiCores} core${pin.apiCores > 1 ? 's' : ''}`;
  const rows: Row[] = [
    {
      benchmark: 'refresh exchange (verify, fingerprint check, rotation, DB writes, new JWT)',
      figure: `${num(perCore)} refreshes/s per API core: ${describeSpread(rps)} refreshes/s on ${cores}; p50 ${ms(h.p50)}, p99 ${ms(h.p99)}; API ${(h.util * 100).toFixed(0)}% busy${othersNote(header.rounds)}, ${num(h.perCpuSec)} per API CPU-second; ${h.failures}`,
      target: '≥ 1,200 refreshes/s per API core',
      verdict: perCore >= 1200 && !h.failures.includes('FAILED') ? 'PASS' : 'FAIL',
    },
    {
      benchmark: 'refresh exchange of DPoP-bound sessions (a fresh proof per request: signature, jti claimed in Postgres, key binding)',
      figure: `${describeSpread(spread(dpop.rounds.map((r) => r.okPerSec)))} refreshes/s on ${cores}; p50 ${ms(d.p50)}, p99 ${ms(d.p99)}; ${num(d.perCpuSec)} per API CPU-second${othersNote(dpop.rounds)}; ${d.failures}`,
      target: 'recorded',
      verdict: d.failures.includes('FAILED') ? 'FAIL' : 'info',
    },
  ];
  const details = [
    roundLine('refresh warm-up', 0, header.warm),
    ...header.rounds.map((r, i) => roundLine('refresh', i + 1, r)),
    roundLine('refresh (DPoP) warm-up', 0, dpop.warm),
    ...dpop.rounds.map((r, i) => roundLine('refresh (DPoP)', i + 1, r)),
  ];
  for (const [m, x] of [
    ['header', header],
    ['DPoP', dpop],
  ] as const)
    if (x.exhausted) details.push(`refresh (${m}): ${x.exhausted} broken chains found no spare session (those clients kept failing)`);
  details.push(`refresh: RSS MB right after the benchmark: ${rssLine(ctx)}`);
  return { rows, details, header: h, dpop: d };
}

/** The stack's worker pid, when stack.json's pid is still a worker. */
function workerPid(ctx: BenchContext): number | undefined {
  const w = ctx.info.pids.worker;
  return pidAlive(w) && cmdline(w).includes('worker/main.') ? w : undefined;
}

/** "API 120 + 95 + 97 (primary), worker 210" (VmRSS from /proc). */
export function rssLine(ctx: BenchContext): string {
  const [primary, ...children] = ctx.api.pids();
  const api =
    ctx.api.processes > 1 ? `${children.map((p) => num(rssMB(p))).join(' + ')} (API processes) + ${num(rssMB(primary))} (primary)` : num(rssMB(primary));
  return `benchmarked API ${api}, worker ${num(rssMB(workerPid(ctx)))}`;
}

/** RSS of each of our processes now, in MB (for the peer comparison). */
export function ourRss(ctx: BenchContext): { api: number[]; primary?: number; worker: number } {
  const [primary, ...children] = ctx.api.pids();
  return ctx.api.processes > 1
    ? { api: children.map(rssMB), primary: rssMB(primary), worker: rssMB(workerPid(ctx)) }
    : { api: [rssMB(primary)], worker: rssMB(workerPid(ctx)) };
}

/** RSS at the end of the whole run, against issue 18's targets (API < 200 MB per process, worker < 250 MB). */
export function finalRssRows(ctx: BenchContext): Row[] {
  const [primary, ...children] = ctx.api.pids();
  const apiProcs = ctx.api.processes > 1 ? children : [primary];
  const apiRss = apiProcs.map(rssMB);
  const worst = Math.max(...apiRss);
  const w = workerPid(ctx);
  const workerRss = rssMB(w);
  return [
    {
      benchmark: 'RSS of each API process at the end of the run',
      figure: `${apiRss.map((x) => `${num(x)} MB`).join(', ')}${ctx.api.processes > 1 ? ` (+ the cluster primary ${num(rssMB(primary))} MB)` : ''}`,
      target: '< 200 MB per process',
      verdict: Number.isFinite(worst) ? (worst < 200 ? 'PASS' : 'FAIL') : 'n/a',
    },
    {
      benchmark: 'RSS of the worker at the end of the run',
      figure: w ? `${num(workerRss)} MB (the stack's worker, compiled build, pid ${w})` : "not measured (the stack's worker pid from stack.json is gone)",
      target: '< 250 MB',
      verdict: Number.isFinite(workerRss) ? (workerRss < 250 ? 'PASS' : 'FAIL') : 'n/a',
    },
  ];
}

/**
 * Refresh exchange throughput through HTTP: POST /v1/auth/refresh with token chains (each client
 * presents the token its previous response returned), from the benchmark device (a known
 * fingerprint, so the device check passes without step-up). Covers token lookup, fingerprint
 * check, rotation, the database writes, the rate limiter and signing the new JWT.
 * Then the RSS of the API and the worker.
 */
import type { BenchContext, Row, SuiteResult } from '../lib/context';
import { cmdline, cpuList, pidAlive, rssMB } from '../lib/env';
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

export async function refreshSuite(ctx: BenchContext): Promise<SuiteResult> {
  const { opts, api, seeder, pin, log } = ctx;
  const chains = new RefreshChains(async (n) => seeder.sessions(await seeder.randomUsers(n)));
  const run = async (durationSec: number) => {
    await chains.reset(opts.refreshConnections);
    const r = await loadRound({
      url: api.url,
      path: '/v1/auth/refresh',
      connections: opts.refreshConnections,
      durationSec,
      apiPid: api.pid,
      apiCpus: ctx.pin.pinned ? cpuList(ctx.pin.apiCpus) : [],
      body: chains.body,
      onResponse: chains.onResponse,
    });
    await sleep(300);
    return r;
  };
  log(`refresh: warm-up ${opts.warmupSec} s, then ${opts.rounds} × ${opts.roundSec} s with ${opts.refreshConnections} connections`);
  const warm = await run(opts.warmupSec);
  const rounds: Round[] = [];
  for (let i = 0; i < opts.rounds; i++) rounds.push(await run(opts.roundSec));

  const rps = spread(rounds.map((r) => r.okPerSec));
  const perCpuSec = median(rounds.map((r) => r.ok / Math.max(r.apiCpuSec, 1e-9)));
  const util = median(rounds.map((r) => r.apiUtil));
  const perCore = rps.median / pin.apiCores;
  const failures = failureSummary(rounds);
  const clean = !failures.includes('FAILED');
  const rows: Row[] = [
    {
      benchmark: 'refresh exchange (verify, fingerprint check, rotation, DB writes, new JWT)',
      figure: `${num(perCore)} refreshes/s per API core: ${describeSpread(rps)} refreshes/s on ${pin.apiCores} core${pin.apiCores > 1 ? 's' : ''}; p50 ${ms(median(rounds.map((r) => r.p50)))}, p99 ${ms(median(rounds.map((r) => r.p99)))}; API process ${(util * 100).toFixed(0)}% busy${othersNote(rounds)}, ${num(perCpuSec)} per API CPU-second; ${failures}`,
      target: '≥ 1,200 refreshes/s per API core',
      verdict: perCore >= 1200 && clean ? 'PASS' : 'FAIL',
    },
  ];
  const details = [roundLine('refresh warm-up', 0, warm), ...rounds.map((r, i) => roundLine('refresh', i + 1, r))];
  if (chains.exhausted) details.push(`refresh: ${chains.exhausted} broken chains found no spare session (those clients kept failing)`);

  details.push(`refresh: RSS MB right after the benchmark: ${rssLine(ctx)}`);
  return { rows, details };
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

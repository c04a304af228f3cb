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

  // Memory right after the refresh benchmark.
  const worker = ctx.info.pids.worker;
  const stackApi = ctx.info.pids.api;
  const apiRss = rssMB(api.pid);
  const workerOk = pidAlive(worker) && cmdline(worker).includes('worker/main.ts');
  const workerRss = workerOk ? rssMB(worker) : NaN;
  const stackApiRss = pidAlive(stackApi) && cmdline(stackApi).includes('api/main.ts') ? rssMB(stackApi) : NaN;
  rows.push({
    benchmark: 'RSS of the API after the refresh benchmark',
    figure: `${num(apiRss)} MB (the benchmarked API process; the stack's own API: ${num(stackApiRss)} MB)`,
    target: '< 300 MB',
    verdict: Number.isFinite(apiRss) ? (apiRss < 300 ? 'PASS' : 'FAIL') : 'n/a',
  });
  rows.push({
    benchmark: 'RSS of the worker after the refresh benchmark',
    figure: workerOk ? `${num(workerRss)} MB (the stack's worker, pid ${worker})` : "not measured (the stack's worker pid from stack.json is gone)",
    target: '< 300 MB',
    verdict: Number.isFinite(workerRss) ? (workerRss < 300 ? 'PASS' : 'FAIL') : 'n/a',
  });
  details.push(`refresh: RSS MB after the benchmark: benchmark API ${num(apiRss)}, stack API ${num(stackApiRss)}, worker ${num(workerRss)} (VmRSS from /proc)`);
  return { rows, details };
}

/** RSS at the end of the run, after every benchmark (the worker has then also sent e-mail). */
export function finalRss(ctx: BenchContext): string {
  const w = ctx.info.pids.worker;
  return `RSS MB at the end of the run: benchmark API ${num(rssMB(ctx.api.pid))}, worker ${num(pidAlive(w) && cmdline(w).includes('worker/main.ts') ? rssMB(w) : NaN)}`;
}

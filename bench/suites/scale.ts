/**
 * Refresh latency as the tables grow: p50 at a fixed request rate (well below saturation, so it
 * is service time and not queueing) with the base population, then again after growing the seeded
 * users (bulk SQL) to the large size with their device rows. Sessions are opened for users picked
 * at random across the whole population, so lookups touch the whole of the tables and indexes.
 */
import { cpuList } from '../lib/env';
import type { BenchContext, SuiteResult } from '../lib/context';
import { loadRound, RefreshChains, Round } from '../lib/load';
import { tableCounts } from '../lib/seed';
import { median, ms, num, sleep } from '../lib/stats';
import { failureSummary, othersNote, roundLine } from './refresh';

export async function scaleSuite(ctx: BenchContext): Promise<SuiteResult> {
  const { opts, api, seeder, db, log } = ctx;
  const chains = new RefreshChains(async (n) => seeder.sessions(await seeder.randomUsers(n)));
  const run = async (durationSec: number) => {
    await chains.reset(opts.scaleConnections);
    const r = await loadRound({
      url: api.url,
      path: '/v1/auth/refresh',
      connections: opts.scaleConnections,
      durationSec,
      overallRate: opts.scaleRate,
      apiPids: api.pids(),
      apiCpus: ctx.pin.pinned ? cpuList(ctx.pin.apiCpus) : [],
      body: chains.body,
      onResponse: chains.onResponse,
    });
    await sleep(300);
    return r;
  };
  const measure = async (label: string) => {
    const counts = await tableCounts(db);
    log(
      `scale: ${label}: ${num(counts.users)} users, ${num(counts.devices)} device rows; warm-up ${opts.warmupSec} s, ${opts.rounds} × ${opts.roundSec} s at ${opts.scaleRate} refreshes/s`,
    );
    const warm = await run(opts.warmupSec);
    const rounds: Round[] = [];
    for (let i = 0; i < opts.rounds; i++) rounds.push(await run(opts.roundSec));
    return { counts, warm, rounds, p50: median(rounds.map((r) => r.p50)), p99: median(rounds.map((r) => r.p99)) };
  };

  const small = await measure('base size');
  log(`scale: growing the seeded users from ${num(seeder.count)} to ${num(opts.grownUsers)} (${opts.devicesPerUser} device rows each)`);
  const t0 = Date.now();
  await seeder.growTo(opts.grownUsers);
  const seedSec = (Date.now() - t0) / 1000;
  const large = await measure('grown');
  const ratio = large.p50 / small.p50;
  const failures = failureSummary([...small.rounds, ...large.rounds]);
  const size = (c: typeof small.counts) => `${num(c.users)} users / ${num(c.devices)} device rows`;
  return {
    rows: [
      {
        benchmark: `refresh latency as users grow (${size(small.counts)} → ${size(large.counts)})`,
        figure: `p50 grows ${ratio.toFixed(2)}×: ${ms(small.p50)} → ${ms(large.p50)} (p99 ${ms(small.p99)} → ${ms(large.p99)}) at ${opts.scaleRate} refreshes/s, median of ${opts.rounds} rounds each${othersNote([...small.rounds, ...large.rounds])}; ${failures}`,
        target: 'p50 grows ≤ 1.2×',
        verdict: ratio <= 1.2 && !failures.includes('FAILED') ? 'PASS' : 'FAIL',
      },
    ],
    details: [
      `scale: base ${size(small.counts)}, ${num(small.counts.sessions)} sessions, ${num(small.counts.refreshTokens)} refresh tokens`,
      ...small.rounds.map((r, i) => roundLine('scale base', i + 1, r)),
      `scale: grown in ${seedSec.toFixed(0)} s (bulk INSERT … SELECT generate_series, then ANALYZE) to ${size(large.counts)}, ${num(large.counts.sessions)} sessions, ${num(large.counts.refreshTokens)} refresh tokens`,
      ...large.rounds.map((r, i) => roundLine('scale grown', i + 1, r)),
    ],
  };
}

/**
 * Password login at the configured argon2id cost. The ceiling is the hash: with C API cores and
 * one hash taking h seconds, no implementation can exceed C / h logins per second. One hash's time
 * is measured in the same run, right before the logins, by sequential hashes in a short-lived
 * process on the API's CPU (so both see the same core, cache and neighbours), and the login rate
 * through HTTP is compared with that limit.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Argon2Params } from '../../crypto/argon2';
import { ROOT } from '../../infra/stack/stack';
import type { Pinning } from '../lib/env';
import { cpuList } from '../lib/env';
import type { BenchContext, SuiteResult } from '../lib/context';
import { loadRound, Round } from '../lib/load';
import { BENCH_PASSWORD } from '../lib/seed';
import { describeSpread, median, ms, num, sleep, spread } from '../lib/stats';
import { failureSummary, othersNote, refreshFigures, roundLine, type RefreshFigures } from './refresh';

function hashProbe(pin: Pinning, params: Argon2Params, samples: number): { wallMs: number[]; cpuMs: number[] } {
  const node = [process.execPath, '--import', 'tsx', join(ROOT, 'bench', 'lib', 'hash-probe.ts'), JSON.stringify(params), String(samples)];
  const [cmd, ...args] = pin.pinned ? ['taskset', '-c', pin.apiCpus, ...node] : node;
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`the argon2id probe failed: ${r.stderr || r.error?.message}`);
  return JSON.parse(r.stdout) as { wallMs: number[]; cpuMs: number[] };
}

export async function loginSuite(ctx: BenchContext): Promise<SuiteResult & { figures: RefreshFigures }> {
  const { opts, api, seeder, pin, argon2, log } = ctx;
  const probe = hashProbe(pin, argon2, opts.hashSamples);
  const hashMs = probe.wallMs;
  const oneHash = median(hashMs);
  const oneHashCpu = median(probe.cpuMs);
  const limit = pin.apiCores / (oneHash / 1000);

  // Logins rotate over the seeded users (no account sees enough attempts to matter).
  let next = 0;
  const users = Math.max(1, Math.min(seeder.count, 5000));
  const body = () => `{"email":"${seeder.email(1 + (next++ % users))}","password":"${BENCH_PASSWORD}"}`;
  const run = async (durationSec: number) => {
    const r = await loadRound({
      url: api.url,
      path: '/v1/auth/login',
      connections: opts.loginConnections,
      durationSec,
      apiPids: api.pids(),
      apiCpus: ctx.pin.pinned ? cpuList(ctx.pin.apiCpus) : [],
      body,
    });
    await sleep(300);
    return r;
  };
  log(
    `login: one argon2id hash ${ms(oneHash)}; warm-up ${opts.warmupSec} s, then ${opts.rounds} × ${opts.roundSec} s with ${opts.loginConnections} connections`,
  );
  const warm = await run(opts.warmupSec);
  const rounds: Round[] = [];
  for (let i = 0; i < opts.rounds; i++) rounds.push(await run(opts.roundSec));
  const rps = spread(rounds.map((r) => r.okPerSec));
  const ratio = rps.median / limit;
  const perCpuSec = median(rounds.map((r) => r.ok / Math.max(r.apiCpuSec, 1e-9)));
  const failures = failureSummary(rounds);
  const a = argon2;
  return {
    figures: refreshFigures(rounds),
    rows: [
      {
        benchmark: `password login at the configured argon2id cost (m=${a.memoryKiB} KiB, t=${a.timeCost}, p=${a.parallelism})`,
        figure: `${ratio.toFixed(2)} × the hash-bound limit: ${describeSpread(rps, (x) => num(x, 1))} logins/s vs ${num(limit, 1)}/s = ${pin.apiCores} core${pin.apiCores > 1 ? 's' : ''} ÷ ${ms(oneHash)} per hash (median of ${hashMs.length}, measured on ${pin.pinned ? `CPU ${pin.apiCpus}` : 'any CPU'}); by CPU time: ${num(perCpuSec, 1)} logins per API CPU-second vs 1 ÷ ${ms(oneHashCpu)} CPU per hash = ${((perCpuSec * oneHashCpu) / 1000).toFixed(2)}×; p50 ${ms(median(rounds.map((r) => r.p50)))}${othersNote(rounds)}; ${failures}`,
        target: '≥ 0.9 × hash-bound limit',
        verdict: ratio >= 0.9 && !failures.includes('FAILED') ? 'PASS' : 'FAIL',
      },
    ],
    details: [
      `login: argon2id hash wall ms: ${hashMs.map((x) => x.toFixed(1)).join(', ')}; CPU ms: ${probe.cpuMs.map((x) => x.toFixed(1)).join(', ')}`,
      roundLine('login warm-up', 0, warm),
      ...rounds.map((r, i) => roundLine('login', i + 1, r)),
    ],
  };
}

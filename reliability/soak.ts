/**
 * The soak (issue 17, 1c): the mixed load at about 80% of the measured capacity for 10 minutes
 * (`--quick`: 1 minute) on a healthy stack. Targets: no failed answer at all; the p99 latency of
 * the last minute at most 1.5× the first minute's; the RSS of every API process and of the worker
 * grows less than 15% from the end of the first minute (the warmed-up process) to the end.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { currentWorkerPid } from '../test/helpers/ops';
import { stackInfo } from '../test/helpers/stack';
import type { PartResult, ReliabilityContext, Row } from './lib/context';
import { MixedLoad, Op, OPS, percentile, window } from './lib/load';

export function rssMiB(pid: number): number {
  try {
    const kb = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    return kb / 1024;
  } catch {
    return NaN;
  }
}

function processes(): Record<string, number> {
  const pids = stackInfo().pids;
  return { 'API 1': pids.api, 'API 2': pids['api-2'], worker: currentWorkerPid() };
}

export async function soakPart(ctx: ReliabilityContext, load: MixedLoad, capacity: Record<Op, number>): Promise<PartResult> {
  const minutes = ctx.quick ? 1 : 10;
  const rate = Object.fromEntries(OPS.map((op) => [op, capacity[op] * 0.8])) as Record<Op, number>;
  load.setRate(rate);
  ctx.log(`soak: ${minutes} min at 80% of capacity (${OPS.map((op) => `${op} ${rate[op].toFixed(1)}/s`).join(', ')})`);
  const start = load.now();
  const procs = processes();
  const rss: Record<string, number[]> = Object.fromEntries(Object.keys(procs).map((k) => [k, []]));
  const marks: number[] = [];
  for (let m = 1; m <= minutes; m++) {
    await sleep(60000);
    marks.push(load.now());
    for (const [name, pid] of Object.entries(procs)) rss[name].push(rssMiB(pid));
    const w = window(load.samples, marks[m - 2] ?? start, marks[m - 1]);
    ctx.log(
      `  minute ${m}: ${w.n} answers, ${w.n - w.ok} not ok; RSS ${Object.entries(rss)
        .map(([k, v]) => `${k} ${v[v.length - 1].toFixed(0)} MB`)
        .join(', ')}`,
    );
  }
  const end = load.now();
  const all = window(load.samples, start, end);
  const lat = (from: number, to: number) =>
    load.samples
      .filter((s) => s.t >= from && s.t < to && s.status >= 200 && s.status < 300)
      .map((s) => s.ms)
      .sort((a, b) => a - b);
  const firstMin = lat(start, start + 60000);
  const lastMin = lat(end - 60000, end);
  const p99First = percentile(firstMin, 99);
  const p99Last = percentile(lastMin, 99);
  const failed = all.n - all.ok;
  const rows: Row[] = [
    {
      part: 'soak',
      measure: `answers in ${minutes} min at 80% of capacity`,
      figure: `${all.n} answers (${(all.n / ((end - start) / 1000)).toFixed(1)}/s), ${failed} failed${failed ? ` (${all.s503} × 503, ${all.noAnswer} unanswered, ${all.other.length} other)` : ''}`,
      target: '0 errors',
      verdict: failed === 0 ? 'PASS' : 'FAIL',
    },
    {
      part: 'soak',
      measure: 'p99 latency, last minute vs first',
      figure: `${p99Last.toFixed(0)} ms vs ${p99First.toFixed(0)} ms (${(p99Last / p99First).toFixed(2)}×); p50 ${percentile(lastMin, 50).toFixed(0)} vs ${percentile(firstMin, 50).toFixed(0)} ms`,
      target: '≤ 1.5×',
      verdict: p99Last <= 1.5 * p99First ? 'PASS' : 'FAIL',
    },
  ];
  for (const [name, values] of Object.entries(rss)) {
    const from = values[0];
    const to = values[values.length - 1];
    const growth = (to - from) / from;
    rows.push({
      part: 'soak',
      measure: `RSS growth, ${name}`,
      figure:
        minutes > 1
          ? `${from.toFixed(0)} → ${to.toFixed(0)} MB (${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(1)}%) from minute 1 to ${minutes}`
          : `${to.toFixed(0)} MB after 1 minute (growth needs the full run)`,
      target: '< 15%',
      verdict: minutes > 1 ? (growth < 0.15 ? 'PASS' : 'FAIL') : 'INFO',
    });
  }
  return {
    rows,
    details: [
      `soak: per-minute RSS (MB): ${Object.entries(rss)
        .map(([k, v]) => `${k} ${v.map((x) => x.toFixed(0)).join(' ')}`)
        .join('; ')}`,
    ],
  };
}

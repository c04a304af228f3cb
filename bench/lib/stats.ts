/** Small statistics and formatting helpers for the benchmark report. */

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1];
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Half the range relative to the median, in percent: "±x%". */
  halfRangePct: number;
  n: number;
}

export function spread(xs: number[]): Spread {
  const med = median(xs);
  const min = Math.min(...xs);
  const max = Math.max(...xs);
  return { median: med, min, max, halfRangePct: med ? ((max - min) / 2 / med) * 100 : 0, n: xs.length };
}

/** 1234.5 -> "1,235"; small values keep `digits` decimals. */
export function num(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return 'n/a';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Milliseconds with a sensible precision. */
export function ms(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  if (x < 1) return `${(x * 1000).toFixed(0)} µs`;
  if (x < 10) return `${x.toFixed(2)} ms`;
  if (x < 100) return `${x.toFixed(1)} ms`;
  return `${x.toFixed(0)} ms`;
}

/** "1,350 (median of 5; 1,300–1,400, ±3.7%)" */
export function describeSpread(s: Spread, fmt: (x: number) => string = (x) => num(x)): string {
  if (s.n <= 1) return `${fmt(s.median)} (1 round)`;
  return `${fmt(s.median)} (median of ${s.n}; range ${fmt(s.min)}–${fmt(s.max)}, ±${s.halfRangePct.toFixed(1)}%)`;
}

export const sleep = (msec: number) => new Promise((r) => setTimeout(r, msec));

/** Runs `fn` `count` times with at most `concurrency` in flight; returns each call's latency in ms. */
export async function timedPool(count: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<{ latencies: number[]; wallMs: number }> {
  const latencies: number[] = new Array(count);
  let next = 0;
  const t0 = performance.now();
  const workers = Array.from({ length: Math.min(concurrency, count) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      const s = performance.now();
      await fn(i);
      latencies[i] = performance.now() - s;
    }
  });
  await Promise.all(workers);
  return { latencies, wallMs: performance.now() - t0 };
}

/**
 * Measures one argon2id hash at the given parameters, sequentially, in a process of its own so the
 * benchmark can run it on the API's CPU (taskset). Prints JSON: wall and CPU milliseconds per hash.
 * Usage: node --import tsx bench/lib/hash-probe.ts '{"memoryKiB":19456,"timeCost":2,"parallelism":1}' 15
 */
import { hashPassword, type Argon2Params } from '../../crypto/argon2';

async function main() {
  const params = JSON.parse(process.argv[2]) as Argon2Params;
  const samples = Number(process.argv[3] ?? 10);
  const password = 'bench-correct-horse-battery-9';
  await hashPassword(password, params); // warm-up: loads the addon, touches the memory once
  const wallMs: number[] = [];
  const cpuMs: number[] = [];
  for (let i = 0; i < samples; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await hashPassword(password, params);
    wallMs.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpuMs.push((c.user + c.system) / 1000);
  }
  process.stdout.write(JSON.stringify({ wallMs, cpuMs }));
}

main().catch((err) => {
  process.stderr.write(String((err as Error).stack ?? err));
  process.exit(1);
});

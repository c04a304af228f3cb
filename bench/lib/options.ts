/** Command-line options. The defaults are the full run; `--quick` shrinks every size (smoke test). */
import { join, resolve } from 'node:path';
import { ROOT } from '../../infra/stack/stack';
import { BenchError } from './env';

export const SUITES = ['verify', 'signing', 'refresh', 'login', 'forgot', 'scale'] as const;
export type Suite = (typeof SUITES)[number];

export interface Options {
  quick: boolean;
  /** `--peer keycloak`: the same loops against Keycloak in the same run (bench/suites/peer.ts). */
  peer: 'keycloak' | null;
  dataDir: string;
  suites: Set<Suite>;
  /** Where the report is appended; null: print only. */
  results: string | null;
  keep: boolean;
  apiCpus: string;
  clientCpus: string;
  /** HTTP load: warm-up and measured rounds. */
  warmupSec: number;
  rounds: number;
  roundSec: number;
  refreshConnections: number;
  loginConnections: number;
  /** Users seeded before the HTTP benchmarks, and the size the scale benchmark grows to. */
  baseUsers: number;
  grownUsers: number;
  devicesPerUser: number;
  /** Scale benchmark: fixed request rate (well below saturation) so p50 is service time, not queueing. */
  scaleRate: number;
  scaleConnections: number;
  forgotSamples: number;
  hashSamples: number;
  verifyIterations: number;
  verifyRounds: number;
  signIterations: number;
  transitIterations: number;
  signRounds: number;
}

const FULL: Omit<Options, 'quick' | 'peer' | 'dataDir' | 'suites' | 'results' | 'keep' | 'apiCpus' | 'clientCpus'> = {
  warmupSec: 5,
  rounds: 5,
  roundSec: 10,
  refreshConnections: 16,
  loginConnections: 8,
  baseUsers: 10_000,
  grownUsers: 1_000_000,
  devicesPerUser: 5,
  scaleRate: 200,
  scaleConnections: 8,
  forgotSamples: 50,
  hashSamples: 15,
  verifyIterations: 20_000,
  verifyRounds: 5,
  signIterations: 5_000,
  transitIterations: 1_000,
  signRounds: 3,
};

const QUICK: typeof FULL = {
  warmupSec: 1,
  rounds: 2,
  roundSec: 2,
  refreshConnections: 4,
  loginConnections: 2,
  baseUsers: 200,
  grownUsers: 2_000,
  devicesPerUser: 5,
  scaleRate: 50,
  scaleConnections: 2,
  forgotSamples: 5,
  hashSamples: 3,
  verifyIterations: 2_000,
  verifyRounds: 2,
  signIterations: 300,
  transitIterations: 40,
  signRounds: 2,
};

export const USAGE = `usage: npm run bench -- [options]

Runs every benchmark against the running local stack (AUTHFLOW_DATA_DIR, default .data/dev;
start it with \`npm run dev\`), prints a table and appends it to bench/RESULTS.md.

  --quick               smoke test: tiny sizes and short rounds, not recorded unless --results is given
  --only=a,b            run only these suites: ${SUITES.join(', ')}
  --results=FILE        append the report to FILE (default bench/RESULTS.md; --quick: none)
  --no-record           print only
  --keep                keep the seeded rows (@bench.invalid users) instead of deleting them
  --api-cpus=LIST       CPUs for the benchmarked API process (taskset list, default 1)
  --client-cpus=LIST    CPUs for this process / the load generator (default 0)
  --rounds=N --round-seconds=N --warmup-seconds=N
  --connections=N       refresh connections (login uses --login-connections=N)
  --users=N --grow-users=N --devices-per-user=N
  --forgot-samples=N
  --peer keycloak       also run the same loops against Keycloak (provisioned from Maven Central,
                        needs a Java 21+ runtime) and add both systems side by side to the table
`;

export function parseOptions(argvIn: string[]): Options {
  // `--peer keycloak` (two words, as the issue writes it) is the same as `--peer=keycloak`.
  const argv: string[] = [];
  for (let i = 0; i < argvIn.length; i++) {
    if (argvIn[i] === '--peer' && argvIn[i + 1] && !argvIn[i + 1].startsWith('--')) argv.push(`--peer=${argvIn[++i]}`);
    else argv.push(argvIn[i]);
  }
  const flags = new Map<string, string | true>();
  for (const a of argv) {
    if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new BenchError(`unknown argument ${a}\n${USAGE}`);
    flags.set(m[1], m[2] ?? true);
  }
  const quick = flags.get('quick') === true;
  const base = { ...(quick ? QUICK : FULL) };
  const intFlag = (name: string, key: keyof typeof FULL) => {
    const v = flags.get(name);
    if (v === undefined) return;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new BenchError(`--${name} needs a positive whole number`);
    base[key] = n;
    flags.delete(name);
  };
  intFlag('rounds', 'rounds');
  intFlag('round-seconds', 'roundSec');
  intFlag('warmup-seconds', 'warmupSec');
  intFlag('connections', 'refreshConnections');
  intFlag('login-connections', 'loginConnections');
  intFlag('users', 'baseUsers');
  intFlag('grow-users', 'grownUsers');
  intFlag('devices-per-user', 'devicesPerUser');
  intFlag('forgot-samples', 'forgotSamples');
  let suites = new Set<Suite>(SUITES);
  const only = flags.get('only');
  if (typeof only === 'string') {
    const names = only.split(',').map((s) => s.trim());
    for (const n of names) if (!SUITES.includes(n as Suite)) throw new BenchError(`--only: unknown suite ${n} (known: ${SUITES.join(', ')})`);
    suites = new Set(names as Suite[]);
  }
  const resultsFlag = flags.get('results');
  let results: string | null = quick ? null : join(ROOT, 'bench', 'RESULTS.md');
  if (typeof resultsFlag === 'string') results = resolve(resultsFlag);
  if (flags.get('no-record') === true) results = null;
  const peerFlag = flags.get('peer');
  if (peerFlag !== undefined && peerFlag !== 'keycloak') throw new BenchError(`--peer: the only peer is keycloak (got ${String(peerFlag)})`);
  for (const k of ['quick', 'only', 'results', 'no-record', 'keep', 'api-cpus', 'client-cpus', 'peer']) flags.delete(k);
  if (flags.size) throw new BenchError(`unknown option --${[...flags.keys()][0]}\n${USAGE}`);
  if (base.grownUsers < base.baseUsers) throw new BenchError('--grow-users must be at least --users');
  const a = argv.find((x) => x.startsWith('--api-cpus='));
  const c = argv.find((x) => x.startsWith('--client-cpus='));
  return {
    ...base,
    quick,
    peer: peerFlag === 'keycloak' ? 'keycloak' : null,
    dataDir: resolve(process.env.AUTHFLOW_DATA_DIR ?? join(ROOT, '.data', 'dev')),
    suites,
    results,
    keep: argv.includes('--keep'),
    apiCpus: a ? a.split('=')[1] : '1',
    clientCpus: c ? c.split('=')[1] : '0',
  };
}

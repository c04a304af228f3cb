/** What every suite receives, and what it gives back. */
import type { Client as PgClient } from 'pg';
import type { Config } from '../../platform/config';
import type { Argon2Params } from '../../crypto/argon2';
import type { StackInfo } from '../../infra/stack/stack';
import type { BenchApi, Pinning } from './env';
import type { Options } from './options';
import type { Seeder } from './seed';

export type Verdict = 'PASS' | 'FAIL' | 'n/a' | 'info';

export interface Row {
  benchmark: string;
  figure: string;
  target: string;
  verdict: Verdict;
}

export interface SuiteResult {
  rows: Row[];
  /** Per-round figures and notes for the details section. */
  details: string[];
}

export interface BenchContext {
  opts: Options;
  info: StackInfo;
  pin: Pinning;
  /** The dedicated API process the HTTP benchmarks use. */
  api: BenchApi;
  db: PgClient;
  seeder: Seeder;
  /** The service configuration as the stack's API sees it (defaults applied). */
  config: Config;
  argon2: Argon2Params;
  log: (msg: string) => void;
}

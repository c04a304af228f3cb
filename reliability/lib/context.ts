/**
 * What every part of `npm run reliability` receives and returns. The runner (reliability/run.ts)
 * starts its own stack on shifted ports, builds one ReliabilityContext, runs the parts in order
 * (fuzz, faults, soak, races) and renders their rows into a dated table in RELIABILITY.md.
 */
import type { Client as PgClient } from 'pg';
import type { StackInfo } from '../../infra/stack/stack';

export interface ReliabilityContext {
  /** The stack's stack.json: urls (api, mailWeb, ...), serviceEnv, dataDir, logs, pids. */
  info: StackInfo;
  /** Base URLs of every API instance serving the load (the launcher's first). */
  apis: string[];
  /** The application database, as its owner. */
  db: PgClient;
  /** Shorten the part (the `npm test` smoke version and `--quick`). */
  quick: boolean;
  log: (message: string) => void;
}

export type Verdict = 'PASS' | 'FAIL' | 'INFO';

export interface Row {
  /** The part and case, e.g. "fuzz", "fault: Vault sealed 30 s", "race: one refresh token". */
  part: string;
  /** What was measured, as a reader would say it. */
  measure: string;
  figure: string;
  target: string;
  verdict: Verdict;
}

export interface PartResult {
  rows: Row[];
  /** Lines for the details block under the table (how it was counted, rounds, notes). */
  details: string[];
}

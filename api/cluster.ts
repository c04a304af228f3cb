/**
 * API_PROCESSES > 1: this process is the cluster primary. It serves nothing itself; it forks the
 * API processes (each logs in to Vault, opens its own database pool and Temporal client, and runs
 * its own outbox relay, which claims rows with SKIP LOCKED, so several relays never double-send),
 * lets Node's cluster share the listening port among them (round-robin), replaces one that dies,
 * and on SIGTERM/SIGINT asks each to shut down gracefully and exits when all have.
 * /metrics answers for the process that took the request: scrape each host once per process, or
 * run one process per container.
 */
import cluster, { type Worker } from 'node:cluster';
import { createLogger } from '../platform/logger';

/** A process that dies sooner than this after its start counts as a crash loop: wait longer. */
const STABLE_MS = 10_000;

export function runPrimary(processes: number, logLevel: string): Promise<void> {
  const logger = createLogger(logLevel, 'authflow-api-primary');
  let stopping = false;
  let backoffMs = 500;
  const started = new Map<number, number>();
  const fork = () => {
    const w: Worker = cluster.fork();
    started.set(w.id, Date.now());
  };
  cluster.on('exit', (w, code, signal) => {
    const lived = Date.now() - (started.get(w.id) ?? 0);
    started.delete(w.id);
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        logger.info('api processes stopped');
        process.exit(0);
      }
      return;
    }
    backoffMs = lived < STABLE_MS ? Math.min(backoffMs * 2, 30_000) : 500;
    logger.error({ pid: w.process.pid, code, signal, restartInMs: backoffMs }, 'api process exited; starting another');
    setTimeout(() => !stopping && fork(), backoffMs).unref();
  });
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'api primary shutting down');
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
    setTimeout(() => process.exit(0), 15_000).unref();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  for (let i = 0; i < processes; i++) fork();
  logger.info({ processes }, 'api primary started');
  return Promise.resolve();
}

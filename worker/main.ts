/** Worker process: logs in to Vault, connects to Postgres and Temporal, runs every workflow and
 * activity on the task queue, and shuts down gracefully on SIGTERM/SIGINT. */
import { loadConfig } from '../platform/config';
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import { makeTelemetryFilterString, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { AesGcmPayloadCodec } from '../platform/temporal/payload-codec';
import { dataConverterWith } from '../platform/temporal/data-converter';
import { CodecKeyRing } from '../platform/temporal/codec-keys';
import { temporalConnectionOptions, withTemporalApiKeyFromVault } from '../platform/temporal/connection';
import type { Logger } from '../platform/logger';
import { createRuntime, retrying } from '../platform/runtime';
import { registerSchedulesAtStart } from './schedules';
import { workflowSource } from './workflow-source';

/** The SDK's logger (worker, workflow and activity logs, and forwarded Core logs) written as JSON
 * through pino instead of the SDK's default text lines on stderr. */
function sdkLogger(pinoLogger: Logger): TemporalLogger {
  const levels: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
    TRACE: 'trace',
    DEBUG: 'debug',
    INFO: 'info',
    WARN: 'warn',
    ERROR: 'error',
  };
  const clean = (meta?: LogMetadata) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(meta ?? {})) out[k] = typeof v === 'bigint' ? v.toString() : v;
    return out;
  };
  const log = (level: LogLevel, message: string, meta?: LogMetadata) => pinoLogger[levels[level] ?? 'info'](clean(meta), message);
  return {
    log,
    trace: (m, meta) => log('TRACE', m, meta),
    debug: (m, meta) => log('DEBUG', m, meta),
    info: (m, meta) => log('INFO', m, meta),
    warn: (m, meta) => log('WARN', m, meta),
    error: (m, meta) => log('ERROR', m, meta),
  };
}

async function main() {
  const rt = await createRuntime('authflow-worker', loadConfig());
  const { logger } = rt;
  // TEMPORAL_API_KEY_FROM_VAULT: the key is read from Vault once, for every Temporal connection below.
  const config = await retrying('temporal api key', logger, () => withTemporalApiKeyFromVault(rt.config, rt.vault));
  Runtime.install({
    logger: sdkLogger(logger.child({ component: 'temporal' })),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN', other: 'ERROR' }), forward: {} } },
    // SIGTERM/SIGINT are handled below (graceful shutdown, then close the runtime).
    shutdownSignals: [],
  });
  // Payload codec keys: created on a fresh install (create-only), then refreshed for rotations.
  const codecKeys = new CodecKeyRing(rt.vault, logger.child({ component: 'codec' }));
  await retrying('payload codec keys', logger, () => codecKeys.load(true));
  codecKeys.startRefresh(config.CODEC_KEY_REFRESH_SECONDS * 1000);
  const connection = await retrying('temporal', logger, () => NativeConnection.connect(temporalConnectionOptions(config)));
  const { from, ...workflows } = workflowSource();
  logger.info({ workflows: from }, 'loading workflow code');
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    ...workflows,
    activities: createActivities({ ...rt }),
    dataConverter: dataConverterWith(new AesGcmPayloadCodec(codecKeys)),
    shutdownGraceTime: '10 seconds',
    maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS,
  });
  const stop = () => {
    logger.info('worker shutting down');
    worker.shutdown();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // Temporal Schedules of the Vault operations (idempotent: create, or update to this config).
  await registerSchedulesAtStart(config, logger, dataConverterWith(new AesGcmPayloadCodec(codecKeys)));
  logger.info({ taskQueue: config.TEMPORAL_TASK_QUEUE }, 'worker started');
  await worker.run();
  codecKeys.stop();
  await connection.close();
  await rt.close();
  logger.info('worker stopped');
}

main().catch((err) => {
  process.stderr.write(`worker failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});

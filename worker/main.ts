/** Worker process: logs in to Vault, connects to Postgres and Temporal, runs every workflow and
 * activity on the task queue, and shuts down gracefully on SIGTERM/SIGINT. */
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createRuntime, retrying } from '../core/runtime';

async function main() {
  const rt = await createRuntime('authflow-worker');
  const { config, logger } = rt;
  const connection = await retrying('temporal', logger, () => NativeConnection.connect({ address: config.TEMPORAL_ADDRESS }));
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    workflowsPath: require.resolve('../workflows'),
    activities: createActivities({ ...rt }),
    shutdownGraceTime: '10 seconds',
  });
  const stop = () => {
    logger.info('worker shutting down');
    worker.shutdown();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  logger.info({ taskQueue: config.TEMPORAL_TASK_QUEUE }, 'worker started');
  await worker.run();
  await connection.close();
  await rt.close();
  logger.info('worker stopped');
}

main().catch((err) => {
  process.stderr.write(`worker failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});

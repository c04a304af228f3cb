/**
 * The Temporal Schedules of the Vault operations, registered by every worker at start:
 *   authflow-key-rotation   every KEY_ROTATION_INTERVAL  -> keyRotationWorkflow
 *   authflow-backup         every BACKUP_INTERVAL        -> backupWorkflow
 *   authflow-restore-drill  every RESTORE_DRILL_INTERVAL -> restoreDrillWorkflow
 * Idempotent: `create`, and when the schedule exists (ScheduleAlreadyRunning) `update` it to the
 * current configuration, keeping an operator's pause. Overlap policy SKIP: a run still going when
 * the next is due is not doubled. Operators see, pause and trigger them in the Temporal UI
 * (Schedules), and the runs appear as `key-rotation:scheduled-<time>` etc.
 */
import { Client, ScheduleAlreadyRunning, ScheduleOptions, ScheduleOverlapPolicy } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import type { Config } from '../platform/config';
import { rotationTimings } from '../domain/sessions/signing-keys';
import type { Logger } from '../platform/logger';
import { retrying } from '../platform/runtime';
import { FlowAttr, scheduleIds, SYSTEM_USER, UserIdAttr, workflowIds } from '../platform/temporal/ids';
import { connectTemporal } from '../platform/temporal/client';

export function scheduleDefinitions(config: Config): ScheduleOptions[] {
  const common = (flow: string) => ({
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    typedSearchAttributes: [
      { key: UserIdAttr, value: SYSTEM_USER },
      { key: FlowAttr, value: flow },
    ],
  });
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: 24 * 3600 * 1000, pauseOnFailure: false };
  const drillEvery = config.RESTORE_DRILL_INTERVAL;
  return [
    {
      scheduleId: scheduleIds.keyRotation,
      spec: { intervals: [{ every: config.KEY_ROTATION_INTERVAL * 1000 }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'keyRotationWorkflow',
        workflowId: workflowIds.keyRotation('scheduled'),
        args: [rotationTimings(config)],
        ...common('key-rotation'),
      },
      policies,
    },
    {
      scheduleId: scheduleIds.backup,
      spec: { intervals: [{ every: config.BACKUP_INTERVAL * 1000 }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'backupWorkflow',
        workflowId: workflowIds.backup('scheduled'),
        args: [{ retention: config.BACKUP_RETENTION }],
        ...common('backup'),
      },
      policies,
    },
    {
      scheduleId: scheduleIds.restoreDrill,
      // Offset from the backups' boundaries, so a drill does not race the backup it would test.
      spec: { intervals: [{ every: drillEvery * 1000, offset: Math.min(3600, Math.floor(drillEvery / 2)) * 1000 }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'restoreDrillWorkflow',
        workflowId: workflowIds.restoreDrill('scheduled'),
        args: [{}],
        ...common('restore-drill'),
      },
      policies,
    },
  ];
}

export async function registerSchedules(client: Client, config: Config, logger: Logger): Promise<void> {
  for (const def of scheduleDefinitions(config)) {
    try {
      await client.schedule.create({ ...def, state: { note: 'registered by the worker (worker/schedules.ts)' } });
      logger.info({ scheduleId: def.scheduleId }, 'schedule created');
    } catch (err) {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      await client.schedule.getHandle(def.scheduleId).update((previous) => ({
        spec: def.spec,
        action: def.action,
        policies: def.policies,
        // An operator's pause (and its note) survives worker restarts.
        state: { paused: previous.state.paused, note: previous.state.note },
      }));
      logger.info({ scheduleId: def.scheduleId }, 'schedule updated to the current configuration');
    }
  }
}

/**
 * What the worker calls after it is created: connects a client with the production data
 * converter (schedule arguments are payloads too), registers, disconnects. Retries while Temporal
 * comes up; a final failure is logged at error and does not stop the worker from running flows.
 */
export async function registerSchedulesAtStart(config: Config, logger: Logger, dataConverter: DataConverter): Promise<void> {
  const log = logger.child({ component: 'schedules' });
  try {
    await retrying(
      'temporal schedules',
      log,
      async () => {
        const client = await connectTemporal(config, dataConverter);
        try {
          await registerSchedules(client, config, log);
        } finally {
          await client.connection.close().catch(() => undefined);
        }
      },
      10,
    );
  } catch (err) {
    log.error({ err: (err as Error).message }, 'could not register the Temporal Schedules (rotation, backups, restore drills will not run on time)');
  }
}

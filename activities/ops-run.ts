/**
 * The bookkeeping activity the key-rotation and backups flows share: the run record of each phase
 * in `ops_runs` (domain/ops/ops-runs.ts; idempotent, audited). Failures that need a human log at
 * error, a cancellation at warn.
 */
import type { OpsKind } from '../platform/metrics';
import { OpsRunStatus, recordOpsRun } from '../domain/ops/ops-runs';
import type { ActivityDeps } from './deps';

export function createOpsRunActivities(deps: ActivityDeps) {
  const { sequelize } = deps;
  const log = deps.logger.child({ component: 'vault-ops' });

  return {
    /** Records a run's state (idempotent, audited). Failures that need a human log at error. */
    async recordOpsRun(input: {
      runId: string;
      workflowId: string;
      kind: OpsKind;
      status: OpsRunStatus;
      phase: string;
      actorId?: string | null;
      details?: Record<string, unknown>;
    }): Promise<{ changed: boolean }> {
      const changed = await recordOpsRun(sequelize, input);
      if (changed && input.status === 'failed' && input.phase === 'cancelled') {
        log.warn({ kind: input.kind, runId: input.runId, details: input.details }, `${input.kind.replace('_', ' ')} cancelled`);
      } else if (changed && input.status === 'failed') {
        log.error({ kind: input.kind, runId: input.runId, phase: input.phase, details: input.details }, `${input.kind.replace('_', ' ')} failed`);
      } else if (changed && input.status === 'succeeded') {
        log.info({ kind: input.kind, runId: input.runId }, `${input.kind.replace('_', ' ')} succeeded`);
      }
      return { changed };
    },
  };
}

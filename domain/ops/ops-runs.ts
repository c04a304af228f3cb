/**
 * Runs of the Vault operations (key rotation, backup, restore drill) in Postgres: the worker's
 * activities record each phase (idempotently: a retried activity changes nothing), every change
 * is audited in the same transaction, and the API reads the latest outcomes for /metrics and the
 * admin status page.
 */
import { QueryTypes, Sequelize } from 'sequelize';
import { audit } from '../audit';
import type { OpsKind, OpsStatus } from '../../platform/metrics';

export type OpsRunStatus = 'running' | 'succeeded' | 'failed';

export interface OpsRunRecord {
  runId: string;
  workflowId: string;
  kind: OpsKind;
  status: OpsRunStatus;
  /** A short step name (`key_published`, `completed`, ...): the audit event is `ops.<kind>.<phase>`. */
  phase: string;
  actorId?: string | null;
  /** Ids, counts, sizes and times only: never key material or personal data. */
  details?: Record<string, unknown>;
}

/** Upserts the run; returns whether anything changed (and so was audited). */
export async function recordOpsRun(sequelize: Sequelize, r: OpsRunRecord): Promise<boolean> {
  return sequelize.transaction(async (transaction) => {
    const rows = await sequelize.query<{ id: string }>(
      `INSERT INTO ops_runs (id, kind, workflow_id, status, phase, actor_id, details, finished_at)
       VALUES (:id, :kind, :workflowId, :status, :phase, :actorId, CAST(:details AS jsonb), CASE WHEN :status = 'running' THEN NULL ELSE now() END)
       ON CONFLICT (id) DO UPDATE SET
         status = EXCLUDED.status, phase = EXCLUDED.phase, details = ops_runs.details || EXCLUDED.details,
         updated_at = now(), finished_at = EXCLUDED.finished_at
       WHERE (ops_runs.status, ops_runs.phase) IS DISTINCT FROM (EXCLUDED.status, EXCLUDED.phase)
       RETURNING id`,
      {
        replacements: {
          id: r.runId,
          kind: r.kind,
          workflowId: r.workflowId,
          status: r.status,
          phase: r.phase,
          actorId: r.actorId ?? null,
          details: JSON.stringify(r.details ?? {}),
        },
        type: QueryTypes.SELECT,
        transaction,
      },
    );
    if (!rows.length) return false;
    await audit(
      transaction,
      `ops.${r.kind}.${r.phase}`,
      null,
      { actorId: r.actorId ?? null },
      { run_id: r.runId, workflow_id: r.workflowId, status: r.status, ...(r.details ?? {}) },
    );
    return true;
  });
}

/** The last success and the last finished outcome of each kind (metrics, status page). */
export async function opsStatus(sequelize: Sequelize): Promise<OpsStatus[]> {
  const rows = await sequelize.query<{ kind: OpsKind; last_success: Date | null; last_status: OpsRunStatus | null }>(
    `SELECT kind,
            max(finished_at) FILTER (WHERE status = 'succeeded') AS last_success,
            (array_agg(status ORDER BY finished_at DESC) FILTER (WHERE finished_at IS NOT NULL))[1] AS last_status
       FROM ops_runs GROUP BY kind`,
    { type: QueryTypes.SELECT },
  );
  return rows.map((r) => ({
    kind: r.kind,
    lastSuccessAt: r.last_success ? new Date(r.last_success) : null,
    lastFinishedOk: r.last_status ? r.last_status === 'succeeded' : null,
  }));
}

export interface OpsRunRow {
  id: string;
  kind: OpsKind;
  workflow_id: string;
  status: OpsRunStatus;
  phase: string;
  actor_id: string | null;
  details: Record<string, unknown>;
  started_at: Date;
  finished_at: Date | null;
}

export async function recentOpsRuns(sequelize: Sequelize, limit = 20): Promise<OpsRunRow[]> {
  return sequelize.query<OpsRunRow>(
    'SELECT id, kind, workflow_id, status, phase, actor_id, details, started_at, finished_at FROM ops_runs ORDER BY started_at DESC LIMIT :limit',
    {
      replacements: { limit },
      type: QueryTypes.SELECT,
    },
  );
}

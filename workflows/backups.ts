/**
 * Backups (`backup:scheduled-<time>` daily from the Temporal Schedule, or `backup:on-demand`):
 * pg_dump of the database and a Vault raft snapshot, each encrypted with its own Vault transit
 * data key, written with checksums and a manifest into BACKUP_DIR, then retention (keep N).
 * Each part is its own heartbeating activity, so a Postgres restart retries only the dump; a
 * failed backup removes its partial directory, so nothing half-written is ever kept.
 *
 * Restore drill (`restore-drill:scheduled-<time>` weekly, or `restore-drill:on-demand`): restores
 * the newest backup into a scratch database and checks the manifest's row counts; the outcome is
 * an ops_runs row (exported by the API as a metric), an audit event, and on failure an error log
 * and a failed workflow.
 */
import { ApplicationFailure, CancellationScope, isCancellation, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { longOpsActivity, opsActivity } from './options';
import { rootMessage } from './ops-run';

const { dumpDatabaseForBackup, snapshotVaultForBackup, runRestoreDrill } = proxyActivities<Activities>(longOpsActivity);
const { sealBackup, discardPartialBackup, pruneBackups, recordOpsRun } = proxyActivities<Activities>(opsActivity);

export interface BackupInput {
  /** Complete backups to keep (newest first). */
  retention: number;
  actorId?: string | null;
}

export interface BackupResult {
  backupId: string;
  bytes: number;
  tables: Record<string, number>;
  removed: string[];
}

/** `<UTC start time>-<run id prefix>`: sortable, unique per run (domain/ops/backups.ts isBackupId). */
function newBackupId(): string {
  const t = new Date(Date.now())
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  return `${t}-${workflowInfo()
    .runId.replace(/[^a-z0-9]/gi, '')
    .toLowerCase()
    .slice(0, 12)}`;
}

export async function backupWorkflow(input: BackupInput): Promise<BackupResult> {
  const { workflowId, runId } = workflowInfo();
  const runKey = `${workflowId}/${runId}`;
  const backupId = newBackupId();
  const createdAt = new Date(Date.now()).toISOString();
  const record = (status: 'running' | 'succeeded' | 'failed', phase: string, details: Record<string, unknown>) =>
    recordOpsRun({ runId: runKey, workflowId, kind: 'backup', status, phase, actorId: input.actorId ?? null, details });

  await record('running', 'started', { backup_id: backupId });
  let sealed: { backupId: string; bytes: number; tables: Record<string, number> };
  try {
    const database = await dumpDatabaseForBackup({ backupId });
    const vault = await snapshotVaultForBackup({ backupId });
    sealed = await sealBackup({ backupId, createdAt, database, vault });
  } catch (err) {
    await CancellationScope.nonCancellable(async () => {
      await discardPartialBackup({ backupId });
      await record('failed', isCancellation(err) ? 'cancelled' : 'failed', { backup_id: backupId, error: rootMessage(err) });
    });
    throw err;
  }
  // The backup exists from here on: a failed retention pass does not make it a failed backup.
  let removed: string[] = [];
  let pruneError: string | undefined;
  try {
    removed = (await pruneBackups({ keep: input.retention })).removed;
  } catch (err) {
    pruneError = rootMessage(err);
  }
  const rows = Object.values(sealed.tables).reduce((a, b) => a + b, 0);
  await record('succeeded', 'completed', {
    backup_id: backupId,
    bytes: sealed.bytes,
    tables: Object.keys(sealed.tables).length,
    rows,
    removed,
    ...(pruneError ? { prune_error: pruneError } : {}),
  });
  return { backupId, bytes: sealed.bytes, tables: sealed.tables, removed };
}

export interface RestoreDrillInput {
  actorId?: string | null;
}

export interface RestoreDrillResult {
  ok: boolean;
  backupId: string | null;
  problems: string[];
  tables: number;
  rows: number;
}

export async function restoreDrillWorkflow(input: RestoreDrillInput = {}): Promise<RestoreDrillResult> {
  const { workflowId, runId } = workflowInfo();
  const runKey = `${workflowId}/${runId}`;
  const record = (status: 'running' | 'succeeded' | 'failed', phase: string, details: Record<string, unknown>) =>
    recordOpsRun({ runId: runKey, workflowId, kind: 'restore_drill', status, phase, actorId: input.actorId ?? null, details });

  await record('running', 'started', {});
  let result: RestoreDrillResult;
  try {
    result = await runRestoreDrill({ runId: runKey });
  } catch (err) {
    await CancellationScope.nonCancellable(() => record('failed', isCancellation(err) ? 'cancelled' : 'failed', { error: rootMessage(err) }));
    throw err;
  }
  const details = { backup_id: result.backupId, tables: result.tables, rows: result.rows, problems: result.problems };
  if (!result.ok) {
    await record('failed', 'failed', details);
    throw ApplicationFailure.nonRetryable(`restore drill failed: ${result.problems.join('; ').slice(0, 500)}`, 'RestoreDrillFailed');
  }
  await record('succeeded', 'succeeded', details);
  return result;
}

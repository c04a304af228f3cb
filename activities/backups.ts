/**
 * Activities of the backups flow and its restore drill (workflows/backups.ts): encrypted backups
 * (pg_dump + Vault raft snapshot, domain/ops/backups.ts), sealing, retention, and the drill that
 * restores the newest backup into a scratch database. Every activity is idempotent: backup parts
 * are rewritten from scratch in a partial directory keyed by the backup id. Workflow history
 * receives ids, sizes and counts, never key material.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { rm } from 'node:fs/promises';
import { isBackupId, pruneBackups, sealParts } from '../domain/ops/backups';
import { partialDir } from '../platform/backup-io';
import { BackupError, DatabasePartInfo, dumpDatabase, PgTarget, snapshotVault, VaultPartInfo } from '../platform/backup-io';
import { DrillBusyError, DrillResult, runRestoreDrill } from '../domain/ops/restore-drill';
import { readDbCredentials } from '../platform/db';
import type { ActivityDeps } from './deps';

/** Heartbeats every few seconds with the latest progress, so a dead worker is noticed quickly
 * and a cancellation reaches the activity (through its cancellation signal). */
function heartbeating(what: string) {
  const ctx = Context.current();
  let progress: Record<string, unknown> = { what };
  ctx.heartbeat(progress);
  const timer = setInterval(() => ctx.heartbeat(progress), 3000);
  return {
    signal: ctx.cancellationSignal,
    progress: (p: Record<string, unknown>) => {
      progress = { what, ...p };
    },
    stop: () => clearInterval(timer),
  };
}

export function createBackupsActivities(deps: ActivityDeps) {
  const { vault, config } = deps;
  const log = deps.logger.child({ component: 'vault-ops' });

  async function dbTarget(database = config.DB_NAME): Promise<PgTarget> {
    const creds = await readDbCredentials(vault);
    return { host: config.DB_HOST, port: config.DB_PORT, database, username: creds.username, password: creds.password, ssl: config };
  }

  const validId = (id: string) => {
    if (!isBackupId(id)) throw ApplicationFailure.nonRetryable(`not a backup id: ${id}`, 'InvalidInput');
  };

  return {
    async dumpDatabaseForBackup(input: { backupId: string }): Promise<DatabasePartInfo> {
      validId(input.backupId);
      const hb = heartbeating('pg_dump');
      try {
        const part = await dumpDatabase({
          vault,
          target: await dbTarget(),
          pgDumpBin: config.PG_DUMP_BIN,
          root: config.BACKUP_DIR,
          id: input.backupId,
          signal: hb.signal,
          onBytes: (bytes) => hb.progress({ bytes }),
        });
        log.info({ backupId: input.backupId, bytes: part.bytes, tables: Object.keys(part.tables).length }, 'backup: database dumped and encrypted');
        return part;
      } catch (err) {
        log.warn({ backupId: input.backupId, err: (err as Error).message }, 'backup: database dump failed (will be retried)');
        throw err;
      } finally {
        hb.stop();
      }
    },

    async snapshotVaultForBackup(input: { backupId: string }): Promise<VaultPartInfo> {
      validId(input.backupId);
      const hb = heartbeating('raft snapshot');
      try {
        const part = await snapshotVault({ vault, root: config.BACKUP_DIR, id: input.backupId, signal: hb.signal, onBytes: (bytes) => hb.progress({ bytes }) });
        log.info({ backupId: input.backupId, bytes: part.bytes }, 'backup: vault snapshot taken and encrypted');
        return part;
      } catch (err) {
        log.warn({ backupId: input.backupId, err: (err as Error).message }, 'backup: vault snapshot failed (will be retried)');
        throw err;
      } finally {
        hb.stop();
      }
    },

    /** Writes the manifest and checksums, verifies, and makes the backup visible (rename). */
    async sealBackup(input: {
      backupId: string;
      createdAt: string;
      database: DatabasePartInfo;
      vault: VaultPartInfo;
    }): Promise<{ backupId: string; bytes: number; tables: Record<string, number> }> {
      validId(input.backupId);
      try {
        const { sealedNow, ...sealed } = await sealParts(config.BACKUP_DIR, input);
        if (sealedNow) log.info({ backupId: input.backupId, bytes: sealed.bytes }, 'backup: complete');
        return sealed;
      } catch (err) {
        if (err instanceof BackupError) throw ApplicationFailure.nonRetryable(err.message, 'BackupInvalid');
        throw err;
      }
    },

    /** A failed backup leaves nothing behind that could be mistaken for one. */
    async discardPartialBackup(input: { backupId: string }): Promise<void> {
      validId(input.backupId);
      await rm(partialDir(config.BACKUP_DIR, input.backupId), { recursive: true, force: true });
    },

    async pruneBackups(input: { keep: number }): Promise<{ removed: string[] }> {
      const removed = await pruneBackups(config.BACKUP_DIR, Math.max(1, input.keep));
      if (removed.length) log.info({ removed }, 'backup: old backups removed (retention)');
      return { removed };
    },

    /**
     * Restores the newest backup into the scratch database and checks it (domain/ops/restore-drill.ts).
     * A failed check is a result (`ok: false`), not a retry; a dependency failure throws and is
     * retried, and so is a drill that finds another one running.
     */
    async runRestoreDrill(_input: { runId: string }): Promise<DrillResult> {
      let hb: ReturnType<typeof heartbeating> | undefined;
      try {
        return await runRestoreDrill({
          vault,
          root: config.BACKUP_DIR,
          scratch: await dbTarget(config.RESTORE_DRILL_DATABASE),
          lockDatabase: config.DB_NAME,
          pgRestoreBin: config.PG_RESTORE_BIN,
          log,
          started: () => (hb = heartbeating('restore drill')),
        });
      } catch (err) {
        if (err instanceof DrillBusyError) throw ApplicationFailure.retryable(err.message, 'DrillBusy');
        throw err;
      } finally {
        hb?.stop();
      }
    },
  };
}

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
import {
  BackupError, backupDir, compareCounts, DatabasePartInfo, dumpDatabase, listBackups, partialDir, PgTarget, pruneBackups,
  readManifest, resetScratchDatabase, restoreDatabase, sealBackup, snapshotVault, tryAdvisoryLock, verifyChecksums, verifyDecrypts, VaultPartInfo,
  appVersion, BACKUP_FORMAT, BackupManifest, isBackupId,
} from '../domain/ops/backups';
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
    return { host: config.DB_HOST, port: config.DB_PORT, database, username: creds.username, password: creds.password };
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
          vault, target: await dbTarget(), pgDumpBin: config.PG_DUMP_BIN, root: config.BACKUP_DIR, id: input.backupId,
          signal: hb.signal, onBytes: (bytes) => hb.progress({ bytes }),
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
    async sealBackup(input: { backupId: string; createdAt: string; database: DatabasePartInfo; vault: VaultPartInfo }): Promise<{ backupId: string; bytes: number; tables: Record<string, number> }> {
      validId(input.backupId);
      const done = backupDir(config.BACKUP_DIR, input.backupId);
      const { database: db, vault: v } = input;
      try {
        const existing = await readManifest(done);
        return { backupId: existing.id, bytes: existing.parts.reduce((n, p) => n + p.bytes, 0), tables: existing.postgres.tables };
      } catch {
        /* not sealed yet */
      }
      const strip = <T extends { part: string }>(p: T) => {
        const { server_version: _a, pg_dump_version: _b, database: _c, tables: _d, migrations: _e, vault_version: _f, ...rest } = p as unknown as Record<string, unknown>;
        return rest as unknown as BackupManifest['parts'][number];
      };
      const manifest: BackupManifest = {
        format: BACKUP_FORMAT,
        id: input.backupId,
        created_at: input.createdAt,
        completed_at: new Date().toISOString(),
        app_version: appVersion(),
        postgres: { server_version: db.server_version, pg_dump_version: db.pg_dump_version, database: db.database, migrations: db.migrations, tables: db.tables },
        vault: { version: v.vault_version },
        parts: [strip(db), strip(v)],
      };
      try {
        await sealBackup(config.BACKUP_DIR, manifest);
      } catch (err) {
        if (err instanceof BackupError) throw ApplicationFailure.nonRetryable(err.message, 'BackupInvalid');
        throw err;
      }
      const bytes = manifest.parts.reduce((n, p) => n + p.bytes, 0);
      log.info({ backupId: input.backupId, bytes }, 'backup: complete');
      return { backupId: input.backupId, bytes, tables: db.tables };
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
     * Restores the newest backup into the scratch database and checks it: checksums, that the
     * Vault snapshot decrypts to what was recorded, and that every table has the manifest's row
     * count. A failed check is a result (`ok: false`), not a retry; a dependency failure throws
     * and is retried. The scratch database is emptied again afterwards (no stray copy of
     * personal data). One drill at a time (advisory lock).
     */
    async runRestoreDrill(_input: { runId: string }): Promise<{ ok: boolean; backupId: string | null; problems: string[]; tables: number; rows: number }> {
      const scratch = await dbTarget(config.RESTORE_DRILL_DATABASE);
      const unlock = await tryAdvisoryLock({ ...scratch, database: config.DB_NAME }, 'authflow-restore-drill');
      if (!unlock) throw ApplicationFailure.retryable('another restore drill is running', 'DrillBusy');
      const hb = heartbeating('restore drill');
      try {
        const newest = (await listBackups(config.BACKUP_DIR))[0];
        if (!newest) return { ok: false, backupId: null, problems: ['no complete backup found'], tables: 0, rows: 0 };
        hb.progress({ backupId: newest.id, step: 'verify' });
        let manifest: BackupManifest;
        try {
          manifest = await readManifest(newest.dir);
        } catch (err) {
          return { ok: false, backupId: newest.id, problems: [`manifest unreadable: ${(err as Error).message}`], tables: 0, rows: 0 };
        }
        const problems = await verifyChecksums(newest.dir, manifest);
        const vaultPart = manifest.parts.find((p) => p.part === 'vault');
        if (!problems.length && vaultPart) problems.push(...(await verifyDecrypts(vault, newest.dir, vaultPart)));
        if (!vaultPart) problems.push('the backup has no vault snapshot');
        if (problems.length) return { ok: false, backupId: newest.id, problems, tables: 0, rows: 0 };
        hb.progress({ backupId: newest.id, step: 'restore' });
        await resetScratchDatabase(scratch);
        try {
          await restoreDatabase({ vault, target: scratch, pgRestoreBin: config.PG_RESTORE_BIN, dir: newest.dir, manifest, clean: false, signal: hb.signal, onBytes: (bytes) => hb.progress({ backupId: newest.id, step: 'restore', bytes }) });
        } catch (err) {
          if (err instanceof BackupError) return { ok: false, backupId: newest.id, problems: [err.message], tables: 0, rows: 0 };
          throw err;
        }
        hb.progress({ backupId: newest.id, step: 'count' });
        const { counts, mismatches } = await compareCounts(scratch, manifest.postgres.tables);
        const rows = Object.values(counts).reduce((a, b) => a + b, 0);
        return { ok: mismatches.length === 0, backupId: newest.id, problems: mismatches, tables: Object.keys(counts).length, rows };
      } finally {
        await resetScratchDatabase(scratch).catch((err) => log.warn({ err: (err as Error).message }, 'restore drill: could not empty the scratch database'));
        await unlock();
        hb.stop();
      }
    },
  };
}

/**
 * Vault operations: signing-key rotation phases, encrypted backups (pg_dump + Vault raft
 * snapshot), restore drills, and the bookkeeping row of each run. Every activity is idempotent:
 * rotation phases are check-and-set transforms of the key set that recognise their own earlier
 * write; backup parts are rewritten from scratch in a partial directory keyed by the backup id;
 * the run record changes (and is audited) only when its state does. Workflow history receives
 * ids, kids, sizes and counts, never key material.
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
import { KeySetStateError, keySummary, newStoredKey, RotationConflictError, updateKeySet, withActiveKey, withNextKey, withoutRetiredKeys } from '../domain/sessions/signing-keys';
import type { OpsKind } from '../platform/metrics';
import { OpsRunStatus, recordOpsRun } from '../domain/ops/ops-runs';
import type { ActivityDeps } from './index';

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

function keyFailure(err: unknown): never {
  if (err instanceof RotationConflictError) throw ApplicationFailure.nonRetryable(err.message, 'RotationConflict');
  if (err instanceof KeySetStateError) throw ApplicationFailure.nonRetryable(err.message, 'KeySetState');
  throw err;
}

export function createVaultOpsActivities(deps: ActivityDeps) {
  const { vault, config, sequelize } = deps;
  const log = deps.logger.child({ component: 'vault-ops' });

  async function dbTarget(database = config.DB_NAME): Promise<PgTarget> {
    const creds = await readDbCredentials(vault);
    return { host: config.DB_HOST, port: config.DB_PORT, database, username: creds.username, password: creds.password };
  }

  const validId = (id: string) => {
    if (!isBackupId(id)) throw ApplicationFailure.nonRetryable(`not a backup id: ${id}`, 'InvalidInput');
  };

  return {
    // --- signing-key rotation ------------------------------------------------------------------

    /** Phase 1: a new key, published in the JWKS (status `next`), not signing yet. */
    async publishNextSigningKey(input: { rotationId: string }): Promise<{ kid: string; created: boolean }> {
      const key = await newStoredKey('next');
      try {
        const r = await updateKeySet(vault, (set) => withNextKey(set, input.rotationId, key));
        const mine = r.set.keys.find((k) => k.rotation_id === input.rotationId)!;
        if (r.changed) log.info({ kid: mine.kid, rotationId: input.rotationId }, 'key rotation: new signing key published (not signing yet)');
        return { kid: mine.kid, created: r.changed };
      } catch (err) {
        keyFailure(err);
      }
    },

    /** Phase 2: the new key signs; the previous one retires, published until its tokens expire. */
    async activateSigningKey(input: { rotationId: string; kid: string; retireAfterSeconds: number }): Promise<{ kid: string; retiring: string[]; publishUntil: string }> {
      const publishUntil = new Date(Date.now() + input.retireAfterSeconds * 1000);
      try {
        const r = await updateKeySet(vault, (set) => withActiveKey(set, input.kid, publishUntil, input.rotationId));
        // The keys this rotation retired (on a retried call: retired by the first attempt).
        const retiring = r.set.keys.filter((k) => k.status === 'retiring' && k.retired_by === input.rotationId);
        const until = retiring.map((k) => k.publish_until!).sort().pop() ?? publishUntil.toISOString();
        if (r.changed) log.info({ kid: input.kid, retiring: retiring.map((k) => k.kid) }, 'key rotation: signing switched to the new key');
        return { kid: input.kid, retiring: retiring.map((k) => k.kid), publishUntil: until };
      } catch (err) {
        keyFailure(err);
      }
    },

    /** Phase 3: retired keys whose tokens have all expired leave the JWKS. */
    async removeRetiredSigningKeys(_input: { rotationId: string }): Promise<{ removed: string[]; keys: Array<{ kid: string; status: string }> }> {
      let removed: string[] = [];
      try {
        const r = await updateKeySet(vault, (set) => {
          const x = withoutRetiredKeys(set, new Date());
          removed = x.removed;
          return x.set;
        });
        if (removed.length) log.info({ removed }, 'key rotation: retired signing keys removed from the JWKS');
        return { removed, keys: r.set.keys.map((k) => ({ kid: keySummary(k).kid, status: k.status })) };
      } catch (err) {
        keyFailure(err);
      }
    },

    // --- backups -------------------------------------------------------------------------------

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

    // --- restore drill -------------------------------------------------------------------------

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

    // --- bookkeeping ---------------------------------------------------------------------------

    /** Records a run's state (idempotent, audited). Failures that need a human log at error. */
    async recordOpsRun(input: { runId: string; workflowId: string; kind: OpsKind; status: OpsRunStatus; phase: string; actorId?: string | null; details?: Record<string, unknown> }): Promise<{ changed: boolean }> {
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

/**
 * The restore drill: restores the newest backup into the scratch database and checks it:
 * checksums, that the Vault snapshot decrypts to what was recorded, and that every table has the
 * manifest's row count. A failed check is a result (`ok: false`); a dependency failure throws.
 * The scratch database is emptied again afterwards (no stray copy of personal data). One drill at
 * a time (advisory lock on the service database).
 */
import type { Logger } from '../../platform/logger';
import type { VaultClient } from '../../platform/vault';
import { BackupManifest, listBackups, readManifest, verifyChecksums, verifyDecrypts } from './backups';
import { BackupError, compareCounts, PgTarget, resetScratchDatabase, tryAdvisoryLock } from '../../platform/backup-io';
import { restoreDatabase } from './backups';

export interface DrillResult {
  ok: boolean;
  backupId: string | null;
  problems: string[];
  tables: number;
  rows: number;
}

/** Another drill holds the lock. */
export class DrillBusyError extends Error {
  constructor() {
    super('another restore drill is running');
    this.name = 'DrillBusyError';
  }
}

/** How a running drill reports progress and learns it is cancelled (given once the lock is held). */
export interface DrillProgress {
  signal?: AbortSignal;
  progress(p: Record<string, unknown>): void;
}

export async function runRestoreDrill(o: {
  vault: VaultClient;
  root: string;
  /** The scratch database (emptied before and after). */
  scratch: PgTarget;
  /** The service database, where the advisory lock is taken. */
  lockDatabase: string;
  pgRestoreBin: string;
  log: Logger;
  started: () => DrillProgress;
}): Promise<DrillResult> {
  const { vault, scratch } = o;
  const unlock = await tryAdvisoryLock({ ...scratch, database: o.lockDatabase }, 'authflow-restore-drill');
  if (!unlock) throw new DrillBusyError();
  try {
    const hb = o.started();
    const newest = (await listBackups(o.root))[0];
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
      await restoreDatabase({
        vault,
        target: scratch,
        pgRestoreBin: o.pgRestoreBin,
        dir: newest.dir,
        manifest,
        clean: false,
        signal: hb.signal,
        onBytes: (bytes) => hb.progress({ backupId: newest.id, step: 'restore', bytes }),
      });
    } catch (err) {
      if (err instanceof BackupError) return { ok: false, backupId: newest.id, problems: [err.message], tables: 0, rows: 0 };
      throw err;
    }
    hb.progress({ backupId: newest.id, step: 'count' });
    const { counts, mismatches } = await compareCounts(scratch, manifest.postgres.tables);
    const rows = Object.values(counts).reduce((a, b) => a + b, 0);
    return { ok: mismatches.length === 0, backupId: newest.id, problems: mismatches, tables: Object.keys(counts).length, rows };
  } finally {
    await resetScratchDatabase(scratch).catch((err) => o.log.warn({ err: (err as Error).message }, 'restore drill: could not empty the scratch database'));
    await unlock();
  }
}

/**
 * Backups on disk: what the backup workflow writes, the restore drill checks and an operator
 * restores from (cli/backup.ts). One directory per backup under BACKUP_DIR:
 *
 *   <id>/database.dump.enc   pg_dump -Fc of the service database, encrypted
 *   <id>/vault.snap.enc      Vault raft snapshot (GET sys/storage/raft/snapshot), encrypted
 *   <id>/manifest.json       format, versions, row counts per table, and per part: sizes,
 *                            SHA-256 of the encrypted and of the plain bytes, IV, GCM tag and the
 *                            data key wrapped by Vault transit (the plain data key is never stored)
 *   <id>/SHA256SUMS          `sha256sum -c` compatible checksums of the encrypted files
 *
 * Encryption: AES-256-GCM with a fresh data key per part from `transit/datakey/plaintext/<key>`;
 * the part's identity (`authflow-backup/1:<id>:<part>`) is the additional authenticated data, so a
 * file moved to another backup or part fails to decrypt. A backup is written into
 * `.partial-<id>/` and renamed to `<id>/` only once complete and verified: a failed or
 * interrupted attempt never leaves something that looks like a backup.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  appVersion,
  BACKUP_FORMAT,
  BackupError,
  backupDir,
  decryptStream,
  partialDir,
  pgConnectionArgs,
  pgToolEnv,
  runTool,
  sha256File,
  type BackupPart,
  type DatabasePartInfo,
  type PgTarget,
  type VaultPartInfo,
} from '../../platform/backup-io';
import type { VaultClient } from '../../platform/vault';

const ID_RE = /^\d{8}T\d{6}Z-[a-z0-9-]{1,40}$/;

export interface BackupManifest {
  format: typeof BACKUP_FORMAT;
  id: string;
  created_at: string;
  completed_at: string;
  app_version: string;
  postgres: { server_version: string; pg_dump_version: string; database: string; migrations: string[]; tables: Record<string, number> };
  vault: { version: string | null };
  parts: BackupPart[];
}

/** Backup ids are `<UTC start time>-<run id prefix>` (workflows/backups.ts), so they sort by time. */
export const isBackupId = (id: string) => ID_RE.test(id);

export async function readManifest(dir: string): Promise<BackupManifest> {
  const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as BackupManifest;
  if (m.format !== BACKUP_FORMAT) throw new BackupError(`unknown backup format ${String(m.format)}`);
  return m;
}

/** Complete backups (those with a manifest), newest first. */
export async function listBackups(root: string): Promise<Array<{ id: string; dir: string }>> {
  if (!existsSync(root)) return [];
  const names = (await readdir(root)).filter(isBackupId).sort().reverse();
  const out: Array<{ id: string; dir: string }> = [];
  for (const id of names) {
    if (existsSync(join(root, id, 'manifest.json'))) out.push({ id, dir: backupDir(root, id) });
  }
  return out;
}

/** Checks every part's size and SHA-256 against the manifest (no key needed). */
export async function verifyChecksums(dir: string, m: BackupManifest): Promise<string[]> {
  const problems: string[] = [];
  for (const p of m.parts) {
    const f = join(dir, p.file);
    if (!existsSync(f)) {
      problems.push(`${p.file} is missing`);
      continue;
    }
    const got = await sha256File(f);
    if (got.bytes !== p.bytes) problems.push(`${p.file} has ${got.bytes} bytes, the manifest says ${p.bytes}`);
    else if (got.sha256 !== p.sha256) problems.push(`${p.file} checksum mismatch`);
  }
  return problems;
}

/** Decrypts a part without writing it anywhere and checks its plain size and SHA-256. */
export async function verifyDecrypts(vault: VaultClient, dir: string, p: BackupPart): Promise<string[]> {
  const { stream, plain } = await decryptStream(vault, dir, p);
  try {
    await pipeline(stream, new Writable({ write: (_c, _e, cb) => cb() }));
  } catch (err) {
    return [`${p.file} does not decrypt: ${(err as Error).message}`];
  }
  const r = plain();
  if (r.bytes !== p.plaintext_bytes || r.sha256 !== p.plaintext_sha256) return [`${p.file} decrypts to different content than recorded`];
  return [];
}

/** Keeps the newest `keep` complete backups; removes partial directories older than 6 hours. */
export async function pruneBackups(root: string, keep: number): Promise<string[]> {
  if (!existsSync(root)) return [];
  const removed: string[] = [];
  const complete = await listBackups(root);
  for (const b of complete.slice(keep)) {
    await rm(b.dir, { recursive: true, force: true });
    removed.push(b.id);
  }
  for (const name of await readdir(root)) {
    if (!name.startsWith('.partial-')) continue;
    const st = await stat(join(root, name)).catch(() => null);
    if (st && Date.now() - st.mtimeMs > 6 * 3600 * 1000) {
      await rm(join(root, name), { recursive: true, force: true });
      removed.push(name);
    }
  }
  return removed;
}

/** Writes manifest.json and SHA256SUMS into the partial directory, verifies, renames it final. */
export async function sealBackup(root: string, m: BackupManifest): Promise<string> {
  const dir = partialDir(root, m.id);
  const problems = await verifyChecksums(dir, m);
  if (problems.length) throw new BackupError(`backup ${m.id} is inconsistent: ${problems.join('; ')}`);
  await writeFile(join(dir, 'SHA256SUMS'), m.parts.map((p) => `${p.sha256}  ${p.file}\n`).join(''), { mode: 0o600, flush: true });
  await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(m, null, 2)}\n`, { mode: 0o600, flush: true });
  const final = backupDir(root, m.id);
  await rename(dir, final);
  return final;
}

/**
 * Seals a backup from its two parts: writes the manifest (versions, row counts, the parts without
 * their part-specific fields) and the checksums, verifies and makes the backup visible. A backup
 * sealed already (a retry after the rename) is reported as it is, `sealedNow: false`.
 */
export async function sealParts(
  root: string,
  input: { backupId: string; createdAt: string; database: DatabasePartInfo; vault: VaultPartInfo },
): Promise<{ backupId: string; bytes: number; tables: Record<string, number>; sealedNow: boolean }> {
  const done = backupDir(root, input.backupId);
  const { database: db, vault: v } = input;
  try {
    const existing = await readManifest(done);
    return { backupId: existing.id, bytes: existing.parts.reduce((n, p) => n + p.bytes, 0), tables: existing.postgres.tables, sealedNow: false };
  } catch {
    /* not sealed yet */
  }
  const strip = <T extends { part: string }>(p: T) => {
    const {
      server_version: _a,
      pg_dump_version: _b,
      database: _c,
      tables: _d,
      migrations: _e,
      vault_version: _f,
      ...rest
    } = p as unknown as Record<string, unknown>;
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
  await sealBackup(root, manifest);
  return { backupId: input.backupId, bytes: manifest.parts.reduce((n, p) => n + p.bytes, 0), tables: db.tables, sealedNow: true };
}

/**
 * Restores a backup's database part into `target` with pg_restore in one transaction. The dump
 * is decrypted in a stream straight into pg_restore (no plain copy on disk); if the GCM tag does
 * not verify at the end, pg_restore is killed before it sees the end of its input, so the
 * transaction never commits. `clean` drops the objects of the dump first (restoring over a
 * database that still has them).
 */
export async function restoreDatabase(opts: {
  vault: VaultClient;
  target: PgTarget;
  pgRestoreBin: string;
  dir: string;
  manifest: BackupManifest;
  clean: boolean;
  signal?: AbortSignal;
  onBytes?: (n: number) => void;
}): Promise<void> {
  const p = opts.manifest.parts.find((x) => x.part === 'database');
  if (!p) throw new BackupError('the backup has no database part');
  const problems = await verifyChecksums(opts.dir, { ...opts.manifest, parts: [p] });
  if (problems.length) throw new BackupError(problems.join('; '));
  const { target } = opts;
  const tool = runTool(
    opts.pgRestoreBin,
    [
      ...pgConnectionArgs(target),
      '--no-owner',
      '--no-privileges',
      '--exit-on-error',
      '--single-transaction',
      '--no-password',
      ...(opts.clean ? ['--clean', '--if-exists'] : []),
    ],
    target.password,
    opts.signal,
    pgToolEnv(target),
  );
  tool.child.stdout.resume();
  const { stream, plain } = await decryptStream(opts.vault, opts.dir, p);
  let fed = 0;
  const feed = new Promise<void>((res, rej) => {
    const fail = (err: Error) => {
      // Kill first, so pg_restore never reads an end of input and commits.
      tool.child.kill('SIGKILL');
      tool.child.stdin.destroy();
      rej(err);
    };
    stream.on('error', fail);
    tool.child.stdin.on('error', (err) => rej(err));
    stream.on('data', (chunk: Buffer) => {
      fed += chunk.length;
      opts.onBytes?.(fed);
      if (!tool.child.stdin.write(chunk)) {
        stream.pause();
        tool.child.stdin.once('drain', () => stream.resume());
      }
    });
    stream.on('end', () => {
      const r = plain();
      if (r.sha256 !== p.plaintext_sha256 || r.bytes !== p.plaintext_bytes) {
        fail(new BackupError('the decrypted dump differs from what the manifest records'));
        return;
      }
      tool.child.stdin.end();
      res();
    });
  });
  await Promise.all([feed, tool.exited]);
}

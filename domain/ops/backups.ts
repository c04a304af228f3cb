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
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { aesGcmDecryptStream, aesGcmEncryptStream } from '../../crypto/aes-gcm';
import { createReadStream, createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client as PgClient } from 'pg';
import type { VaultClient } from '../../platform/vault';

export const BACKUP_FORMAT = 'authflow-backup/1';
export const BACKUP_TRANSIT_KEY = 'authflow-backups';
export const PARTS = { database: 'database.dump.enc', vault: 'vault.snap.enc' } as const;
export type PartName = keyof typeof PARTS;
const ID_RE = /^\d{8}T\d{6}Z-[a-z0-9-]{1,40}$/;

export interface BackupPart {
  part: PartName;
  file: string;
  bytes: number;
  sha256: string;
  plaintext_bytes: number;
  plaintext_sha256: string;
  cipher: 'aes-256-gcm';
  iv: string;
  tag: string;
  aad: string;
  transit_key: string;
  wrapped_key: string;
}

export interface DatabasePartInfo extends BackupPart {
  part: 'database';
  server_version: string;
  pg_dump_version: string;
  database: string;
  tables: Record<string, number>;
  migrations: string[];
}

export interface VaultPartInfo extends BackupPart {
  part: 'vault';
  vault_version: string | null;
}

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

export interface PgTarget {
  host: string;
  port: number;
  database: string;
  username: string;
  password: string;
}

export class BackupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupError';
  }
}

/** Backup ids are `<UTC start time>-<run id prefix>` (workflows/backups.ts), so they sort by time. */
export const isBackupId = (id: string) => ID_RE.test(id);

export const partialDir = (root: string, id: string) => join(resolve(root), `.partial-${id}`);
export const backupDir = (root: string, id: string) => join(resolve(root), id);
const aadFor = (id: string, part: PartName) => `${BACKUP_FORMAT}:${id}:${part}`;

export function appVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function toolVersion(bin: string): string {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10000 });
  if (r.status !== 0) throw new BackupError(`${bin} --version failed: ${(r.stderr || r.error?.message || '').slice(0, 200)}`);
  return r.stdout.trim();
}

// --- data keys ---------------------------------------------------------------------------------

export async function newDataKey(vault: VaultClient, keyName = BACKUP_TRANSIT_KEY): Promise<{ key: Buffer; wrapped: string }> {
  const d = await vault.transit('datakey', `datakey/plaintext/${keyName}`, { bits: 256 });
  return { key: Buffer.from(d.plaintext, 'base64'), wrapped: d.ciphertext };
}

export async function unwrapDataKey(vault: VaultClient, wrapped: string, keyName = BACKUP_TRANSIT_KEY): Promise<Buffer> {
  const d = await vault.transit('decrypt', `decrypt/${keyName}`, { ciphertext: wrapped });
  const key = Buffer.from(d.plaintext, 'base64');
  if (key.length !== 32) throw new BackupError('the unwrapped data key is not 256 bits');
  return key;
}

// --- streams -----------------------------------------------------------------------------------

/** Counts and hashes what flows through, reporting progress. */
function meter(onBytes?: (n: number) => void) {
  const hash = createHash('sha256');
  let bytes = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      onBytes?.(bytes);
      cb(null, chunk);
    },
  });
  return { stream: t, result: () => ({ bytes, sha256: hash.digest('hex') }) };
}

/**
 * Encrypts `source` into `file` with a fresh data key; returns the part's manifest entry (minus
 * the part-specific fields). The file is fsynced before this resolves.
 */
export async function encryptToFile(
  vault: VaultClient,
  source: Readable,
  file: string,
  id: string,
  part: PartName,
  onBytes?: (n: number) => void,
): Promise<BackupPart> {
  const { key, wrapped } = await newDataKey(vault);
  const aad = aadFor(id, part);
  const { iv, cipher } = aesGcmEncryptStream(key, Buffer.from(aad, 'utf8'));
  key.fill(0);
  const plain = meter(onBytes);
  const enc = meter();
  const out = createWriteStream(file, { mode: 0o600, flush: true });
  await pipeline(source, plain.stream, cipher, enc.stream, out);
  const p = plain.result();
  const e = enc.result();
  return {
    part,
    file: PARTS[part],
    bytes: e.bytes,
    sha256: e.sha256,
    plaintext_bytes: p.bytes,
    plaintext_sha256: p.sha256,
    cipher: 'aes-256-gcm',
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    aad,
    transit_key: BACKUP_TRANSIT_KEY,
    wrapped_key: wrapped,
  };
}

/** A decrypting stream of a part; it errors at the end if the GCM tag does not verify. */
export async function decryptStream(
  vault: VaultClient,
  dir: string,
  p: BackupPart,
): Promise<{ stream: Readable; plain: () => { bytes: number; sha256: string } }> {
  const key = await unwrapDataKey(vault, p.wrapped_key, p.transit_key);
  const decipher = aesGcmDecryptStream(key, Buffer.from(p.iv, 'base64'), Buffer.from(p.tag, 'base64'), Buffer.from(p.aad, 'utf8'));
  key.fill(0);
  const m = meter();
  const src = createReadStream(join(dir, p.file));
  src.on('error', (err) => decipher.destroy(err));
  decipher.on('error', (err) => m.stream.destroy(err));
  return { stream: src.pipe(decipher).pipe(m.stream), plain: m.result };
}

export async function sha256File(file: string): Promise<{ bytes: number; sha256: string }> {
  const m = meter();
  await pipeline(createReadStream(file), m.stream, new Writable({ write: (_c, _e, cb) => cb() }));
  return m.result();
}

// --- listing, verification, retention ------------------------------------------------------------

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

export async function freshPartialDir(root: string, id: string): Promise<string> {
  await mkdir(resolve(root), { recursive: true, mode: 0o700 });
  const dir = partialDir(root, id);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

// --- Postgres ----------------------------------------------------------------------------------

async function pgConnect(t: PgTarget, database = t.database): Promise<PgClient> {
  const c = new PgClient({
    host: t.host,
    port: t.port,
    database,
    user: t.username,
    password: t.password,
    connectionTimeoutMillis: 10000,
    application_name: 'authflow-backup',
  });
  // A dropped connection (Postgres restarting) must fail the operation, not crash the process.
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

async function countRows(c: PgClient, tables: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of tables) {
    out[t] = Number((await c.query<{ n: string }>(`SELECT count(*)::bigint AS n FROM public.${quoteIdent(t)}`)).rows[0].n);
  }
  return out;
}

function runTool(bin: string, args: string[], password: string, signal?: AbortSignal) {
  const child = spawn(bin, args, { env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-2000);
  });
  const onAbort = () => child.kill('SIGKILL');
  signal?.addEventListener('abort', onAbort, { once: true });
  const exited = new Promise<void>((res, rej) => {
    child.on('error', rej);
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      if (code === 0) res();
      else rej(new BackupError(`${bin.split('/').pop()} failed (${sig ?? `exit ${code}`}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
  exited.catch(() => undefined);
  return { child, exited };
}

/**
 * pg_dump of the whole database at one snapshot, encrypted into the partial directory. The row
 * counts for the manifest are read inside the same exported snapshot pg_dump uses, so they match
 * the dump exactly even under concurrent writes.
 */
export async function dumpDatabase(opts: {
  vault: VaultClient;
  target: PgTarget;
  pgDumpBin: string;
  root: string;
  id: string;
  signal?: AbortSignal;
  onBytes?: (n: number) => void;
}): Promise<DatabasePartInfo> {
  const { target } = opts;
  const pgDumpVersion = toolVersion(opts.pgDumpBin);
  const dir = await freshPartialDir(opts.root, opts.id);
  const file = join(dir, PARTS.database);
  await rm(file, { force: true });
  const c = await pgConnect(target);
  try {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snapshot = (await c.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0].s;
    const serverVersion = (await c.query<{ server_version: string }>('SHOW server_version')).rows[0].server_version;
    const tables = (await c.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")).rows.map(
      (r) => r.tablename,
    );
    const counts = await countRows(c, tables);
    const migrations = tables.includes('schema_migrations')
      ? (await c.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name')).rows.map((r) => r.name)
      : [];
    const tool = runTool(
      opts.pgDumpBin,
      [
        '--host',
        target.host,
        '--port',
        String(target.port),
        '--username',
        target.username,
        '--dbname',
        target.database,
        '--format',
        'custom',
        '--snapshot',
        snapshot,
        '--no-password',
      ],
      target.password,
      opts.signal,
    );
    tool.child.stdin.end();
    let part: BackupPart;
    try {
      [part] = await Promise.all([encryptToFile(opts.vault, tool.child.stdout, file, opts.id, 'database', opts.onBytes), tool.exited]);
    } catch (err) {
      tool.child.kill('SIGKILL');
      await rm(file, { force: true });
      throw err;
    }
    await c.query('COMMIT');
    return { ...part, part: 'database', server_version: serverVersion, pg_dump_version: pgDumpVersion, database: target.database, tables: counts, migrations };
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Vault raft snapshot (binary, streamed), encrypted into the partial directory. */
export async function snapshotVault(opts: {
  vault: VaultClient;
  root: string;
  id: string;
  signal?: AbortSignal;
  onBytes?: (n: number) => void;
}): Promise<VaultPartInfo> {
  const dir = await freshPartialDir(opts.root, opts.id);
  const file = join(dir, PARTS.vault);
  await rm(file, { force: true });
  const version = (await opts.vault.sealStatus().catch(() => null))?.version ?? null;
  const res = await opts.vault.download('sys/storage/raft/snapshot', 'raft_snapshot', opts.signal);
  if (!res.body) throw new BackupError('vault returned an empty snapshot');
  try {
    const part = await encryptToFile(opts.vault, Readable.fromWeb(res.body), file, opts.id, 'vault', opts.onBytes);
    if (part.plaintext_bytes === 0) throw new BackupError('vault returned an empty snapshot');
    return { ...part, part: 'vault', vault_version: version };
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
}

/** A session-level advisory lock on its own connection; null when another session holds it. */
export async function tryAdvisoryLock(target: PgTarget, name: string): Promise<(() => Promise<void>) | null> {
  const c = await pgConnect(target);
  const locked = (await c.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS locked', [name])).rows[0].locked;
  if (!locked) {
    await c.end().catch(() => undefined);
    return null;
  }
  return async () => {
    await c.end().catch(() => undefined); // ending the session releases the lock
  };
}

/** Empties a scratch database's public schema (the drill's target; also after the drill). */
export async function resetScratchDatabase(target: PgTarget): Promise<void> {
  const c = await pgConnect(target);
  try {
    await c.query('DROP SCHEMA IF EXISTS public CASCADE');
    await c.query('CREATE SCHEMA public');
  } finally {
    await c.end().catch(() => undefined);
  }
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
      '--host',
      target.host,
      '--port',
      String(target.port),
      '--username',
      target.username,
      '--dbname',
      target.database,
      '--no-owner',
      '--no-privileges',
      '--exit-on-error',
      '--single-transaction',
      '--no-password',
      ...(opts.clean ? ['--clean', '--if-exists'] : []),
    ],
    target.password,
    opts.signal,
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

/** Row counts of the manifest's tables in `target`; returns the differences. */
export async function compareCounts(target: PgTarget, expected: Record<string, number>): Promise<{ counts: Record<string, number>; mismatches: string[] }> {
  const c = await pgConnect(target);
  try {
    const present = new Set((await c.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).rows.map((r) => r.tablename));
    const counts: Record<string, number> = {};
    const mismatches: string[] = [];
    for (const [t, n] of Object.entries(expected)) {
      if (!present.has(t)) {
        mismatches.push(`${t}: missing`);
        continue;
      }
      counts[t] = (await countRows(c, [t]))[t];
      if (counts[t] !== n) mismatches.push(`${t}: ${counts[t]} rows, expected ${n}`);
    }
    return { counts, mismatches };
  } finally {
    await c.end().catch(() => undefined);
  }
}

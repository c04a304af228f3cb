/**
 * The I/O of backups: pg_dump / pg_restore and the Vault raft snapshot as child processes and
 * streams, AES-256-GCM encryption of each part with a fresh Vault transit data key (the part's
 * identity is the additional authenticated data), checksums, advisory locks and row counts. What
 * a backup is (manifest, sealing, verification, retention) is domain/ops/backups.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { aesGcmDecryptStream, aesGcmEncryptStream } from '../crypto/aes-gcm';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client as PgClient } from 'pg';
import { pgSsl, pgSslEnv, type DbSslConfig } from './db/ssl';
import type { VaultClient } from './vault';

export const BACKUP_TRANSIT_KEY = 'authflow-backups';

export const PARTS = { database: 'database.dump.enc', vault: 'vault.snap.enc' } as const;

export type PartName = keyof typeof PARTS;

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

export interface PgTarget {
  host: string;
  port: number;
  database: string;
  username: string;
  password: string;
  /** TLS to the server (DB_SSL_MODE / DB_SSL_CA); absent means disable. */
  ssl?: DbSslConfig;
}

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

export async function pgConnect(t: PgTarget, database = t.database): Promise<PgClient> {
  const c = new PgClient({
    host: t.host,
    port: t.port,
    database,
    user: t.username,
    password: t.password,
    connectionTimeoutMillis: 10000,
    application_name: 'authflow-backup',
    ssl: pgSsl(t.ssl ?? NO_SSL),
  });
  // A dropped connection (Postgres restarting) must fail the operation, not crash the process.
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function countRows(c: PgClient, tables: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of tables) {
    out[t] = Number((await c.query<{ n: string }>(`SELECT count(*)::bigint AS n FROM public.${quoteIdent(t)}`)).rows[0].n);
  }
  return out;
}

/** pg_dump / pg_restore arguments that reach `t` (the password goes through the environment). */
export function pgConnectionArgs(t: PgTarget): string[] {
  return ['--host', t.host, '--port', String(t.port), '--username', t.username, '--dbname', t.database];
}

/** libpq's TLS environment (PGSSLMODE, PGSSLROOTCERT) for pg_dump / pg_restore reaching `t`. */
export function pgToolEnv(t: PgTarget): Record<string, string> {
  return pgSslEnv(t.ssl ?? NO_SSL);
}

const NO_SSL: DbSslConfig = { DB_SSL_MODE: 'disable' };

export function runTool(bin: string, args: string[], password: string, signal?: AbortSignal, extraEnv: Record<string, string> = {}) {
  const child = spawn(bin, args, {
    env: { ...process.env, ...extraEnv, PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
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
      [...pgConnectionArgs(target), '--format', 'custom', '--snapshot', snapshot, '--no-password'],
      target.password,
      opts.signal,
      pgToolEnv(target),
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

export class BackupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupError';
  }
}

export const BACKUP_FORMAT = 'authflow-backup/1';

export const partialDir = (root: string, id: string) => join(resolve(root), `.partial-${id}`);

export const backupDir = (root: string, id: string) => join(resolve(root), id);

export const aadFor = (id: string, part: PartName) => `${BACKUP_FORMAT}:${id}:${part}`;

export async function freshPartialDir(root: string, id: string): Promise<string> {
  await mkdir(resolve(root), { recursive: true, mode: 0o700 });
  const dir = partialDir(root, id);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

// --- Postgres ----------------------------------------------------------------------------------

export const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

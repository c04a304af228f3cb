/**
 * What every operator command shares: the dev stack's environment (stack.json) when no AppRole is
 * configured, the configuration, a logger, the Vault login with the command's AppRole and (where
 * the command needs it) the database with the credentials Vault hands out, and the way a command
 * ends (a message on stderr and its exit code). Each command in cli/ is a thin main() on top of
 * this.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import type { Sequelize } from 'sequelize';
import { Config, loadConfig } from '../platform/config';
import { createSequelize, readDbCredentials } from '../platform/db';
import { createLogger, Logger, REDACT_PATHS } from '../platform/logger';
import { DependencyError } from '../platform/errors';
import { VaultClient, vaultFromConfig } from '../platform/vault';

/** sysexits EX_NOPERM: refused (a Vault login refused, an action the command will not take). */
export const EX_NOPERM = 77;
/** sysexits EX_CONFIG: no stack or configuration to run against. */
export const EX_CONFIG = 78;

/** A failure with its own exit code (sysexits: 64 usage, 65 data, 77 refused, 78 config...). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/**
 * Fills the service environment from a running stack's stack.json (AUTHFLOW_STACK_FILE, default
 * .data/dev/stack.json) when no AppRole is configured: the service configuration and the
 * secret-id the dev launcher minted for authflow-cli. Returns the file used, if any.
 */
export function environmentFromStack(): string | undefined {
  if (process.env.VAULT_ROLE_ID || process.env.VAULT_ROLE_ID_FILE) return undefined;
  const file = process.env.AUTHFLOW_STACK_FILE ?? join(__dirname, '..', '.data', 'dev', 'stack.json');
  if (!existsSync(file)) {
    throw new CliError(`no VAULT_ROLE_ID set and no stack file at ${file}: start the stack (npm run dev) or set the service environment`, EX_CONFIG);
  }
  const info = JSON.parse(readFileSync(file, 'utf8')) as {
    serviceEnv: Record<string, string>;
    roleIds: { cli?: string };
    secretIdFiles: { cli?: string };
  };
  if (!info.roleIds.cli || !info.secretIdFiles.cli) {
    throw new CliError(`the stack at ${file} was started by an older launcher without the authflow-cli identity: restart it (npm run dev)`, EX_CONFIG);
  }
  for (const [k, v] of Object.entries(info.serviceEnv)) if (process.env[k] === undefined) process.env[k] = v;
  process.env.VAULT_ROLE_ID = info.roleIds.cli;
  if (!process.env.VAULT_SECRET_ID) process.env.VAULT_SECRET_ID_FILE = info.secretIdFiles.cli;
  return file;
}

/** JSON logs on stderr, for commands whose stdout carries their result. */
export function stderrLogger(o: { name: string; level: string; service?: string }): Logger {
  return pino(
    { name: o.name, level: o.level, ...(o.service ? { base: { service: o.service } } : {}), redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    pino.destination(2),
  );
}

/** The service's JSON logs (on stdout, as the API and the worker write them). */
export const stdoutLogger = createLogger;

export interface CliBase {
  config: Config;
  logger: Logger;
}

/** Reads the configuration (platform/config.ts) and builds the command's logger from it. */
export function cliBase(logger: (config: Config) => Logger): CliBase {
  const config = loadConfig();
  return { config, logger: logger(config) };
}

export interface CliRuntime extends CliBase {
  vault: VaultClient;
  close(): Promise<void>;
}

/** Logs in to Vault (AppRole of the configuration). */
export async function connectVault(base: CliBase, vaultLogger: Logger = base.logger): Promise<CliRuntime> {
  const vault = vaultFromConfig(base.config, vaultLogger);
  await vault.start().catch((err: unknown) => {
    // Vault answered and said no: the command's own secret-id is used up, expired or wrong.
    if (err instanceof DependencyError) throw err;
    throw new CliError(
      `vault login refused (${(err as Error).message}): the secret-id is used up, expired or not this role's; mint a new one (docs/operations.md, "Operator commands log in as themselves")`,
      EX_NOPERM,
    );
  });
  return { ...base, vault, close: () => Promise.resolve(vault.stop()) };
}

/** Logs in to Vault and opens the database with the credentials Vault hands out. */
export async function connectDatabase(base: CliBase, vaultLogger: Logger = base.logger): Promise<CliRuntime & { sequelize: Sequelize }> {
  const rt = await connectVault(base, vaultLogger);
  const sequelize = createSequelize(base.config, await readDbCredentials(rt.vault));
  return {
    ...rt,
    sequelize,
    async close() {
      await sequelize.close();
      rt.vault.stop();
    },
  };
}

export interface CliEnding {
  /** Written before the message of an unexpected failure (exit 1). */
  failed: string;
  /** Written before the message of a CliError (its own exit code). */
  refused?: string;
  /** Exit 0 as soon as main() is done (instead of when nothing is left to run). */
  exitOnSuccess?: boolean;
}

/** Runs main(): a CliError exits with its code, any other failure with 1, after one stderr line. */
export function runCli(main: () => Promise<void>, end: CliEnding): void {
  main().then(
    () => {
      if (end.exitOnSuccess) process.exit(0);
    },
    (err) => {
      if (err instanceof CliError) {
        process.stderr.write(`${end.refused ?? end.failed}${err.message}\n`);
        process.exit(err.exitCode);
      }
      process.stderr.write(`${end.failed}${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}

/**
 * `npm run create-admin -- <email>`: creates the first administrator (an active, verified user
 * with roles user+admin), or promotes an existing user to admin. There is no default password:
 * a new admin's password comes from ADMIN_PASSWORD or is prompted for on a terminal (no echo,
 * asked twice) and must pass the password policy. An audit event records the change.
 *
 * Credentials come the way the services get theirs: Vault AppRole (VAULT_ROLE_ID[_FILE] +
 * VAULT_SECRET_ID[_FILE]) and the database login from Vault KV. When no role id is set, the
 * running stack's `stack.json` (AUTHFLOW_STACK_FILE, default .data/dev/stack.json) supplies the
 * service environment and the worker's AppRole.
 *
 * The CLI's own inputs (ADMIN_PASSWORD, AUTHFLOW_STACK_FILE) are read here; everything else goes
 * through core/config.ts.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { z } from 'zod';
import { transition } from './account-state';
import { audit } from './audit';
import { loadConfig } from './config';
import { createSequelize, readDbCredentials } from './db';
import { User } from './db/models';
import pino from 'pino';
import { REDACT_PATHS } from './logger';
import { checkPassword } from './password-policy';
import { argon2ParamsFromConfig, hashPassword } from './passwords';
import { normaliseEmail } from './users';
import { vaultFromConfig } from './vault';

const EX_USAGE = 64;
const EX_DATAERR = 65;
const EX_CONFIG = 78;

class CliError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

/** Fills the service environment from a running stack's stack.json when no AppRole is configured. */
function environmentFromStack(): string | undefined {
  if (process.env.VAULT_ROLE_ID || process.env.VAULT_ROLE_ID_FILE) return undefined;
  const file = process.env.AUTHFLOW_STACK_FILE ?? join(__dirname, '..', '.data', 'dev', 'stack.json');
  if (!existsSync(file)) {
    throw new CliError(`no VAULT_ROLE_ID set and no stack file at ${file}: start the stack (npm run dev) or set the service environment`, EX_CONFIG);
  }
  const info = JSON.parse(readFileSync(file, 'utf8')) as { serviceEnv: Record<string, string>; roleIds: { worker: string }; secretIdFiles: { worker: string } };
  for (const [k, v] of Object.entries(info.serviceEnv)) if (process.env[k] === undefined) process.env[k] = v;
  process.env.VAULT_ROLE_ID = info.roleIds.worker;
  if (!process.env.VAULT_SECRET_ID) process.env.VAULT_SECRET_ID_FILE = info.secretIdFiles.worker;
  return file;
}

/** Reads a line from the terminal without echoing it. */
function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let muted = false;
    const output = new Writable({
      write(chunk, _enc, cb) {
        if (!muted) process.stderr.write(chunk);
        cb();
      },
    });
    const rl = createInterface({ input: process.stdin, output, terminal: true });
    rl.question(question, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
    muted = true;
    rl.once('SIGINT', () => {
      rl.close();
      reject(new CliError('cancelled', 130));
    });
  });
}

async function readPassword(): Promise<string> {
  const fromEnv = process.env.ADMIN_PASSWORD;
  if (fromEnv) return fromEnv;
  if (!process.stdin.isTTY) {
    throw new CliError('set ADMIN_PASSWORD or run on a terminal to be prompted (there is no default password)', EX_USAGE);
  }
  const first = await promptHidden('Password for the new admin: ');
  const second = await promptHidden('Repeat the password: ');
  if (first !== second) throw new CliError('the passwords differ', EX_DATAERR);
  return first;
}

async function main(): Promise<void> {
  const emailArg = process.argv.slice(2).find((a) => !a.startsWith('-'));
  const parsed = z.string().trim().min(3).max(254).email().safeParse(emailArg);
  if (!parsed.success) throw new CliError('usage: npm run create-admin -- <email>', EX_USAGE);
  const email = normaliseEmail(parsed.data);

  const stackFile = environmentFromStack();
  const config = loadConfig();
  // Logs go to stderr: stdout carries only the one-line JSON result.
  const logger = pino({ name: 'create-admin', level: config.LOG_LEVEL === 'debug' || config.LOG_LEVEL === 'trace' ? config.LOG_LEVEL : 'warn', base: { service: 'create-admin' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, pino.destination(2));
  if (stackFile) logger.info({ stackFile }, 'using the running stack\'s environment');
  const vault = vaultFromConfig(config, logger);
  await vault.start();
  const sequelize = createSequelize(config, await readDbCredentials(vault));
  const meta = { requestId: `cli:${randomUUID()}`, actorId: null };
  try {
    const existing = await User.findOne({ where: { email } });
    if (existing) {
      const outcome = await sequelize.transaction(async (t) => {
        const user = await User.findByPk(existing.id, { transaction: t, lock: t.LOCK.UPDATE });
        if (!user) throw new CliError('the user disappeared; retry', EX_DATAERR);
        const wasAdmin = user.roles.includes('admin');
        if (!wasAdmin) await user.update({ roles: [...new Set([...user.roles, 'admin'])], updated_at: new Date() }, { transaction: t });
        // The operator vouches for the address of an account they make an admin.
        if (user.status === 'pending_verification') await transition(t, user, 'verify', { meta, patch: { email_verified_at: new Date() }, data: { via: 'create-admin' } });
        if (!wasAdmin) await audit(t, 'admin.promoted', user.id, meta, { via: 'create-admin' });
        return { user, wasAdmin };
      });
      process.stdout.write(`${JSON.stringify({ result: outcome.wasAdmin ? 'already_admin' : 'promoted', user_id: outcome.user.id, status: outcome.user.status })}\n`);
      if (outcome.user.status !== 'active') process.stderr.write(`note: the account is ${outcome.user.status}; it cannot sign in until that changes\n`);
      return;
    }

    const password = await readPassword();
    const check = checkPassword(password, { email, minLength: config.PASSWORD_MIN_LENGTH, maxLength: config.PASSWORD_MAX_LENGTH });
    if (!check.ok) throw new CliError(`password rejected: ${check.reason}`, EX_DATAERR);
    const password_hash = await hashPassword(password, argon2ParamsFromConfig(config));
    const now = new Date();
    const user = await sequelize.transaction(async (t) => {
      const u = await User.create({
        id: randomUUID(), email, name: null, password_hash, status: 'active', roles: ['user', 'admin'],
        email_verified_at: now, password_changed_at: now,
      }, { transaction: t });
      await audit(t, 'admin.created', u.id, meta, { via: 'create-admin' });
      return u;
    });
    process.stdout.write(`${JSON.stringify({ result: 'created', user_id: user.id, status: user.status })}\n`);
  } finally {
    await sequelize.close();
    vault.stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    if (err instanceof CliError) {
      process.stderr.write(`create-admin: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    process.stderr.write(`create-admin failed: ${(err as Error).message}\n`);
    process.exit(1);
  },
);

/**
 * `npm run create-admin -- <email> [--promote-existing]`: creates an administrator (an active,
 * verified user with roles user+admin), or makes an existing account one. There is no default
 * password: it comes from ADMIN_PASSWORD or is prompted for on a terminal (no echo, asked twice),
 * must pass the password policy, and is always set, for new and existing accounts alike.
 *
 * An existing account whose details the operator cannot vouch for is refused unless
 * `--promote-existing` is given (nothing changes, exit 77): an unverified account (anyone may have
 * registered the address) or a never-used one (verified, but no session was ever opened). An
 * account in use is promoted without the flag. Either way the account gets the given password and
 * every session of it ends (SessionService.revokeAllForUser), so nothing its registrant knew or
 * held survives. See HELP below. Audit events record each change.
 *
 * The command logs in to Vault as itself: the authflow-cli AppRole (VAULT_ROLE_ID[_FILE] +
 * VAULT_SECRET_ID[_FILE] of that role; its policy reads the database login and nothing else), never
 * with a service's secret-id, whose uses it would spend. docs/operations.md says how an operator
 * mints a short-lived secret-id for it. When no role id is set, the running stack's `stack.json`
 * (AUTHFLOW_STACK_FILE, default .data/dev/stack.json) supplies the service environment and the
 * secret-id the dev launcher minted for authflow-cli.
 *
 * The CLI's own inputs (ADMIN_PASSWORD, AUTHFLOW_STACK_FILE) are read here; everything else goes
 * through platform/config.ts.
 */
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { z } from 'zod';
import { transition } from '../domain/accounts/account-state';
import { audit } from '../domain/audit';
import { Session, User } from '../platform/db/models';
import { KeyRing } from '../domain/sessions/signing-keys';
import { supersedeLiveTokens } from '../domain/one-time-tokens';
import { checkPassword } from '../domain/accounts/password-policy';
import { hashPassword } from '../crypto/argon2';
import { argon2Params } from '../platform/config';
import { SessionService } from '../domain/sessions/sessions';
import { TokenService } from '../domain/sessions/tokens';
import { normaliseEmail } from '../domain/accounts/users';
import { CliError, cliBase, connectDatabase, environmentFromStack, EX_NOPERM, runCli, stderrLogger } from './cli-runtime';

const EX_USAGE = 64;
const EX_DATAERR = 65;

const HELP = `usage: npm run create-admin -- <email> [--promote-existing]

Makes <email> an administrator (roles user+admin). The password comes from ADMIN_PASSWORD or is
prompted for on a terminal (twice, no echo); there is no default, and the password policy applies.
The given password is always set.

  new address       creates an active, verified admin with the password.
  existing account  is made admin and gets the password; every session of the account ends.
                    Refused unless --promote-existing is given (exit 77, nothing changes) when the
                    account is unverified (anyone may have registered the address) or never used
                    (verified, but no session was ever opened: whoever registered it chose its
                    details, not you). With the flag such an account is also marked verified.
                    An account in use (it has signed in at least once) needs no flag.

Vault: the command logs in as itself, with the authflow-cli AppRole (VAULT_ROLE_ID and
VAULT_SECRET_ID or their _FILE forms, plus the service's configuration). Mint a short-lived
secret-id for one run with your own Vault login:
  vault write -f -field=secret_id auth/approle/role/authflow-cli/secret-id ttl=10m num_uses=1
With no VAULT_ROLE_ID set it uses the running dev stack's (AUTHFLOW_STACK_FILE).

Output: one human-readable line on stdout (created / promoted / password set / N sessions ended),
then one JSON line {result, user_id, status, password_set, sessions_ended}. Logs go to stderr.
Exit codes: 0 done, 64 usage or no password, 65 password rejected, 77 refused, 78 no stack/config.
`;

/** Reads a line from the terminal without echoing it. */
function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let muted = false;
    const output = new Writable({
      write(chunk: Buffer, _enc, cb) {
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

function parseArgs(argv: string[]): { email?: string; promoteExisting: boolean; help: boolean } {
  const flags = argv.filter((a) => a.startsWith('-'));
  const unknown = flags.filter((f) => !['--promote-existing', '--help', '-h'].includes(f));
  if (unknown.length) throw new CliError(`unknown option ${unknown.join(', ')}\n${HELP}`, EX_USAGE);
  const positional = argv.filter((a) => !a.startsWith('-'));
  if (positional.length > 1) throw new CliError(`one address only\n${HELP}`, EX_USAGE);
  return { email: positional[0], promoteExisting: flags.includes('--promote-existing'), help: flags.includes('--help') || flags.includes('-h') };
}

/** Why an existing account needs --promote-existing, or undefined when it may be promoted as is. */
async function needsConfirmation(user: User): Promise<string | undefined> {
  if (!user.email_verified_at) return 'the account is unverified: anyone may have registered the address';
  if ((await Session.count({ where: { user_id: user.id } })) === 0) return 'the account has never been used (no session was ever opened)';
  return undefined;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    process.stdout.write(HELP);
    return;
  }
  const parsed = z.string().trim().min(3).max(254).email().safeParse(args.email);
  if (!parsed.success) throw new CliError(`usage: npm run create-admin -- <email> [--promote-existing] (--help explains)`, EX_USAGE);
  const email = normaliseEmail(parsed.data);

  const stackFile = environmentFromStack();
  // Logs go to stderr: stdout carries the summary line and the JSON result line.
  const base = cliBase((config) =>
    stderrLogger({
      name: 'create-admin',
      level: config.LOG_LEVEL === 'debug' || config.LOG_LEVEL === 'trace' ? config.LOG_LEVEL : 'warn',
      service: 'create-admin',
    }),
  );
  const { config, logger } = base;
  if (stackFile) logger.info({ stackFile }, "using the running stack's environment");
  const rt = await connectDatabase(base);
  const { vault, sequelize } = rt;
  // Only revokeAllForUser is used: the token service is never asked to sign anything.
  const sessions = new SessionService(
    sequelize,
    new TokenService(new KeyRing(vault, logger), { issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE, accessTtl: config.ACCESS_TOKEN_TTL }),
    config.REFRESH_TOKEN_TTL,
  );
  const meta = { requestId: `cli:${randomUUID()}`, actorId: null };
  const passwordHash = async (name?: string) => {
    const password = await readPassword();
    const check = checkPassword(password, { email, name, minLength: config.PASSWORD_MIN_LENGTH, maxLength: config.PASSWORD_MAX_LENGTH });
    if (!check.ok) throw new CliError(`password rejected: ${check.reason}`, EX_DATAERR);
    return hashPassword(password, argon2Params(config));
  };
  const report = (line: string, result: Record<string, unknown>) => process.stdout.write(`${line}\n${JSON.stringify(result)}\n`);
  try {
    const existing = await User.findOne({ where: { email } });
    if (existing) {
      const refusal = await needsConfirmation(existing);
      if (refusal && !args.promoteExisting) {
        throw new CliError(
          `refused: ${email} already has an account and ${refusal}. Nothing was changed. Re-run with --promote-existing to make it an admin anyway: it then gets the given password, its sessions end, and its address counts as verified.`,
          EX_NOPERM,
        );
      }
      const password_hash = await passwordHash(existing.name ?? undefined);
      const outcome = await sequelize.transaction(async (t) => {
        const user = await User.findByPk(existing.id, { transaction: t, lock: t.LOCK.UPDATE });
        if (!user) throw new CliError('the user disappeared; retry', EX_DATAERR);
        const now = new Date();
        const wasAdmin = user.roles.includes('admin');
        const wasUnverified = !user.email_verified_at;
        // With --promote-existing the operator vouches for the address; no registrant's password survives.
        const patch = {
          roles: [...new Set([...user.roles, 'admin'])],
          password_hash,
          password_changed_at: now,
          registration_contested_at: null,
          email_verified_at: user.email_verified_at ?? now,
          updated_at: now,
        };
        if (user.status === 'pending_verification') await transition(t, user, 'verify', { meta, patch, data: { via: 'create-admin' } });
        else await user.update(patch, { transaction: t });
        // Codes mailed for the old registration are of no use any more.
        if (wasUnverified) await supersedeLiveTokens(t, user.id, 'email_verification', now);
        const sessionsEnded = await sessions.revokeAllForUser(t, user.id, 'admin_password_set');
        if (!wasAdmin) await audit(t, 'admin.promoted', user.id, meta, { via: 'create-admin', verified_by_operator: wasUnverified });
        await audit(t, 'password.set_by_operator', user.id, meta, { via: 'create-admin', sessions_ended: sessionsEnded });
        return { user, wasAdmin, wasUnverified, sessionsEnded };
      });
      const { user, wasAdmin, wasUnverified, sessionsEnded } = outcome;
      const what = wasAdmin ? `${email} was already an admin` : `promoted ${email} to admin`;
      report(
        `${what} (user ${user.id}, ${user.status})${wasUnverified ? '; address marked verified' : ''}; password set; ${sessionsEnded} session${sessionsEnded === 1 ? '' : 's'} ended`,
        { result: wasAdmin ? 'already_admin' : 'promoted', user_id: user.id, status: user.status, password_set: true, sessions_ended: sessionsEnded },
      );
      if (user.status !== 'active') process.stderr.write(`note: the account is ${user.status}; it cannot sign in until that changes\n`);
      return;
    }

    const password_hash = await passwordHash();
    const now = new Date();
    const user = await sequelize.transaction(async (t) => {
      const u = await User.create(
        {
          id: randomUUID(),
          email,
          name: null,
          password_hash,
          status: 'active',
          roles: ['user', 'admin'],
          email_verified_at: now,
          password_changed_at: now,
        },
        { transaction: t },
      );
      await audit(t, 'admin.created', u.id, meta, { via: 'create-admin' });
      return u;
    });
    report(`created admin ${email} (user ${user.id}, active); password set; 0 sessions ended`, {
      result: 'created',
      user_id: user.id,
      status: user.status,
      password_set: true,
      sessions_ended: 0,
    });
  } finally {
    await rt.close();
  }
}

runCli(main, { failed: 'create-admin failed: ', refused: 'create-admin: ', exitOnSuccess: true });

/**
 * `npm run create-client -- --name <name> --redirect-uri <uri>... --grant-type <type>...
 * --auth-method <method> [--first-party] [--post-logout-redirect-uri <uri>...] [--jwks-uri <url>]`:
 * registers an OpenID Connect client through the same ClientRegistry the admin API uses (same
 * rules, same audit event `client.created`, actor none, request id `cli:<uuid>`) and prints it as
 * one JSON line, with the client_secret of a secret client: shown this once, stored only hashed.
 *
 * Like create-admin it logs in to Vault as itself (the authflow-cli AppRole, whose policy reads
 * the database login and nothing else), or with the running dev stack's (AUTHFLOW_STACK_FILE) when
 * no VAULT_ROLE_ID is set. See HELP below.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { audit } from '../domain/audit';
import { CLIENT_AUTH_METHODS, CLIENT_GRANT_TYPES, ClientRegistry } from '../domain/oidc/clients';
import { AppError } from '../platform/errors';
import { CliError, cliBase, connectDatabase, environmentFromStack, runCli, stderrLogger } from './cli-runtime';

const EX_USAGE = 64;
const EX_DATAERR = 65;

const HELP = `usage: npm run create-client -- --name <name> --grant-type <type> [--grant-type <type>...]
         --auth-method <method> [--redirect-uri <uri>...] [--post-logout-redirect-uri <uri>...]
         [--jwks-uri <https url>] [--first-party]

Registers an OpenID Connect client (the rules of POST /v1/admin/clients apply).
  --grant-type    ${CLIENT_GRANT_TYPES.join(', ')} (repeatable)
  --auth-method   ${CLIENT_AUTH_METHODS.join(', ')}
  --redirect-uri  https://..., http://localhost..., or com.example.app:/cb for public native apps (repeatable)
  --first-party   the client skips the consent page

Output: one JSON line {client_id, client_name, ..., client_secret?} on stdout. A client_secret
(client_secret_basic, client_secret_post) is shown only here: store it now, only its SHA-256 is kept.
Rotate it with POST /v1/admin/clients/{client_id}/secret. Logs go to stderr.

Vault: the command logs in as the authflow-cli AppRole (VAULT_ROLE_ID and VAULT_SECRET_ID or their
_FILE forms), or with the running dev stack's when no VAULT_ROLE_ID is set (docs/operations.md).
Exit codes: 0 registered, 64 usage, 65 client refused (the reasons on stderr), 77 Vault login refused, 78 no stack/config.
`;

function readArgs(argv: string[]) {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        name: { type: 'string' },
        'redirect-uri': { type: 'string', multiple: true },
        'post-logout-redirect-uri': { type: 'string', multiple: true },
        'grant-type': { type: 'string', multiple: true },
        'auth-method': { type: 'string' },
        'jwks-uri': { type: 'string' },
        'first-party': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (positionals.length) throw new CliError(`unexpected argument ${positionals.join(' ')}\n${HELP}`, EX_USAGE);
    return values;
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`${(err as Error).message}\n${HELP}`, EX_USAGE);
  }
}

async function main(): Promise<void> {
  const args = readArgs(process.argv.slice(2));
  if (args.help) {
    process.stdout.write(HELP);
    return;
  }
  const missing = (['name', 'grant-type', 'auth-method'] as const).filter((k) => args[k] === undefined);
  if (missing.length) throw new CliError(`missing ${missing.map((m) => `--${m}`).join(', ')}\n${HELP}`, EX_USAGE);

  const stackFile = environmentFromStack();
  const base = cliBase((config) =>
    stderrLogger({
      name: 'create-client',
      level: config.LOG_LEVEL === 'debug' || config.LOG_LEVEL === 'trace' ? config.LOG_LEVEL : 'warn',
      service: 'create-client',
    }),
  );
  if (stackFile) base.logger.info({ stackFile }, "using the running stack's environment");
  const rt = await connectDatabase(base);
  try {
    const registry = new ClientRegistry(rt.sequelize, audit);
    const { client, client_secret } = await registry
      .create(
        {
          client_name: args.name!,
          redirect_uris: args['redirect-uri'] ?? [],
          post_logout_redirect_uris: args['post-logout-redirect-uri'] ?? [],
          grant_types: args['grant-type']!,
          token_endpoint_auth_method: args['auth-method']!,
          first_party: args['first-party'] ?? false,
          jwks_uri: args['jwks-uri'] ?? null,
        },
        { requestId: `cli:${randomUUID()}`, actorId: null },
      )
      .catch((err: unknown) => {
        if (err instanceof AppError && err.code === 'validation_failed') {
          const errors = (err.extra.errors as Array<{ field: string; message: string }> | undefined) ?? [];
          throw new CliError(`client refused:\n${errors.map((e) => `  ${e.field}: ${e.message}`).join('\n') || err.message}`, EX_DATAERR);
        }
        throw err;
      });
    const { created_by: _by, ...shown } = client;
    process.stdout.write(`${JSON.stringify({ ...shown, ...(client_secret ? { client_secret } : {}) })}\n`);
  } finally {
    await rt.close();
  }
}

runCli(main, { failed: 'create-client failed: ', refused: 'create-client: ', exitOnSuccess: true });

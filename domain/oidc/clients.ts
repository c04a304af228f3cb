/**
 * Registered OpenID Connect clients (relying parties): the one writer of `oidc_clients`
 * (migration 015), read by the provider through `findForProvider`.
 *
 * Invariants:
 * - A client is valid as a whole, at creation and after every change: grant types from
 *   authorization_code, refresh_token, client_credentials, refresh_token only beside
 *   authorization_code, authorization_code with at least one redirect URI, a public client
 *   (`none`) never with client_credentials, `private_key_jwt` with an https jwks_uri.
 * - Redirect URIs (and post-logout ones) are absolute, without fragment, whitespace or
 *   credentials: https, http only on a loopback host (RFC 8252 §7.3), or a reverse-domain custom
 *   scheme (RFC 8252 §7.1) for public native clients only. They are stored exactly as given (the
 *   provider compares them as strings).
 * - A client that authenticates with a shared secret (`client_secret_basic`/`_post`) gets a
 *   256-bit random secret, answered once (at creation and at each rotation); only its SHA-256 is
 *   stored (`secret_sha256`; the schema's CHECK ties its presence to the method). A rotation
 *   replaces it at once. The hash leaves this module only towards the provider, never in a listing.
 * - Every change is audited (`client.created`, `client.updated`, `client.deleted`,
 *   `client.secret_rotated`) in its own transaction, without the secret or its hash.
 */
import { OidcStore } from './store';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { withTx } from '../../platform/db';
import { AppError, type FieldError } from '../../platform/errors';
import type { AuditMeta } from '../audit';

export const CLIENT_GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
export type ClientGrantType = (typeof CLIENT_GRANT_TYPES)[number];
export const CLIENT_AUTH_METHODS = ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const;
export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number];
const SECRET_METHODS: readonly ClientAuthMethod[] = ['client_secret_basic', 'client_secret_post'];

/** The column's CHECK (migration 015); generated ids are 22 characters. */
export const CLIENT_ID = /^[A-Za-z0-9_-]{8,64}$/;
/** `<created_at in microseconds since 1970>_<client_id>`: the last row's sort key (clients treat it as opaque). */
export const CLIENT_CURSOR = /^([0-9]{1,16})_([A-Za-z0-9_-]{8,64})$/;
export const MAX_CLIENT_URIS = 20;
export const MAX_CLIENT_URI_LENGTH = 2000;
export const MAX_CLIENT_NAME = 200;
const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

/**
 * The form every redirect URI has (the API document carries this very pattern): https with a host
 * and no credentials, http on a loopback host, or a reverse-domain custom scheme; no whitespace or
 * fragment anywhere. `redirectUriProblem` applies it with the rules a pattern cannot state.
 */
export const REDIRECT_URI_PATTERN =
  '^(?:https://[^\\s#/?@]+(?:[/?][^\\s#]*)?|http://(?:localhost|127\\.0\\.0\\.1|\\[::1\\])(?::[0-9]{1,5})?(?:[/?][^\\s#]*)?|[a-z][a-z0-9+-]*(?:\\.[a-z0-9+-]+)+:[^\\s#]*)$';
const REDIRECT_URI_RE = new RegExp(REDIRECT_URI_PATTERN);
/** Control characters: never part of a name shown on a consent page (nor storable, for U+0000). */
// eslint-disable-next-line no-control-regex
export const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

export interface ClientSettings {
  client_name: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  grant_types: string[];
  token_endpoint_auth_method: string;
  first_party: boolean;
  jwks_uri: string | null;
}

export interface ClientInput {
  client_name: string;
  redirect_uris: string[];
  post_logout_redirect_uris?: string[];
  grant_types: string[];
  token_endpoint_auth_method: string;
  first_party?: boolean;
  jwks_uri?: string | null;
}

/** What an update may change; the rest (auth method, jwks_uri) is fixed at creation. */
export interface ClientPatch {
  client_name?: string;
  redirect_uris?: string[];
  post_logout_redirect_uris?: string[];
  grant_types?: string[];
  first_party?: boolean;
}

/** A client as the admin API shows it: never the secret or its hash. */
export interface OidcClient {
  client_id: string;
  client_name: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  grant_types: ClientGrantType[];
  token_endpoint_auth_method: ClientAuthMethod;
  jwks_uri: string | null;
  first_party: boolean;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

/** The client metadata oidc-provider reads (its `findClient`/adapter `Client` model). */
export interface ProviderClientMetadata {
  client_id: string;
  client_name: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  grant_types: ClientGrantType[];
  response_types: string[];
  token_endpoint_auth_method: ClientAuthMethod;
  jwks_uri?: string;
  /** Hex of the stored SHA-256; the provider compares a presented secret with `clientSecretMatches`. */
  client_secret?: string;
  'urn:authflow:first_party': boolean;
}

/** How a change is recorded (domain/audit.ts `audit`). */
export type ClientAuditWriter = (t: Transaction, type: string, userId: null, meta: AuditMeta, data: Record<string, unknown>) => Promise<void>;

const COLUMNS = `client_id, client_name, redirect_uris, post_logout_redirect_uris, grant_types, token_endpoint_auth_method, jwks_uri, first_party,
  created_by, created_at, updated_at`;

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();
const newSecret = () => randomBytes(32).toString('base64url');
const codePoints = (s: string) => [...s].length;

/** Whether a presented client secret is the one whose SHA-256 (hex) is stored; constant time in the secret. */
export function clientSecretMatches(presented: string, storedSha256Hex: string): boolean {
  if (typeof presented !== 'string' || typeof storedSha256Hex !== 'string' || !/^[0-9a-fA-F]{64}$/.test(storedSha256Hex)) return false;
  return timingSafeEqual(sha256(presented), Buffer.from(storedSha256Hex, 'hex'));
}

/** Why a redirect (or post-logout redirect) URI is refused for a client with this auth method, or undefined when it is fine. */
export function redirectUriProblem(uri: string, authMethod: string): string | undefined {
  if (typeof uri !== 'string' || !uri) return 'must be a non-empty string';
  if (uri.length > MAX_CLIENT_URI_LENGTH) return `at most ${MAX_CLIENT_URI_LENGTH} characters`;
  if (/\s/.test(uri) || CONTROL_CHARS.test(uri)) return 'no whitespace or control characters';
  if (uri.includes('#')) return 'no fragment (#) allowed';
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return 'not an absolute URI';
  }
  if (u.protocol === 'https:' || u.protocol === 'http:') {
    if (u.username || u.password) return 'no credentials in the URI';
    if (u.protocol === 'http:' && !LOOPBACK_HOSTS.includes(u.hostname)) {
      return 'http:// only on a loopback host (localhost, 127.0.0.1, [::1]; RFC 8252 §7.3), https:// otherwise';
    }
  } else {
    const scheme = u.protocol.slice(0, -1);
    if (!scheme.includes('.'))
      return `the scheme ${scheme}: is not allowed: https, http on loopback, or a reverse-domain custom scheme (RFC 8252 §7.1) such as com.example.app:/callback`;
    if (authMethod !== 'none') return 'a custom scheme is for native apps, which are public clients: only with token_endpoint_auth_method none';
  }
  // Whatever the URL parser would have normalised (upper-case schemes, short IPv4 forms, ...).
  if (!REDIRECT_URI_RE.test(uri)) return 'not in the allowed form (lower-case scheme, loopback written as localhost, 127.0.0.1 or [::1])';
  return undefined;
}

/** Every rule a client breaks, by field (empty when it is valid as a whole). */
export function clientProblems(c: ClientSettings): FieldError[] {
  const errors: FieldError[] = [];
  const add = (field: string, message: string) => errors.push({ field, message });
  if (typeof c.client_name !== 'string' || codePoints(c.client_name) < 1 || codePoints(c.client_name) > MAX_CLIENT_NAME) {
    add('client_name', `must be 1 to ${MAX_CLIENT_NAME} characters`);
  } else if (CONTROL_CHARS.test(c.client_name)) add('client_name', 'no control characters');
  else if (!c.client_name.trim()) add('client_name', 'must not be blank');

  const method = c.token_endpoint_auth_method;
  const methodOk = (CLIENT_AUTH_METHODS as readonly string[]).includes(method);
  if (!methodOk) add('token_endpoint_auth_method', `one of ${CLIENT_AUTH_METHODS.join(', ')}`);

  const grants = c.grant_types;
  if (!Array.isArray(grants) || !grants.length) add('grant_types', `at least one of ${CLIENT_GRANT_TYPES.join(', ')}`);
  else {
    const unknown = grants.filter((g) => !(CLIENT_GRANT_TYPES as readonly string[]).includes(g));
    if (unknown.length) add('grant_types', `unknown grant types: ${unknown.join(', ')} (allowed: ${CLIENT_GRANT_TYPES.join(', ')})`);
    if (grants.includes('refresh_token') && !grants.includes('authorization_code')) add('grant_types', 'refresh_token only together with authorization_code');
    if (grants.includes('client_credentials') && method === 'none')
      add('grant_types', 'a public client (token_endpoint_auth_method none) cannot use client_credentials');
    if (grants.includes('authorization_code') && Array.isArray(c.redirect_uris) && !c.redirect_uris.length) {
      add('redirect_uris', 'authorization_code needs at least one redirect URI');
    }
  }

  for (const field of ['redirect_uris', 'post_logout_redirect_uris'] as const) {
    const uris = c[field];
    if (!Array.isArray(uris)) {
      add(field, 'must be a list of URIs');
      continue;
    }
    if (uris.length > MAX_CLIENT_URIS) add(field, `at most ${MAX_CLIENT_URIS} URIs`);
    uris.slice(0, MAX_CLIENT_URIS).forEach((uri, i) => {
      const problem = redirectUriProblem(uri, method);
      if (problem) add(`${field}.${i}`, problem);
    });
  }

  if (c.jwks_uri !== null && c.jwks_uri !== undefined) {
    const problem = jwksUriProblem(c.jwks_uri);
    if (problem) add('jwks_uri', problem);
  } else if (method === 'private_key_jwt') add('jwks_uri', 'private_key_jwt needs a jwks_uri (https) to verify the client assertions with');
  return errors;
}

function jwksUriProblem(uri: string): string | undefined {
  if (typeof uri !== 'string' || uri.length > MAX_CLIENT_URI_LENGTH) return `an https:// URL of at most ${MAX_CLIENT_URI_LENGTH} characters`;
  if (/\s/.test(uri) || CONTROL_CHARS.test(uri) || uri.includes('#')) return 'no whitespace, control characters or fragment';
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return 'not an absolute URL';
  }
  if (u.protocol !== 'https:' || !uri.startsWith('https://')) return 'only https://';
  if (u.username || u.password) return 'no credentials in the URL';
  return undefined;
}

const notFound = () => new AppError('not_found', 'no such client');

function malformedCursor(): AppError {
  return new AppError('validation_failed', 'the cursor is malformed', { errors: [{ field: 'cursor', message: 'malformed cursor' }] });
}

function settle(c: ClientSettings): ClientSettings {
  const unique = <T>(xs: T[]) => [...new Set(xs)];
  const settled = {
    ...c,
    grant_types: Array.isArray(c.grant_types) ? unique(c.grant_types) : c.grant_types,
    redirect_uris: Array.isArray(c.redirect_uris) ? unique(c.redirect_uris) : c.redirect_uris,
    post_logout_redirect_uris: Array.isArray(c.post_logout_redirect_uris) ? unique(c.post_logout_redirect_uris) : c.post_logout_redirect_uris,
  };
  const errors = clientProblems(settled);
  if (errors.length) throw new AppError('validation_failed', `invalid client: ${[...new Set(errors.map((e) => e.field))].join(', ')}`, { errors });
  return settled;
}

export class ClientRegistry {
  constructor(
    private readonly sequelize: Sequelize,
    private readonly audit: ClientAuditWriter,
  ) {}

  /** Registers a client; a secret client's secret is in this answer only. */
  async create(input: ClientInput, meta: AuditMeta): Promise<{ client: OidcClient; client_secret?: string }> {
    const c = settle({
      client_name: input.client_name,
      redirect_uris: input.redirect_uris,
      post_logout_redirect_uris: input.post_logout_redirect_uris ?? [],
      grant_types: input.grant_types,
      token_endpoint_auth_method: input.token_endpoint_auth_method,
      first_party: input.first_party ?? false,
      jwks_uri: input.jwks_uri ?? null,
    });
    const clientId = randomBytes(16).toString('base64url');
    const secret = SECRET_METHODS.includes(c.token_endpoint_auth_method as ClientAuthMethod) ? newSecret() : undefined;
    const client = await withTx(this.sequelize, async (t) => {
      const [row] = await this.sequelize.query<OidcClient>(
        `INSERT INTO oidc_clients (client_id, client_name, redirect_uris, post_logout_redirect_uris, grant_types, token_endpoint_auth_method, jwks_uri,
           first_party, secret_sha256, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${COLUMNS}`,
        {
          bind: [
            clientId,
            c.client_name,
            c.redirect_uris,
            c.post_logout_redirect_uris,
            c.grant_types,
            c.token_endpoint_auth_method,
            c.jwks_uri,
            c.first_party,
            secret ? sha256(secret) : null,
            meta.actorId ?? null,
          ],
          transaction: t,
          type: QueryTypes.SELECT,
        },
      );
      await this.audit(t, 'client.created', null, meta, {
        client_id: clientId,
        client_name: c.client_name,
        grant_types: c.grant_types,
        token_endpoint_auth_method: c.token_endpoint_auth_method,
        first_party: c.first_party,
      });
      return row;
    });
    return secret ? { client, client_secret: secret } : { client };
  }

  /** Clients, newest first; keyset paging by (created_at, client_id). */
  async list(opts: { limit: number; cursor?: string }): Promise<{ clients: OidcClient[]; nextCursor: string | null }> {
    const bind: unknown[] = [opts.limit + 1];
    let where = '';
    if (opts.cursor) {
      const m = CLIENT_CURSOR.exec(opts.cursor);
      if (!m) throw malformedCursor();
      where = `WHERE (created_at, client_id COLLATE "C") < (timestamptz 'epoch' + CAST($2 AS bigint) * interval '1 microsecond', $3 COLLATE "C")`;
      bind.push(m[1], m[2]);
    }
    const rows = await this.sequelize.query<OidcClient & { sort_created: string }>(
      `SELECT ${COLUMNS}, (extract(epoch FROM created_at) * 1000000)::bigint::text AS sort_created FROM oidc_clients ${where}
        ORDER BY created_at DESC, client_id COLLATE "C" DESC LIMIT $1`,
      { bind, type: QueryTypes.SELECT },
    );
    const page = rows.slice(0, opts.limit);
    const last = page[page.length - 1];
    return {
      clients: page.map(({ sort_created: _s, ...c }) => c),
      nextCursor: rows.length > opts.limit && last ? `${last.sort_created}_${last.client_id}` : null,
    };
  }

  async get(clientId: string): Promise<OidcClient> {
    const [row] = CLIENT_ID.test(clientId)
      ? await this.sequelize.query<OidcClient>(`SELECT ${COLUMNS} FROM oidc_clients WHERE client_id = $1`, { bind: [clientId], type: QueryTypes.SELECT })
      : [];
    if (!row) throw notFound();
    return row;
  }

  /** Changes name, URIs, grant types or first_party; the result is validated as a whole. */
  async update(clientId: string, patch: ClientPatch, meta: AuditMeta): Promise<OidcClient> {
    if (!CLIENT_ID.test(clientId)) throw notFound();
    return withTx(this.sequelize, async (t) => {
      const [current] = await this.sequelize.query<OidcClient>(`SELECT ${COLUMNS} FROM oidc_clients WHERE client_id = $1 FOR UPDATE`, {
        bind: [clientId],
        transaction: t,
        type: QueryTypes.SELECT,
      });
      if (!current) throw notFound();
      const fields = (['client_name', 'redirect_uris', 'post_logout_redirect_uris', 'grant_types', 'first_party'] as const).filter(
        (f) => patch[f] !== undefined,
      );
      if (!fields.length) return current;
      const c = settle({ ...current, ...Object.fromEntries(fields.map((f) => [f, patch[f]])) });
      const [row] = await this.sequelize.query<OidcClient>(
        `UPDATE oidc_clients SET client_name = $2, redirect_uris = $3, post_logout_redirect_uris = $4, grant_types = $5, first_party = $6, updated_at = now()
          WHERE client_id = $1 RETURNING ${COLUMNS}`,
        {
          bind: [clientId, c.client_name, c.redirect_uris, c.post_logout_redirect_uris, c.grant_types, c.first_party],
          transaction: t,
          type: QueryTypes.SELECT,
        },
      );
      await this.audit(t, 'client.updated', null, meta, { client_id: clientId, fields });
      return row;
    });
  }

  /** Deletes a client: the provider no longer finds it, so its tokens and grants stop working. */
  async remove(clientId: string, meta: AuditMeta): Promise<void> {
    if (!CLIENT_ID.test(clientId)) throw notFound();
    await withTx(this.sequelize, async (t) => {
      const rows = await this.sequelize.query<{ client_name: string }>(`DELETE FROM oidc_clients WHERE client_id = $1 RETURNING client_name`, {
        bind: [clientId],
        transaction: t,
        type: QueryTypes.SELECT,
      });
      if (!rows.length) throw notFound();
      // Its grants, codes and tokens go with it (the provider would refuse them anyway).
      const ended = await new OidcStore(this.sequelize).endAllForClient(clientId, t);
      await this.audit(t, 'client.deleted', null, meta, { client_id: clientId, client_name: rows[0].client_name, grants_ended: ended });
    });
  }

  /** A new secret for a secret client, answered once; the old one stops working at once. */
  async rotateSecret(clientId: string, meta: AuditMeta): Promise<{ client_id: string; client_secret: string }> {
    if (!CLIENT_ID.test(clientId)) throw notFound();
    const secret = newSecret();
    await withTx(this.sequelize, async (t) => {
      const [row] = await this.sequelize.query<{ token_endpoint_auth_method: ClientAuthMethod }>(
        `SELECT token_endpoint_auth_method FROM oidc_clients WHERE client_id = $1 FOR UPDATE`,
        { bind: [clientId], transaction: t, type: QueryTypes.SELECT },
      );
      if (!row) throw notFound();
      if (!SECRET_METHODS.includes(row.token_endpoint_auth_method)) {
        throw new AppError('conflict', `the client authenticates with ${row.token_endpoint_auth_method}: it has no secret to rotate`);
      }
      await this.sequelize.query(`UPDATE oidc_clients SET secret_sha256 = $2, updated_at = now() WHERE client_id = $1`, {
        bind: [clientId, sha256(secret)],
        transaction: t,
      });
      await this.audit(t, 'client.secret_rotated', null, meta, { client_id: clientId });
    });
    return { client_id: clientId, client_secret: secret };
  }

  /** The client's metadata for oidc-provider, or undefined when there is no such client. */
  async findForProvider(clientId: string): Promise<ProviderClientMetadata | undefined> {
    if (typeof clientId !== 'string' || !CLIENT_ID.test(clientId)) return undefined;
    const [row] = await this.sequelize.query<OidcClient & { secret_sha256: Buffer | null }>(
      `SELECT ${COLUMNS}, secret_sha256 FROM oidc_clients WHERE client_id = $1`,
      { bind: [clientId], type: QueryTypes.SELECT },
    );
    if (!row) return undefined;
    return {
      client_id: row.client_id,
      client_name: row.client_name,
      redirect_uris: row.redirect_uris,
      post_logout_redirect_uris: row.post_logout_redirect_uris,
      grant_types: row.grant_types,
      response_types: row.grant_types.includes('authorization_code') ? ['code'] : [],
      token_endpoint_auth_method: row.token_endpoint_auth_method,
      ...(row.jwks_uri ? { jwks_uri: row.jwks_uri } : {}),
      ...(row.secret_sha256 ? { client_secret: Buffer.from(row.secret_sha256).toString('hex') } : {}),
      'urn:authflow:first_party': row.first_party,
    };
  }
}

/**
 * Registered OpenID Connect clients (admin, live session with a second factor): register a client
 * (a secret client's secret is answered once), list, read, change, delete, rotate the secret. The
 * rules (grant types, redirect URIs, auth methods) and the secret handling: domain/oidc/clients.ts.
 * No answer ever carries a stored secret or its hash.
 */
import Router from '@koa/router';
import { z } from 'zod';
import {
  CLIENT_AUTH_METHODS,
  CLIENT_CURSOR,
  CLIENT_GRANT_TYPES,
  CLIENT_ID,
  MAX_CLIENT_NAME,
  MAX_CLIENT_URI_LENGTH,
  MAX_CLIENT_URIS,
  REDIRECT_URI_PATTERN,
  type OidcClient,
} from '../../domain/oidc/clients';
import type { AppDeps } from '../context';
import { requestMeta, requireAuth, requireLiveAdmin, requireRole } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { describe } from '../openapi';
import { chars } from '../schemas';

const RULES =
  'The client is checked as a whole (400 validation_failed naming each field): refresh_token only with authorization_code; authorization_code needs at least one redirect URI; ' +
  'a public client (none) cannot use client_credentials; private_key_jwt needs a jwks_uri; a custom-scheme redirect URI (reverse domain name, e.g. com.example.app:/callback; RFC 8252) only with none; ' +
  'http:// only on localhost, 127.0.0.1 or [::1]; no fragment or credentials; a name that is not blank.';

// eslint-disable-next-line no-control-regex
const ClientName = chars(1, MAX_CLIENT_NAME).regex(/^[^\u0000-\u001f\u007f]*$/, 'no control characters');
const RedirectUri = chars(1, MAX_CLIENT_URI_LENGTH)
  .regex(new RegExp(REDIRECT_URI_PATTERN), 'https://, http:// on a loopback host, or a reverse-domain custom scheme; no whitespace or fragment')
  .describe('https://, http:// on localhost, 127.0.0.1 or [::1] (RFC 8252 §7.3), or a reverse-domain custom scheme for public native clients (RFC 8252 §7.1)');
const RedirectUris = z.array(RedirectUri).max(MAX_CLIENT_URIS);
const GrantTypes = z.array(z.enum(CLIENT_GRANT_TYPES)).min(1).max(CLIENT_GRANT_TYPES.length);
const CreateBody = z
  .object({
    client_name: ClientName,
    redirect_uris: RedirectUris,
    post_logout_redirect_uris: RedirectUris.optional(),
    grant_types: GrantTypes,
    token_endpoint_auth_method: z.enum(CLIENT_AUTH_METHODS),
    first_party: z.boolean().optional().describe('a first-party client skips the consent page'),
    jwks_uri: chars(9, MAX_CLIENT_URI_LENGTH)
      .regex(/^https:\/\/[^\s#/?@]+(?:[/?][^\s#]*)?$/, 'an https:// URL without credentials or fragment')
      .optional()
      .describe('where the client publishes its keys; required with private_key_jwt'),
  })
  .strict();
const PatchBody = z
  .object({
    client_name: ClientName.optional(),
    redirect_uris: RedirectUris.optional(),
    post_logout_redirect_uris: RedirectUris.optional(),
    grant_types: GrantTypes.optional(),
    first_party: z.boolean().optional(),
  })
  .strict();
const Params = z.object({ client_id: z.string().regex(CLIENT_ID, 'a client_id') });
const ListQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().regex(CLIENT_CURSOR, 'a next_cursor of this listing').describe('the next_cursor of the previous page').optional(),
  })
  .strict();

const ClientSchema = z.object({
  client_id: z.string(),
  client_name: z.string(),
  redirect_uris: z.array(z.string()),
  post_logout_redirect_uris: z.array(z.string()),
  grant_types: z.array(z.enum(CLIENT_GRANT_TYPES)),
  token_endpoint_auth_method: z.enum(CLIENT_AUTH_METHODS),
  jwks_uri: z.string().nullable(),
  first_party: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
});
const CreatedSchema = ClientSchema.extend({
  client_secret: z.string().optional().describe('client_secret_basic and client_secret_post only: shown once, stored as its SHA-256'),
});
const SecretSchema = z.object({ client_id: z.string(), client_secret: z.string().describe('shown once; the previous secret no longer works') });

const clientOut = (c: OidcClient) => ({
  client_id: c.client_id,
  client_name: c.client_name,
  redirect_uris: c.redirect_uris,
  post_logout_redirect_uris: c.post_logout_redirect_uris,
  grant_types: c.grant_types,
  token_endpoint_auth_method: c.token_endpoint_auth_method,
  jwks_uri: c.jwks_uri,
  first_party: c.first_party,
  created_at: new Date(c.created_at).toISOString(),
  updated_at: new Date(c.updated_at).toISOString(),
});

export function clientsRouter(deps: AppDeps): Router {
  const r = new Router({ prefix: '/v1/admin/clients' });
  r.use(requireAuth(deps.tokens), requireRole('admin'), requireLiveAdmin(deps));
  const notFound = { 404: { description: 'no such client' } };

  describe('post', '/v1/admin/clients', {
    summary: 'Register an OpenID Connect client; a secret client (client_secret_basic/_post) gets its client_secret in this answer only',
    description: `${RULES} Audited as client.created.`,
    tags: ['admin'],
    auth: 'admin',
    body: CreateBody,
    responses: { 201: { description: 'registered', schema: CreatedSchema } },
  });
  r.post('/', async (ctx) => {
    const body = parse(CreateBody, ctx.request.body);
    const { client, client_secret } = await deps.clients.create(body, requestMeta(ctx));
    ctx.status = 201;
    ctx.body = { ...clientOut(client), ...(client_secret ? { client_secret } : {}) };
  });

  describe('get', '/v1/admin/clients', {
    summary: 'The registered clients, newest first; cursor pagination',
    tags: ['admin'],
    auth: 'admin',
    query: ListQuery,
    responses: { 200: { description: 'a page of clients', schema: z.object({ clients: z.array(ClientSchema), next_cursor: z.string().nullable() }) } },
  });
  r.get('/', async (ctx) => {
    const q = parse(ListQuery, ctx.query, 'query');
    const { clients, nextCursor } = await deps.clients.list(q);
    ctx.body = { clients: clients.map(clientOut), next_cursor: nextCursor };
  });

  describe('get', '/v1/admin/clients/:client_id', {
    summary: 'One client',
    tags: ['admin'],
    auth: 'admin',
    params: Params,
    responses: { 200: { description: 'the client', schema: ClientSchema }, ...notFound },
  });
  r.get('/:client_id', async (ctx) => {
    const { client_id } = parse(Params, ctx.params, 'path');
    ctx.body = clientOut(await deps.clients.get(client_id));
  });

  describe('patch', '/v1/admin/clients/:client_id', {
    summary: 'Change the name, redirect URIs, grant types or first_party of a client (the auth method and jwks_uri are fixed)',
    description: `The changed client is checked as a whole. ${RULES} Audited as client.updated.`,
    tags: ['admin'],
    auth: 'admin',
    params: Params,
    body: PatchBody,
    responses: { 200: { description: 'the changed client', schema: ClientSchema }, ...notFound },
  });
  r.patch('/:client_id', async (ctx) => {
    const { client_id } = parse(Params, ctx.params, 'path');
    const body = parse(PatchBody, ctx.request.body);
    ctx.body = clientOut(await deps.clients.update(client_id, body, requestMeta(ctx)));
  });

  describe('delete', '/v1/admin/clients/:client_id', {
    summary: 'Delete a client: its tokens and grants stop working (audited as client.deleted)',
    tags: ['admin'],
    auth: 'admin',
    params: Params,
    responses: { 204: { description: 'deleted' }, ...notFound },
  });
  r.delete('/:client_id', async (ctx) => {
    const { client_id } = parse(Params, ctx.params, 'path');
    await deps.clients.remove(client_id, requestMeta(ctx));
    ctx.status = 204;
  });

  describe('post', '/v1/admin/clients/:client_id/secret', {
    summary: 'Rotate the secret of a secret client: the new one is in this answer only, the old one stops working at once',
    description: 'Audited as client.secret_rotated.',
    tags: ['admin'],
    auth: 'admin',
    params: Params,
    responses: {
      200: { description: 'rotated', schema: SecretSchema },
      ...notFound,
      409: { description: 'conflict: the client authenticates without a secret (none, private_key_jwt)' },
    },
  });
  r.post('/:client_id/secret', async (ctx) => {
    const { client_id } = parse(Params, ctx.params, 'path');
    ctx.body = await deps.clients.rotateSecret(client_id, requestMeta(ctx));
  });

  return r;
}

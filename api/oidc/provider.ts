/**
 * The OpenID Connect provider: panva's oidc-provider (OpenID-certified) configured as one object,
 * mounted in our Koa server at the issuer (PUBLIC_BASE_URL). Endpoints live under `/oidc/`
 * (authorization, token, userinfo, revocation, introspection, end-session); discovery is
 * `/.well-known/openid-configuration` and the keys are our JWKS (`/.well-known/jwks.json`, the
 * same Vault-held key ring that signs /v1 tokens). The sign-in, consent and logout pages are ours
 * (api/oidc/interactions.ts); `devInteractions` is off.
 *
 * Decisions:
 * - oidc-provider is an ES module; this CommonJS service loads it once with `import()` at start
 *   (`loadProviderModule`), so nothing else changes for the compiler or the tests.
 * - Every model is stored in Postgres (api/oidc/adapter.ts over domain/oidc/store.ts); clients
 *   come from the registry (domain/oidc/clients.ts). A client secret is stored only as its
 *   SHA-256, so `compareClientSecret` hashes what is presented and compares in constant time, and
 *   symmetric algorithms (client_secret_jwt, HS* id tokens) are off.
 * - A new provider instance is built whenever the key ring's key set changes (rotation); all its
 *   state is in Postgres and its cookie keys in Vault, so a grant in flight carries over.
 * - Accounts: `findAccount` answers only for active accounts, so a suspended, locked,
 *   pending-deletion or deleted account gets no token, on refresh too. Claims: sub, email,
 *   email_verified, name. amr comes from the sign-in; acr is derived from amr in one place
 *   (domain/sessions/authentication-methods.ts).
 * - Access tokens for a resource server are JWTs (`at+jwt`) whose audience is that resource,
 *   never the /v1 audience, so /v1 keeps accepting only its own tokens. A client-credentials
 *   request without `resource` gets one for OIDC_DEFAULT_RESOURCE.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type * as OidcTypes from 'oidc-provider' with { 'resolution-mode': 'import' };
import { clientSecretMatches } from '../../domain/oidc/clients';
import type { OidcStore } from '../../domain/oidc/store';
import { ACR_VALUES, acrFor, meetsAcr } from '../../domain/sessions/authentication-methods';
import type { Config } from '../../platform/config';
import type { Logger } from '../../platform/logger';
import { adapterFactory, type ClientSource } from './adapter';
import { renderLoggedOut, renderLogoutConfirm, renderProviderError } from '../pages/sign-in';

export type OidcModule = typeof OidcTypes;
export type Provider = OidcTypes.default;

/** Loads oidc-provider (an ES module) once. */
let loaded: Promise<OidcModule> | undefined;
export function loadProviderModule(): Promise<OidcModule> {
  loaded ??= import('oidc-provider');
  return loaded;
}

export interface AccountLookup {
  /** The account's claims when it may receive tokens now (active), else undefined. */
  activeAccount(userId: string): Promise<{ id: string; email: string | null; email_verified: boolean; name: string | null } | undefined>;
}

export interface ProviderDeps {
  config: Config;
  logger: Logger;
  store: OidcStore;
  clients: ClientSource;
  accounts: AccountLookup;
  /** Private JWKs for the provider, per algorithm the signing key first. */
  providerJwks(): OidcTypes.JWK[];
  cookieKeys: string[];
  /** Writes an audit event (domain/audit.ts); failures are the caller's to log. */
  audit(type: string, userId: string | null, data: Record<string, unknown>): Promise<void>;
}

/** The paths the provider answers; everything else is ours. */
export function isProviderPath(path: string): boolean {
  return path.startsWith('/oidc/') || path === '/.well-known/openid-configuration';
}

const DEFAULT_SCOPE = 'api';

export function buildProvider(mod: OidcModule, deps: ProviderDeps): Provider {
  const { config } = deps;
  const issuer = config.PUBLIC_BASE_URL.replace(/\/+$/, '');
  const { errors, interactionPolicy } = mod;
  const ProviderClass = mod.default;
  const https = issuer.startsWith('https:');
  const log = deps.logger;
  const record = (type: string, userId: string | null, data: Record<string, unknown>) => {
    deps.audit(type, userId, data).catch((err: unknown) => log.warn({ err: (err as Error).message, type }, 'audit event not written'));
  };
  // The provider's own pages sit at several depths: they link the stylesheet by absolute path.
  const assets = `${new URL(issuer).pathname.replace(/\/+$/, '')}/assets/`;

  // Login is also needed when the session's level is below a requested acr.
  const policy = interactionPolicy.base();
  const login = policy.get('login')!;
  login.checks.add(
    new interactionPolicy.Check('acr_not_met', 'the requested authentication level is not met', (ctx) => {
      const wanted = typeof ctx.oidc.params?.acr_values === 'string' ? ctx.oidc.params.acr_values.split(' ').filter(Boolean) : [];
      if (!wanted.length || !ctx.oidc.session?.accountId) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      const amr = ctx.oidc.session.amr ?? [];
      if (ctx.oidc.result?.login) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      return wanted.some((acr) => meetsAcr(amr, acr)) ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
    }),
  );

  const configuration: OidcTypes.Configuration = {
    adapter: adapterFactory(deps.store, deps.clients, errors),
    clients: [],
    async findAccount(_ctx, sub) {
      const user = await deps.accounts.activeAccount(sub);
      if (!user) return undefined;
      return {
        accountId: user.id,
        claims() {
          return { sub: user.id, email: user.email ?? undefined, email_verified: user.email_verified, name: user.name ?? undefined };
        },
      };
    },
    claims: { sid: null, iss: null, openid: ['sub', 'acr', 'amr', 'auth_time'], email: ['email', 'email_verified'], profile: ['name'] },
    scopes: ['openid', 'offline_access', 'email', 'profile', DEFAULT_SCOPE],
    acrValues: [...ACR_VALUES],
    extraClientMetadata: { properties: ['urn:authflow:first_party'] },
    clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    enabledJWA: {
      idTokenSigningAlgValues: ['ES256', 'RS256', 'EdDSA'],
      userinfoSigningAlgValues: ['ES256', 'RS256', 'EdDSA'],
      clientAuthSigningAlgValues: ['ES256', 'RS256', 'PS256', 'EdDSA'],
      requestObjectSigningAlgValues: ['ES256', 'RS256', 'PS256', 'EdDSA'],
      dPoPSigningAlgValues: ['ES256', 'EdDSA', 'RS256', 'PS256'],
      introspectionSigningAlgValues: ['ES256', 'RS256', 'EdDSA'],
      authorizationSigningAlgValues: ['ES256', 'RS256', 'EdDSA'],
    },
    jwks: { keys: deps.providerJwks() },
    cookies: {
      keys: deps.cookieKeys,
      long: { httpOnly: true, sameSite: 'lax', secure: https, signed: true },
      short: { httpOnly: true, sameSite: 'lax', secure: https, signed: true },
      names: { session: 'authflow_oidc_session', interaction: 'authflow_interaction', resume: 'authflow_interaction_resume' },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}`, policy },
    routes: {
      authorization: '/oidc/auth',
      token: '/oidc/token',
      userinfo: '/oidc/me',
      jwks: '/.well-known/jwks.json',
      revocation: '/oidc/token/revocation',
      introspection: '/oidc/token/introspection',
      end_session: '/oidc/session/end',
      pushed_authorization_request: '/oidc/request',
      code_verification: '/oidc/device',
      device_authorization: '/oidc/device/auth',
      backchannel_authentication: '/oidc/backchannel',
      registration: '/oidc/reg',
      challenge: '/oidc/challenge',
    },
    // OAuth 2.1: the code flow only (no implicit or hybrid responses), PKCE with S256 for every client.
    responseTypes: ['code', 'none'],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Only confidential clients may introspect (a public client has no credential to prove).
        allowedPolicy: (_ctx, client) => client.clientAuthMethod !== 'none',
      },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      dPoP: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx, form) => renderLogoutConfirm(ctx, form, assets),
        postLogoutSuccessSource: (ctx) => renderLoggedOut(ctx, assets),
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx, _client, oneOf) => {
          if (oneOf) return oneOf;
          return ctx.oidc.params?.grant_type === 'client_credentials' ? config.OIDC_DEFAULT_RESOURCE : undefined;
        },
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          if (resource !== config.OIDC_DEFAULT_RESOURCE) throw new errors.InvalidTarget();
          return {
            scope: DEFAULT_SCOPE,
            audience: resource,
            accessTokenTTL: config.ACCESS_TOKEN_TTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    ttl: {
      AccessToken: config.ACCESS_TOKEN_TTL,
      ClientCredentials: config.ACCESS_TOKEN_TTL,
      AuthorizationCode: 60,
      IdToken: config.ACCESS_TOKEN_TTL,
      Interaction: config.OIDC_INTERACTION_TTL,
      Session: config.SESSION_MAX_LIFETIME,
      Grant: config.REFRESH_TOKEN_TTL,
      RefreshToken: (_ctx, token) => {
        const started = typeof token.iat === 'number' ? token.iat : Math.floor(Date.now() / 1000);
        return Math.max(1, Math.min(config.REFRESH_TOKEN_TTL, config.SESSION_MAX_LIFETIME - (Math.floor(Date.now() / 1000) - started)));
      },
    },
    // Every refresh spends the token; a spent one again revokes the grant (oidc-provider's reuse rule).
    rotateRefreshToken: true,
    issueRefreshToken: (_ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    // Clients marked first-party skip the consent page: their grant is made at sign-in.
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      if (!(ctx.oidc.client as unknown as Record<string, unknown>)['urn:authflow:first_party'] || !ctx.oidc.session?.accountId) return undefined;
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session.accountId });
      const requested = typeof ctx.oidc.params?.scope === 'string' ? ctx.oidc.params.scope : 'openid';
      grant.addOIDCScope(requested);
      await grant.save();
      return grant;
    },
    extraTokenClaims: () => undefined,
    renderError: (ctx, out) => renderProviderError(ctx, out as unknown as Record<string, unknown>, assets),
    conformIdTokenClaims: true,
    allowOmittingSingleRegisteredRedirectUri: false,
    discovery: { service_documentation: `${issuer}/docs` },
  };

  const provider = new ProviderClass(issuer, configuration);
  provider.proxy = false;
  // Stored secrets are SHA-256 digests (migration 015): hash what the client presents.
  provider.Client.prototype.compareClientSecret = function compare(this: { clientSecret?: string }, actual: string) {
    return clientSecretMatches(actual, this.clientSecret ?? '');
  };
  // A refresh token is bound to the DPoP key of the code exchange for every client, not only
  // public ones (oidc-provider follows RFC 9449 §5, which binds confidential clients' refresh
  // tokens to client authentication alone): a stolen refresh token and client secret are not
  // enough without the key. Rotation keeps the binding (oidc-provider copies jkt).
  const rtSave = (provider.RefreshToken.prototype as unknown as { save: (this: unknown) => Promise<string> }).save;
  (provider.RefreshToken.prototype as unknown as { save: (this: { jkt?: string }) => Promise<string> }).save = function save(this: { jkt?: string }) {
    const ctx = (ProviderClass as unknown as { ctx?: { oidc?: { params?: Record<string, unknown>; entities?: { AccessToken?: { jkt?: string } } } } }).ctx;
    const jkt = ctx?.oidc?.entities?.AccessToken?.jkt;
    if (!this.jkt && jkt && ctx?.oidc?.params?.grant_type === 'authorization_code') this.jkt = jkt;
    return rtSave.call(this);
  };
  // Audit: grants made by a code exchange, refresh reuse (the adapter), RP-initiated logouts.
  type EventCtx = {
    oidc?: {
      params?: Record<string, unknown>;
      client?: { clientId: string };
      session?: { accountId?: string };
      entities?: Record<string, { accountId?: string; grantId?: string; consumed?: number } | undefined>;
    };
  };
  const events = provider as unknown as NodeJS.EventEmitter;
  events.on('grant.success', (ctx: EventCtx) => {
    if (ctx.oidc?.params?.grant_type !== 'authorization_code') return;
    const at = ctx.oidc.entities?.AccessToken;
    record('oidc.grant_issued', at?.accountId ?? null, { client_id: ctx.oidc.client?.clientId, grant_id: at?.grantId });
  });
  // A spent refresh token or code presented again (oidc-provider revokes the grant); the adapter
  // reports the parallel case, where both requests read it unspent.
  events.on('grant.error', (ctx: EventCtx, err: { error_description?: string }) => {
    const rt = ctx.oidc?.entities?.RefreshToken;
    const clientId = ctx.oidc?.client?.clientId;
    if (rt?.consumed) record('token_reused', rt.accountId ?? null, { via: 'oidc', model: 'RefreshToken', client_id: clientId });
    else if (err?.error_description === 'authorization code already consumed')
      record('token_reused', null, { via: 'oidc', model: 'AuthorizationCode', client_id: clientId });
  });
  events.on('end_session.success', (ctx: EventCtx) => {
    record('logout', ctx.oidc?.session?.accountId ?? null, { via: 'oidc', client_id: ctx.oidc?.client?.clientId ?? null });
  });
  provider.on('server_error', (_ctx: unknown, err: Error) => log.error({ err: err.message }, 'oidc provider error'));
  return provider;
}

/** acr for a sign-in's amr (the value stored with the login result). */
export const loginAcr = acrFor;

/**
 * The provider instance requests go to. `rebuild` swaps in a new one (the key ring changed); all
 * state is in Postgres and the cookie keys are the same, so sign-ins and grants in flight go on.
 */
export class ProviderHolder {
  private provider: Provider;
  private handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>;

  constructor(private readonly build: () => Provider) {
    this.provider = build();
    this.handler = this.provider.callback();
  }

  rebuild(): void {
    const next = this.build();
    this.provider = next;
    this.handler = next.callback();
  }

  current(): Provider {
    return this.provider;
  }

  handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    return this.handler(req, res);
  }
}

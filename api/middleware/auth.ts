/**
 * Access-token authentication against our own signing keys (the same set the JWKS publishes), with
 * the algorithm pinned, then the revocation check (domain/sessions/revocations.ts): from memory while
 * the revocation feed is healthy (no database call, so verification stays fast), from the database
 * while it lags (503 when that fails). Role checks on top.
 *
 * Two schemes: `Bearer <token>` for tokens of unbound sessions, and `DPoP <token>` (RFC 9449 §7)
 * for tokens bound to a key (`cnf.jkt`), which also need a `DPoP` proof of that key for this
 * request with `ath`. A bound token sent as Bearer is refused; so is an unbound one sent as DPoP.
 * The proof's jti goes to a per-instance cache (no database write per request).
 */
import type Koa from 'koa';
import { AppError } from '../../platform/errors';
import { DPOP_WWW_AUTHENTICATE, type DpopService } from '../../domain/sessions/dpop';
import type { RequestMeta } from '../../domain/sessions/sessions';
import type { AccessClaims, TokenService } from '../../domain/sessions/tokens';
import type { AppDeps } from '../context';

declare module 'koa' {
  interface DefaultState {
    auth?: AccessClaims;
  }
  interface DefaultContext {
    /** The DPoP verifier (set on app.context by api/server.ts). */
    dpop?: DpopService;
  }
}

const CHALLENGES = `Bearer, ${DPOP_WWW_AUTHENTICATE()}`;

export function requireAuth(tokens: TokenService): Koa.Middleware {
  return async (ctx, next) => {
    const header = ctx.get('Authorization');
    const m = /^(Bearer|DPoP) ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(header);
    if (!m) {
      ctx.set('WWW-Authenticate', CHALLENGES);
      throw new AppError('unauthorized', 'send an access token as Authorization: Bearer <token>, or a DPoP-bound one as Authorization: DPoP <token>');
    }
    const [, scheme, token] = m;
    let claims: AccessClaims;
    try {
      claims = await tokens.verifyAccessToken(token);
    } catch (err) {
      ctx.set('WWW-Authenticate', scheme === 'DPoP' ? DPOP_WWW_AUTHENTICATE('invalid_token') : 'Bearer error="invalid_token"');
      throw err;
    }
    const jkt = claims.cnf?.jkt;
    if (scheme === 'Bearer' && jkt) {
      ctx.set('WWW-Authenticate', DPOP_WWW_AUTHENTICATE('invalid_token', 'the token is DPoP-bound'));
      throw new AppError('unauthorized', 'this access token is bound to a key: send it as Authorization: DPoP <token> with a DPoP proof');
    }
    if (scheme === 'DPoP') {
      if (!jkt) {
        ctx.set('WWW-Authenticate', 'Bearer error="invalid_token"');
        throw new AppError('unauthorized', 'this access token is not bound to a key: send it as Authorization: Bearer <token>');
      }
      if (!ctx.dpop) throw new Error('no DPoP verifier on the app context');
      await ctx.dpop.forResource({ method: ctx.method, path: ctx.path, proof: ctx.headers.dpop }, token, jkt);
    }
    const revoked = tokens.revocations?.isRevoked(claims) ?? false;
    if (revoked === true || (revoked !== false && (await revoked))) {
      ctx.set('WWW-Authenticate', scheme === 'DPoP' ? DPOP_WWW_AUTHENTICATE('invalid_token') : 'Bearer error="invalid_token"');
      throw new AppError('unauthorized', 'the session of this access token has ended');
    }
    ctx.state.auth = claims;
    await next();
  };
}

/**
 * The request metadata of a token endpoint (login, login/mfa, refresh, step-up) with the key of
 * its DPoP proof, when it sent one: the proof is checked (401 invalid_dpop_proof, or
 * use_dpop_nonce) and its jti claimed in the shared store before anything else happens.
 */
export async function tokenEndpointMeta(ctx: Koa.Context, dpop: DpopService): Promise<RequestMeta> {
  const proof = await dpop.forTokenEndpoint({ method: ctx.method, path: ctx.path, proof: ctx.headers.dpop });
  if (dpop.nonceRequired) ctx.set('DPoP-Nonce', dpop.currentNonce());
  return { ...requestMeta(ctx), ...(proof ? { dpopJkt: proof.jkt } : {}) };
}

export function requireRole(role: string): Koa.Middleware {
  return async (ctx, next) => {
    if (!ctx.state.auth?.roles.includes(role)) throw new AppError('forbidden', `the ${role} role is required`);
    await next();
  };
}

/** Request metadata for audit events and device fingerprints. */
export function requestMeta(ctx: Koa.Context) {
  return {
    ip: ctx.ip,
    requestId: ctx.state.requestId,
    userAgent: ctx.get('User-Agent') || undefined,
    acceptLanguage: ctx.get('Accept-Language') || undefined,
    deviceId: ctx.get('X-Device-Id') || undefined,
    actorId: ctx.state.auth?.sub ?? null,
  };
}

const SECOND_FACTOR_NEEDED = 'the admin API needs a sign-in with a second factor';

/**
 * The admin's session must be live, the account active and still an admin (not just the JWT),
 * and, unless ADMIN_MFA_REQUIRED is off, signed in with a second factor (the session's amr as the
 * database holds it). Enrolling a factor does not upgrade a session that signed in without one:
 * the admin signs in again with it.
 */
export function requireLiveAdmin(deps: Pick<AppDeps, 'sessions' | 'config'>): Koa.Middleware {
  return async (ctx, next) => {
    const auth = ctx.state.auth!;
    const state = await deps.sessions.liveAdmin(auth.sid, auth.sub, deps.config.ADMIN_MFA_REQUIRED);
    if (state === 'ended') throw new AppError('unauthorized', 'the session has ended');
    if (state === 'not_admin') throw new AppError('forbidden', 'the admin role is required');
    if (state === 'no_second_factor') {
      // RFC 9470 §3: the resource tells the client which authentication it lacks.
      const dpop = ctx.get('Authorization').startsWith('DPoP ');
      ctx.set(
        'WWW-Authenticate',
        dpop
          ? DPOP_WWW_AUTHENTICATE('insufficient_user_authentication', SECOND_FACTOR_NEEDED)
          : `Bearer error="insufficient_user_authentication", error_description="${SECOND_FACTOR_NEEDED}"`,
      );
      throw new AppError(
        'mfa_enrolment_required',
        'this session signed in without a second factor: enrol TOTP (POST /v1/me/mfa/totp, then POST /v1/me/mfa/totp/confirm) if you have not, and sign in again with it',
      );
    }
    await next();
  };
}

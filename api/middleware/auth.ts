/**
 * Bearer authentication against our own signing keys (the same set the JWKS publishes), with the
 * algorithm pinned, then the revocation check (domain/sessions/revocations.ts): from memory while
 * the revocation feed is healthy (no database call, so verification stays fast), from the database
 * while it lags (503 when that fails). Role checks on top.
 */
import type Koa from 'koa';
import { AppError } from '../../platform/errors';
import type { AccessClaims, TokenService } from '../../domain/sessions/tokens';
import type { AppDeps } from '../context';

declare module 'koa' {
  interface DefaultState {
    auth?: AccessClaims;
  }
}

export function requireAuth(tokens: TokenService): Koa.Middleware {
  return async (ctx, next) => {
    const header = ctx.get('Authorization');
    const m = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(header);
    if (!m) {
      ctx.set('WWW-Authenticate', 'Bearer');
      throw new AppError('unauthorized', 'send an access token as Authorization: Bearer <token>');
    }
    let claims: AccessClaims;
    try {
      claims = await tokens.verifyAccessToken(m[1]);
    } catch (err) {
      ctx.set('WWW-Authenticate', 'Bearer error="invalid_token"');
      throw err;
    }
    const revoked = tokens.revocations?.isRevoked(claims) ?? false;
    if (revoked === true || (revoked !== false && (await revoked))) {
      ctx.set('WWW-Authenticate', 'Bearer error="invalid_token"');
      throw new AppError('unauthorized', 'the session of this access token has ended');
    }
    ctx.state.auth = claims;
    await next();
  };
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

/** The admin's session must be live and the account active and still an admin (not just the JWT). */
export function requireLiveAdmin(deps: Pick<AppDeps, 'sessions'>): Koa.Middleware {
  return async (ctx, next) => {
    const auth = ctx.state.auth!;
    const state = await deps.sessions.liveAdmin(auth.sid, auth.sub);
    if (state === 'ended') throw new AppError('unauthorized', 'the session has ended');
    if (state === 'not_admin') throw new AppError('forbidden', 'the admin role is required');
    await next();
  };
}

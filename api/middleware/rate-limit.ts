/**
 * Rate-limit middleware (the counters are domain/rate-limits.ts): which key a request counts
 * against. Login, registration and forgot-password count per IP and per (hashed) address of the
 * body's `email`; refresh per IP and per owner of the body's `refresh_token`. Mount after the JSON
 * body parser, before the handler.
 */
import type Koa from 'koa';
import { normaliseEmail } from '../../domain/accounts/users';
import type { LimitedAction } from '../../domain/rate-limits';
import type { AppDeps } from '../context';

type AccountOf = (ctx: Koa.Context) => string | undefined | Promise<string | undefined>;

/** The normalised `email` field of the JSON body, if it is a plausible address. */
export function bodyEmail(ctx: Koa.Context): string | undefined {
  const email = (ctx.request as { body?: { email?: unknown } }).body?.email;
  if (typeof email !== 'string' || email.length > 254 || !email.includes('@')) return undefined;
  return `email:${normaliseEmail(email)}`;
}

/** Middleware limiting `action` by client IP and by the account derived from the request. */
export function rateLimit(deps: Pick<AppDeps, 'rateLimits' | 'sessions'>, action: LimitedAction): Koa.Middleware {
  const accountOf: AccountOf =
    action === 'refresh'
      ? async (ctx) => {
          const token = (ctx.request as { body?: { refresh_token?: unknown } }).body?.refresh_token;
          if (typeof token !== 'string' || token.length > 512) return undefined;
          const owner = await deps.sessions.refreshTokenOwner(token);
          return owner ? `user:${owner}` : undefined;
        }
      : bodyEmail;
  return async (ctx, next) => {
    const account = await accountOf(ctx);
    await deps.rateLimits.consume(action, { ip: ctx.ip, account });
    await next();
  };
}

/**
 * Rate-limit middleware (the counters are domain/rate-limits.ts): which key a request counts
 * against. Login, registration, reactivation and forgot-password count per IP and per (hashed)
 * address; refresh per IP and per owner of the refresh token. Mount after the JSON body parser,
 * before the handler.
 *
 * The account key is built from the body as the route's own schema validates and normalises it
 * (trimmed, NFKC, lower-cased), never from the raw field: otherwise `" victim@example.com "` or
 * 300 spaces of padding would count against a fresh key, or none. A body the schema refuses gets
 * its 400 here, before anything is counted or done: no key, no request.
 */
import type Koa from 'koa';
import type { z } from 'zod';
import { normaliseEmail } from '../../domain/accounts/users';
import type { LimitedAction } from '../../domain/rate-limits';
import type { AppDeps } from '../context';
import { parse } from './validate';

type Deps = Pick<AppDeps, 'rateLimits' | 'sessions'>;

/** The per-account key of a validated body's address. */
export const emailKey = (email: string) => `email:${normaliseEmail(email)}`;

/** Limits `action` by client IP and by the address in the body `schema` validates. */
export function rateLimit(deps: Deps, action: Exclude<LimitedAction, 'refresh'>, schema: z.ZodType<{ email: string }>): Koa.Middleware;
/** Limits refresh by client IP and by the owner of the refresh token in the body `schema` validates. */
export function rateLimit(deps: Deps, action: 'refresh', schema: z.ZodType<{ refresh_token: string }>): Koa.Middleware;
export function rateLimit(deps: Deps, action: LimitedAction, schema: z.ZodType<{ email: string } | { refresh_token: string }>): Koa.Middleware {
  return async (ctx, next) => {
    const body = parse(schema, ctx.request.body);
    let account: string | undefined;
    if ('refresh_token' in body) {
      // An unknown token has no owner: it counts per IP only, and the route answers invalid_grant.
      const owner = await deps.sessions.refreshTokenOwner(body.refresh_token);
      account = owner ? `user:${owner}` : undefined;
    } else account = emailKey(body.email);
    await deps.rateLimits.consume(action, { ip: ctx.ip, account });
    await next();
  };
}

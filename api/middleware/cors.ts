/**
 * CORS for browser apps on `/v1/*` (issue 19 item 8). Only the exact origins in API_CORS_ORIGINS
 * are answered, never with credentials: a browser app authenticates with a bearer or DPoP-bound
 * access token it sends itself, so cookies never ride along. Other origins get no CORS headers
 * at all (the browser then withholds the answer from the page); same-origin and non-browser
 * clients are unaffected.
 */
import type Koa from 'koa';

export const API_CORS_METHODS = 'GET, POST, PUT, PATCH, DELETE';
export const API_CORS_REQUEST_HEADERS = 'Authorization, DPoP, Content-Type, X-Device-Id';
/** What a page may read from an answer besides the CORS-safelisted headers. */
export const API_CORS_EXPOSED_HEADERS = 'DPoP-Nonce, WWW-Authenticate, Retry-After, Location';

export function apiCors(allowed: ReadonlySet<string>): Koa.Middleware {
  return async (ctx, next) => {
    if (!ctx.path.startsWith('/v1/')) {
      await next();
      return;
    }
    ctx.vary('Origin');
    const origin = ctx.get('Origin');
    if (!origin || !allowed.has(origin)) {
      await next();
      return;
    }
    ctx.set('Access-Control-Allow-Origin', origin);
    if (ctx.method === 'OPTIONS' && ctx.get('Access-Control-Request-Method')) {
      ctx.set('Access-Control-Allow-Methods', API_CORS_METHODS);
      ctx.set('Access-Control-Allow-Headers', API_CORS_REQUEST_HEADERS);
      ctx.set('Access-Control-Max-Age', '600');
      ctx.status = 204;
      return;
    }
    ctx.set('Access-Control-Expose-Headers', API_CORS_EXPOSED_HEADERS);
    await next();
  };
}

/** API_CORS_ORIGINS parsed: comma-separated exact origins (`https://app.example.com`, no path, no wildcard). */
export function parseOrigins(list: string): Set<string> {
  return new Set(
    list
      .split(',')
      .map((o) => o.trim())
      .filter(Boolean),
  );
}

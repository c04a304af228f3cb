/** Request id, per-request child logger, access log and latency metric. The request id is always
 * the server's own (a UUID): it keys audit events and idempotent notifications, so a client must
 * not choose it. A client's `X-Request-Id` is kept only as an untrusted log field,
 * `client_request_id`, when it is a short plain token (anything else is dropped). */
import { randomUUID } from 'node:crypto';
import type Koa from 'koa';
import type { Logger } from '../../platform/logger';
import { httpRequests } from '../../platform/metrics';

const ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

declare module 'koa' {
  interface DefaultState {
    /** The server-generated request id (also the `X-Request-Id` response header). */
    requestId: string;
    /** The request's child logger (carries the request id). */
    log: Logger;
  }
}

export function requestContext(logger: Logger): Koa.Middleware {
  return async (ctx, next) => {
    const incoming = ctx.get('X-Request-Id');
    const id = randomUUID();
    ctx.state.requestId = id;
    ctx.set('X-Request-Id', id);
    const log = logger.child(ID_RE.test(incoming) ? { req_id: id, client_request_id: incoming } : { req_id: id });
    ctx.state.log = log;
    const start = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const route = (ctx as unknown as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      httpRequests.observe({ method: ctx.method, route: String(route), status: String(ctx.status) }, seconds);
      const level = ctx.status >= 500 ? 'error' : 'debug';
      log[level]({ method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(seconds * 1000) }, 'request');
    }
  };
}

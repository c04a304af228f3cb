/**
 * The one place errors become responses: AppErrors turn into RFC 9457 problem+json with their
 * stable code; anything else is logged and answered as a generic 500 with no detail (no stack,
 * SQL or secret reaches a client). Connection failures of a dependency become 503.
 */
import type Koa from 'koa';
import { mapDbError } from '../../platform/db';
import { AppError, DependencyError, ERROR_CODES, ErrorCode } from '../../platform/errors';

export function problem(ctx: Koa.Context, code: ErrorCode, detail?: string, extra: Record<string, unknown> = {}) {
  const { status, title } = ERROR_CODES[code];
  ctx.status = status;
  ctx.type = 'application/problem+json';
  ctx.body = { type: `https://authflow.dev/problems/${code.replace(/_/g, '-')}`, title, status, detail: detail ?? title, code, ...extra };
}

function isTemporalUnavailable(err: unknown): boolean {
  const e = err as { name?: string; code?: number; cause?: { code?: number } };
  // gRPC UNAVAILABLE (14) / DEADLINE_EXCEEDED (4) from the Temporal client.
  return e?.name === 'ServiceError' || e?.name === 'ConnectionError' || [14, 4].includes(e?.code ?? e?.cause?.code ?? -1);
}

export function toAppError(err: unknown): AppError | undefined {
  if (err instanceof AppError) return err;
  const mapped = mapDbError(err);
  if (mapped instanceof AppError) return mapped;
  if (isTemporalUnavailable(err)) return new DependencyError('temporal', err);
  return undefined;
}

/** A dependency outage is one condition, not one per request: warn when it starts (no 503 for
 * that dependency in the last minute), debug for the requests that follow. */
const quietUntil = new Map<string, number>();
function logDependencyFailure(ctx: Koa.Context, err: DependencyError) {
  const now = Date.now();
  const detail = { dependency: err.dependency, err: String((err.cause as Error)?.message ?? '') };
  if ((quietUntil.get(err.dependency) ?? 0) < now)
    ctx.state.log?.warn(detail, 'dependency unavailable (requests answer 503; repeats within a minute are logged at debug)');
  else ctx.state.log?.debug(detail, 'dependency unavailable');
  quietUntil.set(err.dependency, now + 60000);
}

export function errorMiddleware(): Koa.Middleware {
  return async (ctx, next) => {
    try {
      await next();
      // A method no router implements on a path no route has: the router says 501 with an empty Allow.
      const noRoute = ctx.status === 501 && !ctx.response.get('Allow');
      if ((ctx.status === 404 || noRoute) && ctx.body === undefined) {
        ctx.remove('Allow');
        problem(ctx, 'not_found', `no route for ${ctx.method} ${ctx.path}`);
      } else if ((ctx.status === 405 || ctx.status === 501) && (ctx.body === undefined || typeof ctx.body === 'string')) {
        // A method no route of this path has (TRACE, CONNECT, made-up ones included): 405 with `Allow`.
        problem(ctx, 'method_not_allowed', `${ctx.method} is not allowed here; see the Allow header`);
      }
    } catch (err) {
      const app = toAppError(err);
      if (app) {
        for (const [k, v] of Object.entries(app.headers)) ctx.set(k, v);
        problem(ctx, app.code, app.message, app.extra);
        if (app instanceof DependencyError) logDependencyFailure(ctx, app);
        return;
      }
      const status = (err as { status?: number; expose?: boolean }).status;
      if (status && status >= 400 && status < 500) {
        // Koa/http-errors thrown by the framework (e.g. 413 from the body reader).
        const code: ErrorCode =
          status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : status === 405 ? 'method_not_allowed' : 'validation_failed';
        problem(ctx, code);
        return;
      }
      // The SQLSTATE or errno of a driver error (never its message: it can quote values).
      const cause = (err as { parent?: { code?: unknown }; code?: unknown })?.parent?.code ?? (err as { code?: unknown })?.code;
      ctx.state.log?.error({ err, ...(typeof cause === 'string' || typeof cause === 'number' ? { cause_code: cause } : {}) }, 'unhandled error');
      problem(ctx, 'internal', 'An unexpected error occurred; it was logged with the request id.');
    }
  };
}

/** The composition root: middleware in order, then one router per resource. */
import Koa from 'koa';
import type { AppDeps } from './context';
import { jsonBody } from './middleware/body';
import { errorMiddleware } from './middleware/errors';
import { requestContext } from './middleware/request';
import { authRouter } from './routes/auth';
import { jwksRouter } from './routes/jwks';
import { meRouter } from './routes/me';
import { opsRouter } from './routes/ops';

export function createServer(deps: AppDeps): Koa {
  const app = new Koa({ proxy: deps.config.TRUST_PROXY });
  app.silent = true; // errors are logged by our middleware, never printed raw
  app.use(requestContext(deps.logger));
  app.use(errorMiddleware());
  app.use(async (ctx, next) => {
    ctx.set('X-Content-Type-Options', 'nosniff');
    await next();
    if (!ctx.response.get('Cache-Control')) ctx.set('Cache-Control', 'no-store');
  });
  app.use(jsonBody());
  for (const router of [opsRouter(deps), jwksRouter(deps), authRouter(deps), meRouter(deps)]) {
    app.use(router.routes());
    app.use(router.allowedMethods({ throw: true }));
  }
  return app;
}

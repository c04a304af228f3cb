/** The composition root: middleware in order, then one router per resource. */
import Koa from 'koa';
import type { AppDeps } from './context';
import { jsonBody } from './middleware/body';
import { errorMiddleware } from './middleware/errors';
import { requestContext } from './middleware/request';
import { accountRouter } from './routes/account';
import { adminRouter } from './routes/admin';
import { operationsRouter } from './routes/operations';
import { authRouter } from './routes/auth';
import { codecRouter } from './routes/codec';
import { devicesRouter } from './routes/devices';
import { mfaRouter } from './routes/mfa';
import { passwordRouter } from './routes/password';
import { stepUpRouter } from './routes/step-up';
import { jwksRouter } from './routes/jwks';
import { meRouter } from './routes/me';
import { webhooksRouter } from './routes/webhooks';
import { clientsRouter } from './routes/clients';
import { healthRouter } from './routes/health';
import { clientIp } from './middleware/client-ip';
import { apiCors, parseOrigins } from './middleware/cors';
import { emailLinkPages } from './pages/email-links';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { interactionRouter, type ProviderAccess } from './oidc/interactions';
import { isProviderPath } from './oidc/provider';

/** What the server needs of the OpenID provider (api/oidc/provider.ts ProviderHolder). */
export type OidcMount = ProviderAccess & { handle(req: IncomingMessage, res: ServerResponse): Promise<void> };

export function createServer(deps: AppDeps, oidc?: OidcMount): Koa {
  // Koa's own proxy mode stays off (it believes the leftmost X-Forwarded-For and X-Forwarded-Host);
  // the client address comes from TRUST_PROXY through one resolver.
  const app = new Koa({ proxy: false });
  app.silent = true; // errors are logged by our middleware, never printed raw
  app.context.dpop = deps.dpop; // requireAuth's DPoP proof checks (api/middleware/auth.ts)
  app.use(clientIp(deps.config.TRUST_PROXY));
  app.use(requestContext(deps.logger));
  app.use(errorMiddleware());
  app.use(async (ctx, next) => {
    ctx.set('X-Content-Type-Options', 'nosniff');
    await next();
    if (!ctx.response.get('Cache-Control')) ctx.set('Cache-Control', 'no-store');
  });
  app.use(apiCors(parseOrigins(deps.config.API_CORS_ORIGINS)));
  if (oidc) {
    // The OpenID provider answers its own paths (it reads its own bodies and renders its own
    // errors); its interactions are our pages.
    app.use(async (ctx, next) => {
      if (!isProviderPath(ctx.path)) {
        await next();
        return;
      }
      ctx.respond = false;
      await oidc.handle(ctx.req, ctx.res);
    });
    const interactions = interactionRouter(deps, oidc);
    app.use(interactions.routes());
    app.use(interactions.allowedMethods());
  }
  // The hosted pages read their own form bodies, so they come before the JSON body reader.
  const pages = emailLinkPages(deps);
  app.use(pages.routes());
  app.use(pages.allowedMethods());
  app.use(jsonBody());
  const routers = [
    healthRouter(deps),
    jwksRouter(deps),
    codecRouter(deps),
    authRouter(deps),
    passwordRouter(deps),
    stepUpRouter(deps),
    mfaRouter(deps),
    meRouter(deps),
    accountRouter(deps),
    devicesRouter(deps),
    adminRouter(deps),
    webhooksRouter(deps),
    clientsRouter(deps),
    operationsRouter(deps),
  ];
  for (const router of routers) {
    app.use(router.routes());
    // Sets 405 (or 501 for a method no router implements, such as TRACE) with `Allow`; the error
    // middleware renders both as 405 problem+json.
    app.use(router.allowedMethods());
  }
  return app;
}

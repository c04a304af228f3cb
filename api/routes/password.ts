/**
 * Forgotten password: `POST /v1/auth/password/forgot` (always 202, same body, same time: one
 * flow outbox row for any address is committed before the answer; the relay decides and starts the flow) and `POST /v1/auth/password/reset`
 * (spend the e-mailed token, set the password, end every session, tell the workflow, which sends
 * "your password was changed"). The flow: workflows/password-reset.ts; its I/O:
 * activities/password-reset.ts; the database half: domain/accounts/password-reset.ts.
 */
import Router from '@koa/router';
import { z } from 'zod';
import { rateLimit } from '../middleware/rate-limit';
import type { AppDeps } from '../context';
import { requestMeta } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { describe } from '../openapi';
import { ResetBody, resetPasswordWithToken } from '../email-links';
import { Email } from '../schemas';

const ForgotBody = z.object({ email: Email }).strict();
const Accepted = z.object({ status: z.literal('accepted') });

export function passwordRouter(deps: AppDeps): Router {
  const { passwordResets } = deps;
  const r = new Router({ prefix: '/v1/auth/password' });

  describe('post', '/v1/auth/password/forgot', {
    summary: 'Ask for a password-reset e-mail (always 202; the same answer for any address)',
    description:
      'Every request, whatever the address, is committed as one flow outbox row before the 202 (the same work for any address); ' +
      'the relay sends the reset e-mail to an eligible account once Temporal answers, so a request made while Temporal is down, ' +
      'or just before the API crashed, gets its e-mail when it is back. 503 with Retry-After when the database cannot take the request.',
    tags: ['auth'],
    body: ForgotBody,
    responses: {
      202: { description: 'accepted', schema: Accepted },
      429: { description: 'rate_limited' },
      503: { description: 'dependency_unavailable (the database); retry after Retry-After' },
    },
  });
  r.post('/forgot', rateLimit(deps, 'forgot', ForgotBody), async (ctx) => {
    const { email } = parse(ForgotBody, ctx.request.body);
    // The same lookup and insert for any address; the relay does the rest.
    await passwordResets.recordForgot(email, requestMeta(ctx));
    ctx.status = 202;
    ctx.body = { status: 'accepted' };
  });

  describe('post', '/v1/auth/password/reset', {
    summary: 'Set a new password with the token from the reset e-mail; ends every session',
    tags: ['auth'],
    body: ResetBody,
    responses: {
      204: { description: 'password changed; every session ended' },
      400: { description: 'invalid_token (wrong, used, superseded or expired) or validation_failed (password policy)' },
    },
  });
  r.post('/reset', async (ctx) => {
    await resetPasswordWithToken(deps, parse(ResetBody, ctx.request.body), requestMeta(ctx), ctx.state.requestId);
    ctx.status = 204;
  });

  return r;
}

/**
 * Forgotten password: `POST /v1/auth/password/forgot` (always 202, same body, same time: the
 * account lookup and the flow outbox row run after the answer; the relay starts the flow) and `POST /v1/auth/password/reset`
 * (spend the e-mailed token, set the password, end every session, tell the workflow, which sends
 * "your password was changed"). The flow: workflows/password-reset.ts; its I/O:
 * activities/password-reset.ts; the database half: domain/accounts/password-reset.ts.
 */
import Router from '@koa/router';
import { z } from 'zod';
import { DependencyError } from '../../platform/errors';
import { rateLimit } from '../middleware/rate-limit';
import type { RequestMeta } from '../../domain/sessions/sessions';
import type { AppDeps } from '../context';
import { requestMeta } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { describe } from '../openapi';
import { Email, Password } from '../schemas';

const ForgotBody = z.object({ email: Email }).strict();
const ResetBody = z.object({ token: z.string().min(1).max(200), new_password: Password }).strict();
const Accepted = z.object({ status: z.literal('accepted') });

export function passwordRouter(deps: AppDeps): Router {
  const { flows, passwordResets, logger } = deps;
  const log = logger.child({ component: 'password-reset' });
  const r = new Router({ prefix: '/v1/auth/password' });

  /** After the 202: find the account and commit its reset request as a flow outbox row (the relay starts or signals the flow). */
  async function requestReset(email: string, meta: RequestMeta): Promise<void> {
    await passwordResets.requestReset(email, meta);
  }

  describe('post', '/v1/auth/password/forgot', {
    summary: 'Ask for a password-reset e-mail (always 202; the same answer for any address)',
    description:
      'The request of an eligible account is committed as a flow outbox row after the answer and relayed to the reset flow once Temporal answers, ' +
      'so a request made while Temporal is down gets its e-mail when it is back.',
    tags: ['auth'],
    body: ForgotBody,
    responses: { 202: { description: 'accepted', schema: Accepted }, 429: { description: 'rate_limited' } },
  });
  r.post('/forgot', rateLimit(deps, 'forgot'), (ctx) => {
    const { email } = parse(ForgotBody, ctx.request.body);
    const meta = requestMeta(ctx);
    // Nothing about the account may show in the answer or its timing: the work runs afterwards.
    setImmediate(() => {
      requestReset(email, meta).catch((err) => log.warn({ err: (err as Error).message, requestId: meta.requestId }, 'password reset request not started'));
    });
    ctx.status = 202;
    ctx.body = { status: 'accepted' };
  });

  /** Inside the reset transaction: tell the flow (it e-mails "password changed"), or e-mail directly. */
  async function notifyChanged(userId: string, requestId: string): Promise<void> {
    try {
      if (await flows.passwordResetCompleted(userId)) return;
      await flows.notify(`password-changed:${userId}:${requestId}`, { userId, template: 'password_changed', params: { when: new Date().toISOString() } });
    } catch (err) {
      throw new DependencyError('temporal', err);
    }
  }

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
    const { token, new_password } = parse(ResetBody, ctx.request.body);
    const requestId = ctx.state.requestId;
    await passwordResets.reset(token, new_password, requestMeta(ctx), (userId) => notifyChanged(userId, requestId));
    ctx.status = 204;
  });

  return r;
}

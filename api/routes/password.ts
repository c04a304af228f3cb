/**
 * Forgotten password: `POST /v1/auth/password/forgot` (always 202, same body, same time: the
 * account lookup and the workflow start run after the answer) and `POST /v1/auth/password/reset`
 * (spend the e-mailed token, set the password, end every session, tell the workflow, which sends
 * "your password was changed"). The flow: workflows/password-reset.ts; its I/O:
 * activities/password-reset.ts; the database half: domain/accounts/password-reset.ts.
 */
import Router from '@koa/router';
import { z } from 'zod';
import { audit } from '../../domain/audit';
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

  /** After the 202: find the account and start (or signal) its reset flow. */
  async function requestReset(email: string, meta: RequestMeta): Promise<void> {
    const userId = await passwordResets.accountFor(email);
    if (!userId) return;
    await flows.requestPasswordReset(userId);
    await audit(undefined, 'password.reset_requested', userId, meta);
  }

  describe('post', '/v1/auth/password/forgot', {
    summary: 'Ask for a password-reset e-mail (always 202; the same answer for any address)',
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

/** The signed-in user's own account. */
import Router from '@koa/router';
import { z } from 'zod';
import { publicUser } from '../../domain/accounts/users';
import type { AppDeps } from '../context';
import { requestMeta, requireAuth } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { describe } from '../openapi';
import { MfaCode, Password, UserEnvelope } from '../schemas';

const ChangePasswordBody = z
  .object({
    current_password: Password,
    new_password: Password,
    code: MfaCode.optional().describe('a fresh TOTP (or recovery) code; required when MFA is on'),
  })
  .strict();

export function meRouter(deps: AppDeps): Router {
  const r = new Router({ prefix: '/v1/me' });
  r.use(requireAuth(deps.tokens));

  describe('get', '/v1/me', { summary: 'The signed-in user', tags: ['me'], auth: true, responses: { 200: { description: 'the user', schema: UserEnvelope } } });
  r.get('/', async (ctx) => {
    ctx.body = { user: publicUser(await deps.accounts.profile(ctx.state.auth!.sub)) };
  });

  describe('put', '/v1/me/password', {
    summary: 'Change the password (needs the current one); ends the other sessions',
    tags: ['me'],
    auth: true,
    body: ChangePasswordBody,
    responses: {
      204: { description: 'changed' },
      401: { description: 'current password incorrect; mfa_required / invalid_mfa_code for MFA users without a fresh code' },
    },
  });
  r.put('/password', async (ctx) => {
    const body = parse(ChangePasswordBody, ctx.request.body);
    const auth = ctx.state.auth!;
    await deps.mfa.assertFreshSecondFactor(auth.sub, body.code, requestMeta(ctx), 'password_change');
    const user = await deps.accounts.changePassword(auth.sub, auth.sid, body.current_password, body.new_password, requestMeta(ctx));
    try {
      await deps.flows.notify(`password-changed:${user.id}:${ctx.state.requestId}`, {
        userId: user.id,
        template: 'password_changed',
        params: { when: new Date().toISOString() },
      });
    } catch (err) {
      ctx.state.log.warn({ err: (err as Error).message }, 'password-changed notice not started');
    }
    ctx.status = 204;
  });
  return r;
}

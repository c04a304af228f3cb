/** The signed-in user's own account. */
import Router from '@koa/router';
import { z } from 'zod';
import { publicUser } from '../../domain/accounts/users';
import type { AppDeps } from '../context';
import { requestMeta, requireAuth } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { describe } from '../openapi';
import { MfaCode, NewPassword, Password, UserEnvelope } from '../schemas';

const ChangePasswordBody = z
  .object({
    current_password: Password,
    new_password: NewPassword,
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
    description:
      'Checked in this order, so no answer tells a wrong current password from a right one before the new password is acceptable: ' +
      'the per-user limit (429), the new password against the policy (400 validation_failed, whatever the current password), ' +
      'the current password, counted like a failed login toward the throttle and the lock (401 invalid_credentials), ' +
      "then an MFA user's fresh code (401 mfa_required / invalid_mfa_code), which is spent only if the password is changed.",
    tags: ['me'],
    auth: true,
    body: ChangePasswordBody,
    responses: {
      204: { description: 'changed; every other session ended' },
      400: { description: 'validation_failed: the new password does not meet the policy' },
      401: { description: 'invalid_credentials (current password incorrect); mfa_required / invalid_mfa_code for MFA users without a fresh code' },
      423: { description: 'account_locked (too many failed codes)' },
      429: { description: 'rate_limited (per user or per IP), with Retry-After' },
    },
  });
  r.put('/password', async (ctx) => {
    const body = parse(ChangePasswordBody, ctx.request.body);
    const auth = ctx.state.auth!;
    const meta = requestMeta(ctx);
    await deps.rateLimits.consume('reauth', { ip: ctx.ip, account: `user:${auth.sub}` });
    const user = await deps.accounts.changePassword(auth.sub, auth.sid, body.current_password, body.new_password, meta, () =>
      deps.mfa.prepareSecondFactor(auth.sub, body.code, meta, 'password_change'),
    );
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

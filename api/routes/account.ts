/**
 * Self-service account deletion with a grace period, and reactivation inside it (the deletion
 * itself, shared with the admin DELETE, is domain/accounts/deletion.ts).
 */
import Router from '@koa/router';
import { z } from 'zod';
import { rateLimit } from '../middleware/rate-limit';
import { publicUser } from '../../domain/accounts/users';
import type { AppDeps } from '../context';
import { requestMeta, requireAuth } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { describe } from '../openapi';
import { DeletionEnvelope, Email, MfaCode, Password, UserSchema } from '../schemas';

const DeleteMeBody = z
  .object({
    password: Password,
    code: MfaCode.optional().describe('a fresh TOTP (or recovery) code; required when MFA is on'),
  })
  .strict();
const ReactivateBody = z
  .object({
    email: Email,
    password: Password,
    code: MfaCode.optional().describe('a current TOTP (or recovery) code; required when MFA is on'),
  })
  .strict();

export function accountRouter(deps: AppDeps): Router {
  const r = new Router({ prefix: '/v1/me' });

  describe('delete', '/v1/me', {
    summary: 'Delete the account: pending_deletion now, personal data erased after the grace period',
    tags: ['me'],
    auth: true,
    body: DeleteMeBody,
    responses: {
      202: { description: 'deletion scheduled; sessions ended', schema: DeletionEnvelope },
      401: { description: 'invalid_credentials (wrong password); mfa_required / invalid_mfa_code (MFA users without a fresh code)' },
      409: { description: 'invalid_transition (already pending deletion) or last_admin (the last active administrator cannot delete itself)' },
    },
  });
  r.delete('/', requireAuth(deps.tokens), async (ctx) => {
    const body = parse(DeleteMeBody, ctx.request.body);
    const { user, dueAt } = await deps.deletions.requestBySelf(ctx.state.auth!.sub, body.password, body.code, requestMeta(ctx));
    ctx.status = 202;
    ctx.body = { user: publicUser(user), deletion: { due_at: dueAt.toISOString() } };
  });

  describe('post', '/v1/me/reactivate', {
    summary: 'Reactivate an account pending deletion (e-mail, password and, with MFA, a code; grace period only)',
    description:
      'Checked like a sign-in (throttled per device, failures counted and audited). Every case other than the right credentials of an account pending deletion answers exactly like a wrong password.',
    tags: ['me'],
    body: ReactivateBody,
    responses: {
      200: { description: 'reactivated; the deletion is cancelled', schema: z.object({ user: UserSchema }) },
      401: { description: 'invalid_credentials: wrong or missing credentials, unknown e-mail, throttled, or an account that is not pending deletion' },
      403: { description: 'account_suspended (the account was suspended before the deletion)' },
      409: { description: 'invalid_transition (erasure has begun)' },
      429: { description: 'rate_limited' },
    },
  });
  r.post('/reactivate', rateLimit(deps, 'login', ReactivateBody), async (ctx) => {
    const body = parse(ReactivateBody, ctx.request.body);
    const meta = requestMeta(ctx);
    const found = await deps.accounts.authenticatePassword(body.email, body.password, meta, {
      accept: 'pending_deletion',
      // MFA users add a fresh code; a wrong or missing one answers like a wrong password.
      secondFactor: (u) => deps.mfa.assertFreshSecondFactor(u.id, body.code, meta, 'reactivation'),
    });
    const user = await deps.deletions.cancel(found.id, { ...meta, actorId: found.id });
    ctx.body = { user: publicUser(user) };
  });

  return r;
}

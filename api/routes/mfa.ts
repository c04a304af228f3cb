/**
 * TOTP second factor of the signed-in user: enrol (pending secret + QR code), confirm (MFA on,
 * recovery codes), disable (needs a fresh code). The MFA step of a login lives in routes/auth.ts.
 */
import Router from '@koa/router';
import type Koa from 'koa';
import { z } from 'zod';
import type { AppDeps } from '../context';
import { requestMeta, requireAuth } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { describe } from '../openapi';
import { MfaCode } from '../schemas';

const EnrolmentSchema = z.object({
  secret: z.string().describe('base32 secret, for typing into an app by hand'),
  otpauth_url: z.string().describe('otpauth://totp/... URI (issuer, account, SHA1, 6 digits, 30 s)'),
  qr_code: z.string().describe('the otpauth URI as a PNG data URL'),
});
const CodeBody = z.object({ code: MfaCode }).strict();
const RecoveryCodesSchema = z.object({
  recovery_codes: z.array(z.string()).describe('one-time codes, shown once; each signs in once in place of a TOTP code'),
});

export function mfaRouter(deps: AppDeps): Router {
  const { mfa } = deps;
  const r = new Router({ prefix: '/v1/me/mfa' });
  r.use(requireAuth(deps.tokens));

  /** A security notice by e-mail (best effort: the change stands if Temporal is down). */
  async function notify(ctx: Koa.Context, userId: string, subject: string, body: string) {
    try {
      await deps.flows.notify(`mfa:${userId}:${ctx.state.requestId}`, { userId, template: 'generic', params: { subject, body } });
    } catch (err) {
      ctx.state.log.warn({ err: (err as Error).message }, 'mfa notice not started');
    }
  }

  describe('post', '/v1/me/mfa/totp', {
    summary: 'Start TOTP enrolment: a new pending secret with its otpauth URI and QR code',
    tags: ['mfa'],
    auth: true,
    responses: { 200: { description: 'pending secret (MFA is not on until confirmed)', schema: EnrolmentSchema }, 409: { description: 'MFA is already on' } },
  });
  r.post('/totp', async (ctx) => {
    ctx.body = await mfa.beginEnrolment(ctx.state.auth!.sub, requestMeta(ctx));
  });

  describe('post', '/v1/me/mfa/totp/confirm', {
    summary: 'Confirm the pending secret with a current code; turns MFA on and returns recovery codes',
    tags: ['mfa'],
    auth: true,
    body: CodeBody,
    responses: {
      200: { description: 'MFA is on', schema: RecoveryCodesSchema },
      401: { description: 'invalid_mfa_code' },
      409: { description: 'no pending enrolment, or MFA already on' },
    },
  });
  r.post('/totp/confirm', async (ctx) => {
    const { code } = parse(CodeBody, ctx.request.body);
    const userId = ctx.state.auth!.sub;
    ctx.body = await mfa.confirmEnrolment(userId, code, requestMeta(ctx));
    await notify(
      ctx,
      userId,
      'Two-factor authentication is on',
      'Two-factor authentication was turned on for your account. Keep your recovery codes somewhere safe. If this was not you, contact support now.',
    );
  });

  describe('delete', '/v1/me/mfa/totp', {
    summary: 'Turn MFA off; needs a fresh TOTP code (or an unused recovery code)',
    tags: ['mfa'],
    auth: true,
    body: CodeBody,
    responses: {
      204: { description: 'MFA is off; the secret and recovery codes are deleted' },
      401: { description: 'invalid_mfa_code (counted toward the lockout)' },
      409: { description: 'MFA is not on' },
      423: { description: 'account_locked (too many failed codes)' },
    },
  });
  r.delete('/totp', async (ctx) => {
    const { code } = parse(CodeBody, ctx.request.body);
    const userId = ctx.state.auth!.sub;
    await mfa.disable(userId, code, requestMeta(ctx));
    await notify(
      ctx,
      userId,
      'Two-factor authentication is off',
      'Two-factor authentication was turned off for your account. If this was not you, change your password and contact support now.',
    );
    ctx.status = 204;
  });

  return r;
}

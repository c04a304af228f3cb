/**
 * TOTP second factor of the signed-in user: enrol (needs the current password; pending secret +
 * QR code), confirm (MFA on, recovery codes), disable (needs the password and a fresh code). A
 * stolen access token alone can neither add an attacker's authenticator nor remove the owner's.
 * The password is checked like a login (counted, throttled, locking) and the routes share the
 * per-user re-authentication limit with the password change. The MFA step of a login lives in
 * routes/auth.ts.
 */
import Router from '@koa/router';
import type Koa from 'koa';
import { z } from 'zod';
import type { AppDeps } from '../context';
import { requestMeta, requireAuth } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { describe } from '../openapi';
import { MfaCode, Password } from '../schemas';

const EnrolmentSchema = z.object({
  secret: z.string().describe('base32 secret, for typing into an app by hand'),
  otpauth_url: z.string().describe('otpauth://totp/... URI (issuer, account, SHA1, 6 digits, 30 s)'),
  qr_code: z.string().describe('the otpauth URI as a PNG data URL'),
});
const CodeBody = z.object({ code: MfaCode }).strict();
const EnrolBody = z.object({ password: Password.describe('the current password (re-authentication)') }).strict();
const DisableBody = z.object({ password: Password.describe('the current password (re-authentication)'), code: MfaCode }).strict();
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
    summary: 'Start TOTP enrolment (needs the current password): a new pending secret with its otpauth URI and QR code',
    tags: ['mfa'],
    auth: true,
    body: EnrolBody,
    responses: {
      200: { description: 'pending secret (MFA is not on until confirmed)', schema: EnrolmentSchema },
      401: { description: 'invalid_credentials: the password is wrong (counted like a failed login)' },
      409: { description: 'MFA is already on' },
      429: { description: 'rate_limited (per user or per IP), with Retry-After' },
    },
  });
  r.post('/totp', async (ctx) => {
    const { password } = parse(EnrolBody, ctx.request.body);
    const userId = ctx.state.auth!.sub;
    const meta = requestMeta(ctx);
    await deps.rateLimits.consume('reauth', { ip: ctx.ip, account: `user:${userId}` });
    await deps.accounts.reauthenticate(userId, password, meta, 'mfa_enrolment');
    ctx.body = await mfa.beginEnrolment(userId, meta);
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
    summary: 'Turn MFA off; needs the current password and a fresh TOTP code (or an unused recovery code)',
    tags: ['mfa'],
    auth: true,
    body: DisableBody,
    responses: {
      204: { description: 'MFA is off; the secret and recovery codes are deleted' },
      401: { description: 'invalid_credentials (wrong password, counted like a failed login) or invalid_mfa_code (counted toward the lockout)' },
      409: { description: 'MFA is not on' },
      423: { description: 'account_locked (too many failed codes)' },
      429: { description: 'rate_limited (per user or per IP), with Retry-After' },
    },
  });
  r.delete('/totp', async (ctx) => {
    const { password, code } = parse(DisableBody, ctx.request.body);
    const userId = ctx.state.auth!.sub;
    const meta = requestMeta(ctx);
    await deps.rateLimits.consume('reauth', { ip: ctx.ip, account: `user:${userId}` });
    await deps.accounts.reauthenticate(userId, password, meta, 'mfa_disable');
    await mfa.disable(userId, code, meta);
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

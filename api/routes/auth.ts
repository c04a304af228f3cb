/** Self-service authentication: register, verify e-mail, login, refresh, logout, logout-all. */
import Router from '@koa/router';
import { z } from 'zod';
import { publicUser } from '../../domain/accounts/users';
import type { AppDeps } from '../context';
import { requestMeta, requireAuth, tokenEndpointMeta } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { describe } from '../openapi';
import {
  chars,
  DPOP_DESCRIPTION,
  DPOP_HEADER,
  DPOP_RESPONSES,
  Email,
  MfaCode,
  MfaRequiredSchema,
  NewPassword,
  Password,
  RefreshBody,
  TokensSchema,
  UserEnvelope,
  UserName,
} from '../schemas';
import { rateLimit } from '../middleware/rate-limit';
import { VerifyBody, verifyEmailWithToken } from '../email-links';

const RegisterBody = z.object({ email: Email, password: NewPassword, name: UserName.optional() }).strict();
const LoginBody = z.object({ email: Email, password: Password }).strict();

export function authRouter(deps: AppDeps): Router {
  const { accounts, sessions } = deps;
  const r = new Router({ prefix: '/v1/auth' });

  describe('post', '/v1/auth/register', {
    summary: 'Register an account; starts the e-mail verification workflow',
    description:
      'The verification e-mail (a new flow, or a fresh code for a still-unverified address) is a flow outbox row committed with the registration and ' +
      'started by the relay once Temporal answers: the answer never waits for Temporal, takes about as long for a taken address as for a free one, ' +
      'and a registration made while Temporal is down gets its e-mail when it is back.',
    tags: ['auth'],
    body: RegisterBody,
    responses: {
      201: { description: 'registered (a taken address answers the same way)', schema: UserEnvelope },
      429: { description: 'rate_limited (per IP or per address), with Retry-After' },
    },
  });
  r.post('/register', rateLimit(deps, 'register', RegisterBody), async (ctx) => {
    const body = parse(RegisterBody, ctx.request.body);
    const meta = requestMeta(ctx);
    const { user, created } = await accounts.register(body, meta);
    // The verification e-mail (or, for a still-pending address, a fresh code) is a flow outbox row
    // of the registration's transaction: neither path waits for Temporal.
    ctx.status = 201;
    if (created) {
      ctx.body = { user: publicUser(user) };
    } else {
      // Same shape for a taken address: nothing in the answer tells it apart.
      ctx.body = {
        user: {
          ...publicUser(user),
          id: crypto.randomUUID(),
          name: body.name ?? null,
          status: 'pending_verification',
          email_verified: false,
          mfa_enabled: false,
          roles: ['user'],
          created_at: new Date().toISOString(),
        },
      };
    }
  });

  describe('post', '/v1/auth/verify-email', {
    summary: 'Verify the e-mail address with the token from the e-mail',
    tags: ['auth'],
    body: VerifyBody,
    responses: {
      200: { description: 'verified (with `password`: that password is set and any session ended)', schema: UserEnvelope },
      400: { description: 'invalid_token (invalid, expired or used token), or validation_failed (a password the policy refuses; the token stays usable)' },
      409: { description: 'password_required: the registration was contested; send the token again with the `password` the account should get' },
    },
  });
  r.post('/verify-email', async (ctx) => {
    const user = await verifyEmailWithToken(deps, parse(VerifyBody, ctx.request.body), requestMeta(ctx), ctx.state.log);
    ctx.body = { user: publicUser(user) };
  });

  const ResendBody = z.object({ email: Email }).strict();
  describe('post', '/v1/auth/verify-email/resend', {
    summary: 'Ask for a new verification e-mail (limited resends; same answer for any address)',
    description:
      'For an address waiting for verification a flow outbox row is committed and relayed to the verification flow once Temporal answers; ' +
      'the answer never waits for Temporal, so it takes about as long for any address, and the e-mail follows when Temporal is back.',
    tags: ['auth'],
    body: ResendBody,
    responses: { 202: { description: 'accepted' } },
  });
  r.post('/verify-email/resend', async (ctx) => {
    const { email } = parse(ResendBody, ctx.request.body);
    // A flow outbox row for a pending address (the flow applies its resend limit); the answer is the same.
    await accounts.requestVerificationResend(email);
    ctx.status = 202;
    ctx.body = { status: 'accepted' };
  });

  /**
   * The right password met an unverified address: send the verification e-mail again (a flow
   * outbox row). Not awaited by the answer, so its timing tells nothing; failures are logged.
   */
  function resendAfterLogin(userId: string, log: { info: (o: object, m: string) => void }) {
    accounts.resendAfterLogin(userId).catch((err: unknown) => log.info({ err: (err as Error).message }, 'verification e-mail not sent again after a login'));
  }

  describe('post', '/v1/auth/login', {
    summary: 'Password login; returns tokens, or an MFA challenge for MFA users',
    description:
      'Failures are throttled per (account, device) with escalating delays, and a run of consecutive failures locks the account (the owner is e-mailed). ' +
      'While a throttle or lock applies, and for an unverified address (whose verification e-mail is sent again), every attempt answers exactly like a wrong password. ' +
      DPOP_DESCRIPTION,
    tags: ['auth'],
    headers: [DPOP_HEADER],
    body: LoginBody,
    responses: {
      200: { description: 'tokens, or `{mfa_required, mfa_token}`', schema: z.union([TokensSchema, MfaRequiredSchema]) },
      401: {
        description:
          'invalid_credentials: the same for an unknown e-mail, a wrong password, a throttled device, a locked account and an unverified address; ' +
          DPOP_RESPONSES,
      },
      403: { description: 'account_suspended (only after a correct password, outside any throttle or lock)' },
      429: { description: 'rate_limited (per IP or per account), with Retry-After' },
    },
  });
  r.post('/login', rateLimit(deps, 'login', LoginBody), async (ctx) => {
    const { email, password } = parse(LoginBody, ctx.request.body);
    const meta = await tokenEndpointMeta(ctx, deps.dpop);
    const result = await accounts.login(email, password, meta, {
      onUnverified: (u) => resendAfterLogin(u.id, ctx.state.log),
    });
    if (result.kind === 'mfa_required') {
      ctx.body = await deps.mfa.startLoginChallenge(result.user, meta);
      return;
    }
    ctx.body = result.tokens;
  });

  const LoginMfaBody = z.object({ mfa_token: chars(1, 200), code: MfaCode }).strict();
  describe('post', '/v1/auth/login/mfa', {
    summary: 'Second step of an MFA login: the mfa_token from /login and a TOTP or recovery code',
    description: 'An mfa_token from a /login that sent a DPoP proof works only with a fresh proof of the same key. ' + DPOP_DESCRIPTION,
    tags: ['auth'],
    headers: [DPOP_HEADER],
    body: LoginMfaBody,
    responses: {
      200: { description: 'tokens with amr ["pwd","otp"]', schema: TokensSchema },
      401: {
        description:
          'invalid_mfa_code (counted toward the lockout; `attempts_remaining` left on this token) or invalid_grant (token invalid, expired, used or out of attempts: sign in again); ' +
          DPOP_RESPONSES,
      },
      423: { description: 'account_locked' },
    },
  });
  r.post('/login/mfa', async (ctx) => {
    const { mfa_token, code } = parse(LoginMfaBody, ctx.request.body);
    ctx.body = await deps.mfa.completeLogin(mfa_token, code, await tokenEndpointMeta(ctx, deps.dpop));
  });

  describe('post', '/v1/auth/refresh', {
    summary: 'Exchange a refresh token for new tokens (rotation; reuse ends the session)',
    description:
      "The refresh token of a key-bound session (`token_type: DPoP`) works only with a fresh DPoP proof of that key; without one, or with another key's, " +
      'the answer is 401 invalid_dpop_proof and nothing changes (the token stays good for its device). ' +
      'A spent token again is reuse (401 token_reused, the session ends), except for a key-bound session within REFRESH_GRACE_SECONDS (5 s) of the rotation: ' +
      "the spent token with a fresh proof of the session's key, while its successor is unused, returns that same refresh_token (and a new access token). " +
      DPOP_DESCRIPTION,
    tags: ['auth'],
    headers: [DPOP_HEADER],
    body: RefreshBody,
    responses: {
      200: { description: 'new tokens', schema: TokensSchema },
      401: { description: 'invalid_grant, token_reused or step_up_required; ' + DPOP_RESPONSES },
      429: { description: 'rate_limited (per IP or per account), with Retry-After' },
    },
  });
  r.post('/refresh', rateLimit(deps, 'refresh', RefreshBody), async (ctx) => {
    const { refresh_token } = parse(RefreshBody, ctx.request.body);
    ctx.body = await sessions.refresh(refresh_token, await tokenEndpointMeta(ctx, deps.dpop));
  });

  describe('post', '/v1/auth/logout', {
    summary: 'End the session of a refresh token',
    tags: ['auth'],
    body: RefreshBody,
    responses: { 204: { description: 'ended (also for an unknown token)' } },
  });
  r.post('/logout', async (ctx) => {
    const { refresh_token } = parse(RefreshBody, ctx.request.body);
    await sessions.logout(refresh_token, requestMeta(ctx));
    ctx.status = 204;
  });

  describe('post', '/v1/auth/logout-all', {
    summary: 'End every session of the signed-in user',
    tags: ['auth'],
    auth: true,
    responses: { 204: { description: 'all sessions ended' } },
  });
  r.post('/logout-all', requireAuth(deps.tokens), async (ctx) => {
    const auth = ctx.state.auth!;
    const meta = requestMeta(ctx);
    await sessions.logoutAll(auth.sub, meta);
    ctx.status = 204;
  });

  return r;
}

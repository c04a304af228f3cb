/**
 * Step-up verification of a refresh from an unknown device: `POST /v1/auth/step-up/{verification_id}`
 * (the flow itself is started by the device check, domain/sessions/devices.ts, through platform/temporal/flows.ts).
 *
 * The code is checked here (the e-mailed code by constant-time hash comparison, a TOTP code by the
 * MFA service, which decrypts the secret and refuses replays); only the verdict goes to the
 * workflow, through the `submit` update, which counts attempts and decides. On success the
 * workflow's activity spends the refresh token the challenge was opened with and stores the hash
 * of the new one generated here; the new token itself never leaves this process except in the
 * response.
 */
import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { z } from 'zod';
import { audit } from '../../domain/audit';
import { AppError, DependencyError } from '../../platform/errors';
import { newRefreshToken } from '../../crypto/opaque-tokens';
import type { StepUpResult } from '../../workflows/step-up';
import type { AppDeps } from '../context';
import { tokenEndpointMeta } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { describe } from '../openapi';
import { chars, DPOP_DESCRIPTION, DPOP_HEADER, DPOP_RESPONSES, TokensSchema } from '../schemas';

// Surrounding whitespace is dropped when the code is compared; a blank code is a wrong code.
const StepUpBody = z.object({ code: chars(1, 64).transform((c) => c.trim()) }).strict();

/** Update failures → the client's answer. */
function fromUpdateError(err: unknown): unknown {
  const gone = () => new AppError('not_found', 'no pending verification with this id');
  if (err instanceof WorkflowNotFoundError) return gone();
  if (err instanceof WorkflowUpdateFailedError) {
    const type = (err.cause as { type?: string } | undefined)?.type;
    if (type === 'Busy') return new AppError('conflict', 'another code for this verification is being checked; retry');
    if (type === 'Unavailable') return new DependencyError('postgres', err);
    return gone();
  }
  if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) return new DependencyError('temporal', err);
  const code = (err as { code?: number; cause?: { code?: number } })?.cause?.code ?? (err as { code?: number })?.code;
  if (code === 5 /* NOT_FOUND */) return gone();
  if (err instanceof AppError) return err;
  return new DependencyError('temporal', err);
}

export function stepUpRouter(deps: AppDeps): Router {
  const { devices, sessions, flows, mfa } = deps;
  const r = new Router({ prefix: '/v1/auth/step-up' });

  describe('post', '/v1/auth/step-up/:verification_id', {
    summary: 'Complete a step-up verification (refresh from a new device) with the e-mailed or TOTP code',
    description: 'The verification_id of a key-bound session works only with a fresh DPoP proof of its key. ' + DPOP_DESCRIPTION,
    tags: ['auth'],
    headers: [DPOP_HEADER],
    body: StepUpBody,
    responses: {
      200: { description: 'fresh tokens; the device is now known and the old refresh token is spent', schema: TokensSchema },
      401: { description: 'invalid_mfa_code with `attempts_left` (0: the session has been ended), token_reused, invalid_grant; ' + DPOP_RESPONSES },
      404: { description: 'unknown, expired or finished verification' },
      409: { description: 'another code for this verification is being checked' },
    },
  });
  r.post('/:verification_id', async (ctx) => {
    const { code } = parse(StepUpBody, ctx.request.body);
    const meta = await tokenEndpointMeta(ctx, deps.dpop);
    const ch = await devices.findChallenge(ctx.params.verification_id ?? '');
    if (!ch?.live) throw new AppError('not_found', 'no pending verification with this id');
    if (ch.jkt && meta.dpopJkt !== ch.jkt) {
      await audit(undefined, 'step_up.dpop_refused', ch.user_id, meta, {
        session_id: ch.session_id,
        challenge_id: ch.id,
        reason: meta.dpopJkt ? 'other_key' : 'no_proof',
      }).catch(() => undefined);
      throw new AppError('invalid_dpop_proof', 'this verification is bound to a key: send a fresh DPoP proof made with it');
    }
    const ok = ch.method === 'totp' ? await mfa.confirmsStepUp(ch.user_id, code, meta) : await devices.emailCodeMatches(ch, code);
    const next = ok ? { ...newRefreshToken(), id: randomUUID() } : undefined;
    let res: StepUpResult;
    try {
      res = await flows.submitStepUp(
        ch.session_id,
        { challengeId: ch.id, ok, ...(next ? { next: { id: next.id, hash: next.hash.toString('hex') } } : {}) },
        `submit:${ctx.state.requestId}`,
      );
    } catch (err) {
      throw fromUpdateError(err);
    }
    switch (res.result) {
      case 'verified': {
        const c = await devices.sessionClaims(ch.session_id);
        ctx.body = await sessions.issue(c.userId, ch.session_id, c.amr, c.roles, next!.token, undefined, c.jkt);
        return;
      }
      case 'wrong_code':
        await audit(undefined, 'step_up.code_rejected', ch.user_id, meta, {
          session_id: ch.session_id,
          challenge_id: ch.id,
          attempts_left: res.attemptsLeft,
        }).catch(() => undefined);
        throw new AppError('invalid_mfa_code', 'the code is wrong or expired', { attempts_left: res.attemptsLeft });
      case 'failed':
        throw new AppError('invalid_mfa_code', 'too many wrong codes: the session has been ended; sign in again', { attempts_left: 0 });
      case 'token_reused':
        throw new AppError('token_reused', 'the refresh token of this verification was already used; the session has been ended');
      default:
        throw new AppError('invalid_grant', 'the session has ended; sign in again');
    }
  });

  return r;
}

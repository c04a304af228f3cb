/**
 * The remote codec endpoint for operators: the Temporal Web UI (`--ui-codec-endpoint
 * <api>/codec`, it posts to `<endpoint>/decode` and `/encode`) and the CLI (`--codec-endpoint
 * <api>/codec --codec-auth "Bearer <token>"`) send payloads in proto-JSON form and get them back
 * decrypted (or encrypted) with the same codec the API's Temporal client uses. Admin bearer token
 * of a live session only (as the admin routes: a revoked session or a demoted admin is refused
 * while its JWT is still valid); CORS for the UI origins in CORS_ORIGINS. Decoded payloads are never logged: the log line
 * and the audit event carry the operator, the namespace and a count.
 */
import Router from '@koa/router';
import type Koa from 'koa';
import type { Payload } from '@temporalio/common';
import { z } from 'zod';
import { audit } from '../../domain/audit';
import { CodecError, payloadFromJson, payloadToJson } from '../../platform/temporal/payload-codec';
import { AppError } from '../../platform/errors';
import type { AppDeps } from '../context';
import { requestMeta, requireAuth, requireLiveAdmin, requireRole } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { describe } from '../openapi';
import { chars } from '../schemas';

const Base64 = z
  .string()
  .max(4 * 1024 * 1024)
  .regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'base64');
const PayloadJson = z.object({
  metadata: z.record(chars(1, 256), Base64).nullish(),
  data: Base64.nullish(),
});
// proto-JSON omits an empty repeated field: the CLI sends `{}` for no payloads.
const CodecBody = z.object({ payloads: z.array(PayloadJson).max(1000).default([]) });

export const ALLOWED_HEADERS = 'X-Namespace, Content-Type, Authorization';
/** The methods this resource has (preflight and `Allow` alike): the codec is only ever POSTed to. */
export const ALLOWED_METHODS = 'POST, OPTIONS';

export function codecRouter(deps: AppDeps): Router {
  const r = new Router({ prefix: '/codec' });
  const origins = new Set(
    deps.config.CORS_ORIGINS.split(',')
      .map((o) => o.trim())
      .filter(Boolean),
  );

  // CORS: the browser may read answers (errors included) only for the configured UI origins.
  const cors: Koa.Middleware = async (ctx, next) => {
    ctx.vary('Origin');
    const origin = ctx.get('Origin');
    if (origin && origins.has(origin)) {
      ctx.set('Access-Control-Allow-Origin', origin);
      ctx.set('Access-Control-Allow-Credentials', 'true');
    }
    await next();
  };

  const preflight: Koa.Middleware = (ctx) => {
    const origin = ctx.get('Origin');
    if (origin && !origins.has(origin)) throw new AppError('forbidden', 'origin not allowed to call the codec endpoint');
    ctx.set('Access-Control-Allow-Methods', ALLOWED_METHODS);
    ctx.set('Access-Control-Allow-Headers', ALLOWED_HEADERS);
    ctx.set('Access-Control-Max-Age', '600');
    ctx.set('Allow', ALLOWED_METHODS);
    ctx.status = 204;
  };

  const handler =
    (op: 'decode' | 'encode'): Koa.Middleware =>
    async (ctx) => {
      const namespace = ctx.get('X-Namespace');
      if (namespace && namespace !== deps.config.TEMPORAL_NAMESPACE) {
        throw new AppError('validation_failed', `this codec serves namespace ${deps.config.TEMPORAL_NAMESPACE}`, {
          errors: [{ field: 'X-Namespace', message: 'unknown namespace' }],
        });
      }
      const body = parse(CodecBody, ctx.request.body);
      const codec = deps.payloadCodec;
      const payloads: Payload[] = body.payloads.map(payloadFromJson);
      let out: Payload[];
      try {
        out = op === 'decode' ? await codec.decode(payloads) : await codec.encode(payloads);
      } catch (err) {
        if (err instanceof CodecError) throw new AppError('validation_failed', `cannot ${op}: ${err.message}`);
        throw err;
      }
      const meta = requestMeta(ctx);
      // Who looked at decrypted workflow data, never what it was.
      if (op === 'decode')
        await audit(undefined, 'codec.decode', null, meta, { namespace: namespace || deps.config.TEMPORAL_NAMESPACE, payloads: payloads.length });
      ctx.state.log?.info({ op, payloads: payloads.length, actor: meta.actorId }, `codec ${op}`);
      ctx.body = { payloads: out.map(payloadToJson) };
    };

  const Reply = z.object({ payloads: z.array(PayloadJson) });
  for (const op of ['decode', 'encode'] as const) {
    describe('post', `/codec/${op}`, {
      summary:
        op === 'decode'
          ? 'Decrypt Temporal payloads for an operator (Temporal UI / CLI remote codec); admin only'
          : 'Encrypt Temporal payloads (Temporal UI / CLI remote codec); admin only',
      tags: ['operations'],
      auth: 'admin',
      body: CodecBody,
      responses: {
        200: { description: `the payloads, ${op}d, in the same order`, schema: Reply },
        400: { description: 'malformed payloads, unknown key id or tampered ciphertext, or another namespace' },
        401: { description: 'missing or invalid access token, or the session has ended' },
        403: {
          description:
            'forbidden: not an admin (checked against the account now, not only the token); mfa_enrolment_required: the session signed in without a second factor',
        },
      },
    });
    describe('options', `/codec/${op}`, {
      summary: 'CORS preflight of the Temporal UI (its configured origins only); answers the allowed methods and headers',
      tags: ['operations'],
      headers: [{ name: 'Origin', description: 'the page asking; another origin than a configured UI origin answers 403' }],
      responses: {
        204: { description: 'allowed: Access-Control-Allow-Methods/-Headers and Allow are set' },
        403: { description: 'the Origin is not a configured UI origin' },
      },
    });
    r.options(`/${op}`, cors, preflight);
    r.post(`/${op}`, cors, requireAuth(deps.tokens), requireRole('admin'), requireLiveAdmin(deps), handler(op));
  }
  return r;
}

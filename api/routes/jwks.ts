/** The JWKS: every public key of the ring (EdDSA, ES256, RS256) that may still verify a live token. */
import Router from '@koa/router';
import { z } from 'zod';
import type { AppDeps } from '../context';
import { describe } from '../openapi';

export function jwksRouter(deps: AppDeps): Router {
  const r = new Router();
  describe('get', '/.well-known/jwks.json', {
    summary: 'Public signing keys (JWKS)',
    tags: ['operations'],
    responses: {
      200: {
        description: 'JWK set',
        schema: z.object({
          keys: z.array(
            z.object({
              kty: z.string(),
              kid: z.string(),
              alg: z.enum(['EdDSA', 'ES256', 'RS256']),
              use: z.literal('sig'),
              crv: z.string().optional(),
              x: z.string().optional(),
              y: z.string().optional(),
              n: z.string().optional(),
              e: z.string().optional(),
            }),
          ),
        }),
      },
    },
  });
  r.get('/.well-known/jwks.json', (ctx) => {
    // Short cache: a key published ahead of use (rotation phase 1) reaches verifiers well
    // before it signs; retired keys drop out after the longest token lifetime.
    ctx.set('Cache-Control', 'public, max-age=300, stale-while-revalidate=60');
    ctx.body = deps.keys.jwks();
  });
  return r;
}

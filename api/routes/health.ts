/** Operations endpoints: liveness, readiness (names the failing dependency), metrics, OpenAPI. */
import { createHash, timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import { z } from 'zod';
import { registry } from '../../platform/metrics';
import type { AppDeps } from '../context';
import { AppError } from '../../platform/errors';
import { problem } from '../middleware/errors';
import { buildDocument, describe } from '../openapi';

const withTimeout = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([p, new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`${what} timed out after ${ms} ms`)), ms).unref())]);

export function healthRouter(deps: AppDeps): Router {
  const r = new Router();

  describe('get', '/healthz', {
    summary: 'Liveness: the process is up',
    tags: ['operations'],
    responses: { 200: { description: 'up', schema: z.object({ status: z.literal('ok') }) } },
  });
  r.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  const checks = deps.readiness;

  describe('get', '/readyz', {
    summary: 'Readiness: Postgres, Vault (unsealed, token valid) and Temporal answer',
    tags: ['operations'],
    responses: {
      200: { description: 'ready', schema: z.object({ status: z.literal('ok'), checks: z.record(z.string(), z.string()) }) },
      503: { description: 'a dependency failed; `failed` names it' },
    },
  });
  r.get('/readyz', async (ctx) => {
    const results = await Promise.all(
      Object.entries(checks).map(async ([name, fn]) => {
        try {
          await withTimeout(fn(), 3000, name);
          return [name, 'ok'] as const;
        } catch (err) {
          return [name, `failed: ${(err as Error).message?.slice(0, 200) ?? 'error'}`] as const;
        }
      }),
    );
    const failed = results.filter(([, v]) => v !== 'ok').map(([k]) => k);
    if (failed.length) {
      ctx.set('Retry-After', '5');
      problem(ctx, 'dependency_unavailable', `not ready: ${failed.join(', ')}`, { failed, checks: Object.fromEntries(results) });
      return;
    }
    ctx.body = { status: 'ok', checks: Object.fromEntries(results) };
  });

  describe('get', '/metrics', {
    summary: 'Prometheus metrics (Authorization: Bearer <METRICS_TOKEN>, not an access token)',
    description: 'Served only when METRICS_TOKEN is configured (404 otherwise); the scraper sends that token as a bearer credential.',
    tags: ['operations'],
    responses: {
      200: { description: 'text format', schema: z.string(), mediaType: 'text/plain' },
      401: { description: 'missing or wrong metrics token' },
      404: { description: 'METRICS_TOKEN is not configured: metrics are not served' },
    },
  });
  const metricsToken = deps.config.METRICS_TOKEN;
  if (metricsToken) {
    // Compare digests: constant time and independent of the presented token's length.
    const digest = (s: string) => createHash('sha256').update(s).digest();
    const expected = digest(`Bearer ${metricsToken}`);
    r.get('/metrics', async (ctx) => {
      if (!timingSafeEqual(digest(ctx.get('Authorization')), expected)) {
        ctx.set('WWW-Authenticate', 'Bearer realm="metrics"');
        throw new AppError('unauthorized', 'send the metrics token as Authorization: Bearer <METRICS_TOKEN>');
      }
      ctx.type = registry.contentType;
      ctx.body = await registry.metrics();
    });
  }

  describe('get', '/openapi.json', {
    summary: 'This OpenAPI document',
    tags: ['operations'],
    responses: { 200: { description: 'OpenAPI 3.1', schema: z.object({}).passthrough() } },
  });
  r.get('/openapi.json', (ctx) => {
    ctx.body = buildDocument(deps.config.PUBLIC_BASE_URL);
  });
  return r;
}

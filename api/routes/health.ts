/** Operations endpoints: liveness, readiness (names the failing dependency), metrics, OpenAPI. */
import { createHash, timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import { z } from 'zod';
import { readinessCheck, registry } from '../../platform/metrics';
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
    summary: 'Readiness: can this instance serve the core traffic (sign-in, refresh, verification)?',
    description:
      'Ready needs Postgres and the signing keys in memory. Vault (sealed, unreachable, token invalid) and Temporal are degradable: ' +
      'while they fail the answer stays 200 with `status: "degraded"` and `degraded` naming them, since sign-in and refresh keep working ' +
      '(Vault-backed operations answer 503 on their own; flow requests wait in the outbox). Every probe also sets ' +
      '`authflow_readiness_check{check,kind}` in /metrics.',
    tags: ['operations'],
    responses: {
      200: {
        description: 'ready; `degraded` lists failing degradable dependencies',
        schema: z.object({ status: z.enum(['ok', 'degraded']), checks: z.record(z.string(), z.string()), degraded: z.array(z.string()) }),
      },
      503: { description: 'not ready: a core check (postgres, signing_keys) failed; `failed` names it' },
    },
  });
  r.get('/readyz', async (ctx) => {
    const run = async (kind: 'core' | 'degradable', probes: Record<string, () => Promise<void>>) =>
      Promise.all(
        Object.entries(probes).map(async ([name, fn]) => {
          let outcome: string;
          try {
            await withTimeout(fn(), 3000, name);
            outcome = 'ok';
          } catch (err) {
            outcome = `failed: ${(err as Error).message?.slice(0, 200) ?? 'error'}`;
          }
          readinessCheck.set({ check: name, kind }, outcome === 'ok' ? 1 : 0);
          return [name, outcome] as const;
        }),
      );
    const [core, degradable] = await Promise.all([run('core', checks.core), run('degradable', checks.degradable)]);
    const results = Object.fromEntries([...core, ...degradable]);
    const failed = core.filter(([, v]) => v !== 'ok').map(([k]) => k);
    const degraded = degradable.filter(([, v]) => v !== 'ok').map(([k]) => k);
    if (failed.length) {
      ctx.set('Retry-After', '5');
      problem(ctx, 'dependency_unavailable', `not ready: ${failed.join(', ')}`, { failed, degraded, checks: results });
      return;
    }
    ctx.body = { status: degraded.length ? 'degraded' : 'ok', checks: results, degraded };
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
  // Compare digests: constant time and independent of the presented token's length.
  const digest = (s: string) => createHash('sha256').update(s).digest();
  const expected = metricsToken ? digest(`Bearer ${metricsToken}`) : undefined;
  // Routed even when not served, so other methods get 405 with `Allow` like every documented path.
  r.get('/metrics', async (ctx) => {
    if (!expected) throw new AppError('not_found', 'metrics are not served (METRICS_TOKEN is not configured)');
    if (!timingSafeEqual(digest(ctx.get('Authorization')), expected)) {
      ctx.set('WWW-Authenticate', 'Bearer realm="metrics"');
      throw new AppError('unauthorized', 'send the metrics token as Authorization: Bearer <METRICS_TOKEN>');
    }
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });

  describe('get', '/openapi.json', {
    summary: 'This OpenAPI document',
    tags: ['operations'],
    responses: { 200: { description: 'OpenAPI 3.1', schema: z.object({}).passthrough() } },
  });
  r.get('/openapi.json', (ctx) => {
    ctx.body = buildDocument(deps.config.PUBLIC_BASE_URL, { minLength: deps.config.PASSWORD_MIN_LENGTH, maxLength: deps.config.PASSWORD_MAX_LENGTH });
  });
  return r;
}

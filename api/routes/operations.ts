/**
 * Vault operations for admins: their status (last successes, last drill result, the signing key
 * set without key material, recent runs) and on-demand runs of a signing-key rotation, a backup
 * or a restore drill. The runs are the same Temporal workflows the worker's Schedules start; the
 * on-demand ones have fixed ids (`key-rotation:on-demand`, ...) with the FAIL conflict policy, so
 * a second request while one runs is a 409. Also binds the Prometheus gauges of these operations
 * to Postgres (`ops_runs`), where the worker records them.
 */
import Router from '@koa/router';
import type Koa from 'koa';
import { z } from 'zod';
import { audit } from '../../domain/audit';
import { AppError } from '../../platform/errors';
import { FlowAlreadyRunning } from '../../platform/temporal/flows';
import { rotationTimings } from '../../domain/sessions/signing-keys';
import type { AppDeps } from '../context';
import { requestMeta, requireAuth, requireLiveAdmin, requireRole } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { describe } from '../openapi';

const EmptyBody = z.object({}).strict().optional();
const RunId = z.object({
  workflowId: z.string().regex(/^(key-rotation|backup|restore-drill):(on-demand|scheduled-[0-9A-Za-z:.+-]{1,60})$/, 'an operations workflow id'),
});

const Started = z.object({ workflow_id: z.string(), run_id: z.string() });
const OpsOverview = z.object({
  operations: z.array(z.object({ kind: z.string(), last_success_at: z.string().nullable(), last_result: z.enum(['succeeded', 'failed']).nullable() })),
  signing_keys: z.array(
    z.object({
      kid: z.string(),
      alg: z.enum(['EdDSA', 'ES256', 'RS256']),
      status: z.enum(['next', 'active', 'retiring']),
      created_at: z.string(),
      publish_until: z.string().nullable(),
    }),
  ),
  recent_runs: z.array(
    z.object({
      workflow_id: z.string(),
      kind: z.string(),
      status: z.string(),
      phase: z.string(),
      started_at: z.string(),
      finished_at: z.string().nullable(),
      details: z.record(z.string(), z.unknown()),
    }),
  ),
});
const RunOut = z.object({
  workflow_id: z.string(),
  run_id: z.string(),
  status: z.string(),
  result: z.unknown().optional(),
  failure: z.string().optional(),
  state: z.unknown().optional(),
});

export function operationsRouter(deps: AppDeps): Router {
  const r = new Router({ prefix: '/v1/admin/ops' });
  r.use(requireAuth(deps.tokens), requireRole('admin'), requireLiveAdmin(deps));

  /** Starts an on-demand operation (one at a time of each kind), audited; 202 with its ids. */
  async function start(ctx: Koa.Context, kind: 'key_rotation' | 'backup' | 'restore_drill', run: () => Promise<{ workflowId: string; runId: string }>) {
    parse(EmptyBody, ctx.request.body);
    const meta = requestMeta(ctx);
    try {
      const { workflowId, runId } = await run();
      await audit(undefined, `ops.${kind}.requested`, null, meta, { workflow_id: workflowId, run_id: runId });
      ctx.status = 202;
      ctx.body = { workflow_id: workflowId, run_id: runId };
    } catch (err) {
      if (err instanceof FlowAlreadyRunning) throw new AppError('conflict', `${kind.replace(/_/g, '-')} is already running (${err.workflowId})`);
      throw err;
    }
  }

  describe('get', '/v1/admin/ops', {
    summary: 'Vault operations: last successes, last drill result, signing keys (no key material), recent runs',
    tags: ['admin'],
    auth: 'admin',
    responses: { 200: { description: 'status', schema: OpsOverview }, 503: { description: 'Vault or Postgres unavailable' } },
  });
  r.get('/', async (ctx) => {
    const { status, keys, runs } = await deps.ops.overview();
    const byKind = new Map(status.map((s) => [s.kind, s]));
    ctx.body = {
      operations: (['key_rotation', 'backup', 'restore_drill'] as const).map((kind) => {
        const s = byKind.get(kind);
        return {
          kind,
          last_success_at: s?.lastSuccessAt?.toISOString() ?? null,
          last_result: s?.lastFinishedOk == null ? null : s.lastFinishedOk ? 'succeeded' : 'failed',
        };
      }),
      signing_keys: keys,
      recent_runs: runs.map((x) => ({
        workflow_id: x.workflow_id,
        kind: x.kind,
        status: x.status,
        phase: x.phase,
        started_at: new Date(x.started_at).toISOString(),
        finished_at: x.finished_at ? new Date(x.finished_at).toISOString() : null,
        details: x.details,
      })),
    };
  });

  describe('post', '/v1/admin/ops/key-rotation', {
    summary: 'Rotate the signing key now (publish, switch after the propagation delay, retire after the longest token lifetime)',
    tags: ['admin'],
    auth: 'admin',
    responses: {
      202: { description: 'started', schema: Started },
      409: { description: 'a rotation is already in progress' },
      503: { description: 'Vault or Temporal unavailable' },
    },
  });
  r.post('/key-rotation', async (ctx) => {
    // A key waiting to sign means a rotation is between phases 1 and 2 (scheduled or on demand).
    const pending = await deps.ops.pendingRotationKey();
    if (pending) throw new AppError('conflict', `a rotation is in progress (key ${pending} is not signing yet)`);
    await start(ctx, 'key_rotation', () => deps.flows.startKeyRotation({ ...rotationTimings(deps.config), actorId: ctx.state.auth!.sub }));
  });

  describe('post', '/v1/admin/ops/backup', {
    summary: 'Take an encrypted backup now (database dump and Vault snapshot)',
    tags: ['admin'],
    auth: 'admin',
    responses: {
      202: { description: 'started', schema: Started },
      409: { description: 'an on-demand backup is already running' },
      503: { description: 'Temporal unavailable' },
    },
  });
  r.post('/backup', async (ctx) => {
    await start(ctx, 'backup', () => deps.flows.startBackup({ retention: deps.config.BACKUP_RETENTION, actorId: ctx.state.auth!.sub }));
  });

  describe('post', '/v1/admin/ops/restore-drill', {
    summary: 'Run a restore drill now (newest backup into the scratch database, counts checked)',
    tags: ['admin'],
    auth: 'admin',
    responses: {
      202: { description: 'started', schema: Started },
      409: { description: 'an on-demand drill is already running, or no backup has completed yet (take one first)' },
      503: { description: 'Temporal unavailable' },
    },
  });
  r.post('/restore-drill', async (ctx) => {
    // Refused up front rather than started to fail: with no backup there is nothing to drill.
    if (!(await deps.ops.hasCompletedBackup())) throw new AppError('conflict', 'no backup has completed yet: take one first (POST /v1/admin/ops/backup)');
    await start(ctx, 'restore_drill', () => deps.flows.startRestoreDrill({ actorId: ctx.state.auth!.sub }));
  });

  describe('get', '/v1/admin/ops/runs/:workflowId', {
    summary: "One run of an operation: its Temporal status, result or failure, and a rotation's phase",
    tags: ['admin'],
    auth: 'admin',
    params: RunId,
    responses: { 200: { description: 'the latest run with this id', schema: RunOut }, 404: { description: 'no such run' } },
  });
  r.get('/runs/:workflowId', async (ctx) => {
    const { workflowId } = parse(RunId, ctx.params, 'path');
    const run = await deps.flows.operationRun(workflowId);
    if (!run) throw new AppError('not_found', `no run ${workflowId}`);
    const { runId, ...rest } = run;
    const out = { workflow_id: workflowId, run_id: runId, ...rest };
    ctx.body = out;
  });
  return r;
}

/**
 * Signing-key rotation (`key-rotation:scheduled-<time>` from the Temporal Schedule, or
 * `key-rotation:on-demand` from an admin). Three phases, each an idempotent check-and-set write
 * of the key set in Vault, separated by durable timers, so a worker restart resumes where it was:
 *   1. publish a new key as `next`: every API serves it in the JWKS but none signs with it;
 *   2. after the propagation delay (APIs and JWKS caches have picked it up) it becomes `active`;
 *      the old key becomes `retiring`, published until every token it signed has expired;
 *   3. at that time retired keys leave the JWKS.
 * History holds key ids and times only; key material never leaves Vault and the activities.
 */
import { CancellationScope, defineQuery, isCancellation, proxyActivities, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { opsActivity } from './options';
import { rootMessage } from './ops-run';

const { publishNextSigningKey, activateSigningKey, removeRetiredSigningKeys, recordOpsRun } = proxyActivities<Activities>(opsActivity);

export interface KeyRotationInput {
  /** Seconds between publishing the new key and signing with it. */
  propagationDelaySeconds: number;
  /** Seconds the old key stays published after it stops signing (longest token lifetime + margins). */
  retireAfterSeconds: number;
  /** The admin who asked for it (on demand); absent when scheduled. */
  actorId?: string | null;
}

export interface KeyRotationState {
  phase: 'starting' | 'propagating' | 'switching' | 'retiring' | 'removing' | 'completed' | 'failed';
  kid: string | null;
  switchAt: string | null;
  retiring: string[];
  removeAt: string | null;
  removed: string[];
}

export const keyRotationStateQuery = defineQuery<KeyRotationState>('keyRotationState');

export async function keyRotationWorkflow(input: KeyRotationInput): Promise<KeyRotationState> {
  const { workflowId, runId } = workflowInfo();
  const rotationId = `${workflowId}/${runId}`;
  const state: KeyRotationState = { phase: 'starting', kid: null, switchAt: null, retiring: [], removeAt: null, removed: [] };
  setHandler(keyRotationStateQuery, () => state);
  const record = (status: 'running' | 'succeeded' | 'failed', phase: string, details: Record<string, unknown>) =>
    recordOpsRun({ runId: rotationId, workflowId, kind: 'key_rotation', status, phase, actorId: input.actorId ?? null, details });

  try {
    await record('running', 'started', { propagation_delay_s: input.propagationDelaySeconds, retire_after_s: input.retireAfterSeconds });

    const published = await publishNextSigningKey({ rotationId });
    state.kid = published.kid;
    state.phase = 'propagating';
    state.switchAt = new Date(Date.now() + input.propagationDelaySeconds * 1000).toISOString();
    await record('running', 'key_published', { kid: published.kid, switch_at: state.switchAt });
    await sleep(input.propagationDelaySeconds * 1000);

    state.phase = 'switching';
    const activated = await activateSigningKey({ rotationId, kid: published.kid, retireAfterSeconds: input.retireAfterSeconds });
    state.retiring = activated.retiring;
    state.removeAt = activated.publishUntil;
    state.phase = 'retiring';
    await record('running', 'signing_switched', { kid: published.kid, retiring: activated.retiring, remove_at: activated.publishUntil });
    const wait = Date.parse(activated.publishUntil) - Date.now();
    if (wait > 0) await sleep(wait);

    state.phase = 'removing';
    const removed = await removeRetiredSigningKeys({ rotationId });
    state.removed = removed.removed;
    state.phase = 'completed';
    await record('succeeded', 'completed', { kid: published.kid, removed: removed.removed });
    return state;
  } catch (err) {
    const failedIn = state.phase;
    state.phase = 'failed';
    // Record the outcome even when the workflow is being cancelled.
    await CancellationScope.nonCancellable(() =>
      record('failed', isCancellation(err) ? 'cancelled' : 'failed', { kid: state.kid, failed_in: failedIn, error: rootMessage(err) }),
    );
    throw err;
  }
}

/**
 * Activities of the key-rotation flow: the three phases of a signing-key rotation, each an
 * idempotent check-and-set transform of the key set in Vault (domain/sessions/signing-keys.ts)
 * that recognises its own earlier write. Workflow history receives kids and times, never key
 * material.
 */
import { ApplicationFailure } from '@temporalio/common';
import {
  KeySetStateError,
  keySummary,
  newStoredKey,
  RotationConflictError,
  updateKeySet,
  withActiveKey,
  withNextKey,
  withoutRetiredKeys,
} from '../domain/sessions/signing-keys';
import type { ActivityDeps } from './deps';

function keyFailure(err: unknown): never {
  if (err instanceof RotationConflictError) throw ApplicationFailure.nonRetryable(err.message, 'RotationConflict');
  if (err instanceof KeySetStateError) throw ApplicationFailure.nonRetryable(err.message, 'KeySetState');
  throw err;
}

export function createKeyRotationActivities(deps: ActivityDeps) {
  const { vault } = deps;
  const log = deps.logger.child({ component: 'vault-ops' });

  return {
    /** Phase 1: a new key, published in the JWKS (status `next`), not signing yet. */
    async publishNextSigningKey(input: { rotationId: string }): Promise<{ kid: string; created: boolean }> {
      const key = await newStoredKey('next');
      try {
        const r = await updateKeySet(vault, (set) => withNextKey(set, input.rotationId, key));
        const mine = r.set.keys.find((k) => k.rotation_id === input.rotationId)!;
        if (r.changed) log.info({ kid: mine.kid, rotationId: input.rotationId }, 'key rotation: new signing key published (not signing yet)');
        return { kid: mine.kid, created: r.changed };
      } catch (err) {
        keyFailure(err);
      }
    },

    /** Phase 2: the new key signs; the previous one retires, published until its tokens expire. */
    async activateSigningKey(input: {
      rotationId: string;
      kid: string;
      retireAfterSeconds: number;
    }): Promise<{ kid: string; retiring: string[]; publishUntil: string }> {
      const publishUntil = new Date(Date.now() + input.retireAfterSeconds * 1000);
      try {
        const r = await updateKeySet(vault, (set) => withActiveKey(set, input.kid, publishUntil, input.rotationId));
        // The keys this rotation retired (on a retried call: retired by the first attempt).
        const retiring = r.set.keys.filter((k) => k.status === 'retiring' && k.retired_by === input.rotationId);
        const until =
          retiring
            .map((k) => k.publish_until!)
            .sort()
            .pop() ?? publishUntil.toISOString();
        if (r.changed) log.info({ kid: input.kid, retiring: retiring.map((k) => k.kid) }, 'key rotation: signing switched to the new key');
        return { kid: input.kid, retiring: retiring.map((k) => k.kid), publishUntil: until };
      } catch (err) {
        keyFailure(err);
      }
    },

    /** Phase 3: retired keys whose tokens have all expired leave the JWKS. */
    async removeRetiredSigningKeys(_input: { rotationId: string }): Promise<{ removed: string[]; keys: Array<{ kid: string; status: string }> }> {
      let removed: string[] = [];
      try {
        const r = await updateKeySet(vault, (set) => {
          const x = withoutRetiredKeys(set, new Date());
          removed = x.removed;
          return x.set;
        });
        if (removed.length) log.info({ removed }, 'key rotation: retired signing keys removed from the JWKS');
        return { removed, keys: r.set.keys.map((k) => ({ kid: keySummary(k).kid, status: k.status })) };
      } catch (err) {
        keyFailure(err);
      }
    },
  };
}

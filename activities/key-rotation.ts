/**
 * Activities of the key-rotation flow: the three phases of a signing-key rotation, each an
 * idempotent check-and-set transform of the key set in Vault (domain/sessions/key-rotation.ts)
 * that recognises its own earlier write. Every phase acts on all algorithms of the ring; `kid` in
 * the inputs and results is the rotation's EdDSA key (the shape recorded histories carry), `kids`
 * lists all of them. Phase 2 also rotates the OpenID provider's cookie keys. Workflow history
 * receives kids and times, never key material.
 */
import { ApplicationFailure } from '@temporalio/common';
import { RotationConflictError, withActiveKeys, withNextKeys, withoutRetiredKeys } from '../domain/sessions/key-rotation';
import { KeySetStateError, keySummary, newKeyPerAlg, updateKeySet } from '../domain/sessions/signing-keys';
import type { ActivityDeps } from './deps';
import { OidcCookieKeys } from '../domain/oidc/cookie-keys';

function keyFailure(err: unknown): never {
  if (err instanceof RotationConflictError) throw ApplicationFailure.nonRetryable(err.message, 'RotationConflict');
  if (err instanceof KeySetStateError) throw ApplicationFailure.nonRetryable(err.message, 'KeySetState');
  throw err;
}

export function createKeyRotationActivities(deps: ActivityDeps) {
  const { vault } = deps;
  const log = deps.logger.child({ component: 'vault-ops' });

  return {
    /** Phase 1: a new key per algorithm, published in the JWKS (status `next`), not signing yet. */
    async publishNextSigningKey(input: { rotationId: string }): Promise<{ kid: string; created: boolean; kids?: string[] }> {
      const candidates = await newKeyPerAlg('next');
      try {
        const r = await updateKeySet(vault, (set) => withNextKeys(set, input.rotationId, candidates));
        const mine = r.set.keys.filter((k) => k.rotation_id === input.rotationId);
        const primary = mine.find((k) => k.alg === 'EdDSA');
        if (!primary) throw new KeySetStateError(`rotation ${input.rotationId} has no EdDSA key`);
        const kids = mine.map((k) => k.kid);
        if (r.changed) log.info({ kids, rotationId: input.rotationId }, 'key rotation: new signing keys published (not signing yet)');
        return { kid: primary.kid, created: r.changed, kids };
      } catch (err) {
        keyFailure(err);
      }
    },

    /** Phase 2: the rotation's new keys sign; the previous key of each algorithm retires, published until its tokens expire. */
    async activateSigningKey(input: {
      rotationId: string;
      kid: string;
      retireAfterSeconds: number;
    }): Promise<{ kid: string; retiring: string[]; publishUntil: string; kids?: string[] }> {
      const publishUntil = new Date(Date.now() + input.retireAfterSeconds * 1000);
      try {
        const r = await updateKeySet(vault, (set) => withActiveKeys(set, input.kid, publishUntil, input.rotationId));
        const kids = r.set.keys.filter((k) => k.status === 'active' && k.rotation_id === input.rotationId).map((k) => k.kid);
        // The keys this rotation retired (on a retried call: retired by the first attempt).
        const retiring = r.set.keys.filter((k) => k.status === 'retiring' && k.retired_by === input.rotationId);
        const until =
          retiring
            .map((k) => k.publish_until!)
            .sort()
            .pop() ?? publishUntil.toISOString();
        if (r.changed) log.info({ kids, retiring: retiring.map((k) => k.kid) }, 'key rotation: signing switched to the new keys');
        // The OpenID provider's cookie keys rotate with the signing keys (the API re-reads both).
        if (await new OidcCookieKeys(vault).rotate(input.rotationId)) log.info({ rotationId: input.rotationId }, 'key rotation: new provider cookie key');
        return { kid: input.kid, retiring: retiring.map((k) => k.kid), publishUntil: until, kids };
      } catch (err) {
        keyFailure(err);
      }
    },

    /** Phase 3: retired keys whose tokens have all expired leave the JWKS. */
    async removeRetiredSigningKeys(_input: { rotationId: string }): Promise<{ removed: string[]; keys: Array<{ kid: string; status: string; alg?: string }> }> {
      let removed: string[] = [];
      try {
        const r = await updateKeySet(vault, (set) => {
          const x = withoutRetiredKeys(set, new Date());
          removed = x.removed;
          return x.set;
        });
        if (removed.length) log.info({ removed }, 'key rotation: retired signing keys removed from the JWKS');
        return {
          removed,
          keys: r.set.keys.map((k) => {
            const { kid, alg, status } = keySummary(k);
            return { kid, alg, status };
          }),
        };
      } catch (err) {
        keyFailure(err);
      }
    },
  };
}

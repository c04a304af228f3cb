/**
 * Readiness probes of the process's clients. Readiness means "can serve the core traffic"
 * (sign-in, refresh, token verification): that needs Postgres and the signing keys in memory.
 * Vault and Temporal are degradable: with Vault sealed the cached keys keep signing and only
 * Vault-backed operations (TOTP enrolment, rotation) answer 503; with Temporal down the flow
 * outbox keeps every request. A load balancer that pulled every instance for those would turn a
 * partial outage into a full one, so they show up as `degraded` in /readyz and in the metrics.
 */
import type { Connection } from '@temporalio/client';
import type { Sequelize } from 'sequelize';
import type { VaultClient } from './vault';

type Probe = () => Promise<void>;

export interface ReadinessChecks {
  /** Failing one of these: not ready (503). */
  core: Record<'postgres' | 'signing_keys', Probe>;
  /** Failing one of these: ready, degraded. */
  degradable: Record<'vault' | 'temporal', Probe>;
}

export function readinessChecks(c: { sequelize: Sequelize; vault: VaultClient; temporal: Connection; signingKeysLoaded: () => boolean }): ReadinessChecks {
  return {
    core: {
      postgres: async () => {
        await c.sequelize.query('SELECT 1');
      },
      signing_keys: () => (c.signingKeysLoaded() ? Promise.resolve() : Promise.reject(new Error('not loaded from Vault yet'))),
    },
    degradable: {
      vault: async () => {
        const h = await c.vault.health();
        if (!h.initialized) throw new Error('not initialised');
        if (h.sealed) throw new Error('sealed');
        await c.vault.checkToken();
      },
      temporal: async () => {
        await c.temporal.healthService.check({});
      },
    },
  };
}

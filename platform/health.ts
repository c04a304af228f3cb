/** Readiness probes of the process's clients: Postgres, Vault (unsealed, token valid), Temporal. */
import type { Connection } from '@temporalio/client';
import type { Sequelize } from 'sequelize';
import type { VaultClient } from './vault';

export type ReadinessChecks = Record<'postgres' | 'vault' | 'temporal', () => Promise<void>>;

export function readinessChecks(c: { sequelize: Sequelize; vault: VaultClient; temporal: Connection }): ReadinessChecks {
  return {
    postgres: async () => {
      await c.sequelize.query('SELECT 1');
    },
    vault: async () => {
      const h = await c.vault.health();
      if (!h.initialized) throw new Error('not initialised');
      if (h.sealed) throw new Error('sealed');
      await c.vault.checkToken();
    },
    temporal: async () => {
      await c.temporal.healthService.check({});
    },
  };
}

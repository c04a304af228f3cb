/**
 * What the admin operations API reads: the last success of each Vault operation, the signing keys
 * (no key material), the recent runs, and whether a key rotation is between its phases.
 */
import type { Sequelize } from 'sequelize';
import type { VaultClient } from '../../platform/vault';
import { keySummary, readKeySet } from '../sessions/signing-keys';
import { opsStatus, recentOpsRuns } from './ops-runs';

export class OpsService {
  constructor(
    private readonly sequelize: Sequelize,
    private readonly vault: VaultClient,
  ) {}

  async overview() {
    const [status, set, runs] = await Promise.all([opsStatus(this.sequelize), readKeySet(this.vault), recentOpsRuns(this.sequelize)]);
    return { status, keys: (set?.keys ?? []).map(keySummary), runs };
  }

  /** The operations' last results, for the metrics gauges. */
  status() {
    return opsStatus(this.sequelize);
  }

  /** Whether any backup has completed: a restore drill before the first one has nothing to restore. */
  async hasCompletedBackup(): Promise<boolean> {
    return (await opsStatus(this.sequelize)).some((s) => s.kind === 'backup' && s.lastSuccessAt !== null);
  }

  /** A key waiting to sign (the EdDSA one first), when a rotation is between phases 1 and 2 (scheduled or on demand). */
  async pendingRotationKey(): Promise<string | null> {
    const set = await readKeySet(this.vault);
    const next = set?.keys.filter((k) => k.status === 'next') ?? [];
    return (next.find((k) => k.alg === 'EdDSA') ?? next[0])?.kid ?? null;
  }
}

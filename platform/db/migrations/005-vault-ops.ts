/** Vault operations: one row per run of a key rotation, backup or restore drill (started by a
 * Temporal Schedule or an admin). The API exports the last successes and the last drill result
 * as Prometheus gauges from here; each change of a row is audited in the same transaction. */
import { Sequelize } from 'sequelize';

export async function up(sequelize: Sequelize): Promise<void> {
  await sequelize.query(`
    CREATE TABLE ops_runs (
      id          text PRIMARY KEY,              -- <workflow id>/<run id>
      kind        text NOT NULL CHECK (kind IN ('key_rotation','backup','restore_drill','db_credentials')),
      workflow_id text NOT NULL,
      status      text NOT NULL CHECK (status IN ('running','succeeded','failed')),
      phase       text NOT NULL,
      actor_id    uuid,                          -- the admin who asked for it; null when scheduled
      details     jsonb NOT NULL DEFAULT '{}'::jsonb,
      started_at  timestamptz NOT NULL DEFAULT now(),
      updated_at  timestamptz NOT NULL DEFAULT now(),
      finished_at timestamptz,
      CONSTRAINT ops_runs_finished CHECK ((status = 'running') = (finished_at IS NULL))
    );
    CREATE INDEX ops_runs_kind_finished ON ops_runs (kind, finished_at DESC) WHERE finished_at IS NOT NULL;
  `);
}

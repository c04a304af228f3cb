/**
 * The refresh grace (domain/sessions/sessions.ts, crypto/refresh-grace.ts): a DPoP-bound refresh
 * token, when spent, keeps its successor sealed under a key only the spent token yields, for
 * REFRESH_GRACE_SECONDS; then the column is cleared (the partial index finds those rows).
 */
import { Sequelize } from 'sequelize';

export async function up(sequelize: Sequelize): Promise<void> {
  await sequelize.query(`
    ALTER TABLE refresh_tokens ADD COLUMN grace_successor bytea;
    CREATE INDEX refresh_tokens_grace ON refresh_tokens (spent_at) WHERE grace_successor IS NOT NULL;
  `);
}

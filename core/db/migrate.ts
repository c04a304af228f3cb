/** Migrations (umzug): the files in ./migrations, applied in name order, recorded in SequelizeMeta. */
import { Sequelize } from 'sequelize';
import { SequelizeStorage, Umzug } from 'umzug';
import * as m001 from './migrations/001-initial';

export interface Migration {
  up(sequelize: Sequelize): Promise<void>;
}

/** Listed explicitly (not globbed) so a bundled or compiled build carries them. */
export const MIGRATIONS: Array<[string, Migration]> = [['001-initial', m001]];

export function migrator(sequelize: Sequelize) {
  return new Umzug({
    migrations: MIGRATIONS.map(([name, m]) => ({ name, up: () => m.up(sequelize) })),
    storage: new SequelizeStorage({ sequelize, tableName: 'schema_migrations' }),
    logger: undefined,
  });
}

export async function migrate(sequelize: Sequelize): Promise<string[]> {
  const applied = await migrator(sequelize).up();
  return applied.map((m) => m.name);
}

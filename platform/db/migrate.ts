/** Migrations (umzug): the files in ./migrations, applied in name order, recorded in SequelizeMeta. */
import { Sequelize } from 'sequelize';
import { SequelizeStorage, Umzug } from 'umzug';
import * as m001 from './migrations/001-initial';
import * as m002 from './migrations/002-lifecycle';
import * as m003 from './migrations/003-mfa';
import * as m004 from './migrations/004-reset-devices';
import * as m005 from './migrations/005-vault-ops';
import * as m006 from './migrations/006-contested-registrations';
import * as m007 from './migrations/007-login-throttles';
import * as m008 from './migrations/008-dpop';
import * as m009 from './migrations/009-token-revocations';
import * as m010 from './migrations/010-flow-outbox';
import * as m011 from './migrations/011-refresh-grace';
import * as m012 from './migrations/012-role-revocations';
import * as m013 from './migrations/013-invitations';
import * as m014 from './migrations/014-webhooks';
import * as m015 from './migrations/015-oidc';

export interface Migration {
  up(sequelize: Sequelize): Promise<void>;
}

/** Listed explicitly (not globbed) so a bundled or compiled build carries them. */
export const MIGRATIONS: Array<[string, Migration]> = [
  ['001-initial', m001],
  ['002-lifecycle', m002],
  ['003-mfa', m003],
  ['004-reset-devices', m004],
  ['005-vault-ops', m005],
  ['006-contested-registrations', m006],
  ['007-login-throttles', m007],
  ['008-dpop', m008],
  ['009-token-revocations', m009],
  ['010-flow-outbox', m010],
  ['011-refresh-grace', m011],
  ['012-role-revocations', m012],
  ['013-invitations', m013],
  ['014-webhooks', m014],
  ['015-oidc', m015],
];

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

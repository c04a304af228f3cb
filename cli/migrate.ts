/** `npm run migrate`: logs in to Vault with the service's AppRole, applies pending migrations. */
import { loadConfig } from '../platform/config';
import { createLogger } from '../platform/logger';
import { vaultFromConfig } from '../platform/vault';
import { createSequelize, readDbCredentials } from '../platform/db/index';
import { migrate } from '../platform/db/migrate';

async function main() {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL, 'migrate');
  const vault = vaultFromConfig(config, logger);
  await vault.start();
  const sequelize = createSequelize(config, await readDbCredentials(vault));
  try {
    const applied = await migrate(sequelize);
    logger.info({ applied }, applied.length ? 'migrations applied' : 'schema up to date');
  } finally {
    await sequelize.close();
    vault.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`migration failed: ${(err as Error).message}\n`);
  process.exit(1);
});

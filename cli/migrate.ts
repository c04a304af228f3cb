/** `npm run migrate`: logs in to Vault with the service's AppRole, applies pending migrations. */
import { migrate } from '../platform/db/migrate';
import { cliBase, connectDatabase, runCli, stdoutLogger } from './cli-runtime';

async function main() {
  const rt = await connectDatabase(cliBase((config) => stdoutLogger(config.LOG_LEVEL, 'migrate')));
  try {
    const applied = await migrate(rt.sequelize);
    rt.logger.info({ applied }, applied.length ? 'migrations applied' : 'schema up to date');
  } finally {
    await rt.close();
  }
}

runCli(main, { failed: 'migration failed: ' });

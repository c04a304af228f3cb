/** Builds what both processes (API, worker) need: config, logger, Vault session, database. */
import type { Sequelize } from 'sequelize';
import type { Config } from './config';
import { createSequelize, readDbCredentials } from './db';
import { createLogger, Logger } from './logger';
import { Mailer } from './mailer';
import { VaultTokenTtlGauge } from './metrics';
import { VaultClient, vaultFromConfig } from './vault';

export interface Runtime {
  config: Config;
  logger: Logger;
  vault: VaultClient;
  sequelize: Sequelize;
  mailer: Mailer;
  close(): Promise<void>;
}

/** Retries a startup step while a dependency comes up, so the order processes start in does not matter. */
export async function retrying<T>(what: string, logger: Logger, fn: () => Promise<T>, attempts = 30): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts) throw err;
      if (i === 1 || i % 10 === 0) logger.warn({ err: (err as Error).message, attempt: i }, `${what} not ready, retrying`);
      await new Promise((r) => setTimeout(r, Math.min(5000, 250 * i)));
    }
  }
}

export async function createRuntime(name: string, config: Config): Promise<Runtime> {
  const logger = createLogger(config.LOG_LEVEL, name);
  const vault = vaultFromConfig(config, logger.child({ component: 'vault' }));
  new VaultTokenTtlGauge(() => vault.tokenTtlSeconds());
  await retrying('vault login', logger, () => vault.start());
  const creds = await retrying('database credentials', logger, () => readDbCredentials(vault));
  // The pool follows password rotations by Vault's database secrets engine (re-reads on schedule and on refusal).
  const sequelize = createSequelize(config, creds, undefined, { refresh: () => readDbCredentials(vault), logger: logger.child({ component: 'db' }) });
  await retrying('postgres', logger, () => sequelize.authenticate());
  const mailer = new Mailer(config, vault);
  return {
    config,
    logger,
    vault,
    sequelize,
    mailer,
    async close() {
      mailer.close();
      await sequelize.close();
      vault.stop();
    },
  };
}

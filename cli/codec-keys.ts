/**
 * Operator commands for the payload codec keys (Vault KV `<prefix>/codec-keys`), run with the
 * worker's environment (its Vault AppRole may update the key set; the API's may not):
 *
 *   node --import tsx cli/codec-keys.ts status   # active key id and the key ids kept, no key material
 *   node --import tsx cli/codec-keys.ts rotate   # new active key; older keys stay for decryption
 *
 * Running processes pick a rotation up within CODEC_KEY_REFRESH_SECONDS.
 */
import { loadConfig } from '../platform/config';
import { CODEC_KEYSET_NAME, CodecKeySet, rotateCodecKeys } from '../platform/temporal/codec-keys';
import { createLogger } from '../platform/logger';
import { vaultFromConfig } from '../platform/vault';

async function main() {
  const cmd = process.argv[2];
  if (cmd !== 'status' && cmd !== 'rotate') {
    process.stderr.write('usage: codec-cli.ts status|rotate\n');
    process.exit(64);
  }
  const config = loadConfig();
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn', 'authflow-codec-cli');
  const vault = vaultFromConfig(config, logger);
  await vault.start();
  try {
    if (cmd === 'rotate') {
      const kid = await rotateCodecKeys(vault, config);
      logger.info({ kid }, 'payload codec key rotated');
      process.stdout.write(`new active key: ${kid}\n`);
    }
    const set = await vault.kvGet<CodecKeySet>(CODEC_KEYSET_NAME);
    if (!set) {
      process.stdout.write('no codec key set yet (the worker creates it at its first start)\n');
      return;
    }
    process.stdout.write(`${JSON.stringify({ active_kid: set.active_kid, kids: Object.keys(set.keys), created_at: set.created_at ?? {} }, null, 2)}\n`);
  } finally {
    vault.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`codec-cli failed: ${(err as Error).message}\n`);
  process.exit(1);
});

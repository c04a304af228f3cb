/**
 * Operator commands for the payload codec keys (Vault KV `<prefix>/codec-keys`), run with the
 * worker's environment (its Vault AppRole may update the key set; the API's may not):
 *
 *   node --import tsx cli/codec-keys.ts status   # active key id and the key ids kept, no key material
 *   node --import tsx cli/codec-keys.ts rotate   # new active key; older keys stay for decryption
 *
 * Running processes pick a rotation up within CODEC_KEY_REFRESH_SECONDS.
 */
import { CODEC_KEYSET_NAME, CodecKeySet, rotateCodecKeys } from '../platform/temporal/codec-keys';
import { CliError, cliBase, connectVault, runCli, stdoutLogger } from './cli-runtime';

async function main() {
  const cmd = process.argv[2];
  if (cmd !== 'status' && cmd !== 'rotate') throw new CliError('usage: codec-cli.ts status|rotate', 64);
  const rt = await connectVault(cliBase(() => stdoutLogger(process.env.LOG_LEVEL ?? 'warn', 'authflow-codec-cli')));
  const { config, logger, vault } = rt;
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
    await rt.close();
  }
}

runCli(main, { failed: 'codec-cli failed: ', refused: '' });

/**
 * Brings up the real stack for the test run (the launcher `npm run dev` uses), on its own ports
 * and a fresh data directory, with short workflow timers. Test files read .data/test/stack.json.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { portsFor, ROOT, Stack } from '../infra/stack/stack';
import { webhookTlsEnv } from './helpers/webhook-tls';

export const TEST_DATA_DIR = process.env.AUTHFLOW_TEST_DATA_DIR ?? join(ROOT, '.data', 'test');

export default async function globalSetup() {
  process.env.NODE_ENV = 'test';
  rmSync(TEST_DATA_DIR, { recursive: true, force: true });
  const stack = new Stack({
    dataDir: TEST_DATA_DIR,
    ports: portsFor(Number(process.env.STACK_PORT_OFFSET ?? 20000)),
    services: true,
    logLevel: 'debug',
    // Short timers and test settings; each feature area keeps its own in test/env/<area>.json.
    serviceEnv: {
      ARGON2_MEMORY_KIB: '19456',
      EMAIL_VERIFICATION_TTL: '3600',
      // The webhook tests' HTTPS receiver on localhost, trusted by the worker.
      ...webhookTlsEnv(TEST_DATA_DIR),
      ...Object.assign(
        {},
        ...readdirSync(join(__dirname, 'env'))
          .filter((f) => f.endsWith('.json'))
          .map((f) => JSON.parse(readFileSync(join(__dirname, 'env', f), 'utf8'))),
      ),
    },
    log: (m) => process.stderr.write(`[stack] ${m}\n`),
  });
  (globalThis as { __STACK__?: Stack }).__STACK__ = stack;
  const t0 = Date.now();
  await stack.start();
  process.env.AUTHFLOW_STACK_FILE = join(TEST_DATA_DIR, 'stack.json');
  process.stderr.write(`[stack] test stack ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}

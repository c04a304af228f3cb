/**
 * The reliability suite's own stack: the launcher of `npm run dev` and the tests (infra/stack),
 * on ports shifted by RELIABILITY_PORT_OFFSET (default 30000) and a data directory of its own
 * (.data/reliability, wiped at the start), so it runs beside a dev or test stack.
 *
 * The service environment raises the per-IP and per-account request limits out of the load's
 * reach (the load comes from one address and reuses accounts; the limiter stays in the path) and
 * shortens the deletion grace so the deletion race finishes in seconds. Everything else is the
 * production default. Test helpers (test/helpers/*) read the stack through AUTHFLOW_STACK_FILE,
 * which `startReliabilityStack` sets.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { portsFor, ROOT, Stack, StackInfo } from '../../infra/stack/stack';

export const RELIABILITY_ENV: Record<string, string> = {
  ...Object.fromEntries(
    [
      'LOGIN_IP',
      'LOGIN_ACCOUNT',
      'REGISTER_IP',
      'REGISTER_ACCOUNT',
      'FORGOT_IP',
      'FORGOT_ACCOUNT',
      'REFRESH_IP',
      'REFRESH_ACCOUNT',
      'REAUTH_IP',
      'REAUTH_ACCOUNT',
    ].map((k) => [`RATE_LIMIT_${k}`, '1000000000/60']),
  ),
  // The load asks each address once or rarely; the accounting expects a mail for every accepted forgot.
  PASSWORD_RESET_EMAIL_INTERVAL: '1',
  PASSWORD_RESET_EMAILS_PER_DAY: '100',
  ACCOUNT_DELETION_GRACE: '5',
  ARGON2_MEMORY_KIB: '19456',
};

export interface ReliabilityStack {
  stack: Stack;
  info: StackInfo;
  stackFile: string;
}

export async function startReliabilityStack(log: (m: string) => void, opts: { offset?: number; dataDir?: string } = {}): Promise<ReliabilityStack> {
  const dataDir = opts.dataDir ?? process.env.RELIABILITY_DATA_DIR ?? join(ROOT, '.data', 'reliability');
  rmSync(dataDir, { recursive: true, force: true });
  const stack = new Stack({
    dataDir,
    ports: portsFor(opts.offset ?? Number(process.env.RELIABILITY_PORT_OFFSET ?? 30000)),
    services: true,
    logLevel: 'info',
    serviceEnv: RELIABILITY_ENV,
    log: (m) => log(`[stack] ${m}`),
  });
  const info = await stack.start();
  const stackFile = join(dataDir, 'stack.json');
  process.env.AUTHFLOW_STACK_FILE = stackFile;
  return { stack, info, stackFile };
}

/**
 * `npm run dev`: runs the whole service locally — PostgreSQL, Temporal (+ UI), Vault, maildev,
 * migrations, the worker and the API — with data under AUTHFLOW_DATA_DIR (default .data/dev),
 * prints the URLs, and stops every child on Ctrl-C.
 *
 * `npm run dev -- --production` first compiles (`npm run build`) and runs the API, worker and
 * migrations from dist/ with NODE_ENV=production, the way a deployment runs them (the benchmark
 * measures that shape).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { portsFor, ROOT, Stack } from './stack';

async function main() {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== '--production');
  if (unknown.length) throw new Error(`unknown argument ${unknown[0]} (the only option is --production)`);
  const compiled = args.includes('--production');
  if (compiled) {
    process.stderr.write('[stack] --production: compiling to dist/ (npm run build)...\n');
    const r = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('npm run build failed; see above');
  }
  const dataDir = process.env.AUTHFLOW_DATA_DIR ?? join(ROOT, '.data', 'dev');
  const stack = new Stack({
    dataDir,
    ports: portsFor(Number(process.env.STACK_PORT_OFFSET ?? 0)),
    services: true,
    logLevel: process.env.LOG_LEVEL ?? 'info',
    compiled,
  });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n[stack] ${signal}: stopping every server...\n`);
    await stack.stop();
    process.stderr.write('[stack] stopped\n');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  const info = await stack.start();
  const u = info.urls;
  process.stdout.write(`
  Authflow is running (data in ${info.dataDir}, logs in ${info.logs}; ${compiled ? 'compiled build in dist/, NODE_ENV=production' : 'from source'})

    API            ${u.api}            (OpenAPI: ${u.api}/openapi.json)
    Temporal UI    ${u.temporalUi}
    Mail UI        ${u.mailUi}            (SMTP 127.0.0.1:${info.ports.smtp})
    Vault          ${u.vault}            (root token: ${join(info.dataDir, 'vault', 'init.json')}, dev only)
    Temporal gRPC  ${u.temporal}
    PostgreSQL     127.0.0.1:${info.ports.postgres}

  Create the first admin:  npm run create-admin -- you@example.com
  Press Ctrl-C to stop everything.
`);
}

main().catch((err) => {
  process.stderr.write(`[stack] ${(err as Error).message}\n`);
  process.exit(1);
});

/**
 * Proves the Keycloak peer works: provisions and starts Keycloak against the stack's PostgreSQL
 * (AUTHFLOW_DATA_DIR, default .data/dev), seeds users, runs each loop for a few seconds with
 * loadRound and prints ok/s, p50/p99, Keycloak's CPU seconds and RSS, then stops it.
 *
 *   node --import tsx bench/peer/try-keycloak.ts [--users=1000] [--seconds=5] [--connections=8]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { argon2Params, parseConfig } from '../../platform/config';
import { ROOT, StackInfo } from '../../infra/stack/stack';
import { BenchError, pinSelf, rssMB } from '../lib/env';
import { loadRound, Round } from '../lib/load';
import { median } from '../lib/stats';
import { startKeycloak } from './keycloak';
import { keycloakClientCredentialsLoop, keycloakLoginLoop, keycloakRefreshLoop, keycloakVerify, PeerRequest } from './keycloak-loops';

function arg(name: string, dflt: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split('=')[1]) : dflt;
}

async function main() {
  const dataDir = process.env.AUTHFLOW_DATA_DIR ?? join(ROOT, '.data', 'dev');
  const info = JSON.parse(readFileSync(join(dataDir, 'stack.json'), 'utf8')) as StackInfo;
  const config = parseConfig({ ...info.serviceEnv, VAULT_ROLE_ID: info.roleIds.api, VAULT_SECRET_ID_FILE: info.secretIdFiles.api });
  const users = arg('users', 1000);
  const seconds = arg('seconds', 5);
  const connections = arg('connections', 8);
  const log = (m: string) => process.stderr.write(`[try-keycloak] ${m}\n`);
  const pin = pinSelf('1', '0');
  log(pin.description);
  const peer = await startKeycloak({
    pgSuperuserUrl: info.pgSuperuserUrl,
    dataDir,
    cpus: pin.pinned ? pin.apiCpus : null,
    argon2: argon2Params(config),
    accessTokenTtlSec: config.ACCESS_TOKEN_TTL,
    users,
    log,
  });
  try {
    log(`Keycloak ${peer.version} on ${peer.javaVersion}; JVM pid ${peer.pid}; ${peer.heapNote}`);
    log(`RSS after start and seeding: ${rssMB(peer.pid).toFixed(0)} MB`);
    const apiCpus = pin.pinned ? [1] : [];
    const run = async (name: string, req: PeerRequest, conns: number, before?: () => Promise<void>) => {
      await before?.();
      await loadRound({ ...req, connections: conns, durationSec: 2, apiCpus }); // warm-up
      await before?.();
      const r: Round = await loadRound({ ...req, connections: conns, durationSec: seconds, apiCpus });
      const fails = Object.entries(r.failures)
        .map(([k, v]) => `${k}×${v}`)
        .join(' ');
      console.log(
        `${name.padEnd(20)} ${r.okPerSec.toFixed(0).padStart(6)} ok/s  p50 ${r.p50.toFixed(1)} ms  p99 ${r.p99.toFixed(1)} ms  ` +
          `Keycloak CPU ${r.apiCpuSec.toFixed(1)} s (${r.apiUtil.toFixed(2)} cores), ${(r.ok / Math.max(r.apiCpuSec, 1e-9)).toFixed(0)}/CPU-s  ` +
          `RSS ${rssMB(peer.pid).toFixed(0)} MB  failed ${r.failed}${fails ? ` (${fails})` : ''} errors ${r.errors}`,
      );
    };
    const refresh = keycloakRefreshLoop(peer);
    await run('refresh (chained)', refresh.request, connections, () => refresh.chains.reset(connections));
    await run('password login', keycloakLoginLoop(peer), Math.max(2, connections / 2));
    await run('client credentials', keycloakClientCredentialsLoop(peer), connections);
    const v = await keycloakVerify(peer, 5000, 3);
    console.log(
      `verify (JWKS, ${v.alg})   resource server ${median(v.resourceServer).toFixed(0)}/s, raw jwtVerify ${median(v.raw).toFixed(0)}/s ` +
        `(${(median(v.resourceServer) / median(v.raw)).toFixed(3)} × raw) on one core`,
    );
    log(v.details);
  } finally {
    await peer.stop();
    log('keycloak stopped');
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof BenchError ? err.message : (err as Error).stack}\n`);
  process.exit(1);
});

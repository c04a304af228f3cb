/**
 * `--peer keycloak`: the same loops against Keycloak, in the same run, on the same cores (taskset),
 * the same PostgreSQL (its own database) and the same password-hash cost, then one table with both
 * systems side by side (issue 18). Our figures come from the refresh and login suites of this run;
 * Keycloak's from the loops below, driven by the same load generator with the same connections,
 * warm-up and rounds.
 *
 * - chained refreshes: `grant_type=refresh_token`, each connection presenting the token of its
 *   previous answer (single-use refresh tokens in the realm), fresh sessions per round from
 *   password grants made before the round;
 * - password logins: `grant_type=password` rotating over the seeded users (ROPC is Keycloak's
 *   direct equivalent of our `POST /v1/auth/login`; no `openid` scope on either side, so neither
 *   issues an ID token);
 * - client-credentials grants (ours has none until the OpenID provider lands: not measured);
 * - resource-server verification through each server's JWKS: jose `createLocalJWKSet` over the
 *   fetched JWKS and `jwtVerify` pinned to the server's algorithm, issuer and audience checked, in
 *   alternating blocks (bench/suites/verify.ts's method).
 */
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import type { BenchContext, Row, SuiteResult } from '../lib/context';
import { cpuList, rssMB } from '../lib/env';
import { loadRound, type Round } from '../lib/load';
import { DEVICE_HEADERS } from '../lib/seed';
import { describeSpread, median, ms, num, sleep, spread } from '../lib/stats';
import { passwordGrant, startKeycloak } from '../peer/keycloak';
import { keycloakClientCredentialsLoop, keycloakLoginLoop, keycloakRefreshLoop, type PeerRequest } from '../peer/keycloak-loops';
import { refreshFigures, roundLine, type RefreshFigures } from './refresh';
import { round as alternating } from './verify';

export interface OurFigures {
  refresh?: { header: RefreshFigures; dpop: RefreshFigures };
  login?: RefreshFigures;
  /** Every process of ours at the end of our part: API processes, cluster primary, worker. */
  rss: { api: number[]; primary?: number; worker: number };
}

async function rounds(ctx: BenchContext, name: string, once: (sec: number) => Promise<Round>): Promise<{ warm: Round; rounds: Round[] }> {
  const { opts, log } = ctx;
  log(`peer: ${name}: warm-up ${opts.warmupSec} s, then ${opts.rounds} × ${opts.roundSec} s`);
  const warm = await once(opts.warmupSec);
  const out: Round[] = [];
  for (let i = 0; i < opts.rounds; i++) out.push(await once(opts.roundSec));
  return { warm, rounds: out };
}

async function jwks(url: string): Promise<JSONWebKeySet> {
  const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!r.ok) throw new Error(`${url} answered ${r.status}`);
  return (await r.json()) as JSONWebKeySet;
}

const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? a / b : NaN);
const x = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}×` : 'n/a');

export async function peerSuite(ctx: BenchContext, ours: OurFigures): Promise<SuiteResult> {
  const { opts, pin, log, argon2, config } = ctx;
  const cpus = pin.pinned ? pin.apiCpus : null;
  const kc = await startKeycloak({
    pgSuperuserUrl: ctx.info.pgSuperuserUrl,
    dataDir: ctx.info.dataDir,
    cpus,
    argon2,
    accessTokenTtlSec: config.ACCESS_TOKEN_TTL,
    users: Math.min(opts.baseUsers, opts.quick ? 200 : 2000),
    log,
  });
  const details: string[] = [
    `peer: Keycloak ${kc.version} on Java ${kc.javaVersion}, production mode (kc.sh build, start --optimized), HTTP on loopback, ${cpus ? `pinned to CPU ${cpus} like our API` : 'not pinned'}; ${kc.heapNote}`,
    `peer: ${kc.hashNote}`,
    `peer: ${kc.seedNote}`,
  ];
  try {
    const apiCpus = pin.pinned ? cpuList(pin.apiCpus) : [];
    const run = (request: PeerRequest, connections: number, before?: () => Promise<void>) => async (sec: number) => {
      await before?.();
      const r = await loadRound({ ...request, apiCpus, connections, durationSec: sec });
      await sleep(300);
      return r;
    };
    const { chains, request: refreshRequest } = keycloakRefreshLoop(kc);
    const refresh = await rounds(
      ctx,
      'keycloak refresh',
      run(refreshRequest, opts.refreshConnections, () => chains.reset(opts.refreshConnections)),
    );
    const login = await rounds(ctx, 'keycloak login', run(keycloakLoginLoop(kc), opts.loginConnections));
    const cc = await rounds(ctx, 'keycloak client credentials', run(keycloakClientCredentialsLoop(kc), opts.refreshConnections));

    // Resource-server verification through each JWKS, alternating.
    const kcToken = (await passwordGrant(kc, kc.email(0))).access_token;
    const kcSet = createLocalJWKSet(await jwks(kc.jwksUrl));
    const kcAlg = decodeProtectedHeader(kcToken).alg!;
    const kcClaims = decodeJwt(kcToken);
    const ourSession = (await ctx.seeder.sessions(await ctx.seeder.randomUsers(1)))[0];
    const ourAnswer = await fetch(`${ctx.api.url}/v1/auth/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...DEVICE_HEADERS },
      body: JSON.stringify({ refresh_token: ourSession }),
    });
    if (!ourAnswer.ok) throw new Error(`our refresh answered ${ourAnswer.status}`);
    const ourToken = ((await ourAnswer.json()) as { access_token: string }).access_token;
    const ourSet = createLocalJWKSet(await jwks(`${ctx.api.url}/.well-known/jwks.json`));
    const ourAlg = decodeProtectedHeader(ourToken).alg!;
    const ours1 = () => jwtVerify(ourToken, ourSet, { algorithms: [ourAlg], issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE });
    const kc1 = () => jwtVerify(kcToken, kcSet, { algorithms: [kcAlg], issuer: kc.issuer, ...(kcClaims.aud ? { audience: kcClaims.aud } : {}) });
    await alternating(Math.max(500, opts.verifyIterations / 10), ours1, kc1);
    const vo: number[] = [];
    const vk: number[] = [];
    for (let r = 0; r < opts.verifyRounds; r++) {
      const [a, b] = await alternating(opts.verifyIterations, ours1, kc1);
      vo.push(a);
      vk.push(b);
    }
    const kcRss = rssMB(kc.pid);

    details.push(
      roundLine('keycloak refresh warm-up', 0, refresh.warm),
      ...refresh.rounds.map((r, i) => roundLine('keycloak refresh', i + 1, r)),
      roundLine('keycloak login warm-up', 0, login.warm),
      ...login.rounds.map((r, i) => roundLine('keycloak login', i + 1, r)),
      roundLine('keycloak client credentials warm-up', 0, cc.warm),
      ...cc.rounds.map((r, i) => roundLine('keycloak client credentials', i + 1, r)),
      `peer: verification ops/s per round, ours (${ourAlg}): ${vo.map((v) => num(v)).join(', ')}; Keycloak (${kcAlg}): ${vk.map((v) => num(v)).join(', ')}`,
      `peer: Keycloak JVM RSS at the end of its loops: ${num(kcRss)} MB`,
    );
    if (chains.exhausted) details.push(`peer: ${chains.exhausted} broken Keycloak refresh chains found no spare session`);

    const k = { refresh: refreshFigures(refresh.rounds), login: refreshFigures(login.rounds), cc: refreshFigures(cc.rounds) };
    const oh = ours.refresh?.header;
    const od = ours.refresh?.dpop;
    const ol = ours.login;
    const cores = pin.pinned ? `${pin.apiCores} core${pin.apiCores > 1 ? 's' : ''} (CPU ${pin.apiCpus}) each` : 'unpinned';
    const lat = (f: RefreshFigures) => `p50 ${ms(f.p50)}, p99 ${ms(f.p99)}`;
    const rows: Row[] = [];
    const verdict = (r: number, need: number, failures: string[]) =>
      !Number.isFinite(r) ? ('n/a' as const) : r >= need && !failures.some((f) => f.includes('FAILED')) ? ('PASS' as const) : ('FAIL' as const);

    if (oh) {
      const rw = ratio(oh.okPerSec, k.refresh.okPerSec);
      const rc = ratio(oh.perCpuSec, k.refresh.perCpuSec);
      rows.push(
        {
          benchmark: `vs Keycloak: chained refresh, wall, same cores (${cores})`,
          figure: `${x(rw)}: Authflow ${num(oh.okPerSec)}/s (${lat(oh)}; ${oh.failures}), DPoP-bound ${num(od!.okPerSec)}/s = ${x(ratio(od!.okPerSec, k.refresh.okPerSec))} (${lat(od!)}); Keycloak ${describeSpread(spread(k.refresh.rounds.map((r) => r.okPerSec)))}/s (${lat(k.refresh)}; ${k.refresh.failures})`,
          target: '≥ 2× Keycloak (stretch ≥ 3×)',
          verdict: verdict(rw, 2, [oh.failures, k.refresh.failures]),
        },
        {
          benchmark: 'vs Keycloak: refreshes per server CPU-second',
          figure: `${x(rc)}: Authflow ${num(oh.perCpuSec)} (API ${(oh.util * 100).toFixed(0)}% of wall), DPoP-bound ${num(od!.perCpuSec)} = ${x(ratio(od!.perCpuSec, k.refresh.perCpuSec))}; Keycloak ${num(k.refresh.perCpuSec)} (JVM ${(k.refresh.util * 100).toFixed(0)}% of wall)`,
          target: '≥ 5× Keycloak (stretch ≥ 8×)',
          verdict: verdict(rc, 5, [oh.failures, k.refresh.failures]),
        },
      );
    }
    if (ol) {
      const lw = ratio(ol.okPerSec, k.login.okPerSec);
      rows.push({
        benchmark: `vs Keycloak: password login at the same argon2id cost (m=${argon2.memoryKiB} KiB, t=${argon2.timeCost}, p=${argon2.parallelism})`,
        figure: `${x(lw)}: Authflow ${num(ol.okPerSec, 1)}/s (${lat(ol)}; ${num(ol.perCpuSec, 1)} per API CPU-second; ${ol.failures}); Keycloak ${num(k.login.okPerSec, 1)}/s (${lat(k.login)}; ${num(k.login.perCpuSec, 1)} per JVM CPU-second; ${k.login.failures}); per CPU-second ${x(ratio(ol.perCpuSec, k.login.perCpuSec))}`,
        target: 'stretch ≥ 2× Keycloak',
        verdict: Number.isFinite(lw) ? (lw >= 2 ? 'PASS' : 'info') : 'n/a',
      });
    }
    rows.push(
      {
        benchmark: 'vs Keycloak: client-credentials grant',
        figure: `Keycloak ${num(k.cc.okPerSec)}/s (${lat(k.cc)}; ${num(k.cc.perCpuSec)} per JVM CPU-second; ${k.cc.failures}); Authflow: no client-credentials grant yet (it comes with the OpenID provider, issue 15)`,
        target: 'recorded',
        verdict: 'n/a',
      },
      {
        benchmark: 'vs Keycloak: resource-server verification through the JWKS (jose, in-process)',
        figure: `${x(ratio(median(vo), median(vk)))}: Authflow ${ourAlg} ${num(median(vo))}/s; Keycloak ${kcAlg} ${num(median(vk))}/s (median of ${opts.verifyRounds} rounds, one core of the load generator)`,
        target: 'recorded',
        verdict: 'info',
      },
    );
    const ourTotal = ours.rss.api.reduce((a, b) => a + b, 0) + (ours.rss.primary ?? 0) + ours.rss.worker;
    rows.push({
      benchmark: 'vs Keycloak: resident memory at the end of each side’s loops',
      figure: `all of Authflow ${num(ourTotal)} MB (API ${ours.rss.api.map((v) => num(v)).join(' + ')}${ours.rss.primary ? ` + primary ${num(ours.rss.primary)}` : ''} + worker ${num(ours.rss.worker)}) = ${x(ratio(ourTotal, kcRss))} of Keycloak's JVM ${num(kcRss)} MB`,
      target: 'stretch: all of ours < ½ Keycloak’s',
      verdict: Number.isFinite(kcRss) && Number.isFinite(ourTotal) ? (ourTotal < kcRss / 2 ? 'PASS' : 'info') : 'n/a',
    });
    return { rows, details };
  } finally {
    await kc.stop();
  }
}

/**
 * Access-token verification by the project's auth middleware (requireAuth on a minimal Koa
 * context: header parsing, key lookup by kid, pinned algorithm, issuer, audience, typ, required
 * claims, then the revocation check of a live revocation feed listening on the stack's Postgres)
 * against a bare jose.jwtVerify with the same public key. In-process, no HTTP; both sides run in
 * alternating order in every round.
 *
 * Beside it, a DPoP-bound token (`Authorization: DPoP`, RFC 9449) through the same middleware: the
 * token as above plus the proof (the one verifier, crypto/dpop.ts, and the per-instance jti cache),
 * against bare jose doing the same two signature checks (jwtVerify of the token, and of the proof
 * with its embedded key). Proofs are made before each round (one per call, each jti new), so their
 * signing is not timed.
 */
import type Koa from 'koa';
import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, EmbeddedJWK, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { accessTokenHash } from '../../crypto/dpop';
import { DpopService, MemoryJtiCache } from '../../domain/sessions/dpop';
import { requireAuth } from '../../api/middleware/auth';
import { KeyRing, newStoredKey, StoredKeySet } from '../../domain/sessions/signing-keys';
import { createLogger } from '../../platform/logger';
import { ACCESS_TOKEN_ALG, TokenService } from '../../domain/sessions/tokens';
import type { VaultClient } from '../../platform/vault';
import { Client } from 'pg';
import { Sequelize } from 'sequelize';
import { RevocationFeed } from '../../domain/sessions/revocations';
import type { BenchContext, SuiteResult } from '../lib/context';
import { describeSpread, median, num, spread } from '../lib/stats';

/** A key ring over an in-memory key set (what the API loads from Vault KV). */
export async function memoryKeyRing(): Promise<KeyRing> {
  const set: StoredKeySet = { keys: [await newStoredKey('active')] };
  const store = { kvGet: () => Promise.resolve(set), kvPut: () => Promise.resolve(1) } as unknown as VaultClient;
  const keys = new KeyRing(store, createLogger('silent', 'bench'));
  await keys.load(false);
  return keys;
}

/**
 * One round: `iterations` calls of each side, in alternating blocks of BLOCK calls, so a change in
 * background load (the machine is shared) hits both sides alike. Returns ops/s of each side.
 */
export const VERIFY_BLOCK = 250;
const BLOCK = VERIFY_BLOCK;
export async function round(iterations: number, a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<[number, number]> {
  let ta = 0;
  let tb = 0;
  let flip = false;
  for (let done = 0; done < iterations; done += BLOCK) {
    const n = Math.min(BLOCK, iterations - done);
    for (const [fn, isA] of flip
      ? ([
          [b, false],
          [a, true],
        ] as const)
      : ([
          [a, true],
          [b, false],
        ] as const)) {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await fn();
      const dt = performance.now() - t0;
      if (isA) ta += dt;
      else tb += dt;
    }
    flip = !flip;
  }
  return [iterations / (ta / 1000), iterations / (tb / 1000)];
}

export async function verifySuite(ctx: BenchContext): Promise<SuiteResult> {
  const { config, opts } = ctx;
  const keys = await memoryKeyRing();
  // The revocation check as the API runs it: a feed on the stack's Postgres, healthy (memory only).
  const dbUrl = ctx.info.pgSuperuserUrl.replace(/\/postgres$/, '/authflow');
  const sequelize = new Sequelize(dbUrl, { logging: false });
  const feed = new RevocationFeed(
    sequelize,
    () => Promise.resolve(new Client({ connectionString: dbUrl })),
    { accessTtl: config.ACCESS_TOKEN_TTL, maxLagMs: config.REVOCATION_MAX_LAG_MS, heartbeatMs: config.REVOCATION_HEARTBEAT_MS },
    createLogger('silent', 'bench'),
  );
  feed.start();
  for (let i = 0; !feed.healthy(); i++) {
    if (i > 100) throw new Error('the revocation feed did not become healthy within 10 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const tokens = new TokenService(keys, { issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE, accessTtl: config.ACCESS_TOKEN_TTL }, feed);
  const jwt = await tokens.issueAccessToken({ sub: crypto.randomUUID(), sid: crypto.randomUUID(), amr: ['pwd'], roles: ['user'] });
  const publicKey = keys.verificationKey(keys.signingKey().kid, ACCESS_TOKEN_ALG)!;

  const middleware = requireAuth(tokens);
  const header = `Bearer ${jwt}`;
  const next = () => Promise.resolve();
  const viaMiddleware = async () => {
    const fake = { get: (h: string) => (h === 'Authorization' ? header : ''), set: () => undefined, state: {} as Koa.DefaultState };
    await middleware(fake as unknown as Koa.ParameterizedContext, next);
    if (!fake.state.auth) throw new Error('middleware did not authenticate');
  };
  const raw = () => jwtVerify(jwt, publicKey, { algorithms: [ACCESS_TOKEN_ALG] });

  // Warm-up (JIT, key import caches), then measured rounds.
  await round(Math.max(500, opts.verifyIterations / 10), viaMiddleware, raw);
  const mw: number[] = [];
  const rw: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < opts.verifyRounds; r++) {
    const [a, b] = await round(opts.verifyIterations, viaMiddleware, raw);
    mw.push(a);
    rw.push(b);
    ratios.push(a / b);
  }

  // DPoP-bound: a device key, a bound token, one fresh proof per call.
  const device = await generateKeyPair('ES256');
  const jwk = await exportJWK(device.publicKey);
  const jkt = await calculateJwkThumbprint(jwk, 'sha256');
  const boundJwt = await tokens.issueAccessToken({ sub: crypto.randomUUID(), sid: crypto.randomUUID(), amr: ['pwd'], roles: ['user'], jkt });
  const base = config.PUBLIC_BASE_URL.replace(/\/+$/, '');
  const dpop = new DpopService(
    { publicBaseUrl: base, iatWindow: config.DPOP_IAT_WINDOW, nonceRequired: false, nonceSlot: config.DPOP_NONCE_SECONDS },
    new MemoryJtiCache(),
    new MemoryJtiCache(),
    () => Buffer.alloc(32),
  );
  const ath = accessTokenHash(boundJwt);
  const makeProofs = (n: number) =>
    Promise.all(
      Array.from({ length: n }, () =>
        new SignJWT({ jti: randomUUID(), htm: 'GET', htu: `${base}/v1/me`, iat: Math.floor(Date.now() / 1000), ath })
          .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
          .sign(device.privateKey),
      ),
    );
  const boundHeader = `DPoP ${boundJwt}`;
  let proofs: string[] = [];
  let pm = 0;
  let pr = 0;
  const viaMiddlewareDpop = async () => {
    const fake = {
      get: (h: string) => (h === 'Authorization' ? boundHeader : ''),
      set: () => undefined,
      state: {} as Koa.DefaultState,
      method: 'GET',
      path: '/v1/me',
      headers: { dpop: proofs[pm++] },
      dpop,
    };
    await middleware(fake as unknown as Koa.ParameterizedContext, next);
    if (!fake.state.auth) throw new Error('middleware did not authenticate the bound token');
  };
  const rawDpop = async () => {
    await jwtVerify(boundJwt, publicKey, { algorithms: [ACCESS_TOKEN_ALG] });
    await jwtVerify(proofs[pr++], EmbeddedJWK, { algorithms: ['ES256'], typ: 'dpop+jwt' });
  };
  const dm: number[] = [];
  const dr: number[] = [];
  const dRatios: number[] = [];
  const dWarm = Math.max(500, opts.verifyIterations / 10);
  const dIterations = Math.max(1000, Math.floor(opts.verifyIterations / 4));
  for (let r = -1; r < opts.verifyRounds; r++) {
    const n = r < 0 ? dWarm : dIterations;
    proofs = await makeProofs(n);
    pm = 0;
    pr = 0;
    const [a, b] = await round(n, viaMiddlewareDpop, rawDpop);
    if (r < 0) continue;
    dm.push(a);
    dr.push(b);
    dRatios.push(a / b);
  }
  const feedState = feed.state();
  await feed.stop();
  await sequelize.close();
  const ratio = median(ratios);
  const ratioSpread = spread(ratios);
  return {
    rows: [
      {
        benchmark: 'access-token verification (auth middleware with revocation check vs raw jose.jwtVerify)',
        figure: `${ratio.toFixed(3)} × raw (median of ${ratios.length} rounds, range ${ratioSpread.min.toFixed(3)}–${ratioSpread.max.toFixed(3)}); middleware ${num(median(mw))}/s, raw ${num(median(rw))}/s on one core`,
        target: '≥ 0.9 × raw',
        verdict: ratio >= 0.9 ? 'PASS' : 'FAIL',
      },
      {
        benchmark: 'DPoP-bound access-token verification (auth middleware: token, proof, jti cache, revocation check)',
        figure: `${num(median(dm))}/s on one core = ${(median(dm) / median(rw)).toFixed(3)} × raw jwtVerify of the token alone; ${median(dRatios).toFixed(3)} × bare jose doing both signature checks (${num(median(dr))}/s)`,
        target: 'recorded',
        verdict: 'info',
      },
    ],
    details: [
      `verify: ${opts.verifyRounds} rounds × ${num(opts.verifyIterations)} sequential verifications each side, in alternating blocks of ${BLOCK}; same EdDSA key and token; raw = jwtVerify(token, publicKey, { algorithms: ['EdDSA'] }), the middleware also checks issuer, audience, typ and required claims`,
      `verify: middleware ops/s ${describeSpread(spread(mw))}; raw jwtVerify ops/s ${describeSpread(spread(rw))}`,
      `verify (DPoP): ${opts.verifyRounds} rounds × ${num(dIterations)} each side after a warm-up of ${num(dWarm)}, alternating blocks of ${BLOCK}; an ES256 device key, one new proof per call (made before the round); middleware ops/s ${describeSpread(spread(dm))}; bare jose (token + proof with EmbeddedJWK) ops/s ${describeSpread(spread(dr))}`,
      `verify: the middleware includes the revocation check (RevocationFeed on the stack's Postgres, healthy at the end: ${feedState.healthy}, ${feedState.sessions} revoked sessions in memory; no database call per request)`,
    ],
  };
}

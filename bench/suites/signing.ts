/**
 * The signing-key choice on the refresh path: signing the access token with the in-memory Ed25519
 * key (the decision in domain/sessions/signing-keys.ts) versus asking Vault transit to sign it (key never leaves
 * Vault). Both build the same JWT; transit is called through the project's Vault client with the
 * API's AppRole identity, sequentially and with 16 requests in flight.
 */
import { base64url, importJWK, jwtVerify } from 'jose';
import { createLogger } from '../../platform/logger';
import { TokenService } from '../../domain/sessions/tokens';
import { VaultClient, vaultFromConfig } from '../../platform/vault';
import type { BenchContext, SuiteResult } from '../lib/context';
import { describeSpread, median, ms, num, percentile, spread, timedPool } from '../lib/stats';
import { memoryKeyRing } from './verify';

const TRANSIT_KEY = 'authflow-jwt';

function claims() {
  return { sub: crypto.randomUUID(), sid: crypto.randomUUID(), amr: ['pwd'], roles: ['user'] };
}

/** An access token with the same header and claims as TokenService's, signed by Vault transit. */
async function transitJwt(vault: VaultClient, issuer: string, audience: string, ttl: number): Promise<string> {
  const c = claims();
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'EdDSA', kid: `vault:${TRANSIT_KEY}:1`, typ: 'at+jwt' };
  const payload = { sid: c.sid, amr: c.amr, roles: c.roles, iss: issuer, aud: audience, sub: c.sub, jti: crypto.randomUUID(), iat: now, exp: now + ttl };
  const input = `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(payload))}`;
  const res = await vault.transit('sign', `sign/${TRANSIT_KEY}`, { input: Buffer.from(input).toString('base64') });
  const sig = String(res.signature).split(':').pop()!;
  return `${input}.${Buffer.from(sig, 'base64').toString('base64url')}`;
}

interface Measured {
  seq: number[];
  conc: number[];
  p50Seq: number;
}

async function measure(rounds: number, iterations: number, fn: () => Promise<unknown>): Promise<Measured> {
  const seq: number[] = [];
  const conc: number[] = [];
  const lat: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const a = await timedPool(iterations, 1, fn);
    seq.push(iterations / (a.wallMs / 1000));
    lat.push(...a.latencies);
    const b = await timedPool(iterations, 16, fn);
    conc.push(iterations / (b.wallMs / 1000));
  }
  return { seq, conc, p50Seq: percentile(lat, 50) };
}

export async function signingSuite(ctx: BenchContext): Promise<SuiteResult> {
  const { config, opts, info } = ctx;
  const keys = await memoryKeyRing();
  const tokens = new TokenService(keys, { issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE, accessTtl: config.ACCESS_TOKEN_TTL });
  const local = () => tokens.issueAccessToken(claims());
  await timedPool(Math.max(100, opts.signIterations / 10), 1, local);
  const l = await measure(opts.signRounds, opts.signIterations, local);

  const vault = vaultFromConfig(
    {
      ...config,
      VAULT_ADDR: info.urls.vault,
      VAULT_ROLE_ID: info.roleIds.api,
      VAULT_ROLE_ID_FILE: undefined,
      VAULT_SECRET_ID: undefined,
      VAULT_SECRET_ID_FILE: info.secretIdFiles.api,
    },
    createLogger('silent', 'bench'),
  );
  const details = [
    `signing: ${opts.signRounds} rounds; local ${num(opts.signIterations)} signatures, transit ${num(opts.transitIterations)} signatures per round and concurrency level`,
  ];
  let t: Measured | undefined;
  let transitError: string | undefined;
  try {
    await vault.start();
    // The transit signature must verify with the transit key's public half, or the comparison is moot.
    const sample = await transitJwt(vault, config.JWT_ISSUER, config.JWT_AUDIENCE, config.ACCESS_TOKEN_TTL);
    const keyInfo = (await vault.read(`${config.VAULT_TRANSIT_MOUNT}/keys/${TRANSIT_KEY}`)) as unknown as {
      data: { latest_version: number; keys: Record<string, { public_key: string }> };
    };
    const pub = keyInfo.data.keys[String(keyInfo.data.latest_version)].public_key;
    const jwk = { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(pub, 'base64').toString('base64url') };
    await jwtVerify(sample, await importJWK(jwk, 'EdDSA'), { algorithms: ['EdDSA'], issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE });
    const transit = () => transitJwt(vault, config.JWT_ISSUER, config.JWT_AUDIENCE, config.ACCESS_TOKEN_TTL);
    await timedPool(Math.max(20, opts.transitIterations / 10), 4, transit);
    t = await measure(opts.signRounds, opts.transitIterations, transit);
  } catch (err) {
    transitError = (err as Error).message;
  } finally {
    vault.stop();
  }

  const localFig = `local Ed25519 key: ${num(median(l.seq))} signs/s sequential, ${num(median(l.conc))}/s at 16 in flight, p50 ${ms(l.p50Seq)} per token (one core)`;
  details.push(`signing: local sequential ops/s ${describeSpread(spread(l.seq))}; at 16 in flight ${describeSpread(spread(l.conc))}`);
  if (!t) {
    return {
      rows: [
        {
          benchmark: 'signing-key choice on the refresh path (local key vs Vault transit)',
          figure: `${localFig}; Vault transit: not measured (${transitError})`,
          target: 'record (no target)',
          verdict: 'n/a',
        },
      ],
      details,
    };
  }
  details.push(`signing: transit sequential ops/s ${describeSpread(spread(t.seq))}; at 16 in flight ${describeSpread(spread(t.conc))}`);
  const extra = t.p50Seq - l.p50Seq;
  return {
    rows: [
      {
        benchmark: 'signing-key choice on the refresh path (local key vs Vault transit)',
        figure: `${localFig}; Vault transit: ${num(median(t.seq))} signs/s sequential, ${num(median(t.conc))}/s at 16 in flight, p50 ${ms(t.p50Seq)} per token. Transit would add ≈ ${ms(extra)} to every refresh, and this Vault signed at most ≈ ${num(median(t.conc))}/s, ${(median(l.conc) / median(t.conc)).toFixed(0)}× less than one core signing locally`,
        target: 'record (no target)',
        verdict: 'info',
      },
    ],
    details,
  };
}

/**
 * The benchmark's loops against the Keycloak peer, as request specs for `loadRound`: chained
 * refresh exchanges, password logins and client-credentials grants on the token endpoint (form
 * bodies, client_secret_basic), and in-process resource-server verification through the JWKS.
 */
import { createLocalJWKSet, decodeProtectedHeader, importJWK, JSONWebKeySet, jwtVerify } from 'jose';
import type { LoadSpec } from '../lib/load';
import { RefreshChains } from '../lib/load';
import { round as alternating, VERIFY_BLOCK } from '../suites/verify';
import { clientAuthHeader, KeycloakPeer, passwordGrant, tokenRequest } from './keycloak';

/** The parts of a LoadSpec a loop fixes; the caller adds connections, duration and CPUs. */
export type PeerRequest = Pick<LoadSpec, 'url' | 'path' | 'method' | 'contentType' | 'headers' | 'apiPids' | 'body' | 'onResponse'>;

function tokenEndpoint(peer: KeycloakPeer): Pick<PeerRequest, 'url' | 'path' | 'method' | 'contentType' | 'headers' | 'apiPids'> {
  const u = new URL(peer.tokenUrl);
  return {
    url: u.origin,
    path: u.pathname,
    method: 'POST',
    contentType: 'application/x-www-form-urlencoded',
    headers: { authorization: clientAuthHeader(peer) },
    apiPids: [peer.pid],
  };
}

/** Fresh refresh tokens: one password grant each (users rotate), `concurrency` at a time. */
export async function freshRefreshTokens(peer: KeycloakPeer, n: number, concurrency = 4): Promise<string[]> {
  const out: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const t = await passwordGrant(peer, peer.email(i % peer.users));
        out.push(t.refresh_token!);
      }
    }),
  );
  return out;
}

/**
 * Chained refresh exchanges: each connection presents the refresh token of its previous answer
 * (Keycloak's single-use refresh tokens, like ours). Call `chains.reset(connections)` before every
 * round: it takes fresh sessions by password grants.
 */
export function keycloakRefreshLoop(peer: KeycloakPeer): { chains: RefreshChains; request: PeerRequest } {
  const chains = new RefreshChains(
    (n) => freshRefreshTokens(peer, n),
    (token) => `grant_type=refresh_token&refresh_token=${encodeURIComponent(token)}`,
  );
  return { chains, request: { ...tokenEndpoint(peer), body: chains.body, onResponse: chains.onResponse } };
}

/** Password logins (resource-owner password grant) rotating over the seeded users. */
export function keycloakLoginLoop(peer: KeycloakPeer): PeerRequest {
  let n = 0;
  const password = encodeURIComponent(peer.password);
  return {
    ...tokenEndpoint(peer),
    body: () => `grant_type=password&username=${encodeURIComponent(peer.email(n++ % peer.users))}&password=${password}`,
  };
}

/** Client-credentials grants of the bench client's service account. */
export function keycloakClientCredentialsLoop(peer: KeycloakPeer): PeerRequest {
  return { ...tokenEndpoint(peer), body: () => 'grant_type=client_credentials' };
}

export interface VerifyResult {
  /** ops/s per round of the resource-server verification (JWKS, issuer, audience, pinned alg). */
  resourceServer: number[];
  /** ops/s per round of bare jwtVerify with the same public key, algorithm only. */
  raw: number[];
  alg: string;
  details: string;
}

/**
 * Resource-server verification of a Keycloak access token (a password-grant token of a seeded
 * user): the JWKS fetched once (createLocalJWKSet), jwtVerify pinned to the token's algorithm
 * (RS256 by default), issuer and audience checked; against bare jwtVerify with the same key.
 * In-process, no HTTP in the loop; a warm-up round, then `rounds` rounds.
 */
export async function keycloakVerify(peer: KeycloakPeer, iterations: number, rounds: number): Promise<VerifyResult> {
  const jwks = (await (await fetch(peer.jwksUrl)).json()) as JSONWebKeySet;
  const keySet = createLocalJWKSet(jwks);
  const token = (await passwordGrant(peer, peer.email(0))).access_token;
  const { alg, kid } = decodeProtectedHeader(token);
  if (!alg || !kid) throw new Error('the Keycloak access token has no alg or kid');
  const jwk = jwks.keys.find((k) => k.kid === kid);
  if (!jwk) throw new Error(`kid ${kid} is not in Keycloak's JWKS`);
  const publicKey = await importJWK(jwk, alg);
  const asResourceServer = async () => {
    const { payload } = await jwtVerify(token, keySet, { algorithms: [alg], issuer: peer.issuer, audience: peer.clientId });
    if (!payload.sub) throw new Error('no sub');
  };
  const raw = () => jwtVerify(token, publicKey, { algorithms: [alg] });
  await asResourceServer();
  await alternating(Math.max(500, Math.floor(iterations / 10)), asResourceServer, raw);
  const rs: number[] = [];
  const rw: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const [a, b] = await alternating(iterations, asResourceServer, raw);
    rs.push(a);
    rw.push(b);
  }
  return {
    resourceServer: rs,
    raw: rw,
    alg,
    details: `${rounds} rounds × ${iterations} sequential verifications each side in alternating blocks of ${VERIFY_BLOCK}; ${alg} key from Keycloak's JWKS (createLocalJWKSet, fetched once); resource server = jwtVerify with algorithms [${alg}], issuer ${peer.issuer}, audience ${peer.clientId}; raw = jwtVerify with the imported key, algorithm only`,
  };
}

/** A client-credentials token works: used by the try script as a smoke check. */
export async function clientCredentialsOnce(peer: KeycloakPeer): Promise<string> {
  return (await tokenRequest(peer, { grant_type: 'client_credentials' })).access_token;
}

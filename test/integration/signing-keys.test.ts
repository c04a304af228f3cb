/**
 * The signing key ring on the real stack: the JWKS publishes EdDSA, ES256 and RS256 keys; a /v1
 * access token forged with the ring's own ES256 or RS256 key is refused (verification is pinned
 * to EdDSA); an install whose Vault set holds EdDSA keys only gets one active ES256 and one
 * active RS256 key from the APIs starting on it, added once however many start together.
 */
import { createLocalJWKSet, decodeJwt, importJWK, type JWK, jwtVerify, SignJWT } from 'jose';
import { api, sleep, stackInfo, vaultRoot } from '../helpers/stack';
import { logLines, startService, stopPid } from '../helpers/ops';
import { login, registerAndVerify } from '../helpers/users';

jest.setTimeout(180_000);

interface StoredKey {
  kid: string;
  alg: string;
  status: string;
  private_jwk: JWK;
}
const storedKeys = async () => ((await vaultRoot().kvGet('authflow/signing-keys')) as { keys: StoredKey[] }).keys;
const jwksOf = async (url = stackInfo().urls.api) => ((await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: JWK[] }).keys;

test('the JWKS publishes the public keys of all three algorithms, each with kid, alg and use sig', async () => {
  const jwks = await jwksOf();
  const stored = await storedKeys();
  expect(jwks.map((k) => k.kid).sort()).toEqual(stored.map((k) => k.kid).sort());
  for (const alg of ['EdDSA', 'ES256', 'RS256']) expect(stored.filter((k) => k.alg === alg && k.status === 'active')).toHaveLength(1);
  expect(new Set(jwks.map((k) => `${k.alg}/${k.kty}`))).toEqual(new Set(['EdDSA/OKP', 'ES256/EC', 'RS256/RSA']));
  for (const k of jwks) {
    expect(k).toMatchObject({ kid: expect.stringMatching(/^(ed25519|p256|rsa)-/), use: 'sig' });
    for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(k[secret as keyof JWK]).toBeUndefined();
  }
});

test("an access token signed with the ring's own ES256 or RS256 key is refused by /v1, though it verifies against our JWKS", async () => {
  const u = await registerAndVerify();
  const genuine = (await login(u.email, u.password)).access_token;
  expect((await api('GET', '/v1/me', { token: genuine })).status).toBe(200);
  const claims = decodeJwt(genuine);
  const published = createLocalJWKSet({ keys: await jwksOf() });
  for (const alg of ['ES256', 'RS256']) {
    // The attacker holds the ring's private key of another algorithm (as oidc-provider does).
    const stolen = (await storedKeys()).find((k) => k.alg === alg && k.status === 'active')!;
    const forged = await new SignJWT({ ...claims, roles: ['admin'] })
      .setProtectedHeader({ alg, kid: stolen.kid, typ: 'at+jwt' })
      .sign(await importJWK(stolen.private_jwk, alg));
    await expect(jwtVerify(forged, published)).resolves.toBeDefined(); // a verifier that does not pin EdDSA would take it
    const me = await api('GET', '/v1/me', { token: forged });
    expect([alg, me.status, me.body.code]).toEqual([alg, 401, 'unauthorized']);
    const adminCall = await api('GET', '/v1/admin/ops', { token: forged });
    expect([alg, adminCall.status]).toEqual([alg, 401]);
  }
});

test('APIs starting together on an EdDSA-only key set add one active ES256 and one active RS256 key, once', async () => {
  const before = await storedKeys();
  const edOnly = before.filter((k) => k.alg === 'EdDSA');
  await vaultRoot().kvPut('authflow/signing-keys', { keys: edOnly });
  const names = ['api-keys-upgrade-a', 'api-keys-upgrade-b'];
  const started = await Promise.all(names.map((name, i) => startService('api', { API_PORT: String(stackInfo().ports.api + 71 + i) }, name)));
  try {
    const after = await storedKeys();
    expect(after.filter((k) => k.alg === 'EdDSA')).toEqual(edOnly);
    expect(
      after
        .filter((k) => k.alg !== 'EdDSA')
        .map((k) => `${k.alg}:${k.status}`)
        .sort(),
    ).toEqual(['ES256:active', 'RS256:active']);
    const added = names.flatMap((n) => logLines(n).filter((l) => l.msg === 'added signing keys for the missing algorithms'));
    expect(added).toHaveLength(1);
    // Both new APIs serve the same ring; the stack's own API picks it up on its next refresh.
    const kids = after.map((k) => k.kid).sort();
    for (const s of started) expect((await jwksOf(s.url)).map((k) => k.kid).sort()).toEqual(kids);
    let main: string[] = [];
    for (let i = 0; i < 50; i++) {
      main = (await jwksOf()).map((k) => k.kid!).sort();
      if (main.join() === kids.join()) break;
      await sleep(200);
    }
    expect(main).toEqual(kids);
    // No key material in their logs.
    for (const n of names) {
      const text = JSON.stringify(logLines(n));
      for (const k of after) expect(text.includes(String(k.private_jwk.d))).toBe(false);
    }
  } finally {
    for (const s of started) await stopPid(s.pid);
  }
});

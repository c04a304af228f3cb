/** Access-token signing and verification with an in-memory key set (no servers involved). */
import { SignJWT, generateKeyPair, base64url, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { KeyRing, newKeyPerAlg, StoredKeySet } from '../../../../domain/sessions/signing-keys';
import { createLogger } from '../../../../platform/logger';
import { TokenService } from '../../../../domain/sessions/tokens';
import type { VaultClient } from '../../../../platform/vault';

/** A ring as the API holds it: one active key each of EdDSA, ES256 and RS256. */
async function ring(): Promise<{ keys: KeyRing; set: StoredKeySet }> {
  const set: StoredKeySet = { keys: await newKeyPerAlg('active') };
  const store = { kvGet: async () => set, kvPut: async () => 1 } as unknown as VaultClient;
  const keys = new KeyRing(store, createLogger('silent', 'test'));
  await keys.load(false);
  return { keys, set };
}

describe('access tokens', () => {
  test('verify what they sign, with the documented claims', async () => {
    const { keys } = await ring();
    const svc = new TokenService(keys, { issuer: 'https://issuer.test', audience: 'authflow', accessTtl: 900 });
    const t = await svc.issueAccessToken({ sub: 'u1', sid: 's1', amr: ['pwd'], roles: ['user'] });
    const c = await svc.verifyAccessToken(t);
    expect(c).toMatchObject({ sub: 'u1', sid: 's1', amr: ['pwd'], roles: ['user'], iss: 'https://issuer.test', aud: 'authflow' });
    expect(c.exp! - c.iat!).toBe(900);
  });

  test('expired tokens are rejected', async () => {
    const { keys } = await ring();
    const svc = new TokenService(keys, { issuer: 'i', audience: 'a', accessTtl: 1 });
    const t = await svc.issueAccessToken({ sub: 'u1', sid: 's1', amr: ['pwd'], roles: ['user'] });
    await new Promise((r) => setTimeout(r, 2100));
    await expect(svc.verifyAccessToken(t)).rejects.toMatchObject({ code: 'unauthorized', status: 401 });
  });

  test('wrong issuer, audience, typ, or a key we do not hold are rejected', async () => {
    const { keys } = await ring();
    const good = new TokenService(keys, { issuer: 'i', audience: 'a', accessTtl: 60 });
    const otherIss = new TokenService(keys, { issuer: 'evil', audience: 'a', accessTtl: 60 });
    const otherAud = new TokenService(keys, { issuer: 'i', audience: 'b', accessTtl: 60 });
    const claims = { sub: 'u', sid: 's', amr: ['pwd'], roles: ['user'] };
    await expect(good.verifyAccessToken(await otherIss.issueAccessToken(claims))).rejects.toMatchObject({ code: 'unauthorized' });
    await expect(good.verifyAccessToken(await otherAud.issueAccessToken(claims))).rejects.toMatchObject({ code: 'unauthorized' });
    const kid = keys.signingKey().kid;
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const forged = await new SignJWT({ sid: 's', amr: ['pwd'], roles: ['admin'] })
      .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' })
      .setIssuer('i')
      .setAudience('a')
      .setSubject('u')
      .setJti('j')
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(privateKey);
    await expect(good.verifyAccessToken(forged)).rejects.toMatchObject({ code: 'unauthorized' });
    const noTyp = await new SignJWT({ sid: 's', amr: ['pwd'], roles: ['user'] })
      .setProtectedHeader({ alg: 'EdDSA', kid })
      .setIssuer('i')
      .setAudience('a')
      .setSubject('u')
      .setJti('j')
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(keys.signingKey().key);
    await expect(good.verifyAccessToken(noTyp)).rejects.toMatchObject({ code: 'unauthorized' });
    const none = `${base64url.encode('{"alg":"none"}')}.${base64url.encode('{"sub":"u"}')}.`;
    await expect(good.verifyAccessToken(none)).rejects.toMatchObject({ code: 'unauthorized' });
  });

  test('carry client_id (RFC 9068) and a token without ours is refused', async () => {
    const { keys } = await ring();
    const svc = new TokenService(keys, { issuer: 'i', audience: 'a', accessTtl: 60 });
    expect(await svc.verifyAccessToken(await svc.issueAccessToken({ sub: 'u', sid: 's', amr: ['pwd'], roles: ['user'] }))).toMatchObject({
      client_id: 'authflow-api',
    });
    const other = new TokenService(keys, { issuer: 'i', audience: 'a', accessTtl: 60, clientId: 'other-client' });
    await expect(svc.verifyAccessToken(await other.issueAccessToken({ sub: 'u', sid: 's', amr: ['pwd'], roles: ['user'] }))).rejects.toMatchObject({
      code: 'unauthorized',
    });
    const noClient = await new SignJWT({ sid: 's', amr: ['pwd'], roles: ['user'] })
      .setProtectedHeader({ alg: 'EdDSA', kid: keys.signingKey().kid, typ: 'at+jwt' })
      .setIssuer('i')
      .setAudience('a')
      .setSubject('u')
      .setJti('j')
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(keys.signingKey().key);
    await expect(svc.verifyAccessToken(noClient)).rejects.toMatchObject({ code: 'unauthorized' });
  });

  test('are signed with the active EdDSA key of a ring that also holds ES256 and RS256 keys', async () => {
    const { keys } = await ring();
    const svc = new TokenService(keys, { issuer: 'i', audience: 'a', accessTtl: 60 });
    const header = decodeProtectedHeader(await svc.issueAccessToken({ sub: 'u', sid: 's', amr: ['pwd'], roles: ['user'] }));
    expect(header).toEqual({ alg: 'EdDSA', kid: keys.signingKey().kid, typ: 'at+jwt' });
    expect(keys.signingKey().kid).toMatch(/^ed25519-/);
  });

  test("a valid-looking token signed with the ring's own ES256 or RS256 key is refused: verification is pinned to EdDSA", async () => {
    const { keys } = await ring();
    const svc = new TokenService(keys, { issuer: 'i', audience: 'a', accessTtl: 60 });
    const genuine = await svc.issueAccessToken({ sub: 'u', sid: 's', amr: ['pwd'], roles: ['user'] });
    const claims = decodeJwt(genuine);
    await expect(svc.verifyAccessToken(genuine)).resolves.toMatchObject({ sub: 'u' });
    for (const alg of ['ES256', 'RS256'] as const) {
      const { kid, key } = keys.signingKeyFor(alg);
      // The attacker's token: same claims, roles raised, a key the JWKS publishes for this issuer.
      const forged = await new SignJWT({ ...claims, roles: ['admin'] }).setProtectedHeader({ alg, kid, typ: 'at+jwt' }).sign(key);
      await expect(jwtVerify(forged, keys.verificationKey(kid, alg)!)).resolves.toBeDefined(); // the signature itself is good
      await expect(svc.verifyAccessToken(forged)).rejects.toMatchObject({ code: 'unauthorized', status: 401 });
      // Nor does the ring hand out that key for EdDSA verification.
      expect(keys.verificationKey(kid, 'EdDSA')).toBeUndefined();
    }
  });

  test('the JWKS holds public keys only, of all three algorithms', async () => {
    const { keys } = await ring();
    const jwks = keys.jwks().keys;
    expect(jwks.map((k) => k.alg)).toEqual(['EdDSA', 'ES256', 'RS256']);
    for (const k of jwks) {
      expect(k.d).toBeUndefined();
      expect(k.use).toBe('sig');
    }
    expect(jwks.map((k) => k.kty)).toEqual(['OKP', 'EC', 'RSA']);
  });
});

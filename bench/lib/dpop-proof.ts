/**
 * The benchmark device's DPoP key (RFC 9449): one ES256 key for every DPoP-bound bench session, and
 * a synchronous proof maker (autocannon builds each request synchronously): a new `jti` and the
 * current `iat` per request, signed with node:crypto (about 50 µs on the load generator's core).
 */
import { createHash, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export class BenchDpopKey {
  readonly jkt: string;
  private readonly privateKey: KeyObject;
  private readonly header: string;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = privateKey;
    const jwk = publicKey.export({ format: 'jwk' }) as { kty: string; crv: string; x: string; y: string };
    // RFC 7638: the required members in lexicographic order, no spaces.
    this.jkt = b64url(
      createHash('sha256')
        .update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }))
        .digest(),
    );
    this.header = b64url(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } }));
  }

  /** The device fingerprint a key-bound device row carries (domain/sessions/devices.ts). */
  get fingerprint(): Buffer {
    return createHash('sha256').update(`dpop-jkt:${this.jkt}`, 'utf8').digest();
  }

  /** A fresh proof for `htm` `htu`. */
  proof(htm: string, htu: string): string {
    const payload = b64url(JSON.stringify({ jti: randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000) }));
    const input = `${this.header}.${payload}`;
    const sig = sign('sha256', Buffer.from(input), { key: this.privateKey, dsaEncoding: 'ieee-p1363' });
    return `${input}.${b64url(sig)}`;
  }
}

/**
 * Access tokens (EdDSA JWTs with kid, algorithm pinned on verify). The opaque refresh tokens
 * (random 256-bit, stored only as SHA-256 hashes) are crypto/opaque-tokens.ts.
 *
 * Invariant: only EdDSA signs or verifies a /v1 access token. The key ring also holds ES256 and
 * RS256 keys (for the OpenID Connect provider's id tokens); a token naming either, even one signed
 * by our own ring, is refused: by the header check, and because the ring hands out a verification
 * key only for the algorithm asked for.
 */
import { randomUUID } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT, decodeProtectedHeader, JWTPayload } from 'jose';
import { AppError } from '../../platform/errors';
import type { KeyRing, SigningAlg } from './signing-keys';

/** The one algorithm of our access tokens. */
export const ACCESS_TOKEN_ALG = 'EdDSA' satisfies SigningAlg;

export interface AccessClaims extends JWTPayload {
  sub: string;
  sid: string;
  jti: string;
  amr: string[];
  roles: string[];
  /** When the user signed in for this session (seconds; OIDC `auth_time`); kept across refreshes. */
  auth_time?: number;
  /** RFC 9449 §6: a DPoP-bound token carries its key's thumbprint. */
  cnf?: { jkt: string };
  /** The client the token was issued to (RFC 9068 2.2). */
  client_id: string;
}

/** Whether an access token's session has ended (domain/sessions/revocations.ts): sync from memory, async from the database. */
export interface RevocationCheck {
  isRevoked(c: { sid: string; sub: string; iat?: number }): boolean | Promise<boolean>;
}

/** Our first-party API has no client registry: every token names this client unless configured. */
export const DEFAULT_CLIENT_ID = 'authflow-api';

export interface TokenSettings {
  issuer: string;
  audience: string;
  accessTtl: number;
  /** `client_id` claim written and required on verify (ACCESS_TOKEN_CLIENT_ID). */
  clientId?: string;
}

export class TokenService {
  constructor(
    private readonly keys: KeyRing,
    private readonly s: TokenSettings,
    /** Checked by the auth middleware after the signature; without it (tools) no revocation reaches access tokens. */
    readonly revocations?: RevocationCheck,
  ) {}

  get accessTtl() {
    return this.s.accessTtl;
  }

  async issueAccessToken(c: { sub: string; sid: string; amr: string[]; roles: string[]; authTime?: Date; jkt?: string | null }): Promise<string> {
    const { kid, key } = this.keys.signingKeyFor(ACCESS_TOKEN_ALG);
    const authTime = c.authTime ? { auth_time: Math.floor(c.authTime.getTime() / 1000) } : {};
    return new SignJWT({
      sid: c.sid,
      amr: c.amr,
      roles: c.roles,
      client_id: this.s.clientId ?? DEFAULT_CLIENT_ID,
      ...authTime,
      ...(c.jkt ? { cnf: { jkt: c.jkt } } : {}),
    })
      .setProtectedHeader({ alg: ACCESS_TOKEN_ALG, kid, typ: 'at+jwt' })
      .setIssuer(this.s.issuer)
      .setAudience(this.s.audience)
      .setSubject(c.sub)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime(`${this.s.accessTtl}s`)
      .sign(key);
  }

  /** Verifies signature (pinned EdDSA, key by kid), issuer, audience, expiry. Any failure is 401. */
  async verifyAccessToken(token: string): Promise<AccessClaims> {
    try {
      // The key is picked from the header here and handed to jose as a key, not a resolver
      // function: jose's resolver path costs about a tenth of a verification (bench/suites/verify.ts).
      const header = decodeProtectedHeader(token);
      if (header.alg !== ACCESS_TOKEN_ALG || typeof header.kid !== 'string') throw new joseErrors.JOSEAlgNotAllowed('algorithm or kid not allowed');
      const key = this.keys.verificationKey(header.kid, ACCESS_TOKEN_ALG);
      if (!key) throw new joseErrors.JWKSNoMatchingKey();
      const { payload } = await jwtVerify(token, key, {
        algorithms: [ACCESS_TOKEN_ALG],
        issuer: this.s.issuer,
        audience: this.s.audience,
        typ: 'at+jwt',
        requiredClaims: ['sub', 'sid', 'jti', 'exp', 'iat'],
      });
      if (!Array.isArray(payload.amr) || !Array.isArray(payload.roles)) throw new Error('claims missing');
      if (payload.cnf !== undefined && typeof (payload.cnf as { jkt?: unknown }).jkt !== 'string') throw new Error('cnf without jkt');
      if (payload.client_id !== (this.s.clientId ?? DEFAULT_CLIENT_ID)) throw new Error('client_id missing or not ours');
      return payload as AccessClaims;
    } catch {
      throw new AppError('unauthorized', 'the access token is missing, malformed, expired or not signed by us');
    }
  }
}

export { decodeProtectedHeader };

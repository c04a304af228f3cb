/**
 * DPoP (RFC 9449) for the API: the one proof verifier (crypto/dpop.ts) with the request's public
 * URL, the replay rules and the optional server nonce, answering in the service's errors.
 *
 * Replay: on the token endpoints (login, login/mfa, refresh, step-up) a proof's `jti` is claimed
 * in Postgres (`dpop_proof_jtis`, INSERT ... ON CONFLICT DO NOTHING), so a proof any instance has
 * seen is refused; rows expire after the `iat` window. Resource requests use a per-instance
 * TTL cache instead: with the `iat` window that bounds a replay to one instance for a few
 * seconds, and no request pays a database write.
 *
 * Nonce (DPOP_NONCE_REQUIRED): an HMAC-SHA256 of the current time slot under a key every instance
 * derives from the same secret (the caller passes it: services.ts uses the active access-token
 * signing key's private half, which every API instance loads from Vault), so any instance accepts
 * any instance's nonce without a database. The current and the previous slot are accepted.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { QueryTypes, type Sequelize } from 'sequelize';
import { DpopProofError, verifyDpopProof, type VerifiedProof } from '../../crypto/dpop';
import { mapDbError } from '../../platform/db';
import { AppError } from '../../platform/errors';

export interface DpopSettings {
  /** PUBLIC_BASE_URL: `htu` must be this origin (and base path) + the request path. */
  publicBaseUrl: string;
  /** DPOP_IAT_WINDOW: seconds a proof's `iat` may differ from now. */
  iatWindow: number;
  /** DPOP_NONCE_REQUIRED: every proof must carry a current server nonce (`DPoP-Nonce`). */
  nonceRequired: boolean;
  /** Seconds one nonce slot lasts (the previous slot's nonce is accepted too). */
  nonceSlot: number;
}

/** A request as the verifier needs it. */
export interface DpopRequestInfo {
  method: string;
  path: string;
  /** The `DPoP` header value(s): absent, one or several (several are refused). */
  proof: string | string[] | undefined;
}

export const DPOP_WWW_AUTHENTICATE = (error?: string, description?: string) =>
  `DPoP${error ? ` error="${error}"` : ''}${description ? `, error_description="${description.replace(/["\\]/g, '')}"` : ''}, algs="ES256 EdDSA"`;

/** Claims a proof's jti once; false when it was seen before. */
export interface JtiStore {
  claim(jkt: string, jti: string, expiresAt: Date): Promise<boolean>;
}

/** The token endpoints' replay store: one row per proof in Postgres, shared by every instance. */
export class PgJtiStore implements JtiStore {
  private lastCleanup = 0;
  constructor(private readonly sequelize: Sequelize) {}

  async claim(jkt: string, jti: string, expiresAt: Date): Promise<boolean> {
    const rows = await this.sequelize
      .query(`INSERT INTO dpop_proof_jtis (jkt, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING jti`, {
        bind: [jkt, jti, expiresAt],
        type: QueryTypes.SELECT,
      })
      .catch((err) => Promise.reject(mapDbError(err)));
    if (Date.now() - this.lastCleanup > 60_000) {
      this.lastCleanup = Date.now();
      this.sequelize.query(`DELETE FROM dpop_proof_jtis WHERE expires_at < now()`).catch(() => undefined);
    }
    return rows.length === 1;
  }
}

/** The resource requests' replay cache: per instance, bounded, entries dropped after expiry. */
export class MemoryJtiCache implements JtiStore {
  private readonly seen = new Map<string, number>();
  constructor(private readonly maxEntries = 100_000) {}

  claim(jkt: string, jti: string, expiresAt: Date): Promise<boolean> {
    const now = Date.now();
    const key = `${jkt}.${jti}`;
    const until = this.seen.get(key);
    if (until !== undefined && until > now) return Promise.resolve(false);
    if (this.seen.size >= this.maxEntries) {
      // Insertion order is expiry order (fixed TTL): drop expired entries, then the oldest.
      for (const [k, exp] of this.seen) {
        if (exp > now && this.seen.size < this.maxEntries) break;
        this.seen.delete(k);
      }
    }
    this.seen.delete(key);
    this.seen.set(key, expiresAt.getTime());
    return Promise.resolve(true);
  }
}

export class DpopService {
  private readonly base: string;
  constructor(
    private readonly s: DpopSettings,
    private readonly tokenStore: JtiStore,
    private readonly resourceCache: JtiStore,
    /** The shared secret nonces are derived from (see the module comment); called per use. */
    private readonly nonceSecret: () => Buffer,
  ) {
    this.base = s.publicBaseUrl.replace(/\/+$/, '');
  }

  private nonceFor(slot: number): string {
    return createHmac('sha256', this.nonceSecret()).update(`dpop-nonce:${slot}`).digest('base64url');
  }

  /** The nonce a client should use now (sent as `DPoP-Nonce` on every answer that checks proofs). */
  currentNonce(): string {
    return this.nonceFor(Math.floor(Date.now() / 1000 / this.s.nonceSlot));
  }

  private nonceValid(n: string): boolean {
    const slot = Math.floor(Date.now() / 1000 / this.s.nonceSlot);
    const given = Buffer.from(n);
    return [slot, slot - 1].some((x) => {
      const want = Buffer.from(this.nonceFor(x));
      return want.length === given.length && timingSafeEqual(want, given);
    });
  }

  get nonceRequired() {
    return this.s.nonceRequired;
  }

  private async check(req: DpopRequestInfo, store: JtiStore, accessToken: string | undefined, resource: boolean): Promise<VerifiedProof> {
    const refuse = (detail: string) => dpopError(detail, resource);
    if (Array.isArray(req.proof)) throw refuse('send exactly one DPoP header');
    let proof: VerifiedProof;
    try {
      proof = await verifyDpopProof(req.proof!, { method: req.method, url: this.base + req.path, accessToken }, { iatWindow: this.s.iatWindow });
    } catch (err) {
      if (err instanceof DpopProofError) throw refuse(`the DPoP proof is not valid: ${err.reason}`);
      throw err;
    }
    if (this.s.nonceRequired && (proof.nonce === undefined || !this.nonceValid(proof.nonce))) {
      throw new AppError(
        'use_dpop_nonce',
        'the DPoP proof must carry the server nonce from the DPoP-Nonce header',
        {},
        { 'DPoP-Nonce': this.currentNonce(), ...(resource ? { 'WWW-Authenticate': DPOP_WWW_AUTHENTICATE('use_dpop_nonce') } : {}) },
      );
    }
    // Kept until the proof could no longer pass the iat check, plus a second.
    const expires = new Date((proof.iat + this.s.iatWindow + 1) * 1000);
    if (!(await store.claim(proof.jkt, proof.jti, expires))) throw refuse('the DPoP proof was already used (jti replay)');
    return proof;
  }

  /**
   * A token endpoint's proof: undefined when the request has none (header mode); otherwise the
   * verified proof (jti claimed in the shared store), or 401 invalid_dpop_proof.
   */
  async forTokenEndpoint(req: DpopRequestInfo): Promise<VerifiedProof | undefined> {
    if (req.proof === undefined) return undefined;
    return this.check(req, this.tokenStore, undefined, false);
  }

  /** A resource request with `Authorization: DPoP <token>`: the proof must exist, carry `ath` and be made by `jkt`. */
  async forResource(req: DpopRequestInfo, accessToken: string, jkt: string): Promise<VerifiedProof> {
    if (req.proof === undefined) throw dpopError('a DPoP-bound access token needs a DPoP proof header', true);
    const proof = await this.check(req, this.resourceCache, accessToken, true);
    if (proof.jkt !== jkt) throw dpopError('the DPoP proof was made by another key than the token is bound to', true);
    return proof;
  }
}

/** 401 invalid_dpop_proof; on resource requests with the DPoP challenge. */
export function dpopError(detail: string, resource = false): AppError {
  return new AppError('invalid_dpop_proof', detail, {}, resource ? { 'WWW-Authenticate': DPOP_WWW_AUTHENTICATE('invalid_dpop_proof') } : {});
}

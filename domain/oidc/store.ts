/**
 * Storage of every model the OpenID Connect provider persists (sessions, interactions, grants,
 * authorization codes, access and refresh tokens, client-credentials tokens, replay records):
 * table `oidc_models` (migration 015), one row per (model, id). The one writer of that table;
 * api/oidc/adapter.ts shapes it into oidc-provider's adapter interface.
 *
 * Invariants:
 * - `consume` is one conditional UPDATE: of any number of parallel consumers of a code or refresh
 *   token exactly one gets `true`; the others get `false` and the caller treats that as reuse.
 * - `grant_id`, `uid`, `user_code` and `account_id` are copied out of the payload on every write,
 *   so the indexed lookups and "end every grant of a user" never parse JSON of the whole table.
 * - Expired rows are invisible to `find` and deleted by `deleteExpired` (the API runs it
 *   periodically); `revokeByGrantId` deletes everything issued under a grant.
 */
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { mapDbError } from '../../platform/db';

export type OidcPayload = Record<string, unknown> & {
  grantId?: string;
  uid?: string;
  userCode?: string;
  accountId?: string;
  consumed?: number;
};

/** Models whose rows belong to a grant (deleted with it). */
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest', 'ClientCredentials']);

const text = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

export class OidcStore {
  constructor(private readonly sequelize: Sequelize) {}

  private async q<T extends object>(sql: string, bind: unknown[], t?: Transaction): Promise<T[]> {
    try {
      return await this.sequelize.query<T>(sql, { bind, type: QueryTypes.SELECT, transaction: t });
    } catch (err) {
      throw mapDbError(err);
    }
  }

  private async exec(sql: string, bind: unknown[], t?: Transaction): Promise<number> {
    try {
      const [, meta] = await this.sequelize.query(sql, { bind, transaction: t });
      return (meta as { rowCount?: number } | undefined)?.rowCount ?? 0;
    } catch (err) {
      throw mapDbError(err);
    }
  }

  async upsert(model: string, id: string, payload: OidcPayload, expiresInSeconds?: number): Promise<void> {
    const expires = typeof expiresInSeconds === 'number' && Number.isFinite(expiresInSeconds) ? expiresInSeconds : null;
    await this.exec(
      `INSERT INTO oidc_models (model, id, payload, grant_id, uid, user_code, account_id, expires_at, consumed_at)
       VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, CASE WHEN $8::double precision IS NULL THEN NULL ELSE now() + make_interval(secs => $8::double precision) END, NULL)
       ON CONFLICT (model, id) DO UPDATE SET payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id, uid = EXCLUDED.uid,
         user_code = EXCLUDED.user_code, account_id = EXCLUDED.account_id, expires_at = EXCLUDED.expires_at`,
      [model, id, JSON.stringify(payload), text(payload.grantId), text(payload.uid), text(payload.userCode), text(payload.accountId), expires],
    );
  }

  private static shape(row: { payload: OidcPayload; consumed: number | null } | undefined): OidcPayload | undefined {
    if (!row) return undefined;
    return row.consumed === null ? row.payload : { ...row.payload, consumed: Number(row.consumed) };
  }

  private async findWhere(model: string, column: 'id' | 'uid' | 'user_code', value: string): Promise<OidcPayload | undefined> {
    const rows = await this.q<{ payload: OidcPayload; consumed: number | null }>(
      `SELECT payload, extract(epoch FROM consumed_at)::bigint AS consumed FROM oidc_models
        WHERE model = $1 AND ${column} = $2 AND (expires_at IS NULL OR expires_at > now()) LIMIT 1`,
      [model, value],
    );
    return OidcStore.shape(rows[0]);
  }

  find(model: string, id: string): Promise<OidcPayload | undefined> {
    return this.findWhere(model, 'id', id);
  }

  findByUid(model: string, uid: string): Promise<OidcPayload | undefined> {
    return this.findWhere(model, 'uid', uid);
  }

  findByUserCode(model: string, userCode: string): Promise<OidcPayload | undefined> {
    return this.findWhere(model, 'user_code', userCode);
  }

  /** Marks the row consumed; true for exactly one caller, false when it was consumed already (or is gone). */
  async consume(model: string, id: string): Promise<boolean> {
    const n = await this.exec(`UPDATE oidc_models SET consumed_at = now() WHERE model = $1 AND id = $2 AND consumed_at IS NULL`, [model, id]);
    return n === 1;
  }

  async destroy(model: string, id: string): Promise<void> {
    await this.exec(`DELETE FROM oidc_models WHERE model = $1 AND id = $2`, [model, id]);
  }

  /** Deletes the grant and everything issued under it. */
  async revokeByGrantId(grantId: string, t?: Transaction): Promise<number> {
    return this.exec(`DELETE FROM oidc_models WHERE grant_id = $1 OR (model = 'Grant' AND id = $1)`, [grantId], t);
  }

  /**
   * Ends every provider grant and session of a user (logout-all, password change or reset,
   * suspension, lock, deletion, erasure): grants, the tokens and codes issued under them, and the
   * user's sign-in sessions, so the next authorization request asks to sign in again.
   */
  async endAllForAccount(accountId: string, t?: Transaction): Promise<number> {
    return this.exec(
      `DELETE FROM oidc_models WHERE account_id = $1
          OR grant_id IN (SELECT id FROM oidc_models WHERE model = 'Grant' AND account_id = $1)`,
      [accountId],
      t,
    );
  }

  /** Ends everything issued to a client (the client is deleted): its grants and what they issued. */
  async endAllForClient(clientId: string, t?: Transaction): Promise<number> {
    return this.exec(
      `DELETE FROM oidc_models WHERE payload->>'clientId' = $1
          OR grant_id IN (SELECT id FROM oidc_models WHERE model = 'Grant' AND payload->>'clientId' = $1)`,
      [clientId],
      t,
    );
  }

  /** Deletes rows past their expiry (a consumed code is kept until then, so its reuse is still recognised). */
  async deleteExpired(limit = 5000): Promise<number> {
    return this.exec(`DELETE FROM oidc_models WHERE ctid IN (SELECT ctid FROM oidc_models WHERE expires_at IS NOT NULL AND expires_at <= now() LIMIT $1)`, [
      limit,
    ]);
  }

  static grantable(model: string): boolean {
    return GRANTABLE.has(model);
  }
}

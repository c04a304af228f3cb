/**
 * oidc-provider's adapter interface over the Postgres store (domain/oidc/store.ts), one instance
 * per model name. Clients come from the client registry, never from this table.
 *
 * A consume that loses the race (the code or refresh token was consumed meanwhile, possibly by a
 * parallel request that read it unconsumed too) is reuse: the grant is revoked and the request
 * refused with `invalid_grant`, exactly as a later replay would be.
 */
import type { OidcPayload, OidcStore } from '../../domain/oidc/store';

/** What the adapter needs of the provider's error classes (passed in: oidc-provider is an ES module loaded at start). */
export interface ProviderErrors {
  InvalidGrant: new (description?: string) => Error;
}

export interface ClientSource {
  findForProvider(clientId: string): Promise<object | undefined>;
}

/** Called when a code or refresh token is presented again (the grant is revoked): audit it. */
export type ReuseListener = (row: { accountId?: string; clientId?: string; model: string }) => void;

export function adapterFactory(store: OidcStore, clients: ClientSource, errors: ProviderErrors, onReuse: ReuseListener = () => undefined) {
  return class PostgresAdapter {
    constructor(private readonly model: string) {}

    async upsert(id: string, payload: OidcPayload, expiresIn?: number): Promise<void> {
      if (this.model === 'Client') throw new Error('clients are registered through the admin API');
      await store.upsert(this.model, id, payload, expiresIn);
    }

    async find(id: string): Promise<OidcPayload | undefined> {
      if (typeof id !== 'string' || id.length === 0 || id.length > 512) return undefined;
      if (this.model === 'Client') return clients.findForProvider(id) as Promise<OidcPayload | undefined>;
      return store.find(this.model, id);
    }

    async findByUid(uid: string): Promise<OidcPayload | undefined> {
      return typeof uid === 'string' && uid.length <= 512 ? store.findByUid(this.model, uid) : undefined;
    }

    async findByUserCode(userCode: string): Promise<OidcPayload | undefined> {
      return typeof userCode === 'string' && userCode.length <= 512 ? store.findByUserCode(this.model, userCode) : undefined;
    }

    async consume(id: string): Promise<void> {
      if (await store.consume(this.model, id)) return;
      const row = await store.find(this.model, id);
      if (row?.grantId) await store.revokeByGrantId(row.grantId);
      onReuse({ accountId: row?.accountId, clientId: typeof row?.clientId === 'string' ? row.clientId : undefined, model: this.model });
      throw new errors.InvalidGrant(`${this.model === 'RefreshToken' ? 'refresh token' : 'grant'} already used`);
    }

    async destroy(id: string): Promise<void> {
      await store.destroy(this.model, id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await store.revokeByGrantId(grantId);
    }
  };
}

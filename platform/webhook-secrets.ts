/**
 * Webhook signing secrets in Vault KV, one secret per subscription at `<prefix>/webhooks/<id>`
 * (field `secret`): the API writes it when the subscription is created and destroys it (every
 * version) when the subscription is removed; the worker reads it to sign. Never in Postgres,
 * logs or workflow history.
 */
import type { VaultClient } from './vault';

/** Implements domain/webhooks.ts `WebhookSecrets` (structurally: platform does not import the domain). */
export class VaultWebhookSecrets {
  constructor(private readonly vault: Pick<VaultClient, 'kvGet' | 'kvPut' | 'kvDestroy'>) {}

  async put(id: string, secret: string): Promise<void> {
    await this.vault.kvPut(`webhooks/${id}`, { secret });
  }

  async get(id: string): Promise<string | null> {
    return (await this.vault.kvGet<{ secret?: string }>(`webhooks/${id}`))?.secret ?? null;
  }

  async remove(id: string): Promise<void> {
    await this.vault.kvDestroy(`webhooks/${id}`);
  }
}

/**
 * Webhook signing secrets in Vault KV, one secret per subscription at `<prefix>/webhooks/<id>`:
 * `secret`, and after a rotation the `previous` one with `previous_until`, so receivers have an
 * overlap to switch (deliveries carry a signature for each, Standard Webhooks allows several).
 * The API writes it when the subscription is created or its secret rotated and destroys it
 * (every version) when the subscription is removed; the worker reads it to sign. Never in
 * Postgres, logs or workflow history.
 */
import type { VaultClient } from './vault';

interface Stored {
  secret: string;
  previous?: string;
  previous_until?: string;
}

/** Implements domain/webhooks.ts `WebhookSecrets` (structurally: platform does not import the domain). */
export class VaultWebhookSecrets {
  constructor(private readonly vault: Pick<VaultClient, 'kvGet' | 'kvPut' | 'kvRead' | 'kvDestroy'>) {}

  async put(id: string, secret: string): Promise<void> {
    await this.vault.kvPut(`webhooks/${id}`, { secret });
  }

  /** The secrets to sign with now: the current one first, then the previous one while its overlap lasts. */
  async signing(id: string, now = Date.now()): Promise<string[]> {
    const s = await this.vault.kvGet<Stored>(`webhooks/${id}`);
    if (!s?.secret) return [];
    const previousLive = s.previous && s.previous_until && Date.parse(s.previous_until) > now;
    return previousLive ? [s.secret, s.previous!] : [s.secret];
  }

  /** Makes `next` the secret; the current one keeps signing until `previousUntil` (check-and-set against a concurrent rotation). */
  async rotate(id: string, next: string, previousUntil: Date): Promise<boolean> {
    const cur = await this.vault.kvRead<Stored>(`webhooks/${id}`);
    if (!cur?.data.secret) return false;
    await this.vault.kvPut(`webhooks/${id}`, { secret: next, previous: cur.data.secret, previous_until: previousUntil.toISOString() }, cur.version);
    return true;
  }

  async remove(id: string): Promise<void> {
    await this.vault.kvDestroy(`webhooks/${id}`);
  }
}

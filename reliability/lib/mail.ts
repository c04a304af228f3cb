/**
 * Collects every message maildev receives during a reliability run: polls its REST API, keeps
 * (recipient, subject, Message-ID, arrival) and deletes what it read, so maildev stays small over
 * thousands of messages and a restart of maildev (the SMTP fault) loses nothing already counted.
 * While maildev is down the poll just fails and tries again.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface CollectedMail {
  to: string;
  subject: string;
  messageId: string;
  /** ms since the epoch given to the collector */
  at: number;
}

interface MaildevMessage {
  id: string;
  subject?: string;
  to?: Array<{ address: string }>;
  headers?: Record<string, string>;
}

export class MailCollector {
  /** recipient (lower case) → messages */
  readonly byAddress = new Map<string, CollectedMail[]>();
  total = 0;
  private running = false;
  private loopDone?: Promise<void>;

  constructor(
    private readonly mailUi: string,
    private readonly epoch: number,
  ) {}

  start() {
    this.running = true;
    this.loopDone = this.loop();
  }

  async stop() {
    this.running = false;
    await this.loopDone;
    await this.pollOnce().catch(() => undefined);
  }

  private async loop() {
    while (this.running) {
      await this.pollOnce().catch(() => undefined);
      await sleep(500);
    }
  }

  async pollOnce(): Promise<number> {
    const res = await fetch(`${this.mailUi}/email`, { signal: AbortSignal.timeout(10000) });
    if (!res.ok) return 0;
    const list = (await res.json()) as MaildevMessage[];
    const at = Date.now() - this.epoch;
    for (const m of list) {
      for (const r of m.to ?? []) {
        const to = r.address.toLowerCase();
        const entry = { to, subject: m.subject ?? '', messageId: m.headers?.['message-id'] ?? '', at };
        this.byAddress.set(to, [...(this.byAddress.get(to) ?? []), entry]);
      }
      this.total++;
    }
    // Delete in small parallel batches what was read.
    for (let i = 0; i < list.length; i += 20) {
      await Promise.all(list.slice(i, i + 20).map((m) => fetch(`${this.mailUi}/email/${m.id}`, { method: 'DELETE' }).catch(() => undefined)));
    }
    return list.length;
  }

  /** Messages to `address` whose subject matches. */
  to(address: string, subject?: RegExp): CollectedMail[] {
    return (this.byAddress.get(address.toLowerCase()) ?? []).filter((m) => !subject || subject.test(m.subject));
  }
}

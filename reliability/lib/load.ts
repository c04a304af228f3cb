/**
 * The steady mixed load of the fault matrix and the soak: registrations, password logins, refresh
 * chains and forgot-password requests, spread over every API instance, with a client that behaves
 * like a careful production client behind a load balancer:
 *
 * - 503 or 429 with Retry-After: wait (Retry-After, capped at 2 s) and send the same request again;
 * - no answer (connection refused or reset: an instance died): send it again to the next instance;
 * - anything else that is not the operation's success status is an error the table reports.
 *
 * Every attempt is a Sample (time, operation, instance, status or "no answer", Retry-After, latency),
 * so a fault's window can be read off afterwards: what clients saw, when service came back.
 *
 * Accounting kept for afterwards: every registration and every forgot the server accepted (the
 * address and when), and each refresh chain's fate. A chain holds one refresh token at a time. A
 * token whose last attempt got no answer is "in flight": the server may have spent it without the
 * client seeing the successor. If the next attempt with that token is refused as spent, the chain
 * ended because its answer was lost in flight (counted apart, the client cannot tell and must sign
 * in again; not a server loss). If a token the server answered only with 503/429 (or never saw) is
 * refused as spent, the server spent a token without answering it: that chain is lost.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DEVICE_HEADERS } from '../../bench/lib/seed';

export type Op = 'register' | 'login' | 'refresh' | 'forgot';
export const OPS: Op[] = ['register', 'login', 'refresh', 'forgot'];
const SUCCESS: Record<Op, number> = { register: 201, login: 200, refresh: 200, forgot: 202 };

export interface Sample {
  /** ms since the load's epoch */
  t: number;
  op: Op;
  api: number;
  /** HTTP status, or 0 for no answer (connection refused, reset, timeout) */
  status: number;
  retryAfter: boolean;
  ms: number;
  /** problem+json code of an error answer */
  code?: string;
  /** a refusal of a refresh token whose previous attempt got no answer (lost in flight) */
  afterLostAnswer?: boolean;
}

export interface ChainStats {
  total: number;
  alive: number;
  /** ended because a token's answer was lost in flight and the retry found it spent */
  lostInFlight: number;
  /** a token answered only with 503/429 (or never answered) was found spent: a server loss */
  lost: number;
  /** ended by an unexpected answer (counted as errors too) */
  broken: number;
}

export interface LoadPlan {
  /** target operations per second, per operation (0: none) */
  rate: Record<Op, number>;
  /** concurrent loops per operation (refresh loops are the refresh chains) */
  loops: Record<Op, number>;
}

export interface LoadDeps {
  apis: string[];
  /** the address of seeded user n (1-based), all with password `password` */
  userEmail: (n: number) => string;
  users: number;
  password: string;
  /** a fresh unique address for a registration */
  newEmail: () => string;
}

export const LOAD_PASSWORD_NEW = 'quartz-lantern-maple-7';

const RETRY_AFTER_CAP_MS = 2000;
const REQUEST_TIMEOUT_MS = 15000;

class Chain {
  token?: string;
  /** the current token's last attempt got no answer */
  inFlight = false;
  state: 'alive' | 'lostInFlight' | 'lost' | 'broken' = 'alive';
  /** when the chain ended (ms on the load's clock) */
  endedAt = Infinity;
  constructor(readonly user: number) {}
  end(state: 'lostInFlight' | 'lost' | 'broken', at: number) {
    this.state = state;
    this.endedAt = at;
  }
}

export class MixedLoad {
  readonly samples: Sample[] = [];
  /** accepted registrations: address → time (ms since epoch of the load) */
  readonly registered = new Map<string, number>();
  /** accepted forgot requests for seeded addresses: address → times */
  readonly forgot = new Map<string, number[]>();
  /** logical operations that ended without success (after retries), by op */
  readonly failed: Record<Op, number> = { register: 0, login: 0, refresh: 0, forgot: 0 };
  readonly done: Record<Op, number> = { register: 0, login: 0, refresh: 0, forgot: 0 };
  readonly epoch = Date.now();
  private running = false;
  private loops: Promise<void>[] = [];
  private chains: Chain[] = [];
  private rr = 0;
  private nextUser = 0;
  private plan: LoadPlan = { rate: { register: 0, login: 0, refresh: 0, forgot: 0 }, loops: { register: 0, login: 0, refresh: 0, forgot: 0 } };

  constructor(private readonly deps: LoadDeps) {}

  now() {
    return Date.now() - this.epoch;
  }

  /** Starts the loops of `plan`; `setRate` changes the pace later without restarting. */
  start(plan: LoadPlan) {
    this.plan = plan;
    this.running = true;
    for (const op of OPS) for (let i = 0; i < plan.loops[op]; i++) this.loops.push(this.loop(op, i));
  }

  setRate(rate: Record<Op, number>) {
    this.plan = { ...this.plan, rate };
  }

  async stop() {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  /** Chains as they stand, or only those that ended within [from, to) (their fate then). */
  chainStats(from?: number, to?: number): ChainStats {
    const c = from === undefined ? this.chains : this.chains.filter((x) => x.endedAt >= from && x.endedAt < (to ?? Infinity));
    return {
      total: c.length,
      alive: c.filter((x) => x.state === 'alive').length,
      lostInFlight: c.filter((x) => x.state === 'lostInFlight').length,
      lost: c.filter((x) => x.state === 'lost').length,
      broken: c.filter((x) => x.state === 'broken').length,
    };
  }

  private pickUser(): number {
    this.nextUser = (this.nextUser % this.deps.users) + 1;
    return this.nextUser;
  }

  private async loop(op: Op, index: number) {
    let chain: Chain | undefined;
    // Stagger the loops' first requests over one interval.
    const interval = () => {
      const r = this.plan.rate[op];
      return r > 0 ? (this.plan.loops[op] / r) * 1000 : 0;
    };
    await sleep(Math.random() * Math.min(1000, interval() || 10));
    while (this.running) {
      const started = Date.now();
      if (this.plan.rate[op] <= 0) {
        await sleep(200);
        continue;
      }
      if (op === 'refresh') {
        if (!chain || chain.state !== 'alive') {
          chain = new Chain(this.pickUser());
          this.chains.push(chain);
        }
        await this.refreshStep(chain);
      } else await this.oneShot(op);
      const wait = interval() - (Date.now() - started);
      if (wait > 0) await sleep(wait * (0.8 + Math.random() * 0.4));
      void index;
    }
  }

  /** One attempt at instance `api`; never throws. */
  private async attempt(op: Op, api: number, path: string, body: unknown): Promise<{ status: number; json?: any; retryAfterMs?: number; sample: Sample }> {
    const t0 = Date.now();
    let status: number;
    let json: any;
    let retryAfter: string | null = null;
    try {
      const res = await fetch(`${this.deps.apis[api]}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...DEVICE_HEADERS },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      status = res.status;
      retryAfter = res.headers.get('retry-after');
      const text = await res.text();
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
    } catch {
      status = 0;
    }
    const sample: Sample = {
      t: t0 - this.epoch,
      op,
      api,
      status,
      retryAfter: retryAfter !== null,
      ms: Date.now() - t0,
      code: status >= 400 && typeof json?.code === 'string' ? json.code : undefined,
    };
    this.samples.push(sample);
    const ra = retryAfter !== null && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : undefined;
    return { status, json, retryAfterMs: ra, sample };
  }

  /**
   * Sends until success, an unexpected answer, or the load stops. Returns the final answer;
   * `sawNoAnswer` tells whether any attempt went unanswered.
   */
  private async send(op: Op, path: string, body: unknown): Promise<{ status: number; json?: any; sawNoAnswer: boolean }> {
    let api = this.rr++ % this.deps.apis.length;
    let sawNoAnswer = false;
    for (;;) {
      const r = await this.attempt(op, api, path, body);
      if (r.status === 0) {
        sawNoAnswer = true;
        api = (api + 1) % this.deps.apis.length;
        if (!this.running) return { ...r, sawNoAnswer };
        await sleep(50);
        continue;
      }
      if ((r.status === 503 || r.status === 429) && r.retryAfterMs !== undefined) {
        if (!this.running) return { ...r, sawNoAnswer };
        await sleep(Math.min(RETRY_AFTER_CAP_MS, Math.max(100, r.retryAfterMs)));
        continue;
      }
      return { ...r, sawNoAnswer };
    }
  }

  private async oneShot(op: Exclude<Op, 'refresh'>) {
    let email: string;
    let body: unknown;
    let path: string;
    if (op === 'register') {
      email = this.deps.newEmail();
      path = '/v1/auth/register';
      body = { email, password: LOAD_PASSWORD_NEW, name: 'Reliability User' };
    } else if (op === 'login') {
      email = this.deps.userEmail(this.pickUser());
      path = '/v1/auth/login';
      body = { email, password: this.deps.password };
    } else {
      email = this.deps.userEmail(this.pickUser());
      path = '/v1/auth/password/forgot';
      body = { email };
    }
    const r = await this.send(op, path, body);
    if (r.status === SUCCESS[op]) {
      this.done[op]++;
      if (op === 'register') this.registered.set(email, this.now());
      if (op === 'forgot') this.forgot.set(email, [...(this.forgot.get(email) ?? []), this.now()]);
    } else if (this.running || r.status !== 0) this.failed[op]++;
  }

  private async refreshStep(chain: Chain) {
    if (!chain.token) {
      const r = await this.send('login', '/v1/auth/login', { email: this.deps.userEmail(chain.user), password: this.deps.password });
      if (r.status === 200 && r.json?.refresh_token) chain.token = r.json.refresh_token as string;
      else {
        if (this.running) chain.end('broken', this.now());
      }
      return;
    }
    // Like `send`, but tracking whether the current token's answer was lost in flight.
    let api = this.rr++ % this.deps.apis.length;
    for (;;) {
      const r = await this.attempt('refresh', api, '/v1/auth/refresh', { refresh_token: chain.token });
      if (r.status === 200 && typeof r.json?.refresh_token === 'string') {
        chain.token = r.json.refresh_token as string;
        chain.inFlight = false;
        this.done.refresh++;
        return;
      }
      if (r.status === 0) {
        chain.inFlight = true;
        if (!this.running) return;
        api = (api + 1) % this.deps.apis.length;
        await sleep(50);
        continue;
      }
      if ((r.status === 503 || r.status === 429) && r.retryAfterMs !== undefined) {
        if (!this.running) return;
        await sleep(Math.min(RETRY_AFTER_CAP_MS, Math.max(100, r.retryAfterMs)));
        continue;
      }
      // A refusal of the token: spent (reuse detected) or the session ended.
      this.failed.refresh++;
      if (chain.inFlight && r.status === 401) r.sample.afterLostAnswer = true;
      chain.end(r.status === 401 ? (chain.inFlight ? 'lostInFlight' : 'lost') : 'broken', this.now());
      return;
    }
  }
}

/** Percentile of a sorted array (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** What clients saw in [from, to) ms: counts by status class, and the answers that break the rules. */
export function window(samples: Sample[], from: number, to: number) {
  const s = samples.filter((x) => x.t >= from && x.t < to);
  const ok = s.filter((x) => x.status >= 200 && x.status < 300).length;
  const s503 = s.filter((x) => x.status === 503 && x.retryAfter).length;
  const s429 = s.filter((x) => x.status === 429 && x.retryAfter).length;
  const noAnswer = s.filter((x) => x.status === 0).length;
  const afterLost = s.filter((x) => x.afterLostAnswer).length;
  const other = s.filter(
    (x) => !(x.status >= 200 && x.status < 300) && !((x.status === 503 || x.status === 429) && x.retryAfter) && x.status !== 0 && !x.afterLostAnswer,
  );
  return { n: s.length, ok, s503, s429, noAnswer, afterLost, other };
}

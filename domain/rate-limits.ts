/**
 * Rate limits per client IP and per account on the sensitive endpoints (login, registration,
 * password-forgot, refresh). Counters live in Postgres (rate-limiter-flexible's
 * RateLimiterPostgres over the process's Sequelize pool, table `rate_limits` from migration 002),
 * so every API instance shares them. An exhausted limit is `429 rate_limited` problem+json with
 * `Retry-After`. Account keys are hashed: no e-mail address is stored in the table.
 *
 * If Postgres fails, an in-memory limiter per process takes over (insurance), so limits still
 * hold (per instance) while the database is away.
 *
 * The HTTP side (which key a request counts against) is api/middleware/rate-limit.ts.
 */
import { createHash } from 'node:crypto';
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { Sequelize } from 'sequelize';
import type { Config } from '../platform/config';
import { AppError } from '../platform/errors';

/** `reauth`: a signed-in user's password re-authentication (password change, TOTP enrolment and removal), per user and IP. */
export type LimitedAction = 'login' | 'register' | 'forgot' | 'refresh' | 'reauth';
export type LimitScope = 'ip' | 'account';

export interface LimitSpec {
  points: number;
  duration: number;
}

export interface RateLimitSettings {
  enabled: boolean;
  ipAllowlist: string[];
  limits: Record<LimitedAction, Record<LimitScope, LimitSpec>>;
}

export function rateLimitSettings(c: Config): RateLimitSettings {
  return {
    enabled: c.RATE_LIMIT_ENABLED,
    ipAllowlist: c.RATE_LIMIT_IP_ALLOWLIST,
    limits: {
      login: { ip: c.RATE_LIMIT_LOGIN_IP, account: c.RATE_LIMIT_LOGIN_ACCOUNT },
      register: { ip: c.RATE_LIMIT_REGISTER_IP, account: c.RATE_LIMIT_REGISTER_ACCOUNT },
      forgot: { ip: c.RATE_LIMIT_FORGOT_IP, account: c.RATE_LIMIT_FORGOT_ACCOUNT },
      refresh: { ip: c.RATE_LIMIT_REFRESH_IP, account: c.RATE_LIMIT_REFRESH_ACCOUNT },
      reauth: { ip: c.RATE_LIMIT_REAUTH_IP, account: c.RATE_LIMIT_REAUTH_ACCOUNT },
    },
  };
}

/** A hashed, fixed-length key (the table's key column is varchar(255); no personal data in it). */
export function limitKey(value: string): string {
  return createHash('sha256').update(value).digest('base64url').slice(0, 32);
}

export class RateLimits {
  private readonly limiters = new Map<string, RateLimiterPostgres>();

  constructor(
    private readonly sequelize: Sequelize,
    readonly settings: RateLimitSettings,
  ) {}

  private limiter(action: LimitedAction, scope: LimitScope): RateLimiterPostgres {
    const name = `${action}:${scope}`;
    let l = this.limiters.get(name);
    if (!l) {
      const spec = this.settings.limits[action][scope];
      l = new RateLimiterPostgres({
        storeClient: this.sequelize,
        storeType: 'sequelize',
        tableName: 'rate_limits',
        tableCreated: true,
        clearExpiredByTimeout: true,
        keyPrefix: name,
        points: spec.points,
        duration: spec.duration,
        insuranceLimiter: new RateLimiterMemory({ keyPrefix: name, points: spec.points, duration: spec.duration }),
      });
      this.limiters.set(name, l);
    }
    return l;
  }

  /**
   * Spends one point of each applicable limit (IP first, then account); throws 429 when one is
   * exhausted. IPs on the allow-list skip the per-IP limit only.
   */
  async consume(action: LimitedAction, keys: { ip?: string | null; account?: string | null }): Promise<void> {
    if (!this.settings.enabled) return;
    const checks: Array<[LimitScope, string]> = [];
    if (keys.ip && !this.settings.ipAllowlist.includes(keys.ip)) checks.push(['ip', limitKey(keys.ip)]);
    if (keys.account) checks.push(['account', limitKey(keys.account)]);
    for (const [scope, key] of checks) {
      try {
        await this.limiter(action, scope).consume(key);
      } catch (res) {
        if (res instanceof RateLimiterRes) {
          const retryAfter = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
          throw new AppError(
            'rate_limited',
            `too many ${action} attempts; retry in ${retryAfter} s`,
            { retry_after: retryAfter, limit: scope },
            { 'Retry-After': String(retryAfter) },
          );
        }
        throw res;
      }
    }
  }

  /** Forgets an account's counter for an action (e.g. tests, or an admin unlock). */
  async reset(action: LimitedAction, account: string): Promise<void> {
    await this.limiter(action, 'account').delete(limitKey(account));
  }
}

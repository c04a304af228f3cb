import { emailLink } from '../../../domain/one-time-tokens';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_KEYS, ConfigError, parseConfig } from '../../../platform/config';

const base = { VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_ROLE_ID: 'r', VAULT_SECRET_ID: 's' };

describe('configuration', () => {
  test('applies defaults when only the required variables are set', () => {
    const c = parseConfig(base);
    expect(c.API_PORT).toBe(3000);
    expect(c.ACCESS_TOKEN_TTL).toBe(900);
    expect(c.JWT_ISSUER).toBe(c.PUBLIC_BASE_URL);
  });

  test('a missing or bad variable is named in the error', () => {
    expect(() => parseConfig({ ...base, VAULT_ADDR: undefined })).toThrow(/VAULT_ADDR/);
    expect(() => parseConfig({ ...base, API_PORT: 'eighty' })).toThrow(/API_PORT/);
    expect(() => parseConfig({ ...base, LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
    expect(() => parseConfig({ ...base, VAULT_SECRET_ID: undefined })).toThrow(/VAULT_SECRET_ID or VAULT_SECRET_ID_FILE/);
    try {
      parseConfig({ ...base, ACCESS_TOKEN_TTL: '-5', DB_PORT: 'x' });
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems.map((p) => p.split(':')[0]).sort()).toEqual(['ACCESS_TOKEN_TTL', 'DB_PORT']);
    }
  });

  test('API_CORS_ORIGINS takes exact origins only', () => {
    expect(parseConfig(base).API_CORS_ORIGINS).toBe('');
    expect(parseConfig({ ...base, API_CORS_ORIGINS: 'https://app.example.com, http://localhost:5173' }).API_CORS_ORIGINS).toMatch(/app/);
    for (const bad of ['*', 'https://*.example.com', 'https://app.example.com/', 'https://app.example.com/login', 'app.example.com', 'ftp://x.example']) {
      expect(() => parseConfig({ ...base, API_CORS_ORIGINS: bad })).toThrow(/API_CORS_ORIGINS/);
    }
  });

  test('e-mail link templates: the hosted pages by default, an absolute http(s) URL with {token} exactly once otherwise', () => {
    const c = parseConfig({ ...base, PUBLIC_BASE_URL: 'https://auth.example.com/' });
    expect([c.EMAIL_VERIFY_LINK, c.PASSWORD_RESET_LINK]).toEqual([
      'https://auth.example.com/verify-email?token={token}',
      'https://auth.example.com/reset-password?token={token}',
    ]);
    expect(parseConfig({ ...base, EMAIL_VERIFY_LINK: 'https://app.example.com/v#token={token}' }).EMAIL_VERIFY_LINK).toBe(
      'https://app.example.com/v#token={token}',
    );
    for (const bad of [
      'https://app.example.com/verify',
      'https://a.example/{token}/{token}',
      '/verify?token={token}',
      'javascript:alert({token})',
      'ftp://x.example/{token}',
    ]) {
      expect(() => parseConfig({ ...base, EMAIL_VERIFY_LINK: bad })).toThrow(/EMAIL_VERIFY_LINK/);
      expect(() => parseConfig({ ...base, PASSWORD_RESET_LINK: bad })).toThrow(/PASSWORD_RESET_LINK/);
    }
    expect(emailLink('https://app.example.com/r?t={token}&x=1', 'a b/c')).toBe('https://app.example.com/r?t=a%20b%2Fc&x=1');
  });

  test('refuses a restore-drill database that is the service database', () => {
    expect(() => parseConfig({ ...base, RESTORE_DRILL_DATABASE: 'authflow' })).toThrow(/RESTORE_DRILL_DATABASE: must not be DB_NAME/);
    expect(() => parseConfig({ ...base, DB_NAME: 'prod', RESTORE_DRILL_DATABASE: 'prod' })).toThrow(/RESTORE_DRILL_DATABASE/);
    expect(parseConfig({ ...base, DB_NAME: 'prod' }).RESTORE_DRILL_DATABASE).toBe('authflow_restore_drill');
  });

  test('Temporal: a client certificate without its key (or the reverse), an API key or TLS settings without TEMPORAL_TLS=true are refused', () => {
    const tls = { ...base, TEMPORAL_TLS: 'true' };
    expect(() => parseConfig({ ...tls, TEMPORAL_TLS_CERT: '/c.pem' })).toThrow(/TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY: give both/);
    expect(() => parseConfig({ ...tls, TEMPORAL_TLS_KEY: '/c.key' })).toThrow(/TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY: give both/);
    expect(() => parseConfig({ ...base, TEMPORAL_API_KEY: 'k' })).toThrow(/TEMPORAL_API_KEY: needs TEMPORAL_TLS=true/);
    expect(() => parseConfig({ ...base, TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'k' })).toThrow(/TEMPORAL_API_KEY: needs TEMPORAL_TLS=true/);
    expect(() => parseConfig({ ...base, TEMPORAL_TLS_CA: '/ca.pem' })).toThrow(/TEMPORAL_TLS: must be true when TEMPORAL_TLS_CA is set/);
    expect(() => parseConfig({ ...base, TEMPORAL_TLS: 'maybe' })).toThrow(/TEMPORAL_TLS/);
    expect(() => parseConfig({ ...base, TEMPORAL_API_KEY_FROM_VAULT: 'true' })).toThrow(/TEMPORAL_API_KEY_FROM_VAULT: needs TEMPORAL_TLS=true/);
    expect(() => parseConfig({ ...tls, TEMPORAL_API_KEY: 'k', TEMPORAL_API_KEY_FROM_VAULT: 'true' })).toThrow(/not both/);
    const ok = parseConfig({
      ...tls,
      TEMPORAL_TLS_CERT: '/c.pem',
      TEMPORAL_TLS_KEY: '/c.key',
      TEMPORAL_API_KEY: 'k',
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    expect(ok).toMatchObject({ TEMPORAL_TLS: true, TEMPORAL_API_KEY: 'k', TEMPORAL_TLS_SERVER_NAME: 'temporal.internal' });
    expect(parseConfig(base).TEMPORAL_TLS).toBe(false);
  });

  test('.env.example lists every variable the service reads', () => {
    const example = readFileSync(join(__dirname, '..', '..', '..', '.env.example'), 'utf8');
    const listed = new Set([...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
    expect(CONFIG_KEYS.filter((k) => !listed.has(k))).toEqual([]);
  });

  test('password-guessing limits default to the NIST-style values that .env.example states', () => {
    const example = readFileSync(join(__dirname, '..', '..', '..', '.env.example'), 'utf8');
    const stated = Object.fromEntries([...example.matchAll(/^([A-Z][A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1], m[2].trim()]));
    const c = parseConfig(base);
    const defaults = {
      LOGIN_THROTTLE_FREE_FAILURES: c.LOGIN_THROTTLE_FREE_FAILURES,
      LOGIN_THROTTLE_DELAYS: c.LOGIN_THROTTLE_DELAYS.join(','),
      LOGIN_THROTTLE_RESET: c.LOGIN_THROTTLE_RESET,
      LOCKOUT_THRESHOLD: c.LOCKOUT_THRESHOLD,
      LOCKOUT_DURATIONS: c.LOCKOUT_DURATIONS.join(','),
      LOCKOUT_LEVEL_RESET: c.LOCKOUT_LEVEL_RESET,
    };
    for (const [k, v] of Object.entries(defaults)) expect([k, stated[k]]).toEqual([k, String(v)]);
    // At most 100 consecutive failures before the account locks (SP 800-63B 5.2.2).
    expect(c.LOCKOUT_THRESHOLD).toBe(100);
    expect(c.LOGIN_THROTTLE_DELAYS).toEqual([5, 15, 60, 300, 900]);
  });
});

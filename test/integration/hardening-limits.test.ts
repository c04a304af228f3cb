/**
 * Rate-limit keys an attacker cannot choose (issue 14, findings 1 and 2).
 *
 * 1. The per-account key comes from the address as the schema validates it: padding, case and
 *    compatibility forms of one address all count against one key, and a body the schema refuses
 *    is answered 400 before anything is counted or done.
 * 2. The client address comes from TRUST_PROXY: the stack trusts one proxy hop
 *    (test/env/limits.json), so of `X-Forwarded-For: <anything>, <client>` only the entry our
 *    proxy appended counts; an API trusting a CIDR list ignores the header of a peer outside it.
 *
 * Per-IP limits (8 logins a minute in the tests) apply to every address but 127.0.0.1, which the
 * stack allow-lists; the forwarded clients here are documentation addresses (RFC 5737).
 */
import { startService, stopPid } from '../helpers/ops';
import { callFrom } from '../helpers/http-from';
import { api, stackInfo, uniqueEmail } from '../helpers/stack';
import { registerAndVerify } from '../helpers/users';

jest.setTimeout(180_000);

const direct = () => `http://127.0.0.1:${stackInfo().ports.api}`;
const WRONG = 'not-the-password-1';

function expect429(r: { status: number; body: any; headers: Record<string, unknown> | Headers }, limit: 'ip' | 'account') {
  expect([r.status, r.body.code, r.body.limit]).toEqual([429, 'rate_limited', limit]);
}

/** Ways to write one address that the schema accepts and normalisation turns into the same mailbox. */
function variants(email: string): string[] {
  const [local, domain] = email.split('@');
  return [
    `${' '.repeat(300)}${email}`,
    `${email}${' '.repeat(260)}`,
    `\t${email.toUpperCase()}\n`,
    `  ${local}@${domain.toUpperCase()}  `,
    // No-break and ideographic spaces trim away too.
    `\u00A0\u3000${email}\u00A0`,
  ];
}

describe('finding 1: per-account limits count the normalised address', () => {
  test('password guesses with the address padded (300 spaces, tabs, no-break spaces) or re-cased hit the account limit of the plain address', async () => {
    const victim = await registerAndVerify();
    const forms = variants(victim.email);
    let answered401 = 0;
    for (let i = 0; i < 30; i++) {
      const r = await api('POST', '/v1/auth/login', { body: { email: forms[i % forms.length], password: WRONG } });
      // 401 while the throttle allows, 423/429 once it or the lock steps in; never through.
      expect([401, 423, 429]).toContain(r.status);
      if (r.status === 401) answered401++;
      expect(r.body.access_token).toBeUndefined();
    }
    expect(answered401).toBeGreaterThan(0);
    // The 31st request, in the plain form, finds the account's budget spent (30 a minute).
    expect429(await api('POST', '/v1/auth/login', { body: { email: victim.email, password: victim.password } }), 'account');
  });

  test('forgot-password for one address written many ways: 15 a minute, then 429 for every form', async () => {
    const email = uniqueEmail('padded-forgot');
    const forms = variants(email);
    for (let i = 0; i < 15; i++) {
      const r = await api('POST', '/v1/auth/password/forgot', { body: { email: forms[i % forms.length] } });
      expect([i, r.status]).toEqual([i, 202]);
    }
    for (const f of [email, ...forms]) expect429(await api('POST', '/v1/auth/password/forgot', { body: { email: f } }), 'account');
  });

  test('a body the schema refuses is a 400 before anything is counted: no key, no request', async () => {
    const email = uniqueEmail('no-key');
    for (const body of [{ email: `${'x'.repeat(250)}@example.com`, password: WRONG }, { email: 'not-an-address', password: WRONG }, { password: WRONG }]) {
      const r = await api('POST', '/v1/auth/login', { body });
      expect([r.status, r.body.code]).toEqual([400, 'validation_failed']);
    }
    const bad = await api('POST', '/v1/auth/refresh', { body: { refresh_token: 'x'.repeat(600) } });
    expect([bad.status, bad.body.code]).toEqual([400, 'validation_failed']);
    // 31 refused bodies naming a real address (an unknown member): none spends the address's budget of 30.
    for (let i = 0; i < 31; i++) {
      const r = await api('POST', '/v1/auth/login', { body: { email, password: WRONG, remember: i } });
      expect([i, r.status]).toEqual([i, 400]);
    }
    const r = await api('POST', '/v1/auth/login', { body: { email, password: WRONG } });
    expect(r.status).toBe(401);
  });
});

describe('finding 2: the client address is the one our proxy saw', () => {
  test('one trusted hop: rotating the leftmost X-Forwarded-For entry does not escape the per-IP limit', async () => {
    const client = '198.51.100.23';
    const statuses: number[] = [];
    for (let i = 0; i < 9; i++) {
      // What a client sends through a proxy that appends the address it saw.
      const r = await callFrom(direct(), 'POST', '/v1/auth/login', { email: uniqueEmail('xff'), password: WRONG }, '127.0.0.1', {
        'X-Forwarded-For': `203.0.113.${i + 1}, ${client}`,
      });
      statuses.push(r.status);
      if (i === 8) expect429(r, 'ip');
    }
    expect(statuses.slice(0, 8)).toEqual(Array(8).fill(401));
    // Another client behind the same proxy still gets in.
    const other = await callFrom(direct(), 'POST', '/v1/auth/login', { email: uniqueEmail('xff'), password: WRONG }, '127.0.0.1', {
      'X-Forwarded-For': '198.51.100.24',
    });
    expect(other.status).toBe(401);
  });

  describe('an API trusting a CIDR list (TRUST_PROXY=127.0.0.34/32)', () => {
    let second: Awaited<ReturnType<typeof startService>>;
    let url: string;
    beforeAll(async () => {
      second = await startService(
        'api',
        { API_PORT: String(stackInfo().ports.api + 63), API_HOST: '127.0.0.1', TRUST_PROXY: '127.0.0.34/32' },
        'api-trust-cidr',
      );
      url = second.url!;
    }, 150_000);
    afterAll(async () => {
      if (second) await stopPid(second.pid);
    });

    test('a peer outside the list is the client, whatever it forwards', async () => {
      for (let i = 0; i < 9; i++) {
        const r = await callFrom(url, 'POST', '/v1/auth/login', { email: uniqueEmail('cidr'), password: WRONG }, '127.0.0.33', {
          'X-Forwarded-For': `203.0.113.${100 + i}`,
        });
        if (i < 8) expect(r.status).toBe(401);
        else expect429(r, 'ip');
      }
    });

    test('behind the trusted proxy: the nearest untrusted entry is the client; spoofed entries to its left do not matter', async () => {
      const client = '198.51.100.77';
      for (let i = 0; i < 9; i++) {
        const r = await callFrom(url, 'POST', '/v1/auth/login', { email: uniqueEmail('cidr-proxy'), password: WRONG }, '127.0.0.34', {
          'X-Forwarded-For': `10.9.9.${i}, ${client}`,
        });
        if (i < 8) expect(r.status).toBe(401);
        else expect429(r, 'ip');
      }
      const neighbour = await callFrom(url, 'POST', '/v1/auth/login', { email: uniqueEmail('cidr-proxy'), password: WRONG }, '127.0.0.34', {
        'X-Forwarded-For': '198.51.100.78',
      });
      expect(neighbour.status).toBe(401);
    });
  });
});

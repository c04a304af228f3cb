import * as nodeCrypto from 'node:crypto';

jest.mock('node:crypto', () => {
  const actual = jest.requireActual<typeof import('node:crypto')>('node:crypto');
  return {
    ...actual,
    randomBytes: jest.fn(actual.randomBytes),
    timingSafeEqual: jest.fn(actual.timingSafeEqual),
  };
});

import {
  RECOVERY_ALPHABET,
  generateRecoveryCodes,
  generateTotpSecret,
  hashRecoveryCode,
  normaliseRecoveryCode,
  otpauthUrl,
  totpStep,
  verifyTotp,
} from '../../../crypto/totp';

const { createHash, createHmac } = jest.requireActual<typeof import('node:crypto')>('node:crypto');

// ---------------------------------------------------------------------------------------------
// Independent reference: RFC 4226 HOTP / RFC 6238 TOTP with Node's HMAC-SHA1, and RFC 4648 base32.

function base32Decode(s: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of s.replace(/=+$/, '').toUpperCase()) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new Error(`bad base32 character ${ch}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const bytes: number[] = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

function referenceHotp(key: Buffer, counter: number, digits: number): string {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', key).update(msg).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const bin = (mac.readUInt32BE(offset) & 0x7fffffff) % 10 ** digits;
  return String(bin).padStart(digits, '0');
}

function referenceTotp(key: Buffer, unixSeconds: number, digits = 6): string {
  return referenceHotp(key, Math.floor(unixSeconds / 30), digits);
}

const RFC_KEY = Buffer.from('12345678901234567890', 'ascii');
/** base32("12345678901234567890"), written out rather than produced by the code under test. */
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

beforeEach(() => {
  jest.mocked(nodeCrypto.randomBytes).mockClear();
  jest.mocked(nodeCrypto.timingSafeEqual).mockClear();
});

describe('reference implementation (sanity check of the test itself)', () => {
  it('reproduces the RFC 6238 SHA-1 vector: T=59 → 94287082', () => {
    expect(referenceTotp(RFC_KEY, 59, 8)).toBe('94287082');
    expect(base32Decode(RFC_SECRET).equals(RFC_KEY)).toBe(true);
  });
});

describe('verifyTotp', () => {
  it.each([
    [59, '287082'],
    [1111111109, '081804'],
    [1111111111, '050471'],
    [1234567890, '005924'],
    [2000000000, '279037'],
    [20000000000, '353130'],
  ])('accepts the RFC 6238 SHA-1 code at T=%d (6-digit form %s)', (t, code) => {
    expect(referenceTotp(RFC_KEY, t)).toBe(code);
    expect(verifyTotp(RFC_SECRET, code, null, t * 1000)).toEqual({ ok: true, step: Math.floor(t / 30) });
  });

  it('agrees with the reference on a freshly generated secret at many times', () => {
    const secret = generateTotpSecret();
    const key = base32Decode(secret);
    for (let i = 0; i < 50; i++) {
      const t = 1_700_000_000 + i * 997;
      expect(verifyTotp(secret, referenceTotp(key, t), null, t * 1000)).toEqual({
        ok: true,
        step: Math.floor(t / 30),
      });
    }
  });

  it('accepts the previous and the next step, and says which step matched', () => {
    const now = 1_700_000_015_000;
    const step = totpStep(now);
    const at = (s: number) => referenceHotp(RFC_KEY, s, 6);
    expect(verifyTotp(RFC_SECRET, at(step - 1), null, now)).toEqual({ ok: true, step: step - 1 });
    expect(verifyTotp(RFC_SECRET, at(step), null, now)).toEqual({ ok: true, step });
    expect(verifyTotp(RFC_SECRET, at(step + 1), null, now)).toEqual({ ok: true, step: step + 1 });
  });

  it('rejects codes two steps or more away as invalid', () => {
    const now = 1_700_000_015_000;
    const step = totpStep(now);
    for (const s of [step - 3, step - 2, step + 2, step + 3]) {
      const code = referenceHotp(RFC_KEY, s, 6);
      // Skip the 1-in-a-million case where a far code equals one inside the window.
      const inWindow = [step - 1, step, step + 1].map((w) => referenceHotp(RFC_KEY, w, 6));
      if (inWindow.includes(code)) continue;
      expect(verifyTotp(RFC_SECRET, code, null, now)).toEqual({ ok: false, reason: 'invalid' });
    }
  });

  it('rejects a wrong code as invalid', () => {
    const code = referenceTotp(RFC_KEY, 59);
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    expect(verifyTotp(RFC_SECRET, wrong, null, 59_000)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('refuses the same code twice: a step at or before lastUsedStep is replayed', () => {
    const now = 1_700_000_015_000;
    const code = referenceTotp(RFC_KEY, now / 1000);
    const first = verifyTotp(RFC_SECRET, code, null, now);
    expect(first.ok).toBe(true);
    const used = first.ok ? first.step : NaN;
    expect(verifyTotp(RFC_SECRET, code, used, now)).toEqual({ ok: false, reason: 'replayed' });
    expect(verifyTotp(RFC_SECRET, code, used + 1, now)).toEqual({ ok: false, reason: 'replayed' });
    expect(verifyTotp(RFC_SECRET, code, used - 1, now)).toEqual({ ok: true, step: used });
  });

  it('refuses an older code after a newer one was used, but accepts a newer one after an older', () => {
    const now = 1_700_000_015_000;
    const step = totpStep(now);
    const prev = referenceHotp(RFC_KEY, step - 1, 6);
    const next = referenceHotp(RFC_KEY, step + 1, 6);
    expect(verifyTotp(RFC_SECRET, prev, step, now)).toEqual({ ok: false, reason: 'replayed' });
    expect(verifyTotp(RFC_SECRET, next, step, now)).toEqual({ ok: true, step: step + 1 });
  });

  it.each([
    ['too short', '28708'],
    ['too long', '2870821'],
    ['the 8-digit form', '94287082'],
    ['letters', '28a082'],
    ['a sign', '-87082'],
    ['empty', ''],
    ['full-width digits', '２８７０８２'],
    ['Arabic-Indic digits', '٢٨٧٠٨٢'],
  ])('reports malformed input (%s) without checking it', (_label, code) => {
    expect(verifyTotp(RFC_SECRET, code, null, 59_000)).toEqual({ ok: false, reason: 'malformed' });
    expect(nodeCrypto.timingSafeEqual).not.toHaveBeenCalled();
  });

  it('ignores spaces, as apps display codes like "287 082"', () => {
    expect(verifyTotp(RFC_SECRET, ' 287 082 ', null, 59_000)).toEqual({ ok: true, step: 1 });
  });

  it('compares with timingSafeEqual against all three steps, even after an early match', () => {
    const now = 1_700_000_015_000;
    const code = referenceHotp(RFC_KEY, totpStep(now) - 1, 6);
    expect(verifyTotp(RFC_SECRET, code, null, now).ok).toBe(true);
    expect(nodeCrypto.timingSafeEqual).toHaveBeenCalledTimes(3);
  });

  it('uses the current time when no time is given', () => {
    const code = referenceTotp(RFC_KEY, Date.now() / 1000);
    expect(verifyTotp(RFC_SECRET, code, null).ok).toBe(true);
  });
});

describe('generateTotpSecret', () => {
  it('returns 32 base32 characters encoding 160 random bits from crypto.randomBytes', () => {
    const secret = generateTotpSecret();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(base32Decode(secret)).toHaveLength(20);
    expect(nodeCrypto.randomBytes).toHaveBeenCalledWith(20);
  });

  it('encodes exactly the bytes the CSPRNG returned', () => {
    jest.mocked(nodeCrypto.randomBytes).mockImplementationOnce(() => Buffer.from(RFC_KEY));
    expect(generateTotpSecret()).toBe(RFC_SECRET);
  });

  it('returns a different secret every time', () => {
    const secrets = new Set(Array.from({ length: 100 }, () => generateTotpSecret()));
    expect(secrets.size).toBe(100);
  });
});

describe('otpauthUrl', () => {
  it('builds an otpauth://totp URI with issuer-prefixed label, secret and the fixed parameters', () => {
    const url = new URL(otpauthUrl(RFC_SECRET, 'alice@example.com', 'Auth Flow'));
    expect(url.protocol).toBe('otpauth:');
    expect(url.host).toBe('totp');
    expect(decodeURIComponent(url.pathname)).toBe('/Auth Flow:alice@example.com');
    expect(url.searchParams.get('secret')).toBe(RFC_SECRET);
    expect(url.searchParams.get('issuer')).toBe('Auth Flow');
    expect(url.searchParams.get('algorithm')).toBe('SHA1');
    expect(url.searchParams.get('digits')).toBe('6');
    expect(url.searchParams.get('period')).toBe('30');
  });

  it('removes colons from label and issuer so the label splits in exactly one place', () => {
    const url = new URL(otpauthUrl(RFC_SECRET, 'user:with:colons', 'Acme: Prod'));
    expect(decodeURIComponent(url.pathname)).toBe('/Acme Prod:userwithcolons');
  });
});

describe('recovery codes', () => {
  const alphabet = `[${RECOVERY_ALPHABET}]`;
  const shape = new RegExp(`^${alphabet}{5}-${alphabet}{5}-${alphabet}{5}$`);

  it('generates ten codes by default, or as many as asked', () => {
    expect(generateRecoveryCodes()).toHaveLength(10);
    expect(generateRecoveryCodes(3)).toHaveLength(3);
  });

  it('formats codes as three dash-separated groups from an alphabet without look-alikes', () => {
    for (const code of generateRecoveryCodes(50)) expect(code).toMatch(shape);
    expect(RECOVERY_ALPHABET).not.toMatch(/[01ilo]/);
    expect(new Set(RECOVERY_ALPHABET).size).toBe(RECOVERY_ALPHABET.length);
  });

  it('gives each code at least 60 bits of entropy', () => {
    const chars = normaliseRecoveryCode(generateRecoveryCodes(1)[0]).length;
    expect(chars * Math.log2(RECOVERY_ALPHABET.length)).toBeGreaterThanOrEqual(60);
  });

  it('draws codes from the CSPRNG and uses every symbol of the alphabet', () => {
    const codes = generateRecoveryCodes(200);
    expect(nodeCrypto.randomBytes).toHaveBeenCalled();
    expect(new Set(codes).size).toBe(200);
    const seen = new Set(codes.join('').replace(/-/g, ''));
    expect([...seen].sort().join('')).toBe([...RECOVERY_ALPHABET].sort().join(''));
  });

  it('normalises typed codes: lowercase, no dashes, no spaces', () => {
    expect(normaliseRecoveryCode(' AB2CD-EF3GH - JK4MN ')).toBe('ab2cdef3ghjk4mn');
  });

  it('hashes a code as SHA-256 of its normalised form, so typing variants match', () => {
    const code = 'ab2cd-ef3gh-jk4mn';
    const expected = createHash('sha256').update('ab2cdef3ghjk4mn').digest();
    expect(hashRecoveryCode(code).equals(expected)).toBe(true);
    expect(hashRecoveryCode('AB2CD EF3GH JK4MN').equals(expected)).toBe(true);
    expect(hashRecoveryCode('ab2cdef3ghjk4mn').equals(expected)).toBe(true);
    expect(hashRecoveryCode('ab2cd-ef3gh-jk4mp').equals(expected)).toBe(false);
    expect(hashRecoveryCode(code)).toHaveLength(32);
  });
});

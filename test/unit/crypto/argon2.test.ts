import { hashPassword, needsRehash, verifyPassword, warmUpDummyHash, type Argon2Params } from '../../../crypto/argon2';
import { argon2Params } from '../../../platform/config';

/** Cheap parameters so the suite stays fast; the config's minimum memory is 8 MiB. */
const FAST: Argon2Params = { memoryKiB: 8192, timeCost: 1, parallelism: 1 };

describe('argon2Params', () => {
  it('maps the three ARGON2_* settings onto memory, time and parallelism', () => {
    expect(argon2Params({ ARGON2_MEMORY_KIB: 19456, ARGON2_TIME_COST: 2, ARGON2_PARALLELISM: 3 })).toEqual({ memoryKiB: 19456, timeCost: 2, parallelism: 3 });
  });
});

describe('hashPassword', () => {
  it('produces an argon2id PHC string carrying the configured parameters', async () => {
    const hash = await hashPassword('correct horse battery staple', {
      memoryKiB: 9216,
      timeCost: 2,
      parallelism: 2,
    });
    const m = /^\$argon2id\$v=19\$([a-z=0-9,]+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/.exec(hash);
    expect(m).not.toBeNull();
    const params = Object.fromEntries(m![1].split(',').map((kv) => kv.split('=')));
    expect(params).toEqual({ m: '9216', t: '2', p: '2' });
  });

  it('salts every hash, so the same password hashes differently twice', async () => {
    const a = await hashPassword('same password', FAST);
    const b = await hashPassword('same password', FAST);
    expect(a).not.toBe(b);
  });
});

describe('verifyPassword', () => {
  let hash: string;
  beforeAll(async () => {
    hash = await hashPassword('correct horse battery staple', FAST);
  });

  it('accepts the password the hash was made from', async () => {
    await expect(verifyPassword(hash, 'correct horse battery staple', FAST)).resolves.toBe(true);
  });

  it('rejects a different password, including one differing only in case or by a space', async () => {
    await expect(verifyPassword(hash, 'correct horse battery stapler', FAST)).resolves.toBe(false);
    await expect(verifyPassword(hash, 'Correct horse battery staple', FAST)).resolves.toBe(false);
    await expect(verifyPassword(hash, 'correct horse battery staple ', FAST)).resolves.toBe(false);
  });

  it('treats composed and decomposed Unicode forms of a password as the same (NFKC)', async () => {
    const decomposed = 'cafe\u0301 au lait';
    const composed = 'caf\u00e9 au lait';
    const h = await hashPassword(decomposed, FAST);
    await expect(verifyPassword(h, composed, FAST)).resolves.toBe(true);
  });

  it('verifies a hash made with other parameters than the current ones', async () => {
    const old = await hashPassword('legacy password', { memoryKiB: 8192, timeCost: 2, parallelism: 1 });
    await expect(verifyPassword(old, 'legacy password', FAST)).resolves.toBe(true);
  });

  it('returns false for an unknown user (null or undefined hash)', async () => {
    await expect(verifyPassword(null, 'anything at all', FAST)).resolves.toBe(false);
    await expect(verifyPassword(undefined, 'anything at all', FAST)).resolves.toBe(false);
  });

  it.each([
    ['an empty string', ''],
    ['plain text', 'not-a-hash'],
    ['a truncated argon2 hash', '$argon2id$v=19$m=8192,t=1,p=1$c2FsdA'],
    ['a bcrypt hash', '$2b$10$abcdefghijklmnopqrstuuO6r4Jh3/v0H5pM1qg0A1GQbL8YJ5E2'],
    ['garbage parameters', '$argon2id$v=19$m=x,t=y,p=z$c2FsdHNhbHQ$aGFzaGhhc2g'],
  ])('returns false instead of throwing for a malformed hash: %s', async (_label, bad) => {
    await expect(verifyPassword(bad, 'password', FAST)).resolves.toBe(false);
  });

  it('spends about as long on an unknown user as on a wrong password', async () => {
    // Costly enough that "return false at once" is orders of magnitude faster than a verification.
    const slow: Argon2Params = { memoryKiB: 32768, timeCost: 3, parallelism: 1 };
    const real = await hashPassword('the real password', slow);
    await warmUpDummyHash(slow);
    const time = async (fn: () => Promise<unknown>) => {
      const samples: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = process.hrtime.bigint();
        await fn();
        samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      return samples.sort((a, b) => a - b)[1];
    };
    const wrongPassword = await time(() => verifyPassword(real, 'a wrong password', slow));
    const unknownUser = await time(() => verifyPassword(null, 'a wrong password', slow));
    expect(wrongPassword).toBeGreaterThan(5);
    expect(unknownUser).toBeGreaterThan(wrongPassword * 0.5);
    expect(unknownUser).toBeLessThan(wrongPassword * 2);
  });

  it('makes the dummy hash on demand, so an unknown user is handled even before any warm-up', async () => {
    const fresh: Argon2Params = { memoryKiB: 8200, timeCost: 1, parallelism: 1 };
    const [a, b] = await Promise.all([verifyPassword(null, 'x', fresh), verifyPassword(undefined, 'y', fresh)]);
    expect([a, b]).toEqual([false, false]);
  });
});

describe('needsRehash', () => {
  let hash: string;
  beforeAll(async () => {
    hash = await hashPassword('some password', FAST);
  });

  it('is false for a hash made with exactly the current parameters', () => {
    expect(needsRehash(hash, FAST)).toBe(false);
  });

  it('is true when memory, time cost or parallelism changed', () => {
    expect(needsRehash(hash, { ...FAST, memoryKiB: 16384 })).toBe(true);
    expect(needsRehash(hash, { ...FAST, timeCost: 2 })).toBe(true);
    expect(needsRehash(hash, { ...FAST, parallelism: 2 })).toBe(true);
  });

  it('is true for an argon2i hash with the same parameters (we want argon2id)', () => {
    expect(needsRehash(hash.replace('$argon2id$', '$argon2i$'), FAST)).toBe(true);
  });

  it('is true, without throwing, for a malformed hash', () => {
    expect(needsRehash('not-a-hash', FAST)).toBe(true);
    expect(needsRehash('$argon2id$garbage', FAST)).toBe(true);
  });
});

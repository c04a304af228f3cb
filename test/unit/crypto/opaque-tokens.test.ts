/** Opaque tokens: random, shaped as documented, stored as their SHA-256 only. */
import { createHash } from 'node:crypto';
import { hashOpaque, looksLikeRefreshToken, newRefreshToken, numericCode } from '../../../crypto/opaque-tokens';

describe('refresh tokens', () => {
  test('are random, prefixed, and pass the shape check', () => {
    const a = newRefreshToken();
    const b = newRefreshToken();
    expect(a.token).not.toBe(b.token);
    expect(looksLikeRefreshToken(a.token)).toBe(true);
    expect(looksLikeRefreshToken(a.token.slice(0, -1))).toBe(false);
    expect(a.hash.length).toBe(32);
    expect(a.hash.equals(hashOpaque(a.token))).toBe(true);
  });
});

test('a token is stored as the SHA-256 of its text', () => {
  expect(hashOpaque('abc').equals(createHash('sha256').update('abc').digest())).toBe(true);
});

test('numeric codes have exactly the asked number of digits', () => {
  for (let i = 0; i < 200; i++) expect(numericCode(8)).toMatch(/^[0-9]{8}$/);
});

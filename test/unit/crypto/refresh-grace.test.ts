import { hashOpaque, newRefreshToken } from '../../../crypto/opaque-tokens';
import { openSuccessor, sealSuccessor } from '../../../crypto/refresh-grace';

describe('the sealed successor of a spent refresh token', () => {
  const spent = newRefreshToken();
  const successor = newRefreshToken().token;

  test('opens with the spent token to the successor, and holds neither in the clear', () => {
    const sealed = sealSuccessor(spent.token, spent.hash, successor);
    expect(openSuccessor(spent.token, spent.hash, sealed)).toBe(successor);
    expect(sealed.includes(Buffer.from(successor))).toBe(false);
    expect(sealed.includes(Buffer.from(successor.slice(3), 'base64url'))).toBe(false);
    // A fresh IV each time: two seals of the same successor differ.
    expect(sealSuccessor(spent.token, spent.hash, successor).equals(sealed)).toBe(false);
  });

  test('does not open with another token, another row hash, or after tampering', () => {
    const sealed = sealSuccessor(spent.token, spent.hash, successor);
    const other = newRefreshToken();
    expect(openSuccessor(other.token, spent.hash, sealed)).toBeUndefined();
    expect(openSuccessor(spent.token, hashOpaque('something else'), sealed)).toBeUndefined();
    for (const i of [0, 13, sealed.length - 1]) {
      const t = Buffer.from(sealed);
      t[i] ^= 1;
      expect(openSuccessor(spent.token, spent.hash, t)).toBeUndefined();
    }
    expect(openSuccessor(spent.token, spent.hash, sealed.subarray(0, 28))).toBeUndefined();
    expect(openSuccessor(spent.token, spent.hash, Buffer.alloc(0))).toBeUndefined();
  });
});

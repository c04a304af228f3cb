import { AMR, hasSecondFactor } from '../../../../domain/sessions/authentication-methods';

describe('hasSecondFactor: the one answer for admin routes, step-up and acr', () => {
  test.each([
    [['pwd'], false],
    [[], false],
    [['otp'], false],
    [['swk'], false],
    [['swk', 'user'], false],
    [['pwd', 'otp'], true],
    [['otp', 'pwd'], true],
    [['pwd', 'swk'], true],
    [['pwd', 'hwk'], true],
    [['swk', 'mfa'], true],
    [['hwk', 'user', 'mfa'], true],
    [['pwd', 'user'], false],
  ])('%j -> %s', (amr, expected) => {
    expect(hasSecondFactor(amr)).toBe(expected);
  });

  test('the values are RFC 8176 names', () => {
    expect(Object.values(AMR).sort()).toEqual(['hwk', 'mfa', 'otp', 'pwd', 'swk', 'user']);
  });
});

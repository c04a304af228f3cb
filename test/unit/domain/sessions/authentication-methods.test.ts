import { ACR, acrFor, AMR, hasSecondFactor, meetsAcr } from '../../../../domain/sessions/authentication-methods';

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

describe('acr: derived from amr in one place, weakest first', () => {
  test.each([
    [['pwd'], ACR.singleFactor],
    [['swk', 'user'], ACR.singleFactor],
    [['pwd', 'otp'], ACR.multiFactor],
    [['swk', 'user', 'mfa'], ACR.phishingResistant],
    [['pwd', 'hwk'], ACR.phishingResistant],
  ])('%j -> %s', (amr, acr) => {
    expect(acrFor(amr)).toBe(acr);
  });

  test('a level is met by itself or a stronger one; an unknown level never', () => {
    expect(meetsAcr(['pwd'], ACR.singleFactor)).toBe(true);
    expect(meetsAcr(['pwd'], ACR.multiFactor)).toBe(false);
    expect(meetsAcr(['pwd', 'otp'], ACR.singleFactor)).toBe(true);
    expect(meetsAcr(['pwd', 'otp'], ACR.multiFactor)).toBe(true);
    expect(meetsAcr(['pwd', 'otp'], ACR.phishingResistant)).toBe(false);
    expect(meetsAcr(['swk', 'user', 'mfa'], ACR.phishingResistant)).toBe(true);
    expect(meetsAcr(['pwd', 'otp'], 'urn:someone-else:gold')).toBe(false);
  });
});

import { createHash } from 'node:crypto';
import { deriveFingerprint, fingerprintInput, parseUserAgent, primaryLanguage } from '../../../../domain/sessions/fingerprint';

const UA = {
  firefoxLinux: 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0',
  firefoxLinuxMinor: 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.1.1',
  firefoxLinuxNext: 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0',
  firefoxWindows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0',
  chromeWindows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36',
  chromeWindowsPatch: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.130 Safari/537.36',
  chromeMac: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36',
  chromeAndroid: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36',
  chromeIos: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1',
  edgeWindows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91',
  operaWindows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36 OPR/105.0.0.0',
  samsung: 'Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36',
  safariMac: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15',
  safariIphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1',
  chromeOs: 'Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  curl: 'curl/8.4.0',
  curlOld: 'curl/7.88.1',
  okhttp: 'okhttp/4.12.0',
  node: 'node',
  undici: 'undici',
  python: 'python-requests/2.31.0',
  custom: 'MyBankApp/3.2.1 (iPhone; iOS 17.1)',
};

describe('deriveFingerprint: labels', () => {
  it.each([
    [UA.firefoxLinux, 'Firefox 120 on Linux'],
    [UA.firefoxWindows, 'Firefox 120 on Windows'],
    [UA.chromeWindows, 'Chrome 120 on Windows'],
    [UA.chromeMac, 'Chrome 119 on macOS'],
    [UA.chromeAndroid, 'Chrome 120 on Android'],
    [UA.chromeIos, 'Chrome 120 on iOS'],
    [UA.edgeWindows, 'Edge 120 on Windows'],
    [UA.operaWindows, 'Opera 105 on Windows'],
    [UA.samsung, 'Samsung Internet 23 on Android'],
    [UA.safariMac, 'Safari 17 on macOS'],
    [UA.safariIphone, 'Safari 17 on iOS'],
    [UA.chromeOs, 'Chrome 120 on ChromeOS'],
    [UA.curl, 'curl'],
    [UA.okhttp, 'okhttp'],
    [UA.node, 'Node.js'],
    [UA.undici, 'Node.js'],
    [UA.python, 'Python requests'],
  ])('labels %j as %j', (userAgent, label) => {
    expect(deriveFingerprint({ userAgent }).label).toBe(label);
  });

  it.each([
    ['no User-Agent', undefined],
    ['an empty User-Agent', ''],
    ['an unrecognised app', UA.custom],
    ['garbage', '\u0000<script>alert(1)</script>'],
  ])('labels %s as "Unknown device"', (_label, userAgent) => {
    expect(deriveFingerprint({ userAgent }).label).toBe('Unknown device');
  });

  it('does not mistake "nodemailer-like" product names for Node.js', () => {
    expect(parseUserAgent('nodejs-custom-client/2.0').family).not.toBe('Node.js');
  });
});

describe('deriveFingerprint: what makes two requests the same device', () => {
  const fp = (h: Parameters<typeof deriveFingerprint>[0]) => deriveFingerprint(h).hash.toString('hex');

  it('is deterministic and 32 bytes of SHA-256 over the canonical input', () => {
    const h = { userAgent: UA.firefoxLinux, acceptLanguage: 'en-US,en;q=0.9', deviceId: 'abc' };
    const expected = createHash('sha256').update(fingerprintInput(h)).digest();
    expect(deriveFingerprint(h).hash.equals(expected)).toBe(true);
    expect(deriveFingerprint(h).hash).toHaveLength(32);
    expect(fp(h)).toBe(fp({ ...h }));
  });

  it('starts the canonical input with a version tag', () => {
    expect(fingerprintInput({})).toMatch(/^\["fp1",/);
  });

  it('ignores minor and patch browser updates', () => {
    expect(fp({ userAgent: UA.firefoxLinux })).toBe(fp({ userAgent: UA.firefoxLinuxMinor }));
    expect(fp({ userAgent: UA.chromeWindows })).toBe(fp({ userAgent: UA.chromeWindowsPatch }));
  });

  it('treats a new major browser version as a different device', () => {
    expect(fp({ userAgent: UA.firefoxLinux })).not.toBe(fp({ userAgent: UA.firefoxLinuxNext }));
  });

  it('distinguishes browsers and operating systems', () => {
    const all = [UA.firefoxLinux, UA.firefoxWindows, UA.chromeWindows, UA.edgeWindows, UA.safariMac];
    expect(new Set(all.map((userAgent) => fp({ userAgent }))).size).toBe(all.length);
  });

  it('ignores the OS version (iOS 17.1 and 17.1.2 on the same Safari major)', () => {
    const a = UA.safariIphone;
    const b = a.replace('17_1_2', '17_2').replace('Version/17.1.2', 'Version/17.2');
    expect(fp({ userAgent: a })).toBe(fp({ userAgent: b }));
  });

  it('tells two unknown clients apart by their product token and major version', () => {
    expect(fp({ userAgent: 'MyBankApp/3.2.1' })).toBe(fp({ userAgent: 'MyBankApp/3.4.0' }));
    expect(fp({ userAgent: 'MyBankApp/3.2.1' })).not.toBe(fp({ userAgent: 'OtherApp/3.2.1' }));
    expect(fp({ userAgent: 'MyBankApp/3.2.1' })).not.toBe(fp({ userAgent: 'MyBankApp/4.0.0' }));
  });

  it('uses only the first Accept-Language tag, case-insensitively', () => {
    const base = { userAgent: UA.chromeMac };
    expect(fp({ ...base, acceptLanguage: 'en-US,en;q=0.9,fr;q=0.8' })).toBe(fp({ ...base, acceptLanguage: 'en-us,de;q=0.5' }));
    expect(fp({ ...base, acceptLanguage: 'en-US' })).not.toBe(fp({ ...base, acceptLanguage: 'fr-FR' }));
  });

  it('includes the device id, trimmed, when present', () => {
    const base = { userAgent: UA.chromeAndroid, acceptLanguage: 'de' };
    expect(fp({ ...base, deviceId: 'device-1' })).not.toBe(fp({ ...base, deviceId: 'device-2' }));
    expect(fp({ ...base, deviceId: '  device-1\n' })).toBe(fp({ ...base, deviceId: 'device-1' }));
    expect(fp({ ...base, deviceId: 'device-1' })).not.toBe(fp(base));
    expect(fp({ ...base, deviceId: '   ' })).toBe(fp(base));
  });

  it('keeps only the first 200 characters of the device id', () => {
    const base = { userAgent: UA.curl };
    const head = 'x'.repeat(200);
    expect(fp({ ...base, deviceId: head + 'AAA' })).toBe(fp({ ...base, deviceId: head + 'BBB' }));
    expect(fp({ ...base, deviceId: head.slice(1) + 'A' })).not.toBe(fp({ ...base, deviceId: head.slice(1) + 'B' }));
  });

  it('keeps a device id with quotes, commas or newlines as one field of the canonical input', () => {
    const deviceId = 'a"},{"lang":"en\nua=curl';
    const parsed = JSON.parse(fingerprintInput({ deviceId, acceptLanguage: 'fr' })) as unknown[];
    expect(parsed).toEqual(['fp1', { device: deviceId }, { ua: ['', '', ''] }, { lang: 'fr' }]);
  });

  it('gives the same fingerprint to a curl upgrade within the same major version only', () => {
    expect(fp({ userAgent: 'curl/8.4.0' })).toBe(fp({ userAgent: 'curl/8.5.0' }));
    expect(fp({ userAgent: UA.curl })).not.toBe(fp({ userAgent: UA.curlOld }));
  });
});

describe('primaryLanguage', () => {
  it.each([
    ['en-US,en;q=0.9', 'en-us'],
    ['fr', 'fr'],
    [' de-CH ; q=1 , de', 'de-ch'],
    ['zh-Hant-TW', 'zh-hant-tw'],
    ['*', ''],
    ['', ''],
    [undefined, ''],
    ['<script>', ''],
  ])('takes %j as %j', (header, expected) => {
    expect(primaryLanguage(header)).toBe(expected);
  });
});

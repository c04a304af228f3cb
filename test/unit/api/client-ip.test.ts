/** Which address is the client's (api/middleware/client-ip.ts) under each TRUST_PROXY form, with
 * the X-Forwarded-For values an attacker would write. */
import { clientAddressResolver, normaliseAddress } from '../../../api/middleware/client-ip';
import { parseConfig } from '../../../platform/config';

const trust = (v: string) => parseConfig({ VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_ROLE_ID: 'r', VAULT_SECRET_ID: 's', TRUST_PROXY: v }).TRUST_PROXY;

describe('TRUST_PROXY', () => {
  test('true (believe the leftmost entry) is refused with a message saying what to give instead', () => {
    expect(() => trust('true')).toThrow(/TRUST_PROXY.*number of proxies in front, or their CIDRs/s);
    expect(() => trust('11')).toThrow(/TRUST_PROXY/);
    expect(() => trust('10.0.0.0/33')).toThrow(/not a CIDR.*10\.0\.0\.0\/33/);
    expect(() => trust('10.0.0.0/8,proxy.internal')).toThrow(/proxy\.internal/);
  });
  test('false, a hop count and a CIDR list parse', () => {
    expect(trust('false')).toEqual({ kind: 'none' });
    expect(trust('2')).toEqual({ kind: 'hops', hops: 2 });
    expect(trust('10.0.0.0/8, fd00::/8,192.0.2.7')).toEqual({ kind: 'cidrs', cidrs: ['10.0.0.0/8', 'fd00::/8', '192.0.2.7'] });
  });
});

describe('no proxy trusted', () => {
  const ip = clientAddressResolver({ kind: 'none' });
  test('the socket peer, whatever the client forwards', () => {
    expect(ip('203.0.113.5', '1.2.3.4')).toBe('203.0.113.5');
    expect(ip('::ffff:203.0.113.5', undefined)).toBe('203.0.113.5');
  });
});

describe('a hop count', () => {
  const one = clientAddressResolver({ kind: 'hops', hops: 1 });
  const two = clientAddressResolver({ kind: 'hops', hops: 2 });
  test('one proxy: the entry it appended, not the leftmost the client wrote', () => {
    expect(one('10.0.0.2', 'spoofed-1.1.1.1, 198.51.100.7')).toBe('198.51.100.7');
    expect(one('10.0.0.2', '9.9.9.9, 8.8.8.8, 198.51.100.7')).toBe('198.51.100.7');
    expect(one('10.0.0.2', ['9.9.9.9', '198.51.100.7'])).toBe('198.51.100.7');
  });
  test('two proxies: the second entry from the right', () => {
    expect(two('10.0.0.2', '9.9.9.9, 198.51.100.7, 10.0.0.9')).toBe('198.51.100.7');
  });
  test('a shorter chain ends at its last entry; no header is the peer', () => {
    expect(two('10.0.0.2', '198.51.100.7')).toBe('198.51.100.7');
    expect(one('10.0.0.2', undefined)).toBe('10.0.0.2');
  });
  test('garbage where an address should be is never the key: the walk stops before it', () => {
    expect(one('10.0.0.2', 'x-random-key')).toBe('10.0.0.2');
    expect(two('10.0.0.2', '198.51.100.7, not-an-ip, 10.0.0.9')).toBe('10.0.0.9');
  });
});

describe('trusted CIDRs', () => {
  const ip = clientAddressResolver({ kind: 'cidrs', cidrs: ['10.0.0.0/8', 'fd00::/8', '192.0.2.7'] });
  test('the nearest address outside the trusted ranges', () => {
    expect(ip('10.0.0.2', '9.9.9.9, 198.51.100.7, 10.1.2.3')).toBe('198.51.100.7');
    expect(ip('fd00::1', '2001:db8::5')).toBe('2001:db8::5');
    expect(ip('192.0.2.7', '[2001:db8::6]')).toBe('2001:db8::6');
    expect(ip('::ffff:10.0.0.2', '198.51.100.7')).toBe('198.51.100.7');
  });
  test('a peer outside them is the client: its X-Forwarded-For is ignored', () => {
    expect(ip('203.0.113.5', '198.51.100.7')).toBe('203.0.113.5');
    expect(ip('192.0.2.8', '198.51.100.7')).toBe('192.0.2.8');
  });
  test('only proxies all the way: the leftmost of them; garbage stops the walk', () => {
    expect(ip('10.0.0.2', '10.0.0.3')).toBe('10.0.0.3');
    expect(ip('10.0.0.2', 'bogus, 10.0.0.3')).toBe('10.0.0.3');
  });
});

test('address normalisation', () => {
  expect(normaliseAddress(' ::FFFF:192.0.2.1 ')).toBe('192.0.2.1');
  expect(normaliseAddress('[2001:DB8::1]')).toBe('2001:db8::1');
  expect(normaliseAddress('fe80::1%eth0')).toBe('fe80::1');
});

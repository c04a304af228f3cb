import { isPublicAddress, postWebhook, WebhookTargetRefused } from '../../../platform/webhook-http';

test('public addresses are public; loopback, private, link-local, CGNAT, multicast, mapped and unspecified ones are not', () => {
  for (const ip of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8']) expect([ip, isPublicAddress(ip)]).toEqual([ip, true]);
  for (const ip of [
    '127.0.0.1',
    '10.0.0.1',
    '172.16.5.4',
    '192.168.0.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '::1',
    '::',
    'fe80::1',
    'fd12::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:a9fe:a9fe',
    'not-an-ip',
  ]) {
    expect([ip, isPublicAddress(ip)]).toEqual([ip, false]);
  }
});

test('a host name that resolves to a non-public address is refused in the connection lookup itself; plain http is refused', async () => {
  const s = { timeoutMs: 2000, privateHosts: [] };
  await expect(postWebhook('https://localhost:9/x', {}, '{}', s)).rejects.toBeInstanceOf(WebhookTargetRefused);
  await expect(postWebhook('https://127.0.0.1:9/x', {}, '{}', s)).rejects.toBeInstanceOf(WebhookTargetRefused);
  await expect(postWebhook('http://example.com/x', {}, '{}', s)).rejects.toBeInstanceOf(WebhookTargetRefused);
  // Allowed by name: the lookup passes and the connection is tried (nothing listens on port 9).
  await expect(postWebhook('https://localhost:9/x', {}, '{}', { ...s, privateHosts: ['localhost'] })).rejects.not.toBeInstanceOf(WebhookTargetRefused);
});

/**
 * Sends one webhook request, and refuses targets that would turn the service into a proxy into
 * its own network (server-side request forgery: Vault and Postgres listen on loopback). A target
 * host may resolve only to public addresses, unless it is one of WEBHOOK_PRIVATE_HOSTS. The check
 * runs in the connection's own DNS lookup, so the address that is checked is the address that
 * is connected to (no second resolution an attacker's DNS could answer differently). Redirects
 * are not followed. `isPublicAddress` is the one statement of what counts as public.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { BlockList, isIP } from 'node:net';

// Two lists: Node's BlockList matches IPv4 addresses against IPv4-mapped IPv6 rules too.
const PRIVATE_V4 = new BlockList();
const PRIVATE_V6 = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  PRIVATE_V4.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  PRIVATE_V6.addSubnet(net, bits, 'ipv6');

/** Whether an IP address is on the public internet (not loopback, private, link-local, CGNAT, multicast, reserved, mapped). */
export function isPublicAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return !PRIVATE_V4.check(ip, 'ipv4');
  if (family !== 6) return false;
  // An IPv4-mapped address (::ffff:a.b.c.d or ::ffff:xxxx:xxxx) is its IPv4 address.
  const mapped = /^::ffff:(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(ip);
  if (mapped) {
    const v4 =
      mapped[1] ?? [parseInt(mapped[2], 16) >> 8, parseInt(mapped[2], 16) & 255, parseInt(mapped[3], 16) >> 8, parseInt(mapped[3], 16) & 255].join('.');
    return isPublicAddress(v4);
  }
  return !PRIVATE_V6.check(ip, 'ipv6');
}

export class WebhookTargetRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookTargetRefused';
  }
}

export interface WebhookHttpSettings {
  timeoutMs: number;
  /** Host names allowed to resolve to non-public addresses (WEBHOOK_PRIVATE_HOSTS). */
  privateHosts: readonly string[];
  /** Extra CA certificates (PEM file) to trust for webhook targets (WEBHOOK_CA_FILE). */
  caFile?: string;
}

/** POSTs `body` to `url` with `headers`; resolves with the status, rejects on a refused target or a network failure. */
export function postWebhook(url: string, headers: Record<string, string>, body: string, s: WebhookHttpSettings): Promise<{ status: number }> {
  const target = new URL(url);
  if (target.protocol !== 'https:') return Promise.reject(new WebhookTargetRefused('only https:// targets'));
  const host = target.hostname.replace(/^\[|\]$/g, '');
  const allowPrivate = s.privateHosts.includes(host.toLowerCase());
  if (isIP(host) && !allowPrivate && !isPublicAddress(host)) return Promise.reject(new WebhookTargetRefused(`${host} is not a public address`));
  const ca = s.caFile ? readFileSync(s.caFile) : undefined;
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'user-agent': 'Authflow-Webhooks/1' },
        timeout: s.timeoutMs,
        ...(ca ? { ca: [ca] } : {}),
        lookup: (hostname, options, cb) => {
          dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
            if (err) return cb(err, '', 0);
            const bad = addresses.find((a) => !isPublicAddress(a.address));
            if (bad && !allowPrivate) return cb(new WebhookTargetRefused(`${hostname} resolves to ${bad.address}, not a public address`), '', 0);
            const first = addresses[0];
            if ((options as { all?: boolean }).all) return (cb as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
            cb(null, first.address, first.family);
          });
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${s.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

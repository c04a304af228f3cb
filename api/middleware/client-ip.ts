/**
 * The client's address, decided once per request before anything reads `ctx.ip` (rate limits,
 * audit events, device fingerprints). X-Forwarded-For is written by whoever sends the request, so
 * only the entries added by proxies we trust count (TRUST_PROXY, platform/config.ts):
 *
 * - `none`: the socket peer; forwarded headers are ignored.
 * - `hops` N: N proxies stand in front of the API. The chain is the socket peer followed by the
 *   X-Forwarded-For entries from right to left; the client is entry N of it (0 = the peer), or
 *   the last one if the chain is shorter (the conventional hop count of Express's `trust proxy`).
 * - `cidrs`: walk the same chain while the address lies in a trusted CIDR; the first address
 *   outside is the client. A peer outside them means no proxy was involved: the peer is the client.
 *
 * An entry that is not an IP address (garbage a client wrote where a proxy should have) is never
 * taken: the walk stops at the nearest valid address before it, so such requests count against
 * that proxy's address, never against a fresh key an attacker chose.
 */
import { BlockList, isIP } from 'node:net';
import type Koa from 'koa';
import type { TrustProxy } from '../../platform/config';

/** `::ffff:1.2.3.4` is 1.2.3.4; brackets and a zone id are dropped. */
export function normaliseAddress(a: string): string {
  let s = a.trim();
  if (s.startsWith('[') && s.includes(']')) s = s.slice(1, s.indexOf(']'));
  const zone = s.indexOf('%');
  if (zone > 0) s = s.slice(0, zone);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s);
  return (mapped ? mapped[1] : s).toLowerCase();
}

function blockListOf(cidrs: string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [addr, bits] = c.split('/');
    const a = normaliseAddress(addr);
    const family = isIP(a) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(a, family);
    else list.addSubnet(a, Number(bits), family);
  }
  return list;
}

/** A function from (socket peer, X-Forwarded-For header values) to the client's address. */
export function clientAddressResolver(trust: TrustProxy): (peer: string, forwardedFor: string | string[] | undefined) => string {
  if (trust.kind === 'none') return (peer) => normaliseAddress(peer);
  const trusted = trust.kind === 'cidrs' ? blockListOf(trust.cidrs) : undefined;
  const isTrusted = (a: string) => trusted!.check(a, isIP(a) === 6 ? 'ipv6' : 'ipv4');
  return (peer, forwardedFor) => {
    const chain = [normaliseAddress(peer)];
    const header = Array.isArray(forwardedFor) ? forwardedFor.join(',') : (forwardedFor ?? '');
    const entries = header ? header.split(',').map(normaliseAddress).reverse() : [];
    if (trust.kind === 'hops') {
      for (let i = 0; i < entries.length && chain.length <= trust.hops; i++) {
        if (!isIP(entries[i])) break;
        chain.push(entries[i]);
      }
      return chain[chain.length - 1];
    }
    let client = chain[0];
    if (!isIP(client) || !isTrusted(client)) return client;
    for (const e of entries) {
      if (!isIP(e)) break;
      client = e;
      if (!isTrusted(e)) break;
    }
    return client;
  };
}

/** Sets `ctx.request.ip` from the resolver; mount first. */
export function clientIp(trust: TrustProxy): Koa.Middleware {
  const resolve = clientAddressResolver(trust);
  return async (ctx, next) => {
    ctx.request.ip = resolve(ctx.req.socket.remoteAddress ?? '', ctx.req.headers['x-forwarded-for']);
    await next();
  };
}

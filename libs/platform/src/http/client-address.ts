import { isIP } from 'node:net';

/**
 * The key under which a client address is counted by a limit (the global rate limit, the
 * failed-login limit per address). IPv4 addresses count one by one; an IPv6 client
 * usually holds a whole /64 (one subscriber, SLAAC, privacy addresses), so IPv6 addresses
 * count per /64: `2001:db8:1:2::a` and `2001:db8:1:2:ffff::1` share `2001:db8:1:2::/64`.
 * IPv4-mapped IPv6 (`::ffff:192.0.2.7`, what a dual-stack socket reports) is the IPv4
 * address, and the IPv6 loopback stays itself.
 *
 * The address itself comes from Fastify's `request.ip`, which honours `X-Forwarded-For`
 * only as far as `TRUST_PROXY` allows (see createHttpAdapter).
 */
export function clientAddressKey(ip: string | undefined): string {
  if (!ip) return 'unknown';
  const zone = ip.indexOf('%');
  const bare = zone === -1 ? ip : ip.slice(0, zone);
  const version = isIP(bare);
  if (version === 4) return bare;
  if (version !== 6) return ip;
  const hextets = ipv6Hextets(bare.toLowerCase());
  if (!hextets) return bare.toLowerCase();
  if (hextets.slice(0, 5).every((h) => h === 0) && hextets[5] === 0xffff) {
    return [hextets[6] >> 8, hextets[6] & 0xff, hextets[7] >> 8, hextets[7] & 0xff].join('.');
  }
  if (hextets.slice(0, 7).every((h) => h === 0) && hextets[7] === 1) return '::1';
  return `${hextets.slice(0, 4).map((h) => h.toString(16)).join(':')}::/64`;
}

/** `2001:db8::1` → eight 16-bit groups; also the `::ffff:1.2.3.4` form. Null if malformed. */
function ipv6Hextets(address: string): number[] | null {
  let text = address;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const octets = tail.split('.').map(Number);
    if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) return null;
    text = `${text.slice(0, lastColon + 1)}${((octets[0] << 8) | octets[1]).toString(16)}:${((octets[2] << 8) | octets[3]).toString(16)}`;
  }
  const sides = text.split('::');
  if (sides.length > 2) return null;
  const left = sides[0] ? sides[0].split(':') : [];
  const right = sides.length === 2 && sides[1] ? sides[1].split(':') : [];
  const fill = sides.length === 2 ? 8 - left.length - right.length : 0;
  if (fill < 0 || left.length + fill + right.length !== 8) return null;
  const groups = [...left, ...new Array<string>(fill).fill('0'), ...right].map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : NaN));
  return groups.some(Number.isNaN) ? null : groups;
}

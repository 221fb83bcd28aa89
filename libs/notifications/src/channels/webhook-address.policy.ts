import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { DestinationRefusedError } from '../domain/notification.errors';

/**
 * Address ranges a webhook must never reach unless NOTIFICATIONS_ALLOW_PRIVATE_WEBHOOKS is
 * on: this host, private networks, link-local (cloud metadata at 169.254.169.254 and
 * fd00:ec2::254 included), carrier-grade NAT, documentation, multicast and reserved ranges,
 * and NAT64/6to4 forms that embed an IPv4 address. BlockList checks IPv4-mapped IPv6
 * addresses (`::ffff:127.0.0.1`) against the IPv4 rules by itself; a `::ffff:0:0/96` rule
 * here would match every IPv4 address.
 */
const BLOCKED_SUBNETS: [string, number, 'ipv4' | 'ipv6'][] = [
  ['0.0.0.0', 8, 'ipv4'],
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'],
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'],
  ['172.16.0.0', 12, 'ipv4'],
  ['192.0.0.0', 24, 'ipv4'],
  ['192.0.2.0', 24, 'ipv4'],
  ['192.88.99.0', 24, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'],
  ['198.51.100.0', 24, 'ipv4'],
  ['203.0.113.0', 24, 'ipv4'],
  ['224.0.0.0', 4, 'ipv4'],
  ['240.0.0.0', 4, 'ipv4'],
  ['::', 128, 'ipv6'],
  ['::1', 128, 'ipv6'],
  ['64:ff9b::', 96, 'ipv6'],
  ['64:ff9b:1::', 48, 'ipv6'],
  ['100::', 64, 'ipv6'],
  ['2001:db8::', 32, 'ipv6'],
  ['2002::', 16, 'ipv6'],
  ['fc00::', 7, 'ipv6'],
  ['fe80::', 10, 'ipv6'],
  ['fec0::', 10, 'ipv6'],
  ['ff00::', 8, 'ipv6'],
];

const blocked = new BlockList();
for (const [network, prefix, type] of BLOCKED_SUBNETS) blocked.addSubnet(network, prefix, type);

export function isInternalAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  return blocked.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export interface ResolvedDestination {
  address: string;
  family: 4 | 6;
}

/** `[::1]` → `::1`: URL keeps the brackets of IPv6 literals. */
function bareHost(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

/** `localhost` and `*.localhost` are loopback by definition (RFC 6761 §6.3), whatever DNS says. */
function isLoopbackName(host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}

/**
 * Decides where a webhook may go. When a URL is saved only what it says by itself is
 * checked: its form, and a literal address (or `localhost`) that is internal; DNS is not
 * asked, since its answer is neither the user's input nor stable (a transient failure must
 * not refuse a valid setting), and answering by it would let users probe internal names.
 * Every delivery resolves the name, refuses it unless every address is public, and connects
 * to exactly the address that was checked, so DNS cannot be switched to an internal
 * address in between (DNS rebinding). docs/api.md, "Webhooks".
 */
export class WebhookAddressPolicy {
  constructor(
    readonly allowPrivate: boolean,
    private readonly resolve: (hostname: string) => Promise<ResolvedDestination[]> = async (hostname) =>
      (await lookup(hostname, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family as 4 | 6 })),
  ) {}

  /** A problem with the URL's form, or null. */
  checkSyntax(raw: string): string | null {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return 'must be an absolute http(s) URL';
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must use http or https';
    if (url.username || url.password) return 'must not contain credentials';
    if (!url.hostname) return 'must name a host';
    return null;
  }

  /** True when the URL's host is, without asking DNS, an address webhooks may not reach. */
  isInternalLiteral(hostname: string): boolean {
    if (this.allowPrivate) return false;
    const host = bareHost(hostname);
    return isIP(host) !== 0 ? isInternalAddress(host) : isLoopbackName(host);
  }

  /**
   * Resolves the host and returns the address to connect to. Throws DestinationRefusedError,
   * the same for a name that does not resolve (now) and one that resolves to an internal
   * address; `reason` tells the operator which.
   */
  async destination(hostname: string): Promise<ResolvedDestination> {
    const host = bareHost(hostname);
    const literal = isIP(host);
    let addresses: ResolvedDestination[];
    if (literal) addresses = [{ address: host, family: literal as 4 | 6 }];
    else if (!this.allowPrivate && isLoopbackName(host)) throw new DestinationRefusedError(host, 'a loopback name');
    else {
      try {
        addresses = await this.resolve(host);
      } catch (error) {
        throw new DestinationRefusedError(host, `does not resolve (${(error as { code?: string }).code ?? (error as Error).message})`);
      }
    }
    if (addresses.length === 0) throw new DestinationRefusedError(host, 'does not resolve (no addresses)');
    if (!this.allowPrivate) {
      // Any internal answer refuses the host: a mix is how rebinding attacks start.
      const internal = addresses.find((a) => isInternalAddress(a.address));
      if (internal) throw new DestinationRefusedError(host, `resolves to ${internal.address}, an internal address`);
    }
    return addresses[0];
  }
}

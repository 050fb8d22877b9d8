/**
 * The SSRF guard of the webhook target: a task's URL must not make the scheduler call loopback,
 * private, link-local or cloud metadata addresses, unless PUNCTUAL_ALLOW_PRIVATE_TARGETS opens them.
 *
 * Names are checked after DNS resolution, on every new connection, and the socket connects to the
 * addresses that were checked: the guard is the `lookup` of net/tls.connect, so there is no second
 * resolution a rebinding DNS server could answer differently. IP literals never reach `lookup`, so
 * the connector checks them itself, and `checkUrlHost` checks them before a request is even built.
 */
import type { LookupAddress, LookupOptions } from 'node:dns';
import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Agent, buildConnector } from 'undici';

export const ALLOW_PRIVATE_TARGETS_VAR = 'PUNCTUAL_ALLOW_PRIVATE_TARGETS';

/** Most specific first: the metadata address sits inside link-local, broadcast inside 240/4. */
const REFUSED_RANGES: ReadonlyArray<readonly [reason: string, cidrs: readonly string[]]> = [
  ['cloud metadata', ['169.254.169.254/32', 'fd00:ec2::254/128']],
  // Linux connects 0.0.0.0 (and ::) to the local host.
  ['unspecified', ['0.0.0.0/8', '::/128']],
  ['loopback', ['127.0.0.0/8', '::1/128']],
  ['private', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']],
  ['CGNAT (shared address space)', ['100.64.0.0/10']],
  ['link-local', ['169.254.0.0/16', 'fe80::/10']],
  ['unique-local', ['fc00::/7']],
  ['multicast', ['224.0.0.0/4', 'ff00::/8']],
  ['broadcast', ['255.255.255.255/32']],
  [
    'reserved',
    [
      '192.0.0.0/24', // IETF protocol assignments
      '192.0.2.0/24', // documentation
      '198.18.0.0/15', // benchmarking
      '198.51.100.0/24', // documentation
      '203.0.113.0/24', // documentation
      '240.0.0.0/4',
      '::/96', // IPv4-compatible, deprecated
      '100::/64', // discard
      '2001:db8::/32', // documentation
      '64:ff9b:1::/48', // local-use NAT64
      'fec0::/10', // site-local, deprecated
    ],
  ],
];

const REFUSED: ReadonlyArray<{ reason: string; ranges: BlockList }> = REFUSED_RANGES.map(([reason, cidrs]) => {
  const ranges = new BlockList();
  for (const cidr of cidrs) addCidr(ranges, cidr);
  return { reason, ranges };
});

/**
 * Why connecting to this IP address is refused, or null for a public address. IPv6 forms that
 * carry an IPv4 address (mapped, NAT64, 6to4) are judged by that address.
 */
export function refusalReason(address: string): string | null {
  const ip = withoutZone(address);
  const family = isIP(ip);
  if (family === 0) return 'not an IP address';
  if (family === 6) {
    const embedded = embeddedIpv4(ip);
    if (embedded !== null) {
      const reason = refusalReason(embedded.address);
      return reason === null ? null : `${embedded.form} ${reason}`;
    }
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  return REFUSED.find(({ ranges }) => ranges.check(ip, type))?.reason ?? null;
}

export interface AllowList {
  /** An IPv4-mapped address is allowed when its IPv4 address is. */
  allowsAddress(address: string): boolean;
  allowsHost(hostname: string): boolean;
}

/**
 * Reads PUNCTUAL_ALLOW_PRIVATE_TARGETS: comma-separated CIDRs (`10.0.0.0/8`), IP addresses and host
 * names (`localhost`, or `*.example.test` for every subdomain). Throws on an entry it cannot read,
 * so a typo does not silently leave a range closed.
 */
export function parseAllowList(text: string | undefined): AllowList {
  const addresses = new BlockList();
  const hosts = new Set<string>();
  const domainSuffixes: string[] = [];
  for (const raw of (text ?? '').split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    if (entry.includes('/') || looksLikeAddress(entry)) {
      if (!addCidr(addresses, entry.includes('/') ? entry : `${entry}/${isIP(entry) === 4 ? 32 : 128}`)) {
        throw new Error(`${ALLOW_PRIVATE_TARGETS_VAR}: "${entry}" is not a valid IP address or CIDR`);
      }
    } else if (HOST_PATTERN.test(entry)) {
      const host = normalizeHost(entry);
      if (host.startsWith('*.')) domainSuffixes.push(host.slice(1));
      else hosts.add(host);
    } else {
      throw new Error(`${ALLOW_PRIVATE_TARGETS_VAR}: "${entry}" is not a valid IP address, CIDR or host name`);
    }
  }
  return {
    allowsAddress(address) {
      const ip = withoutZone(address);
      const family = isIP(ip);
      // BlockList matches an IPv4-mapped IPv6 address against IPv4 ranges itself.
      return family !== 0 && addresses.check(ip, family === 4 ? 'ipv4' : 'ipv6');
    },
    allowsHost(hostname) {
      const host = normalizeHost(hostname);
      return hosts.has(host) || domainSuffixes.some((suffix) => host.endsWith(suffix));
    },
  };
}

export function allowListFromEnv(env: NodeJS.ProcessEnv = process.env): AllowList {
  return parseAllowList(env[ALLOW_PRIVATE_TARGETS_VAR]);
}

/** No retry can make a refused target acceptable: the webhook target fails the task at once. */
export class TargetRefusedError extends Error {
  readonly code = 'PUNCTUAL_TARGET_REFUSED';
  readonly host: string;
  readonly address: string;
  readonly reason: string;

  constructor(host: string, address: string, reason: string) {
    const target = host === address ? address : `${host} resolves to ${address}`;
    super(`webhook target ${target} (${reason}): refused; allow it with ${ALLOW_PRIVATE_TARGETS_VAR}`);
    this.name = 'TargetRefusedError';
    this.host = host;
    this.address = address;
    this.reason = reason;
  }
}

/** The refusal in an error from undici, which may carry it as the cause. */
export function targetRefusal(err: unknown): TargetRefusedError | null {
  if (err instanceof TargetRefusedError) return err;
  return err instanceof Error && err.cause !== undefined ? targetRefusal(err.cause) : null;
}

/**
 * Refuses a URL whose host is a refused IP literal. The WHATWG parser has already turned odd
 * spellings (`2130706433`, `0177.0.0.1`, `[::ffff:127.0.0.1]`) into plain addresses.
 */
export function checkUrlHost(url: URL, allow: AllowList): void {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host) === 0) return;
  const refusal = refuse(host, host, allow);
  if (refusal !== null) throw refusal;
}

/** Resolves every address of a host name, as `dns.lookup` with `all: true` does. */
export type Resolve = (hostname: string, options: LookupOptions) => Promise<LookupAddress[]>;

const systemResolve: Resolve = (hostname, options) => dnsLookup(hostname, { ...options, all: true });

/**
 * A `lookup` for net/tls.connect that resolves the host and refuses it when any of its addresses is
 * refused: a mix of a public and a private record would otherwise let the connection pick the
 * private one. It hands back only the addresses it checked, so the socket connects to one of them.
 */
export function guardedLookup(allow: AllowList, resolve: Resolve = systemResolve): LookupFunction {
  return (hostname, options, callback) => {
    // net looks at the error before the address.
    const fail = (err: NodeJS.ErrnoException): void => callback(err, []);
    resolve(hostname, options).then((addresses) => {
      const [first] = addresses;
      if (first === undefined) return fail(notFound(hostname));
      const refusal = allow.allowsHost(hostname)
        ? null
        : addresses.map(({ address }) => refuse(hostname, address, allow)).find((found) => found !== null);
      if (refusal) return fail(refusal);
      // Happy eyeballs (autoSelectFamily) asks for every address; a plain connect for one.
      if (options.all) callback(null, addresses);
      else callback(null, first.address, first.family);
    }, fail);
  };
}

export interface GuardedAgentOptions extends Omit<Agent.Options, 'connect'> {
  /** Options of undici's connector (TLS settings, keep-alive); `lookup` is the guard's. */
  connect?: buildConnector.BuildOptions;
}

/**
 * An undici Agent whose every new connection goes through the guard: names through guardedLookup,
 * IP literals checked before connecting. A kept-alive connection stays on its checked address.
 */
export function guardedAgent(
  allow: AllowList,
  options: GuardedAgentOptions = {},
  resolve: Resolve = systemResolve,
): Agent {
  const { connect, connectTimeout, maxCachedSessions, autoSelectFamily, autoSelectFamilyAttemptTimeout, ...rest } =
    options;
  // A custom connect function makes undici skip building its own connector, so the options it
  // would have passed to buildConnector (see Pool) are passed here.
  const connector = buildConnector({
    allowH2: options.allowH2,
    maxCachedSessions,
    timeout: connectTimeout,
    ...(typeof autoSelectFamily === 'boolean' ? { autoSelectFamily, autoSelectFamilyAttemptTimeout } : undefined),
    ...connect,
    lookup: guardedLookup(allow, resolve),
  });
  return new Agent({
    ...rest,
    connect(connectOptions, callback) {
      // net.connect skips lookup for an IP literal; undici has already taken off IPv6 brackets.
      const { hostname } = connectOptions;
      const refusal = isIP(hostname) === 0 ? null : refuse(hostname, hostname, allow);
      if (refusal !== null) return callback(refusal, null);
      // Returning the socket lets undici cancel the attempt.
      return connector(connectOptions, callback);
    },
  });
}

function refuse(host: string, address: string, allow: AllowList): TargetRefusedError | null {
  const reason = refusalReason(address);
  if (reason === null || allow.allowsAddress(address)) return null;
  return new TargetRefusedError(host, address, reason);
}

function notFound(hostname: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname });
}

/** Adds `address/bits`; false when it is not a valid CIDR. */
function addCidr(list: BlockList, cidr: string): boolean {
  const [address = '', bits = '', extra] = cidr.split('/');
  const family = isIP(address);
  // BlockList would take a zone ID and drop it; an allow-list entry has no use for one.
  if (family === 0 || extra !== undefined || address.includes('%') || !/^\d{1,3}$/.test(bits)) return false;
  const prefix = Number(bits);
  if (prefix > (family === 4 ? 32 : 128)) return false;
  list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
  return true;
}

/** Letters, digits, `-` and `_` (compose service names), with an optional `*.` in front. */
const HOST_PATTERN = /^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$/i;

/**
 * An entry the URL parser would read as an IP address: IPv6, or a last label that is a number
 * (`10.1`, `0x7f.1`). Such an entry must be a plain address, not a host name.
 */
function looksLikeAddress(entry: string): boolean {
  const lastLabel = entry.replace(/\.$/, '').split('.').pop() ?? '';
  return entry.includes(':') || /^(\d+|0x[0-9a-f]*)$/i.test(lastLabel);
}

function normalizeHost(hostname: string): string {
  return hostname.toLowerCase().replace(/\.$/, '');
}

/** `fe80::1%eth0`: the zone ID names an interface, not part of the address. */
function withoutZone(address: string): string {
  const zone = address.indexOf('%');
  return zone === -1 ? address : address.slice(0, zone);
}

/** IPv6 prefixes whose address carries an IPv4 address in bits `at` to `at + 32`. */
const IPV4_CARRIERS: ReadonlyArray<{ form: string; matches: (groups: number[]) => boolean; at: number }> = [
  { form: 'IPv4-mapped', matches: (g) => g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff, at: 6 },
  { form: 'NAT64', matches: (g) => g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0), at: 6 },
  { form: '6to4', matches: (g) => g[0] === 0x2002, at: 1 },
];

function embeddedIpv4(ipv6: string): { form: string; address: string } | null {
  const groups = ipv6Groups(ipv6);
  const carrier = IPV4_CARRIERS.find(({ matches }) => matches(groups));
  if (carrier === undefined) return null;
  const high = groups[carrier.at] ?? 0;
  const low = groups[carrier.at + 1] ?? 0;
  return { form: carrier.form, address: `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}` };
}

/** The eight 16-bit groups of a valid IPv6 address. */
function ipv6Groups(ipv6: string): number[] {
  // The WHATWG serializer writes any spelling (dotted tail, leading zeros) as plain hex groups.
  const canonical = new URL(`http://[${ipv6}]/`).hostname.slice(1, -1);
  const [head = '', tail] = canonical.split('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  return [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}

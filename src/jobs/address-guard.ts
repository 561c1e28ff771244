import { isIPv4, isIPv6 } from 'node:net';

/**
 * The private-network guard of HTTP destinations: which addresses a destination may not reach unless
 * it sets `allowPrivateNetwork`. Checked on the resolved address of every connection, so a name that
 * resolves to a public address today cannot be re-pointed at the metadata service tomorrow.
 */

/** Why an address is refused, as a noun phrase ("a loopback address"); `undefined` when it is public. */
export type AddressClass =
  | 'a loopback address'
  | 'a private address'
  | 'a link-local address'
  | 'a cloud metadata address'
  | 'an unspecified address'
  | 'a shared (CGNAT) address';

interface Range {
  /** Network address as 4 (IPv4) or 8 (IPv6) numbers. */
  readonly parts: readonly number[];
  readonly prefix: number;
  readonly what: AddressClass;
}

function v4(text: string, prefix: number, what: AddressClass): Range {
  return { parts: parseIPv4(text)!, prefix, what };
}

function v6(text: string, prefix: number, what: AddressClass): Range {
  return { parts: parseIPv6(text)!, prefix, what };
}

// Most specific first: the metadata addresses sit inside link-local and private ranges.
const IPV4_RANGES: readonly Range[] = [
  v4('169.254.169.254', 32, 'a cloud metadata address'),
  v4('0.0.0.0', 8, 'an unspecified address'),
  v4('127.0.0.0', 8, 'a loopback address'),
  v4('10.0.0.0', 8, 'a private address'),
  v4('172.16.0.0', 12, 'a private address'),
  v4('192.168.0.0', 16, 'a private address'),
  v4('169.254.0.0', 16, 'a link-local address'),
  v4('100.64.0.0', 10, 'a shared (CGNAT) address'),
];

const IPV6_RANGES: readonly Range[] = [
  v6('fd00:ec2::254', 128, 'a cloud metadata address'),
  v6('::', 128, 'an unspecified address'),
  v6('::1', 128, 'a loopback address'),
  v6('fc00::', 7, 'a private address'),
  v6('fe80::', 10, 'a link-local address'),
];

function parseIPv4(text: string): number[] | undefined {
  if (!isIPv4(text)) return undefined;
  return text.split('.').map(Number);
}

/** Eight 16-bit groups; an embedded dotted IPv4 tail (`::ffff:1.2.3.4`) becomes the last two. */
function parseIPv6(text: string): number[] | undefined {
  let body = text.replace(/%.*$/, '');
  if (!isIPv6(body)) return undefined;
  const lastColon = body.lastIndexOf(':');
  const octets = parseIPv4(body.slice(lastColon + 1));
  if (octets !== undefined) {
    const hex = (hi: number, lo: number) => ((hi << 8) | lo).toString(16);
    body = `${body.slice(0, lastColon + 1)}${hex(octets[0]!, octets[1]!)}:${hex(octets[2]!, octets[3]!)}`;
  }
  const halves = body.split('::');
  const groups = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const left = groups(halves[0]!);
  const right = halves.length > 1 ? groups(halves[1]!) : [];
  const zeros = new Array<number>(8 - left.length - right.length).fill(0);
  return [...left, ...zeros, ...right];
}

function inRange(parts: readonly number[], range: Range, bitsPerPart: number): boolean {
  let bits = range.prefix;
  for (let i = 0; i < parts.length && bits > 0; i++) {
    const take = Math.min(bits, bitsPerPart);
    const mask = ((1 << take) - 1) << (bitsPerPart - take);
    if ((parts[i]! & mask) !== (range.parts[i]! & mask)) return false;
    bits -= take;
  }
  return true;
}

function classifyIPv4(parts: readonly number[]): AddressClass | undefined {
  return IPV4_RANGES.find((range) => inRange(parts, range, 8))?.what;
}

/**
 * What kind of restricted address `address` is (an IPv4 or IPv6 literal, brackets allowed), or
 * `undefined` when it is a public address. IPv4-mapped (`::ffff:127.0.0.1`) and IPv4-compatible
 * (`::127.0.0.1`) forms count as the IPv4 address they carry.
 */
export function classifyAddress(address: string): AddressClass | undefined {
  const text = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const four = parseIPv4(text);
  if (four !== undefined) return classifyIPv4(four);
  const six = parseIPv6(text);
  if (six === undefined) return undefined;
  const firstFive = six.slice(0, 5).every((g) => g === 0);
  const embedded = [six[6]! >> 8, six[6]! & 0xff, six[7]! >> 8, six[7]! & 0xff];
  // ::ffff:a.b.c.d reaches a.b.c.d over IPv4; ::a.b.c.d (deprecated) is treated the same way.
  if (firstFive && six[5] === 0xffff) return classifyIPv4(embedded);
  if (firstFive && six[5] === 0 && (six[6] !== 0 || six[7]! > 1)) return classifyIPv4(embedded);
  return IPV6_RANGES.find((range) => inRange(six, range, 16))?.what;
}

/** The guard's refusal, worded for the operator: what was refused and the setting that allows it. */
export class PrivateNetworkError extends Error {
  override readonly name = 'PrivateNetworkError';
  readonly code = 'EPRIVATENETWORK';
  constructor(
    readonly destination: string,
    readonly address: string,
    readonly what: AddressClass,
    /** The name that resolved to `address`, when the URL held a name. */
    readonly hostname?: string,
  ) {
    const subject =
      hostname === undefined || hostname === address
        ? `${address} is ${what}`
        : `${hostname} resolves to ${address}, ${what}`;
    super(`destination ${destination}: ${subject}; set allowPrivateNetwork to allow it`);
  }
}

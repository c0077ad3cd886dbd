/**
 * IP addresses and CIDR ranges, IPv4 and IPv6, as numbers: parsing, containment, coverage by a set of
 * ranges, and the canonical text AWS prints. Text node:net does not accept as an address is not one here
 * either (no leading zeros in IPv4, at most one `::`). Families never mix: an IPv4 address is in no IPv6
 * range, IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) included.
 */
import { isIP } from 'node:net';

export type IpFamily = 4 | 6;

export interface IpAddress {
  family: IpFamily;
  value: bigint;
}

export interface Cidr {
  family: IpFamily;
  /** The network address (host bits cleared). */
  base: bigint;
  prefix: number;
}

const width = (family: IpFamily): number => (family === 4 ? 32 : 128);

/**
 * The address `text` names, or undefined. IPv6 may be written in brackets (`[fe80::1]`) and with a zone
 * (`fe80::1%eth0`, dropped), and may end in an IPv4 address (`::ffff:10.0.0.1`).
 */
export function parseIp(text: string): IpAddress | undefined {
  const bracketed = text.startsWith('[') && text.endsWith(']');
  const unbracketed = bracketed ? text.slice(1, -1) : text;
  const family = isIP(unbracketed);
  if (family === 4 && !bracketed) return { family: 4, value: ipv4Value(unbracketed) };
  if (family !== 6) return undefined;
  const zone = unbracketed.indexOf('%');
  return { family: 6, value: ipv6Value(zone === -1 ? unbracketed : unbracketed.slice(0, zone)) };
}

/** The value of a dotted quad node:net accepted. */
function ipv4Value(text: string): bigint {
  return text.split('.').reduce((value, octet) => (value << 8n) | BigInt(octet), 0n);
}

/** The value of an IPv6 address node:net accepted, without its zone. */
function ipv6Value(text: string): bigint {
  let address = text;
  const lastColon = address.lastIndexOf(':');
  const tail = address.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = ipv4Value(tail);
    address = `${address.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', rest] = address.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const zeros = rest === undefined ? 0 : 8 - headGroups.length - restGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...restGroups];
  return groups.reduce((value, group) => (value << 16n) | BigInt(parseInt(group, 16)), 0n);
}

/**
 * The range `text` names (`10.0.0.0/16`, `2600:1f18::/32`; host bits are cleared), a bare address being
 * a range of one (`/32`, `/128`). Undefined for anything else.
 */
export function parseCidr(text: string): Cidr | undefined {
  const [address, length, ...rest] = text.trim().split('/');
  if (address === undefined || rest.length > 0) return undefined;
  const ip = parseIp(address);
  if (ip === undefined) return undefined;
  const bits = width(ip.family);
  if (length !== undefined && !/^\d{1,3}$/.test(length)) return undefined;
  const prefix = length === undefined ? bits : Number(length);
  if (prefix > bits) return undefined;
  const hostBits = BigInt(bits - prefix);
  return { family: ip.family, base: (ip.value >> hostBits) << hostBits, prefix };
}

/** `a.b.c.d/n`, or IPv6 in lowercase with the longest run of zero groups compressed (RFC 5952), as AWS prints it. */
export function formatCidr(cidr: Cidr): string {
  if (cidr.family === 4) {
    const octets = [24n, 16n, 8n, 0n].map((shift) => String((cidr.base >> shift) & 0xffn));
    return `${octets.join('.')}/${cidr.prefix}`;
  }
  const groups = Array.from({ length: 8 }, (_, i) => (cidr.base >> BigInt(112 - 16 * i)) & 0xffffn);
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0n) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0n) j++;
    if (j - i > bestLength && j - i > 1) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = groups.map((group) => group.toString(16));
  const text =
    bestStart < 0
      ? hex.join(':')
      : `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
  return `${text}/${cidr.prefix}`;
}

/** Whether `outer` holds every address of `inner`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
  const shift = BigInt(width(outer.family) - outer.prefix);
  return outer.base >> shift === inner.base >> shift;
}

/** Whether the ranges share an address (for CIDR ranges: one contains the other). */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}

/** The two halves of a range that is wider than one address. */
export function cidrHalves(cidr: Cidr): [Cidr, Cidr] {
  const prefix = cidr.prefix + 1;
  const bit = 1n << BigInt(width(cidr.family) - prefix);
  return [
    { family: cidr.family, base: cidr.base, prefix },
    { family: cidr.family, base: cidr.base | bit, prefix },
  ];
}

/** Whether the union of `ranges` holds every address of `target`. */
export function cidrCovered(target: Cidr, ranges: readonly Cidr[]): boolean {
  const relevant = ranges.filter((range) => cidrOverlaps(range, target));
  if (relevant.length === 0) return false;
  if (relevant.some((range) => cidrContains(range, target))) return true;
  const [low, high] = cidrHalves(target);
  return cidrCovered(low, relevant) && cidrCovered(high, relevant);
}

/** Whether `range` holds the address. */
export function ipInCidr(ip: IpAddress, range: Cidr): boolean {
  return cidrContains(range, { family: ip.family, base: ip.value, prefix: width(ip.family) });
}

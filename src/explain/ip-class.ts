/**
 * What kind of address a `dial tcp <ip>:<port>` went to, which tells apart the network causes: a private
 * address is an interface endpoint (or a proxy) in the VPC, an Amazon S3 address is the layer download, any
 * other public address is the open internet (NAT or internet gateway needed).
 */
import { embeddedS3Prefixes } from './s3-prefixes.ts';

export type IpClass = 'private' | 'amazon-s3' | 'public';

/** An Amazon S3 prefix, from the embedded table or a user's ip-ranges.json. */
export interface S3Range {
  prefix: string;
  region?: string;
}

interface ParsedRange {
  version: 4 | 6;
  network: bigint;
  bits: number;
  region?: string;
}

/** Private, shared and link-local space: RFC 1918, CGNAT (RFC 6598), link-local, loopback, IPv6 ULA. */
const privatePrefixes = [
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  '169.254.0.0/16',
  '127.0.0.0/8',
  'fc00::/7',
  'fe80::/10',
  '::1/128',
].map((prefix) => parsePrefix(prefix) as ParsedRange);

const embeddedRanges = embeddedS3Prefixes.map((prefix) => parsePrefix(prefix) as ParsedRange);

/** The address as a number and its family, or undefined when the text is not an IP address. */
export function parseIp(text: string): { version: 4 | 6; value: bigint } | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return { version: 4, value: v4 };
  const v6 = parseIpv6(text);
  if (v6 !== undefined) return { version: 6, value: v6 };
  return undefined;
}

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

function parseIpv6(text: string): bigint | undefined {
  let address = text.replace(/^\[|\]$/g, '');
  const zone = address.indexOf('%');
  if (zone !== -1) address = address.slice(0, zone);
  if (!/^[0-9a-fA-F:.]+$/.test(address) || !address.includes(':')) return undefined;
  // An embedded IPv4 tail (::ffff:10.0.0.1) becomes two hex groups.
  const lastColon = address.lastIndexOf(':');
  const tail = address.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseIpv4(tail);
    if (v4 === undefined) return undefined;
    address = `${address.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  let value = 0n;
  for (const group of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
    value = (value << 16n) | BigInt(parseInt(group, 16));
  }
  return value;
}

function parsePrefix(prefix: string, region?: string): ParsedRange | undefined {
  const slash = prefix.indexOf('/');
  if (slash === -1) return undefined;
  const ip = parseIp(prefix.slice(0, slash));
  const bitsText = prefix.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  const width = ip.version === 4 ? 32 : 128;
  if (bits > width) return undefined;
  const shift = BigInt(width - bits);
  const range: ParsedRange = { version: ip.version, network: (ip.value >> shift) << shift, bits };
  if (region !== undefined) range.region = region;
  return range;
}

function contains(range: ParsedRange, ip: { version: 4 | 6; value: bigint }): boolean {
  if (range.version !== ip.version) return false;
  const shift = BigInt((ip.version === 4 ? 32 : 128) - range.bits);
  return (ip.value >> shift) << shift === range.network;
}

export interface IpClassification {
  class: IpClass;
  /** The region of the matching S3 prefix, when the prefix table carries one. */
  region?: string;
}

/**
 * Classifies an address. `s3Ranges` replaces the embedded S3 table (pass the prefixes of a current
 * ip-ranges.json). Returns undefined for text that is not an IP address.
 */
export function classifyIp(text: string, s3Ranges?: readonly S3Range[]): IpClassification | undefined {
  const ip = parseIp(text);
  if (!ip) return undefined;
  if (privatePrefixes.some((range) => contains(range, ip))) return { class: 'private' };
  const ranges =
    s3Ranges === undefined
      ? embeddedRanges
      : s3Ranges.flatMap((range) => parsePrefix(range.prefix, range.region) ?? []);
  // The longest matching prefix names the region most precisely.
  let best: ParsedRange | undefined;
  for (const range of ranges) {
    if (contains(range, ip) && (!best || range.bits > best.bits)) best = range;
  }
  if (!best) return { class: 'public' };
  return best.region !== undefined ? { class: 'amazon-s3', region: best.region } : { class: 'amazon-s3' };
}

/**
 * The Amazon S3 prefixes (IPv4 and IPv6, with their regions) of a parsed ip-ranges.json. Throws a
 * TypeError when the value does not have the file's shape, so a wrong file is not silently empty.
 */
export function s3RangesFromIpRanges(document: unknown): S3Range[] {
  const shape = document as { prefixes?: unknown; ipv6_prefixes?: unknown } | null;
  if (typeof shape !== 'object' || shape === null || !Array.isArray(shape.prefixes)) {
    throw new TypeError('not an AWS ip-ranges.json document: no "prefixes" array');
  }
  const entries = [
    ...(shape.prefixes as unknown[]),
    ...(Array.isArray(shape.ipv6_prefixes) ? (shape.ipv6_prefixes as unknown[]) : []),
  ];
  const ranges: S3Range[] = [];
  for (const entry of entries) {
    const item = entry as { ip_prefix?: unknown; ipv6_prefix?: unknown; service?: unknown; region?: unknown };
    if (typeof item !== 'object' || item === null || item.service !== 'S3') continue;
    const prefix = typeof item.ip_prefix === 'string' ? item.ip_prefix : item.ipv6_prefix;
    if (typeof prefix !== 'string' || !parsePrefix(prefix)) continue;
    ranges.push(typeof item.region === 'string' ? { prefix, region: item.region } : { prefix });
  }
  return ranges;
}

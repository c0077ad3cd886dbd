/**
 * What kind of address a `dial tcp <ip>:<port>` went to, which tells apart the network causes: a private
 * address is an interface endpoint (or a proxy) in the VPC, an Amazon S3 address is the layer download, any
 * other public address is the open internet (NAT or internet gateway needed).
 */
import { ipInCidr, parseCidr, parseIp, type Cidr } from '../shared/ip.ts';
import { embeddedS3Prefixes } from './s3-prefixes.ts';

export type IpClass = 'private' | 'amazon-s3' | 'public';

/** An Amazon S3 prefix, from the embedded table or a user's ip-ranges.json. */
export interface S3Range {
  prefix: string;
  region?: string;
}

interface ParsedRange {
  cidr: Cidr;
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

/** A prefix as ip-ranges.json writes it (`a.b.c.d/n`, `x::/n`; the length is required). */
function parsePrefix(prefix: string, region?: string): ParsedRange | undefined {
  const cidr = prefix.includes('/') ? parseCidr(prefix) : undefined;
  if (cidr === undefined) return undefined;
  return region === undefined ? { cidr } : { cidr, region };
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
  if (privatePrefixes.some((range) => ipInCidr(ip, range.cidr))) return { class: 'private' };
  const ranges =
    s3Ranges === undefined
      ? embeddedRanges
      : s3Ranges.flatMap((range) => parsePrefix(range.prefix, range.region) ?? []);
  // The longest matching prefix names the region most precisely.
  let best: ParsedRange | undefined;
  for (const range of ranges) {
    if (ipInCidr(ip, range.cidr) && (!best || range.cidr.prefix > best.cidr.prefix)) best = range;
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

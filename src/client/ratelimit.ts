/**
 * Registry quota headers, as Docker Hub sends them: `RateLimit-Limit: 100;w=21600`,
 * `RateLimit-Remaining: 76;w=21600` (or the `X-RateLimit-*` spelling) and `docker-ratelimit-source`.
 *
 * Promises: the window is read from `w=` and never assumed; a field the headers do not carry is left out;
 * headers without any quota information give `undefined`.
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface RateLimit {
  /** Requests allowed per window. */
  limit?: number;
  /** Requests left in the current window. */
  remaining?: number;
  /** The window, from `w=`. */
  windowSeconds?: number;
  /** Who the quota is counted against: an IP address or an account id (`docker-ratelimit-source`). */
  source?: string;
  /** Seconds until the quota resets, when the registry says (`RateLimit-Reset`). */
  resetSeconds?: number;
}

/** `100;w=21600` → { value: 100, window: 21600 }; also a policy list `100, 100;w=21600`. */
export function parseQuotaValue(text: string | undefined): { value?: number; window?: number } {
  if (text === undefined) return {};
  const result: { value?: number; window?: number } = {};
  const first = /^\s*(\d+)/.exec(text);
  if (first) result.value = Number(first[1]);
  const window = /;\s*w\s*=\s*"?(\d+)/i.exec(text);
  if (window) result.window = Number(window[1]);
  return result;
}

type HeaderSource = IncomingHttpHeaders | Headers | Record<string, string | string[] | undefined>;

function read(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const record = headers as Record<string, string | string[] | undefined>;
  let value = record[name];
  if (value === undefined) {
    const key = Object.keys(record).find((candidate) => candidate.toLowerCase() === name);
    value = key === undefined ? undefined : record[key];
  }
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The quota a response reports, or undefined when it reports none. */
export function parseRateLimit(headers: HeaderSource): RateLimit | undefined {
  const limit = parseQuotaValue(read(headers, 'ratelimit-limit') ?? read(headers, 'x-ratelimit-limit'));
  const remaining = parseQuotaValue(
    read(headers, 'ratelimit-remaining') ?? read(headers, 'x-ratelimit-remaining'),
  );
  const reset = parseQuotaValue(read(headers, 'ratelimit-reset'));
  const source = read(headers, 'docker-ratelimit-source')?.trim();
  const result: RateLimit = {};
  if (limit.value !== undefined) result.limit = limit.value;
  if (remaining.value !== undefined) result.remaining = remaining.value;
  const window = limit.window ?? remaining.window;
  if (window !== undefined) result.windowSeconds = window;
  if (source) result.source = source;
  if (reset.value !== undefined) result.resetSeconds = reset.value;
  return Object.keys(result).length === 0 ? undefined : result;
}

/** `76/100 per 6h (source 203.0.113.7)`, for messages. */
export function describeRateLimit(rate: RateLimit): string {
  const count =
    rate.remaining !== undefined && rate.limit !== undefined
      ? `${rate.remaining}/${rate.limit} left`
      : rate.remaining !== undefined
        ? `${rate.remaining} left`
        : rate.limit !== undefined
          ? `limit ${rate.limit}`
          : 'quota';
  const window = rate.windowSeconds !== undefined ? ` per ${formatSeconds(rate.windowSeconds)}` : '';
  const source = rate.source ? ` (counted against ${rate.source})` : '';
  return `${count}${window}${source}`;
}

function formatSeconds(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

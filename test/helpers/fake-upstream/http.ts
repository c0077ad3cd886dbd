/** Routing, reading and answering one request of the fake upstream; no state. */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RecordedRequest, RequestKind, ServerName } from './types.ts';

export const NAME_PATTERN =
  /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
export const TAG_PATTERN = /^\w[\w.-]{0,127}$/;
export const DIGEST_PATTERN = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
export const MAX_BODY_BYTES = 64 * 1024 * 1024;
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

export const defaultCodeForStatus: Record<number, string> = {
  400: 'UNSUPPORTED',
  401: 'UNAUTHORIZED',
  403: 'DENIED',
  404: 'NAME_UNKNOWN',
  429: 'TOOMANYREQUESTS',
  500: 'UNKNOWN',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'UNAVAILABLE',
};

/** Where the servers listen, known once they do; parts that write URLs read it then. */
export interface FakeUrls {
  /** http://127.0.0.1:PORT of the registry server. */
  base: string;
  /** The CDN server's origin, or '' without one. */
  cdn: string;
}

/** One request being answered. */
export interface Context {
  req: IncomingMessage;
  res: ServerResponse;
  record: RecordedRequest;
  server: ServerName;
  url: URL;
}

export interface Route {
  kind: RequestKind;
  name?: string;
  reference?: string;
  uuid?: string;
}

export class BodyTooLarge extends Error {}

export function parseRoute(pathname: string): Route {
  if (pathname === '/token') return { kind: 'token' };
  if (pathname === '/v2/' || pathname === '/v2') return { kind: 'base' };
  let m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(pathname);
  if (m) return { kind: 'manifest', name: m[1]!, reference: decodeURIComponent(m[2]!) };
  m = /^\/v2\/(.+)\/blobs\/uploads\/?$/.exec(pathname);
  if (m) return { kind: 'upload', name: m[1]! };
  m = /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/.exec(pathname);
  if (m) return { kind: 'upload', name: m[1]!, uuid: decodeURIComponent(m[2]!) };
  m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(pathname);
  if (m) return { kind: 'blob', name: m[1]!, reference: decodeURIComponent(m[2]!) };
  m = /^\/v2\/(.+)\/tags\/list$/.exec(pathname);
  if (m) return { kind: 'tags', name: m[1]! };
  m = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(pathname);
  if (m) return { kind: 'referrers', name: m[1]!, reference: decodeURIComponent(m[2]!) };
  return { kind: 'other' };
}

export function headerRecord(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    out[key.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

export function errorBody(code: string, message: string, detail?: unknown): string {
  return JSON.stringify({ errors: [{ code, message, detail: detail ?? null }] });
}

export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'bad' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'bad';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'bad';
  return { start, end };
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BodyTooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

export function commonHeaders(ctx: Context): Record<string, string> {
  return ctx.server === 'registry' ? { 'Docker-Distribution-API-Version': 'registry/2.0' } : {};
}

export function send(
  ctx: Context,
  status: number,
  headers: Record<string, string>,
  body?: Buffer | string,
): void {
  const bytes = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
  ctx.record.status = status;
  ctx.res.writeHead(status, {
    ...commonHeaders(ctx),
    'Content-Length': String(bytes.length),
    ...headers,
  });
  ctx.res.end(ctx.req.method === 'HEAD' ? undefined : bytes);
}

export function sendError(
  ctx: Context,
  status: number,
  code: string,
  message: string,
  detail?: unknown,
  headers: Record<string, string> = {},
): void {
  send(ctx, status, { 'Content-Type': 'application/json', ...headers }, errorBody(code, message, detail));
}

/**
 * A small raw HTTP client for tests, on node:http: the exact status, headers and body bytes, no automatic
 * decompression, no redirects followed, no cookies, and only loopback addresses. Plus the OCI distribution
 * push protocol (blob upload, manifest put/get) spoken to any registry base URL.
 */
import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import { Readable } from 'node:stream';

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

/** Every manifest media type a test image can have, the default Accept of getManifest. */
export const ALL_MANIFEST_TYPES: readonly string[] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

export interface RequestOptions {
  method?: string;
  headers?: OutgoingHttpHeaders;
  body?: Buffer | string | Readable;
  /** Whole-exchange limit, from connect to the last body byte (default 30 s). */
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text(): string;
  json<T = unknown>(): T;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return false;
}

/** One HTTP exchange. Rejects on network errors and timeouts, never on an HTTP status. */
export async function request(url: string | URL, options: RequestOptions = {}): Promise<HttpResponse> {
  const target = new URL(url);
  if (target.protocol !== 'http:') throw new Error(`test http client: only http: URLs, got ${target.href}`);
  if (!isLoopback(target.hostname)) {
    throw new Error(`test http client: refusing non-loopback address ${target.hostname}`);
  }
  const headers: OutgoingHttpHeaders = { ...options.headers };
  const body = options.body;
  const hasLength = Object.keys(headers).some((name) => name.toLowerCase() === 'content-length');
  if (body !== undefined && !(body instanceof Readable) && !hasLength) {
    headers['Content-Length'] = Buffer.byteLength(body);
  }
  const timeoutMs = options.timeoutMs ?? 30_000;

  return new Promise<HttpResponse>((resolve, reject) => {
    const req = httpRequest(
      {
        hostname: target.hostname.replace(/^\[|\]$/g, ''),
        port: target.port || 80,
        path: `${target.pathname}${target.search}`,
        method: options.method ?? 'GET',
        headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', fail);
        res.on('end', () => {
          clearTimeout(timer);
          const bytes = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: bytes,
            text: () => bytes.toString('utf8'),
            json: <T>() => JSON.parse(bytes.toString('utf8')) as T,
          });
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error(`${options.method ?? 'GET'} ${target.href} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    function fail(error: Error): void {
      clearTimeout(timer);
      reject(error);
    }
    req.on('error', fail);
    if (body instanceof Readable) {
      body.on('error', (error) => req.destroy(error));
      body.pipe(req);
    } else {
      req.end(body);
    }
  });
}

function trimBase(base: string): string {
  return base.replace(/\/+$/, '');
}

function summary(response: HttpResponse): string {
  return `${response.status} ${response.text().slice(0, 2000)}`;
}

/**
 * Uploads one blob with the two-step protocol (POST an upload session, PUT its Location with ?digest=)
 * and returns the blob's digest. Throws unless the registry answers 202 then 201 with the same digest.
 */
export async function pushBlob(base: string, repo: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const root = trimBase(base);
  const start = await request(`${root}/v2/${repo}/blobs/uploads/`, {
    method: 'POST',
    headers: { 'Content-Length': 0 },
  });
  if (start.status !== 202) throw new Error(`POST blob upload for ${repo}: ${summary(start)}`);
  const location = start.headers.location;
  if (!location) throw new Error(`POST blob upload for ${repo}: 202 without a Location header`);
  const target = new URL(location, `${root}/`);
  target.searchParams.set('digest', digest);
  const done = await request(target, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: data,
  });
  if (done.status !== 201) throw new Error(`PUT blob ${digest} to ${repo}: ${summary(done)}`);
  const echoed = done.headers['docker-content-digest'];
  if (echoed !== undefined && echoed !== digest) {
    throw new Error(`PUT blob ${digest} to ${repo}: registry answered Docker-Content-Digest ${echoed}`);
  }
  return digest;
}

export interface PushManifestResult {
  status: number;
  /** The Docker-Content-Digest the registry answered, or '' when it sent none. */
  digest: string;
  response: HttpResponse;
}

/** PUTs a manifest with the given Content-Type; answers whatever the registry said, never throws on status. */
export async function pushManifest(
  base: string,
  repo: string,
  reference: string,
  mediaType: string,
  body: Buffer,
): Promise<PushManifestResult> {
  const response = await request(`${trimBase(base)}/v2/${repo}/manifests/${reference}`, {
    method: 'PUT',
    headers: { 'Content-Type': mediaType },
    body,
  });
  const digest = response.headers['docker-content-digest'];
  return { status: response.status, digest: typeof digest === 'string' ? digest : '', response };
}

/** GETs a manifest, accepting `accept` (default: every OCI and Docker v2 manifest type). */
export function getManifest(
  base: string,
  repo: string,
  reference: string,
  accept: readonly string[] = ALL_MANIFEST_TYPES,
): Promise<HttpResponse> {
  return request(`${trimBase(base)}/v2/${repo}/manifests/${reference}`, {
    headers: accept.length > 0 ? { Accept: accept.join(', ') } : {},
  });
}

/** GETs a blob. Redirects are not followed (the answer may be a 307). */
export function getBlob(base: string, repo: string, digest: string): Promise<HttpResponse> {
  return request(`${trimBase(base)}/v2/${repo}/blobs/${digest}`);
}

/**
 * A small node:http client for setting up the benchmark (seeding blobs and manifests, checks). It is not
 * used for the measured transfers: those use curl and wrk.
 */
import { createReadStream } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobSource } from './data.ts';

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export const ociManifestType = 'application/vnd.oci.image.manifest.v1+json';

export function httpRequest(
  url: string,
  options: {
    method: string;
    headers?: Record<string, string | number>;
    body?: Buffer | Readable;
    timeoutMs: number;
  },
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method, headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        // Bodies here are small (errors, manifests); keep at most 1 MiB.
        if (size < 1 << 20) chunks.push(chunk);
        size += chunk.length;
      });
      res.once('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
      res.once('error', fail);
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`${options.method} ${url}: no answer within ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    function fail(error: Error): void {
      clearTimeout(timer);
      reject(error);
    }
    req.once('error', fail);
    if (options.body instanceof Readable) {
      pipeline(options.body, req).catch(fail);
    } else {
      req.end(options.body);
    }
  });
}

/** Adds `digest=` to an upload location (which may already carry a query, as distribution's does). */
export function withDigest(location: string, digest: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

/** POST /v2/<repo>/blobs/uploads/ and return the absolute upload URL. */
export async function startUpload(base: string, repo: string): Promise<string> {
  const started = await httpRequest(`${base}/v2/${repo}/blobs/uploads/`, {
    method: 'POST',
    headers: { 'Content-Length': 0 },
    timeoutMs: 30_000,
  });
  const location = started.headers.location;
  if (started.status !== 202 || !location) {
    throw new Error(
      `POST upload to ${repo}: status ${started.status} ${started.body.toString().slice(0, 300)}`,
    );
  }
  return new URL(location, base).toString();
}

/** Monolithic push (POST + PUT with the body) of one blob. */
export async function uploadBlob(
  base: string,
  repo: string,
  blob: BlobSource | { bytes: Buffer; digest: string },
): Promise<void> {
  const location = await startUpload(base, repo);
  const isBuffer = 'bytes' in blob;
  const size = isBuffer ? blob.bytes.length : blob.size;
  const body = isBuffer
    ? blob.bytes
    : createReadStream(blob.file, {
        start: blob.offset,
        end: blob.offset + blob.size - 1,
        highWaterMark: 1024 * 1024,
      });
  const done = await httpRequest(withDigest(location, blob.digest), {
    method: 'PUT',
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': size },
    body,
    timeoutMs: 300_000,
  });
  if (done.status !== 201) {
    throw new Error(
      `PUT blob ${blob.digest} to ${repo}: status ${done.status} ${done.body.toString().slice(0, 300)}`,
    );
  }
}

export async function putManifest(base: string, repo: string, tag: string, manifest: Buffer): Promise<void> {
  const result = await httpRequest(`${base}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'Content-Type': ociManifestType, 'Content-Length': manifest.length },
    body: manifest,
    timeoutMs: 30_000,
  });
  if (result.status !== 201) {
    throw new Error(
      `PUT manifest ${repo}:${tag}: status ${result.status} ${result.body.toString().slice(0, 300)}`,
    );
  }
}

/**
 * Polls GET `url` until it answers 200 (or any status `accepts`); fails early if `alive()` turns false.
 */
export async function waitForOk(
  url: string,
  timeoutMs: number,
  alive: () => boolean,
  accepts: (status: number) => boolean = (status) => status === 200,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`process exited before ${url} answered`);
    try {
      const result = await httpRequest(url, { method: 'GET', timeoutMs: 2_000 });
      if (accepts(result.status)) return;
      last = `status ${result.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms (${last})`);
}

/**
 * The registry clients of bench/s3.ts that curl cannot be (curl does the blob GETs, load.ts): pushes that
 * stream a range of the data file (monolithic POST + PUT, docker's POST + one streamed PATCH + empty PUT,
 * and fixed-size PATCHes), and the requests a runtime sends to pull an image and a client sends to push
 * one. Every request has a time limit and every answer's status is checked.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { BlobSource } from './data.ts';
import { httpRequest, ociManifestType, putManifest, startUpload, uploadBlob, withDigest } from './http.ts';
import type { Transfer } from './load.ts';

const transferTimeoutMs = 300_000;
const smallTimeoutMs = 30_000;

export type PushKind = 'monolithic' | 'streamed';

type Blob = BlobSource | { bytes: Buffer; digest: string };

function rangeOf(blob: BlobSource, start = 0, end = blob.size): Readable {
  return createReadStream(blob.file, {
    start: blob.offset + start,
    end: blob.offset + end - 1,
    highWaterMark: 1024 * 1024,
  });
}

function fail(what: string, status: number, body: Buffer): never {
  throw new Error(`${what}: status ${status} ${body.toString().slice(0, 300)}`);
}

/** The absolute URL of an upload's next request, from the Location a registry answered with. */
function nextLocation(base: string, location: string | string[] | undefined, what: string): string {
  if (typeof location !== 'string') throw new Error(`${what}: no Location`);
  return new URL(location, base).toString();
}

/**
 * What docker and skopeo send: POST, one PATCH with the whole blob as a stream (chunked transfer encoding, no
 * length), then PUT with the digest and no body.
 */
export async function pushStreamed(base: string, repo: string, blob: Blob): Promise<void> {
  const location = await startUpload(base, repo);
  const patched = await httpRequest(location, {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/octet-stream' },
    // A Buffer would get a Content-Length; a stream goes out chunked, as docker sends it.
    body: 'bytes' in blob ? Readable.from([blob.bytes]) : rangeOf(blob),
    timeoutMs: transferTimeoutMs,
  });
  if (patched.status !== 202) fail(`PATCH ${blob.digest} to ${repo}`, patched.status, patched.body);
  await closeUpload(base, repo, blob, nextLocation(base, patched.headers.location, `PATCH to ${repo}`));
}

/** POST, then the blob in PATCHes of `chunkBytes` with Content-Range, then PUT with the digest and no body. */
export async function pushChunked(
  base: string,
  repo: string,
  blob: BlobSource,
  chunkBytes: number,
): Promise<void> {
  let location = await startUpload(base, repo);
  for (let start = 0; start < blob.size; start += chunkBytes) {
    const end = Math.min(blob.size, start + chunkBytes);
    const patched = await httpRequest(location, {
      method: 'PATCH',
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Range': `${start}-${end - 1}`,
        'Content-Length': end - start,
      },
      body: rangeOf(blob, start, end),
      timeoutMs: transferTimeoutMs,
    });
    if (patched.status !== 202)
      fail(`PATCH ${start}-${end - 1} of ${blob.digest}`, patched.status, patched.body);
    location = nextLocation(base, patched.headers.location, `PATCH to ${repo}`);
  }
  await closeUpload(base, repo, blob, location);
}

async function closeUpload(base: string, repo: string, blob: Blob, location: string): Promise<void> {
  const done = await httpRequest(withDigest(location, blob.digest), {
    method: 'PUT',
    headers: { 'Content-Length': 0 },
    timeoutMs: transferTimeoutMs,
  });
  if (done.status !== 201) fail(`PUT ${blob.digest} to ${repo}`, done.status, done.body);
}

export function pushOne(kind: PushKind, base: string, repo: string, blob: BlobSource): Promise<void> {
  return kind === 'monolithic' ? uploadBlob(base, repo, blob) : pushStreamed(base, repo, blob);
}

/** Pushes `blobs` `concurrency` at a time; bytes over the wall time from the first start to the last end. */
export async function pushConcurrently(
  kind: PushKind,
  base: string,
  repo: string,
  blobs: BlobSource[],
  concurrency: number,
): Promise<Transfer> {
  const queue = [...blobs];
  const started = performance.now();
  const worker = async (): Promise<void> => {
    for (let blob = queue.shift(); blob; blob = queue.shift()) await pushOne(kind, base, repo, blob);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, blobs.length) }, worker));
  return {
    bytes: blobs.reduce((sum, blob) => sum + blob.size, 0),
    seconds: (performance.now() - started) / 1000,
  };
}

/** An image of the count phase: its blobs (config first) and its manifest. */
export interface BenchImage {
  config: { bytes: Buffer; digest: string };
  layers: BlobSource[];
  manifest: Buffer;
}

async function getOk(url: string, accept: string | undefined, size: number | undefined): Promise<void> {
  const answer = await httpRequest(url, {
    method: 'GET',
    headers: accept ? { Accept: accept } : {},
    timeoutMs: transferTimeoutMs,
  });
  const length = Number(answer.headers['content-length']);
  if (answer.status !== 200 || (size !== undefined && length !== size)) {
    fail(`GET ${url} (expected 200, ${size ?? '?'} bytes)`, answer.status, answer.body);
  }
}

/** What a runtime sends to pull one platform's image: the manifest by tag, the config, every layer. */
export async function pullImage(base: string, repo: string, tag: string, image: BenchImage): Promise<void> {
  await getOk(`${base}/v2/${repo}/manifests/${tag}`, ociManifestType, image.manifest.length);
  await getOk(`${base}/v2/${repo}/blobs/${image.config.digest}`, undefined, image.config.bytes.length);
  for (const layer of image.layers)
    await getOk(`${base}/v2/${repo}/blobs/${layer.digest}`, undefined, layer.size);
}

/**
 * What docker sends to push an image the registry has none of: per blob a HEAD (404), then POST, one
 * streamed PATCH and PUT; then the manifest by tag.
 */
export async function pushImage(base: string, repo: string, tag: string, image: BenchImage): Promise<void> {
  const blobs: Blob[] = [image.config, ...image.layers];
  for (const blob of blobs) {
    const head = await httpRequest(`${base}/v2/${repo}/blobs/${blob.digest}`, {
      method: 'HEAD',
      timeoutMs: smallTimeoutMs,
    });
    if (head.status !== 404) fail(`HEAD ${blob.digest} in ${repo} (expected 404)`, head.status, head.body);
    await pushStreamed(base, repo, blob);
  }
  await putManifest(base, repo, tag, image.manifest);
}

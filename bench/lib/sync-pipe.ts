/**
 * A reference copier for `bench/sync.ts --profile`: the least a Node client must do to move the image
 * set, with node:http and keep-alive agents. For each blob: POST an upload at the target, GET the blob
 * from the source and pipe it, hashed with sha256 on the way as pullsafe does, into the monolithic PUT.
 * Then each platform manifest by digest and the index by tag. No HEADs, no retries, no progress events.
 * Not a tool: it knows the set in advance (no manifest parsing) and checks nothing but statuses and the
 * digest of each blob.
 *
 *   node bench/lib/sync-pipe.ts SET.json SOURCE_BASE TARGET_BASE IMAGES BLOBS
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Agent, request, type IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { copyImageSet } from './copy-order.ts';
import type { Described, ImageSet, ImageSpec } from './sync-images.ts';

const [setFile, sourceBase, targetBase, imagesArg, blobsArg] = process.argv.slice(2);
if (!setFile || !sourceBase || !targetBase) {
  console.error('usage: node bench/lib/sync-pipe.ts SET.json SOURCE_BASE TARGET_BASE [IMAGES] [BLOBS]');
  process.exit(64);
}
const imageWidth = Number(imagesArg ?? 4);
const blobWidth = Number(blobsArg ?? 8);
const agent = new Agent({ keepAlive: true, maxSockets: 16 });
const timeoutMs = 120_000;

function send(
  url: string,
  method: string,
  headers: Record<string, string | number>,
  body?: Buffer | ((req: ReturnType<typeof request>) => Promise<void>),
): Promise<{ status: number; headers: IncomingMessage['headers'] }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent, timeout: timeoutMs }, (res) => {
      res.resume();
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.once('timeout', () => req.destroy(new Error(`${method} ${url}: timed out`)));
    if (typeof body === 'function') body(req).catch((error: unknown) => req.destroy(error as Error));
    else req.end(body);
  });
}

function get(url: string, accept?: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { agent, headers: accept ? { Accept: accept } : {}, timeout: timeoutMs },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`GET ${url}: ${res.statusCode}`));
          return;
        }
        resolve(res);
      },
    );
    req.once('error', reject);
    req.once('timeout', () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.end();
  });
}

async function readAll(res: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function copyBlob(spec: ImageSpec, targetRepo: string, blob: Described): Promise<void> {
  const started = await send(`${targetBase}/v2/${targetRepo}/blobs/uploads/`, 'POST', {
    'Content-Length': 0,
  });
  const location = started.headers.location;
  if (started.status !== 202 || !location) throw new Error(`POST upload ${targetRepo}: ${started.status}`);
  const put = new URL(location, targetBase);
  put.searchParams.set('digest', blob.digest);
  const source = await get(`${sourceBase}/v2/${spec.repository}/blobs/${blob.digest}`);
  const hash = createHash('sha256');
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  const done = await send(
    put.toString(),
    'PUT',
    { 'Content-Type': 'application/octet-stream', 'Content-Length': blob.size },
    (req) => pipeline(source, hashing, req),
  );
  if (`sha256:${hash.digest('hex')}` !== blob.digest) throw new Error(`${blob.digest}: digest mismatch`);
  if (done.status !== 201) throw new Error(`PUT blob ${blob.digest}: ${done.status}`);
}

async function copyManifest(
  spec: ImageSpec,
  targetRepo: string,
  reference: string,
  m: Described,
): Promise<void> {
  const bytes = await readAll(
    await get(`${sourceBase}/v2/${spec.repository}/manifests/${reference}`, m.mediaType),
  );
  const done = await send(
    `${targetBase}/v2/${targetRepo}/manifests/${reference}`,
    'PUT',
    { 'Content-Type': m.mediaType, 'Content-Length': bytes.length },
    bytes,
  );
  if (done.status !== 201) throw new Error(`PUT manifest ${targetRepo}:${reference}: ${done.status}`);
}

async function main(): Promise<void> {
  const set = JSON.parse(await readFile(setFile!, 'utf8')) as ImageSet;
  await copyImageSet(
    set,
    { images: imageWidth, blobs: blobWidth },
    { blob: copyBlob, manifest: copyManifest },
  );
  agent.destroy();
}

main().catch((error: unknown) => {
  console.error(`sync-pipe: ${(error as Error).message}`);
  process.exit(1);
});

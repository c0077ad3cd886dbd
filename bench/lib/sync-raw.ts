/**
 * The second reference copier for `bench/sync.ts --profile`: the least any Node client can do to move the
 * image set, below node:http. HTTP/1.1 written by hand over keep-alive `net` sockets that read into one
 * fixed buffer each; for each blob, POST an upload, GET the blob and write each piece of it straight into
 * the monolithic PUT on the same target connection, hashing with sha256 on the way. Then each platform
 * manifest by digest and the index by tag. No HEADs, no retries, no redirects, no chunked bodies, no TLS.
 * Not a tool: it knows the set in advance and checks only statuses and each blob's digest.
 *
 *   node bench/lib/sync-raw.ts SET.json SOURCE_BASE TARGET_BASE IMAGES BLOBS
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { copyImageSet } from './copy-order.ts';
import type { Described, ImageSet, ImageSpec } from './sync-images.ts';

const [setFile, sourceBase, targetBase, imagesArg, blobsArg] = process.argv.slice(2);
if (!setFile || !sourceBase || !targetBase) {
  console.error('usage: node bench/lib/sync-raw.ts SET.json SOURCE_BASE TARGET_BASE [IMAGES] [BLOBS]');
  process.exit(64);
}
const source = new URL(sourceBase);
const target = new URL(targetBase);

interface Answer {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}
/** Takes a piece of a body (a slice of the read buffer); a promise means "read on once it settles". */
type Sink = (piece: Buffer) => true | Promise<void>;

/** One connection, one request at a time; bodies must carry Content-Length. */
class Connection {
  readonly socket: Socket;
  private head: Buffer[] = [];
  private reading: 'idle' | 'head' | 'body' = 'idle';
  private left = 0;
  private answer: Answer | undefined;
  private sink: Sink | undefined;
  private parts: Buffer[] = [];
  private done: ((answer: Answer) => void) | undefined;
  private failed: ((error: Error) => void) | undefined;

  constructor(url: URL) {
    const buffer = Buffer.allocUnsafe(256 * 1024);
    this.socket = connect({
      host: url.hostname,
      port: Number(url.port),
      onread: { buffer, callback: (length: number, data: Buffer) => this.onRead(data.subarray(0, length)) },
    });
    this.socket.setNoDelay(true);
    this.socket.on('error', (error) => this.failed?.(error));
  }

  request(head: string, body?: Buffer, sink?: Sink): Promise<Answer> {
    return new Promise((resolve, reject) => {
      this.reading = 'head';
      this.sink = sink;
      this.done = resolve;
      this.failed = reject;
      this.socket.write(head);
      if (body) this.socket.write(body);
    });
  }

  private onRead(data: Buffer): boolean {
    if (this.reading === 'body') return this.onBody(data);
    if (this.reading !== 'head') return true;
    this.head.push(Buffer.from(data));
    const all = Buffer.concat(this.head);
    const end = all.indexOf('\r\n\r\n');
    if (end < 0) return true;
    const lines = all.subarray(0, end).toString('latin1').split('\r\n');
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    this.answer = { status: Number(lines[0]!.split(' ')[1]), headers, body: Buffer.alloc(0) };
    this.left = Number(headers.get('content-length') ?? 0);
    this.reading = 'body';
    this.head = [];
    const rest = all.subarray(end + 4);
    return rest.length > 0 ? this.onBody(rest) : this.finishIfDone();
  }

  private onBody(data: Buffer): boolean {
    this.left -= data.length;
    if (!this.sink) {
      this.parts.push(Buffer.from(data));
      return this.finishIfDone();
    }
    const taken = this.sink(data);
    if (taken === true) return this.finishIfDone();
    // The piece is still being written out of the read buffer: no read until it is out.
    this.socket.pause();
    void taken.then(() => {
      if (this.finishIfDone()) this.socket.resume();
    });
    return false;
  }

  private finishIfDone(): boolean {
    if (this.left > 0) return true;
    const answer = this.answer!;
    answer.body = Buffer.concat(this.parts);
    this.parts = [];
    this.reading = 'idle';
    this.sink = undefined;
    this.done!(answer);
    return true;
  }
}

class Pool {
  private readonly free: Connection[] = [];
  private readonly url: URL;
  constructor(url: URL) {
    this.url = url;
  }
  async use<T>(work: (connection: Connection) => Promise<T>): Promise<T> {
    const connection = this.free.pop() ?? new Connection(this.url);
    const result = await work(connection);
    this.free.push(connection);
    return result;
  }
  close(): void {
    for (const connection of this.free) connection.socket.destroy();
  }
}

const sources = new Pool(source);
const targets = new Pool(target);

async function copyBlob(spec: ImageSpec, repo: string, blob: Described): Promise<void> {
  await targets.use(async (put) => {
    const started = await put.request(
      `POST /v2/${repo}/blobs/uploads/ HTTP/1.1\r\nHost: ${target.host}\r\nContent-Length: 0\r\n\r\n`,
    );
    const location = started.headers.get('location');
    if (started.status !== 202 || !location) throw new Error(`POST upload ${repo}: ${started.status}`);
    const url = new URL(location, target);
    url.searchParams.set('digest', blob.digest);
    const hash = createHash('sha256');
    const finished = put.request(
      `PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${target.host}\r\n` +
        `Content-Type: application/octet-stream\r\nContent-Length: ${blob.size}\r\n\r\n`,
    );
    await sources.use((get) =>
      get.request(
        `GET /v2/${spec.repository}/blobs/${blob.digest} HTTP/1.1\r\nHost: ${source.host}\r\n\r\n`,
        undefined,
        (piece) => {
          hash.update(piece);
          let written!: () => void;
          const out = new Promise<void>((resolve) => (written = resolve));
          put.socket.write(piece, () => written());
          return put.socket.writableLength === 0 ? true : out;
        },
      ),
    );
    const answer = await finished;
    if (`sha256:${hash.digest('hex')}` !== blob.digest) throw new Error(`${blob.digest}: digest mismatch`);
    if (answer.status !== 201) throw new Error(`PUT blob ${blob.digest}: ${answer.status}`);
  });
}

async function copyManifest(spec: ImageSpec, repo: string, reference: string, m: Described): Promise<void> {
  const fetched = await sources.use((get) =>
    get.request(
      `GET /v2/${spec.repository}/manifests/${reference} HTTP/1.1\r\nHost: ${source.host}\r\nAccept: ${m.mediaType}\r\n\r\n`,
    ),
  );
  if (fetched.status !== 200)
    throw new Error(`GET manifest ${spec.repository}:${reference}: ${fetched.status}`);
  const stored = await targets.use((put) =>
    put.request(
      `PUT /v2/${repo}/manifests/${reference} HTTP/1.1\r\nHost: ${target.host}\r\n` +
        `Content-Type: ${m.mediaType}\r\nContent-Length: ${fetched.body.length}\r\n\r\n`,
      fetched.body,
    ),
  );
  if (stored.status !== 201) throw new Error(`PUT manifest ${repo}:${reference}: ${stored.status}`);
}

async function main(): Promise<void> {
  const set = JSON.parse(await readFile(setFile!, 'utf8')) as ImageSet;
  await copyImageSet(
    set,
    { images: Number(imagesArg ?? 4), blobs: Number(blobsArg ?? 8) },
    { blob: copyBlob, manifest: copyManifest },
  );
  sources.close();
  targets.close();
}

main().catch((error: unknown) => {
  console.error(`sync-raw: ${(error as Error).message}`);
  process.exit(1);
});

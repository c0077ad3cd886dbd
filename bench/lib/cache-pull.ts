/**
 * The pulling clients of bench/cache.ts, in a process of their own so that their CPU never counts as
 * the bench's. Each client is one machine pulling an image as a container runtime does, on its own
 * keep-alive connections: GET /v2/, the tag (index), every platform manifest by digest, then every
 * config and layer, three blobs at a time (Docker's and containerd's default). Bodies are read, hashed
 * and discarded; every digest and size is checked against what the index and manifests promise.
 *
 *   node bench/lib/cache-pull.ts BASE REPOSITORY TAG INDEX_DIGEST CLIENTS TIMEOUT_MS START_AT
 *
 * All clients start at once, at START_AT (milliseconds since the epoch), so that several of these
 * processes, started a moment earlier, pull together and are timed from the same instant. Prints a
 * PullReport (JSON) on stdout; exits 0 even if pulls failed (the report says which), 64 on bad
 * arguments.
 */
import { createHash } from 'node:crypto';
import { Agent, get } from 'node:http';

export interface PullReport {
  clients: number;
  succeeded: number;
  /** The first few failures, one line each. */
  failures: string[];
  /** From START_AT to the end of the last pull. */
  seconds: number;
  /** How late this process was ready for START_AT (0 when it was waiting). */
  lateMs: number;
  /** Body bytes received by all clients together (manifests and blobs). */
  bytes: number;
  /** Each client's own pull time, successful pulls only. */
  clientSeconds: number[];
  /** CPU used by this process (hashing, HTTP). */
  cpuSeconds: number;
}

const manifestAccept = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

const blobsAtOnce = 3;
/** A request that receives nothing for this long is given up. */
const idleTimeoutMs = 60_000;

interface Descriptor {
  digest: string;
  size: number;
}

interface Fetched {
  digest: string;
  size: number;
  /** The body, kept only when asked (manifests). */
  body?: Buffer;
  headerDigest?: string;
}

/** GET `url`, hashing the body as it arrives; rejects on any status other than 200. */
function fetchHashed(
  url: string,
  agent: Agent,
  signal: AbortSignal,
  keep: boolean,
  accept?: string,
): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const request = get(url, { agent, signal, headers: accept ? { Accept: accept } : {} }, (response) => {
      const hash = createHash('sha256');
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (keep || response.statusCode !== 200) {
          if (size <= 4 << 20) chunks.push(chunk);
        } else hash.update(chunk);
      });
      response.once('end', () => {
        const body = Buffer.concat(chunks);
        if (response.statusCode !== 200) {
          reject(new Error(`GET ${url}: status ${response.statusCode} ${body.toString().slice(0, 200)}`));
          return;
        }
        if (keep) hash.update(body);
        const headerDigest = response.headers['docker-content-digest'];
        resolve({
          digest: `sha256:${hash.digest('hex')}`,
          size,
          ...(keep ? { body } : {}),
          ...(typeof headerDigest === 'string' ? { headerDigest } : {}),
        });
      });
      response.once('error', reject);
      response.once('aborted', () => reject(new Error(`GET ${url}: connection closed mid-body`)));
    });
    request.setTimeout(idleTimeoutMs, () =>
      request.destroy(new Error(`GET ${url}: nothing received for ${idleTimeoutMs} ms`)),
    );
    request.once('error', reject);
  });
}

function checked(what: string, fetched: Fetched, expected: Descriptor | { digest: string }): Fetched {
  if (fetched.digest !== expected.digest) {
    throw new Error(`${what}: body hashes to ${fetched.digest}, expected ${expected.digest}`);
  }
  if ('size' in expected && fetched.size !== expected.size) {
    throw new Error(`${what}: ${fetched.size} bytes, expected ${expected.size}`);
  }
  if (fetched.headerDigest !== undefined && fetched.headerDigest !== expected.digest) {
    throw new Error(`${what}: Docker-Content-Digest ${fetched.headerDigest}, expected ${expected.digest}`);
  }
  return fetched;
}

/** One client's complete pull of every platform; resolves with the body bytes it received. */
async function pullOnce(
  base: string,
  repository: string,
  tag: string,
  indexDigest: string,
  signal: AbortSignal,
): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: blobsAtOnce });
  const v2 = `${base}/v2/${repository}`;
  try {
    let bytes = (await fetchHashed(`${base}/v2/`, agent, signal, true)).size;
    const index = checked(
      `${repository}:${tag}`,
      await fetchHashed(`${v2}/manifests/${tag}`, agent, signal, true, manifestAccept),
      { digest: indexDigest },
    );
    bytes += index.size;
    const children = (JSON.parse(index.body!.toString()) as { manifests: Descriptor[] }).manifests;
    const blobs = new Map<string, Descriptor>();
    for (const child of children) {
      const manifest = checked(
        `manifest ${child.digest}`,
        await fetchHashed(`${v2}/manifests/${child.digest}`, agent, signal, true, manifestAccept),
        child,
      );
      bytes += manifest.size;
      const parsed = JSON.parse(manifest.body!.toString()) as { config: Descriptor; layers: Descriptor[] };
      for (const blob of [parsed.config, ...parsed.layers]) blobs.set(blob.digest, blob);
    }
    const queue = [...blobs.values()];
    const worker = async (): Promise<void> => {
      for (let blob = queue.shift(); blob; blob = queue.shift()) {
        const fetched = await fetchHashed(`${v2}/blobs/${blob.digest}`, agent, signal, false);
        bytes += checked(`blob ${blob.digest}`, fetched, blob).size;
      }
    };
    await Promise.all(Array.from({ length: blobsAtOnce }, worker));
    return bytes;
  } finally {
    agent.destroy();
  }
}

async function main(): Promise<void> {
  const [base, repository, tag, indexDigest, clientsArg, timeoutArg, startArg] = process.argv.slice(2);
  const clients = Number(clientsArg);
  const timeoutMs = Number(timeoutArg);
  const startAt = Number(startArg);
  if (
    !base ||
    !repository ||
    !tag ||
    !indexDigest ||
    !(clients >= 1) ||
    !(timeoutMs > 0) ||
    !Number.isFinite(startAt)
  ) {
    console.error(
      'usage: node bench/lib/cache-pull.ts BASE REPOSITORY TAG INDEX_DIGEST CLIENTS TIMEOUT_MS START_AT',
    );
    process.exit(64);
  }
  const now = (): number => performance.timeOrigin + performance.now();
  const lateMs = Math.max(0, now() - startAt);
  if (lateMs === 0) await new Promise((resolve) => setTimeout(resolve, startAt - now()));
  const signal = AbortSignal.timeout(timeoutMs);
  const cpuBefore = process.cpuUsage();
  const outcomes = await Promise.allSettled(
    Array.from({ length: clients }, async () => {
      const clientStarted = performance.now();
      const bytes = await pullOnce(base, repository, tag, indexDigest, signal);
      return { bytes, seconds: (performance.now() - clientStarted) / 1000 };
    }),
  );
  const seconds = (now() - startAt) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const report: PullReport = {
    clients,
    succeeded: 0,
    failures: [],
    seconds,
    lateMs,
    bytes: 0,
    clientSeconds: [],
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  for (const outcome of outcomes) {
    if (outcome.status === 'fulfilled') {
      report.succeeded++;
      report.bytes += outcome.value.bytes;
      report.clientSeconds.push(outcome.value.seconds);
    } else if (report.failures.length < 5) {
      report.failures.push((outcome.reason as Error).message);
    }
  }
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((error: unknown) => {
  console.error(`cache-pull: ${(error as Error).message}`);
  process.exit(1);
});

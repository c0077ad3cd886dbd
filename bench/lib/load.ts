/**
 * The measured clients. Downloads and uploads use curl (one process per transfer, writing to /dev/null
 * or reading a file, so the client costs little CPU); manifest GETs use wrk. All are bounded in time.
 */
import type { BlobSource } from './data.ts';
import { ociManifestType, startUpload, withDigest } from './http.ts';
import { run } from './proc.ts';

export interface Transfer {
  bytes: number;
  seconds: number;
}

/** GET `url` with curl to /dev/null; checks status 200 and the byte count. */
export async function curlGet(url: string, expectedBytes: number, timeoutMs: number): Promise<Transfer> {
  const result = await run(
    'curl',
    [
      '-s',
      '-o',
      '/dev/null',
      '--max-time',
      String(Math.ceil(timeoutMs / 1000)),
      '-w',
      '%{http_code} %{size_download} %{time_total}',
      url,
    ],
    { timeoutMs: timeoutMs + 5_000 },
  );
  const [status, size, seconds] = result.stdout.trim().split(' ');
  if (status !== '200' || Number(size) !== expectedBytes) {
    throw new Error(
      `curl GET ${url}: status ${status}, ${size} bytes (expected 200, ${expectedBytes}), exit ${result.code}${
        result.timedOut ? ' (timed out)' : ''
      }`,
    );
  }
  return { bytes: Number(size), seconds: Number(seconds) };
}

/** Starts all downloads at once; returns total bytes and wall-clock seconds until the last ends. */
export async function concurrentGets(
  downloads: { url: string; bytes: number }[],
  timeoutMs: number,
): Promise<Transfer> {
  const started = performance.now();
  const results = await Promise.all(downloads.map((d) => curlGet(d.url, d.bytes, timeoutMs)));
  const seconds = (performance.now() - started) / 1000;
  return { bytes: results.reduce((sum, r) => sum + r.bytes, 0), seconds };
}

/** Monolithic pushes: POST (node:http) then PUT of the file with curl, `concurrency` at a time. */
export async function pushAll(
  base: string,
  repo: string,
  blobs: BlobSource[],
  concurrency: number,
  timeoutMs: number,
): Promise<Transfer> {
  const queue = [...blobs];
  const started = performance.now();
  const worker = async (): Promise<void> => {
    for (let blob = queue.shift(); blob; blob = queue.shift()) {
      const location = await startUpload(base, repo);
      const result = await run(
        'curl',
        [
          '-s',
          '-o',
          '/dev/null',
          '--max-time',
          String(Math.ceil(timeoutMs / 1000)),
          '-w',
          '%{http_code} %{size_upload}',
          '-X',
          'PUT',
          '-T',
          blob.file,
          '-H',
          'Content-Type: application/octet-stream',
          '-H',
          'Expect:',
          withDigest(location, blob.digest),
        ],
        { timeoutMs: timeoutMs + 5_000 },
      );
      const [status, size] = result.stdout.trim().split(' ');
      if (status !== '201' || Number(size) !== blob.size) {
        throw new Error(`curl PUT ${blob.digest}: status ${status}, ${size} bytes sent, exit ${result.code}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, blobs.length) }, worker));
  const seconds = (performance.now() - started) / 1000;
  return { bytes: blobs.reduce((sum, b) => sum + b.size, 0), seconds };
}

export interface WrkResult {
  requestsPerSecond: number;
  requests: number;
  non2xx: number;
  socketErrors: number;
  latencyAvg: string;
  latencyP50: string;
  latencyP99: string;
}

/** wrk -t1 -cN -dS with the OCI manifest Accept header. */
export async function wrkGet(
  url: string,
  options: { connections: number; seconds: number; accept?: string },
): Promise<WrkResult> {
  const result = await run(
    'wrk',
    [
      '-t1',
      `-c${options.connections}`,
      `-d${options.seconds}s`,
      '--timeout',
      '5s',
      '--latency',
      '-H',
      `Accept: ${options.accept ?? ociManifestType}`,
      url,
    ],
    { timeoutMs: (options.seconds + 30) * 1000 },
  );
  const out = result.stdout;
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const total = /(\d+) requests in/.exec(out);
  if (result.code !== 0 || !rps || !total) {
    throw new Error(`wrk ${url} failed (exit ${result.code}): ${out}${result.stderr}`);
  }
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const latency = /Latency\s+(\S+)/.exec(out);
  const p50 = /\s50%\s+(\S+)/.exec(out);
  const p99 = /\s99%\s+(\S+)/.exec(out);
  return {
    requestsPerSecond: Number(rps[1]),
    requests: Number(total[1]),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
    latencyAvg: latency?.[1] ?? '?',
    latencyP50: p50?.[1] ?? '?',
    latencyP99: p99?.[1] ?? '?',
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Megabytes (10^6 bytes) per second. */
export function mbps(transfer: Transfer): number {
  return transfer.bytes / transfer.seconds / 1e6;
}

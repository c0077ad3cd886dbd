/**
 * A counting HTTP proxy between one registry of bench/s3.ts and s3rver: it forwards every S3 request as it
 * came (Host included, so signatures still match) and counts them by S3 operation and HTTP method, with the
 * bytes each way, outside the registries and independently of their own figures.
 *
 *   node bench/lib/s3-counter.ts LISTEN_PORT S3RVER_BASE
 *
 * s3rver 3.7.1 lacks ListMultipartUploads and ListParts, which distribution 2.8's S3 driver needs to go on
 * with any upload it opened in an earlier request (every push does). The proxy answers those two itself,
 * from the multipart uploads and parts it saw pass, as S3 would; they are counted like the others (on S3
 * they are real requests) and marked `emulated`. Every other request reaches s3rver.
 *
 * Control paths GET /-/counts (JSON, see S3CounterReport) and POST /-/reset: see counting-proxy.ts (`-` is
 * not a bucket name).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { endToEnd, forward, serveCountingProxy, type Traffic, type Upstream } from './counting-proxy.ts';

/** One S3 operation, with what s3rver (or the proxy, for emulated ones) answered. */
export interface S3Count {
  /** GetObject, HeadObject, PutObject, CopyObject, UploadPart, ListObjectsV2, DeleteObjects, … */
  operation: string;
  method: string;
  requests: number;
  /** Request body bytes (what the registry sent). */
  bytesIn: number;
  /** Response body bytes (what the registry received). */
  bytesOut: number;
  statuses: Record<string, number>;
  /** Answered by the proxy because s3rver lacks it. */
  emulated: boolean;
}

export interface S3CounterReport extends Traffic {
  operations: S3Count[];
}

interface Part {
  size: number;
  etag: string;
  modified: string;
}

interface OpenMultipart {
  bucket: string;
  key: string;
  initiated: string;
  parts: Map<number, Part>;
}

interface Target {
  bucket: string;
  /** '' for a request on the bucket itself. */
  key: string;
  query: URLSearchParams;
}

function targetOf(url: string): Target {
  const parsed = new URL(url, 'http://s3.invalid');
  const [bucket = '', ...rest] = parsed.pathname.slice(1).split('/');
  return {
    bucket: decodeURIComponent(bucket),
    key: rest.map((segment) => decodeURIComponent(segment)).join('/'),
    query: parsed.searchParams,
  };
}

/** The S3 API operation a path-style request is. */
function operationOf(method: string, target: Target, headers: IncomingHttpHeaders): string {
  const { key, query } = target;
  const copy = headers['x-amz-copy-source'] !== undefined;
  if (key === '') {
    if (method === 'GET' && query.has('uploads')) return 'ListMultipartUploads';
    if (method === 'GET') return query.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects';
    if (method === 'POST' && query.has('delete')) return 'DeleteObjects';
    if (method === 'HEAD') return 'HeadBucket';
    return `${method} bucket`;
  }
  if (method === 'GET') return query.has('uploadId') ? 'ListParts' : 'GetObject';
  if (method === 'HEAD') return 'HeadObject';
  if (method === 'PUT' && query.has('uploadId')) return copy ? 'UploadPartCopy' : 'UploadPart';
  if (method === 'PUT') return copy ? 'CopyObject' : 'PutObject';
  if (method === 'POST' && query.has('uploads')) return 'CreateMultipartUpload';
  if (method === 'POST' && query.has('uploadId')) return 'CompleteMultipartUpload';
  if (method === 'DELETE') return query.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
  return `${method} object`;
}

function xml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

const xmlHead = '<?xml version="1.0" encoding="UTF-8"?>';
const ns = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"';

/** The multipart uploads this proxy saw start and not end, as S3's ListMultipartUploads lists them. */
function listUploads(open: Map<string, OpenMultipart>, target: Target): string {
  const prefix = target.query.get('prefix') ?? '';
  const uploads = [...open.entries()]
    .filter(([, upload]) => upload.bucket === target.bucket && upload.key.startsWith(prefix))
    .sort(([, a], [, b]) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const entries = uploads.map(
    ([id, upload]) =>
      `<Upload><Key>${xml(upload.key)}</Key><UploadId>${xml(id)}</UploadId>` +
      `<Initiated>${upload.initiated}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`,
  );
  return (
    `${xmlHead}<ListMultipartUploadsResult ${ns}><Bucket>${xml(target.bucket)}</Bucket>` +
    `<KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><NextKeyMarker></NextKeyMarker>` +
    `<NextUploadIdMarker></NextUploadIdMarker><Prefix>${xml(prefix)}</Prefix><MaxUploads>1000</MaxUploads>` +
    `<IsTruncated>false</IsTruncated>${entries.join('')}</ListMultipartUploadsResult>`
  );
}

/** The parts of one upload as S3's ListParts lists them, or undefined for an upload not open. */
function listParts(open: Map<string, OpenMultipart>, target: Target): string | undefined {
  const id = target.query.get('uploadId') ?? '';
  const upload = open.get(id);
  if (!upload || upload.key !== target.key) return undefined;
  const marker = Number(target.query.get('part-number-marker') ?? 0);
  const numbers = [...upload.parts.keys()].filter((n) => n > marker).sort((a, b) => a - b);
  const parts = numbers.map((n) => {
    const part = upload.parts.get(n)!;
    return (
      `<Part><PartNumber>${n}</PartNumber><LastModified>${part.modified}</LastModified>` +
      `<ETag>${xml(part.etag)}</ETag><Size>${part.size}</Size></Part>`
    );
  });
  return (
    `${xmlHead}<ListPartsResult ${ns}><Bucket>${xml(upload.bucket)}</Bucket><Key>${xml(upload.key)}</Key>` +
    `<UploadId>${xml(id)}</UploadId><PartNumberMarker>${marker}</PartNumberMarker>` +
    `<NextPartNumberMarker>${numbers.at(-1) ?? marker}</NextPartNumberMarker><MaxParts>1000</MaxParts>` +
    `<IsTruncated>false</IsTruncated><StorageClass>STANDARD</StorageClass>${parts.join('')}</ListPartsResult>`
  );
}

class Counter implements Traffic {
  private counts = new Map<string, S3Count>();
  inFlight = 0;
  upstreamErrors = 0;
  /** Multipart uploads seen started and not yet completed or aborted, by upload id. */
  readonly open = new Map<string, OpenMultipart>();

  entry(operation: string, method: string, emulated: boolean): S3Count {
    let entry = this.counts.get(operation);
    if (!entry) {
      entry = { operation, method, requests: 0, bytesIn: 0, bytesOut: 0, statuses: {}, emulated };
      this.counts.set(operation, entry);
    }
    return entry;
  }

  report(): S3CounterReport {
    return {
      operations: [...this.counts.values()],
      inFlight: this.inFlight,
      upstreamErrors: this.upstreamErrors,
    };
  }

  reset(): void {
    this.counts = new Map();
    this.upstreamErrors = 0;
  }
}

/** Keeps the proxy's record of open multipart uploads as s3rver answers the requests that change them. */
function track(counter: Counter, operation: string, target: Target, status: number, info: Tracked): void {
  const id = target.query.get('uploadId') ?? '';
  const ok = status >= 200 && status < 300;
  if (operation === 'CreateMultipartUpload' && ok) {
    const started = /<UploadId>([^<]+)<\/UploadId>/.exec(info.body())?.[1];
    if (started) {
      counter.open.set(started, {
        bucket: target.bucket,
        key: target.key,
        initiated: new Date().toISOString(),
        parts: new Map(),
      });
    }
  } else if (operation === 'UploadPart' && ok) {
    const upload = counter.open.get(id);
    const number = Number(target.query.get('partNumber'));
    if (upload && Number.isInteger(number)) {
      upload.parts.set(number, { size: info.size(), etag: info.etag(), modified: new Date().toISOString() });
    }
  } else if ((operation === 'CompleteMultipartUpload' && ok) || operation === 'AbortMultipartUpload') {
    // s3rver answers Abort with 405; on S3 the upload is gone either way.
    counter.open.delete(id);
  }
}

interface Tracked {
  body(): string;
  size(): number;
  etag(): string;
}

function answerEmulated(
  counter: Counter,
  operation: string,
  target: Target,
  entry: S3Count,
  res: ServerResponse,
): void {
  const body =
    operation === 'ListParts' ? listParts(counter.open, target) : listUploads(counter.open, target);
  const status = body === undefined ? 404 : 200;
  const text =
    body ??
    `${xmlHead}<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>`;
  entry.statuses[String(status)] = (entry.statuses[String(status)] ?? 0) + 1;
  entry.bytesOut += Buffer.byteLength(text);
  res.writeHead(status, { 'Content-Type': 'application/xml' }).end(text);
}

/**
 * Counts the request under its S3 operation; answers the emulated ones itself and forwards the rest to
 * s3rver as they came, keeping the record of multipart uploads as s3rver answers.
 */
function countAndForward(
  counter: Counter,
  upstream: Upstream,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const method = req.method ?? 'GET';
  const target = targetOf(req.url ?? '/');
  const operation = operationOf(method, target, req.headers);
  const emulated = operation === 'ListMultipartUploads' || operation === 'ListParts';
  const entry = counter.entry(operation, method, emulated);
  entry.requests++;
  if (emulated) {
    req.resume();
    answerEmulated(counter, operation, target, entry, res);
    return;
  }
  let sent = 0;
  req.on('data', (chunk: Buffer) => {
    sent += chunk.length;
    entry.bytesIn += chunk.length;
  });
  const small: Buffer[] = [];
  forward(upstream, counter, req, res, {
    headers: endToEnd(req.headers),
    onAnswer: (answer) => {
      const status = String(answer.statusCode ?? 502);
      entry.statuses[status] = (entry.statuses[status] ?? 0) + 1;
    },
    onAnswerData: (chunk) => {
      entry.bytesOut += chunk.length;
      if (operation === 'CreateMultipartUpload') small.push(chunk);
    },
    onAnswerEnd: (answer) =>
      track(counter, operation, target, answer.statusCode ?? 502, {
        body: () => Buffer.concat(small).toString('utf8'),
        size: () =>
          Number(req.headers['x-amz-decoded-content-length'] ?? req.headers['content-length'] ?? sent),
        etag: () => String(answer.headers.etag ?? ''),
      }),
  });
}

serveCountingProxy('node bench/lib/s3-counter.ts LISTEN_PORT S3RVER_BASE', (upstream) => {
  const counter = new Counter();
  return {
    report: () => counter.report(),
    reset: () => counter.reset(),
    handle: (req, res) => countAndForward(counter, upstream, req, res),
  };
});

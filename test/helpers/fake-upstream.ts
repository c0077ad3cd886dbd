/**
 * A fake upstream registry that behaves like Docker Hub, for tests of the registry client, the copy tool and
 * the pull-through cache. It listens on 127.0.0.1 only (port 0), and optionally runs a second "CDN" server
 * (also 127.0.0.1) that blob GETs are redirected to.
 *
 * What it promises:
 * - Content added with `addBlob`/`addManifest`/`addReferrer` or pushed over HTTP is served byte-exact.
 * - Auth modes: `token` (Docker Hub's Bearer flow with the token endpoint at `/token` on the same server,
 *   service "fake.registry"), `basic`, or `none`. Default: `token`.
 * - Docker Hub's rate limit: manifest GETs (not HEADs) are counted per source (the user, or the client IP),
 *   manifest GET and HEAD answers carry the RateLimit headers, and GETs past the limit get 429.
 * - Fault injection (`inject`): status, reset and delay faults fire when a matching request arrives, before
 *   authentication; truncate and wrong-digest faults fire only when a matching request is about to receive
 *   content (a manifest or blob body), so 401 challenges, HEADs and redirects do not consume them.
 * - Every request is recorded, in arrival order, with the status it was answered with (0 for a reset).
 * - Self-contained: it does not use pullsafe's own code, so it can judge that code.
 */
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The `service` of the token flow: challenges carry it and the token endpoint requires it. */
export const FAKE_SERVICE = 'fake.registry';

export type RequestKind = 'base' | 'manifest' | 'blob' | 'upload' | 'tags' | 'referrers' | 'token' | 'other';
export type ServerName = 'registry' | 'cdn';

export interface RateLimitOptions {
  limit: number;
  windowSeconds: number;
  /** `standard`: RateLimit-Limit / RateLimit-Remaining; `x`: X-RateLimit-Limit / X-RateLimit-Remaining. */
  headerStyle?: 'standard' | 'x';
}

export interface FakeUpstreamOptions {
  /** 'token' = Docker Hub style Bearer flow with a token endpoint on the same server (/token); 'basic' = Basic auth; 'none' = anonymous. Default 'token'. */
  auth?: 'token' | 'basic' | 'none';
  /** username -> password, for basic auth and for the token endpoint's basic credentials. Users may pull and push everywhere. */
  users?: Record<string, string>;
  /** Token flow: grant pull to requests without credentials (default true). When false, anonymous tokens carry no access, as Docker Hub does for private repositories. Anonymous clients never get push. */
  anonymousPull?: boolean;
  /** expires_in of issued tokens (default 300); expired tokens are refused with 401 (error="invalid_token"). */
  tokenTtlSeconds?: number;
  rateLimit?: RateLimitOptions;
  /** Blob GETs answer 307 to the CDN server, which serves the blob under a signed URL and refuses (400) any request carrying Authorization. */
  blobRedirect?: boolean;
  /** Answer every cross-repository mount with 202 and a new upload, as ECR does unless blob mounting is enabled. */
  ignoreMounts?: boolean;
}

export interface FaultMatch {
  method?: string;
  /** Substring of the request target (path and query). */
  pathIncludes?: string;
  /** CDN requests are of kind 'blob'. */
  kind?: RequestKind;
  server?: ServerName;
}

export type FaultAction =
  /** Answer with this status (body: the given text, or a distribution error body matching the status). */
  | { status: number; retryAfter?: number; body?: string }
  /** Destroy the socket before any response. */
  | 'reset'
  /** Send the headers with the full Content-Length, then half the body, then destroy the socket. */
  | 'truncate'
  /** Serve different bytes of the same length (the Docker-Content-Digest header still names the real content). */
  | 'wrong-digest'
  /** Wait, then handle the request normally. */
  | { delayMs: number };

export interface Fault {
  match: FaultMatch;
  /** How many matching requests the fault applies to (default 1). */
  times?: number;
  action: FaultAction;
}

export interface RecordedRequest {
  method: string;
  /** Path, still percent-encoded as sent. */
  path: string;
  /** Query string without the leading '?', '' when none. */
  query: string;
  /** Lowercase header names; repeated headers joined with ', '. Authorization is included. */
  headers: Record<string, string>;
  /** Status sent; 0 until answered, and 0 for a reset. */
  status: number;
  server: ServerName;
  kind: RequestKind;
  /** The injected fault that hit this request, if any: 'status', 'reset', 'truncate', 'wrong-digest' or 'delay'. */
  fault?: string;
}

export interface IssuedToken {
  /** The requested scopes, space separated ('' when none). */
  scope: string;
  service: string;
  /** Present when basic credentials were used. */
  user?: string;
  /** What the token allows, as `repository:<name>:<action>` entries. */
  granted: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface StoredManifest {
  mediaType: string;
  digest: string;
  bytes: Buffer;
}

export interface FakeUpstream {
  /** http://127.0.0.1:PORT */
  url: string;
  /** 127.0.0.1:PORT */
  host: string;
  /** The CDN server's origin, when `blobRedirect` is on. */
  cdnUrl?: string;
  /** Stores a blob in a repository (blobs are per repository); returns its sha256 digest. */
  addBlob(repository: string, data: Buffer): string;
  /** Stores a manifest under a tag or its own digest (a digest reference must match the bytes); returns its digest. A `subject` makes it a referrer. */
  addManifest(repository: string, reference: string, mediaType: string, bytes: Buffer): string;
  /** Lists a descriptor in the referrers index of `subjectDigest`. */
  addReferrer(repository: string, subjectDigest: string, descriptor: Descriptor): void;
  /** What the fake holds (added or pushed), for assertions. */
  getBlob(repository: string, digest: string): Buffer | undefined;
  getManifest(repository: string, reference: string): StoredManifest | undefined;
  listTags(repository: string): string[];
  /** Adds a fault; faults are consumed in the order added, per matching request. */
  inject(fault: Fault): void;
  requests: RecordedRequest[];
  count(predicate: (r: RecordedRequest) => boolean): number;
  tokensIssued: IssuedToken[];
  /** Sets what is left of `source`'s quota in the current window (source: a user name, or '127.0.0.1'). */
  setRateLimitRemaining(source: string, remaining: number): void;
  close(): Promise<void>;
}

const NAME_PATTERN = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_PATTERN = /^\w[\w.-]{0,127}$/;
const DIGEST_PATTERN = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const CDN_URL_LIFETIME_MS = 20 * 60 * 1000;
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

const defaultCodeForStatus: Record<number, string> = {
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

type Action = 'pull' | 'push';

interface Repository {
  blobs: Map<string, Buffer>;
  manifests: Map<string, { mediaType: string; bytes: Buffer }>;
  tags: Map<string, string>;
  referrers: Map<string, Descriptor[]>;
}

interface Upload {
  repository: string;
  chunks: Buffer[];
  size: number;
}

interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

interface TokenClaims {
  sub?: string;
  access: AccessEntry[];
  iat: number;
  exp: number;
  jti: string;
}

interface Principal {
  user?: string;
  access?: AccessEntry[];
}

interface ActiveFault {
  match: FaultMatch;
  action: FaultAction;
  remaining: number;
}

interface Context {
  req: IncomingMessage;
  res: ServerResponse;
  record: RecordedRequest;
  server: ServerName;
  url: URL;
}

interface Route {
  kind: RequestKind;
  name?: string;
  reference?: string;
  uuid?: string;
}

class BodyTooLarge extends Error {}

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function digestOf(data: Buffer, algorithm: string): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

function isBodyFault(action: FaultAction): action is 'truncate' | 'wrong-digest' {
  return action === 'truncate' || action === 'wrong-digest';
}

function faultName(action: FaultAction): string {
  if (typeof action === 'string') return action;
  return 'delayMs' in action ? 'delay' : 'status';
}

function parseRoute(pathname: string): Route {
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

function headerRecord(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    out[key.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function errorBody(code: string, message: string, detail?: unknown): string {
  return JSON.stringify({ errors: [{ code, message, detail: detail ?? null }] });
}

function parseRange(
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

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BodyTooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Digests a manifest refers to and that must exist in the repository before it is pushed. */
function referencedContent(doc: unknown): { blobs: string[]; manifests: string[] } {
  const blobs: string[] = [];
  const manifests: string[] = [];
  if (typeof doc !== 'object' || doc === null) return { blobs, manifests };
  const record = doc as Record<string, unknown>;
  const digestOfDescriptor = (d: unknown): string | undefined => {
    if (typeof d !== 'object' || d === null) return undefined;
    const value = (d as Record<string, unknown>).digest;
    return typeof value === 'string' ? value : undefined;
  };
  const config = digestOfDescriptor(record.config);
  if (config) blobs.push(config);
  if (Array.isArray(record.layers)) {
    for (const layer of record.layers as unknown[]) {
      const mediaType = (layer as Record<string, unknown> | null)?.mediaType;
      if (typeof mediaType === 'string' && /foreign|nondistributable/.test(mediaType)) continue;
      const digest = digestOfDescriptor(layer);
      if (digest) blobs.push(digest);
    }
  }
  if (Array.isArray(record.manifests)) {
    for (const child of record.manifests as unknown[]) {
      const digest = digestOfDescriptor(child);
      if (digest) manifests.push(digest);
    }
  }
  return { blobs, manifests };
}

/** The referrer descriptor of a manifest with a `subject`, or undefined. */
function referrerOf(
  mediaType: string,
  digest: string,
  bytes: Buffer,
): { subject: string; descriptor: Descriptor } | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null) return undefined;
  const record = doc as Record<string, unknown>;
  const subject = record.subject as Record<string, unknown> | undefined;
  if (typeof subject?.digest !== 'string') return undefined;
  const config = record.config as Record<string, unknown> | undefined;
  const artifactType =
    typeof record.artifactType === 'string'
      ? record.artifactType
      : typeof config?.mediaType === 'string'
        ? config.mediaType
        : undefined;
  const descriptor: Descriptor = { mediaType, digest, size: bytes.length };
  if (artifactType) descriptor.artifactType = artifactType;
  if (typeof record.annotations === 'object' && record.annotations !== null) {
    descriptor.annotations = record.annotations as Record<string, string>;
  }
  return { subject: subject.digest, descriptor };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

export async function startFakeUpstream(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const authMode = options.auth ?? 'token';
  const users = options.users ?? {};
  const anonymousPull = options.anonymousPull ?? true;
  const tokenTtlSeconds = options.tokenTtlSeconds ?? 300;
  const rateLimit = options.rateLimit;
  const secret = randomBytes(32);

  const repositories = new Map<string, Repository>();
  const uploads = new Map<string, Upload>();
  const faults: ActiveFault[] = [];
  const requests: RecordedRequest[] = [];
  const tokensIssued: IssuedToken[] = [];
  const quota = new Map<string, { used: number; windowStart: number }>();
  const sleepers = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  let baseUrl = '';
  let cdnBaseUrl = '';

  // ---- content ----

  function repo(name: string, create: boolean): Repository | undefined {
    let found = repositories.get(name);
    if (!found && create) {
      found = { blobs: new Map(), manifests: new Map(), tags: new Map(), referrers: new Map() };
      repositories.set(name, found);
    }
    return found;
  }

  function addReferrer(repository: string, subjectDigest: string, descriptor: Descriptor): void {
    const target = repo(repository, true)!;
    const list = target.referrers.get(subjectDigest) ?? [];
    const at = list.findIndex((d) => d.digest === descriptor.digest);
    if (at >= 0) list[at] = descriptor;
    else list.push(descriptor);
    target.referrers.set(subjectDigest, list);
  }

  function storeManifest(repository: string, reference: string, mediaType: string, bytes: Buffer): string {
    const digest = DIGEST_PATTERN.test(reference)
      ? digestOf(bytes, reference.slice(0, reference.indexOf(':')))
      : sha256Digest(bytes);
    if (DIGEST_PATTERN.test(reference) && reference !== digest) {
      throw new Error(`manifest bytes do not match ${reference}`);
    }
    const target = repo(repository, true)!;
    target.manifests.set(digest, { mediaType, bytes: Buffer.from(bytes) });
    if (!DIGEST_PATTERN.test(reference)) target.tags.set(reference, digest);
    const referrer = referrerOf(mediaType, digest, bytes);
    if (referrer) addReferrer(repository, referrer.subject, referrer.descriptor);
    return digest;
  }

  function findManifest(repository: string, reference: string): StoredManifest | undefined {
    const target = repositories.get(repository);
    if (!target) return undefined;
    const digest = DIGEST_PATTERN.test(reference) ? reference : target.tags.get(reference);
    const stored = digest ? target.manifests.get(digest) : undefined;
    return stored && digest ? { mediaType: stored.mediaType, digest, bytes: stored.bytes } : undefined;
  }

  // ---- faults ----

  function faultMatches(fault: ActiveFault, ctx: Context, kind: RequestKind): boolean {
    const { match } = fault;
    if (fault.remaining <= 0) return false;
    if (match.method && match.method.toUpperCase() !== ctx.req.method) return false;
    if (match.kind && match.kind !== kind) return false;
    if (match.server && match.server !== ctx.server) return false;
    if (match.pathIncludes && !(ctx.req.url ?? '').includes(match.pathIncludes)) return false;
    return true;
  }

  function takeFault(ctx: Context, body: boolean): FaultAction | undefined {
    const fault = faults.find((f) => isBodyFault(f.action) === body && faultMatches(f, ctx, ctx.record.kind));
    if (!fault) return undefined;
    fault.remaining -= 1;
    ctx.record.fault = faultName(fault.action);
    return fault.action;
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const sleeper = {
        timer: setTimeout(() => {
          sleepers.delete(sleeper);
          resolve();
        }, ms),
        wake: resolve,
      };
      sleepers.add(sleeper);
    });
  }

  /** Applies a status, reset or delay fault; returns false when the request has been answered. */
  async function arrivalFault(ctx: Context): Promise<boolean> {
    const action = takeFault(ctx, false);
    if (action === undefined) return true;
    if (action === 'reset') {
      ctx.record.status = 0;
      ctx.req.socket.destroy();
      return false;
    }
    if (typeof action === 'object' && 'delayMs' in action) {
      await sleep(action.delayMs);
      return true;
    }
    if (typeof action === 'object' && 'status' in action) {
      const headers: Record<string, string> = {};
      if (action.retryAfter !== undefined) headers['Retry-After'] = String(action.retryAfter);
      let body = action.body;
      if (body === undefined) {
        const code = defaultCodeForStatus[action.status] ?? 'UNKNOWN';
        body = errorBody(code, `injected fault: ${action.status}`);
      }
      let json = true;
      try {
        JSON.parse(body);
      } catch {
        json = false;
      }
      headers['Content-Type'] = json ? 'application/json' : 'text/plain';
      send(ctx, action.status, headers, body);
      return false;
    }
    return true;
  }

  // ---- responses ----

  function commonHeaders(ctx: Context): Record<string, string> {
    return ctx.server === 'registry' ? { 'Docker-Distribution-API-Version': 'registry/2.0' } : {};
  }

  function send(ctx: Context, status: number, headers: Record<string, string>, body?: Buffer | string): void {
    const bytes = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
    ctx.record.status = status;
    ctx.res.writeHead(status, {
      ...commonHeaders(ctx),
      'Content-Length': String(bytes.length),
      ...headers,
    });
    ctx.res.end(ctx.req.method === 'HEAD' ? undefined : bytes);
  }

  function sendError(
    ctx: Context,
    status: number,
    code: string,
    message: string,
    detail?: unknown,
    headers: Record<string, string> = {},
  ): void {
    send(ctx, status, { 'Content-Type': 'application/json', ...headers }, errorBody(code, message, detail));
  }

  /** Sends manifest or blob bytes; the place where truncate and wrong-digest faults apply. */
  function sendContent(ctx: Context, status: number, headers: Record<string, string>, bytes: Buffer): void {
    const head = ctx.req.method === 'HEAD';
    const fault = head ? undefined : takeFault(ctx, true);
    let body = bytes;
    if (fault === 'wrong-digest') {
      body = Buffer.from(bytes);
      for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ 0xff;
    }
    ctx.record.status = status;
    ctx.res.writeHead(status, { ...commonHeaders(ctx), ...headers, 'Content-Length': String(bytes.length) });
    if (head) {
      ctx.res.end();
    } else if (fault === 'truncate') {
      const half = body.subarray(0, Math.floor(body.length / 2));
      if (half.length > 0) ctx.res.write(half, () => ctx.res.destroy());
      else {
        ctx.res.flushHeaders();
        setTimeout(() => ctx.res.destroy(), 10);
      }
    } else {
      ctx.res.end(body);
    }
  }

  function serveBlob(ctx: Context, data: Buffer, digest: string): void {
    const headers: Record<string, string> = {
      'Content-Type': 'application/octet-stream',
      'Docker-Content-Digest': digest,
      'Accept-Ranges': 'bytes',
      ETag: `"${digest}"`,
    };
    const range = parseRange(ctx.req.headers.range, data.length);
    if (range === 'bad') {
      send(ctx, 416, { 'Content-Range': `bytes */${data.length}` });
    } else if (range) {
      headers['Content-Range'] = `bytes ${range.start}-${range.end}/${data.length}`;
      sendContent(ctx, 206, headers, data.subarray(range.start, range.end + 1));
    } else {
      sendContent(ctx, 200, headers, data);
    }
  }

  // ---- auth ----

  function basicUser(header: string | undefined): string | undefined {
    const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
    if (!m) return undefined;
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    return Object.hasOwn(users, user) && users[user] === password ? user : undefined;
  }

  function sign(payload: string): string {
    return createHmac('sha256', secret).update(payload).digest('base64url');
  }

  function issueToken(claims: TokenClaims): string {
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${payload}.${sign(payload)}`;
  }

  function verifyToken(token: string): TokenClaims | undefined {
    const [payload, signature, extra] = token.split('.');
    if (!payload || !signature || extra !== undefined) return undefined;
    const expected = Buffer.from(sign(payload));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TokenClaims;
    return claims.exp > Date.now() ? claims : undefined;
  }

  function covers(access: AccessEntry[] | undefined, name: string, action: Action): boolean {
    return (access ?? []).some(
      (a) =>
        a.type === 'repository' && a.name === name && (a.actions.includes(action) || a.actions.includes('*')),
    );
  }

  function authDetail(need?: { name: string; actions: Action[] }): unknown {
    return need
      ? need.actions.map((a) => ({ Type: 'repository', Class: '', Name: need.name, Action: a }))
      : null;
  }

  function challenge(
    ctx: Context,
    need: { name: string; actions: Action[] } | undefined,
    error?: string,
  ): void {
    let value = `Bearer realm="${baseUrl}/token",service="${FAKE_SERVICE}"`;
    if (need) value += `,scope="repository:${need.name}:${need.actions.join(',')}"`;
    if (error) value += `,error="${error}"`;
    const message =
      error === 'insufficient_scope'
        ? 'insufficient scope'
        : error === 'invalid_token'
          ? 'invalid or expired token'
          : 'authentication required';
    sendError(ctx, 401, 'UNAUTHORIZED', message, authDetail(need), { 'WWW-Authenticate': value });
  }

  /** The caller, or undefined after answering 401. */
  function authorize(ctx: Context, need?: { name: string; actions: Action[] }): Principal | undefined {
    if (authMode === 'none') return {};
    const header = ctx.req.headers.authorization;
    if (authMode === 'basic') {
      const user = basicUser(header);
      if (user !== undefined) return { user };
      sendError(ctx, 401, 'UNAUTHORIZED', 'authentication required', authDetail(need), {
        'WWW-Authenticate': `Basic realm="${FAKE_SERVICE}"`,
      });
      return undefined;
    }
    const bearer = /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
    if (!bearer) {
      challenge(ctx, need);
      return undefined;
    }
    let claims: TokenClaims | undefined;
    try {
      claims = verifyToken(bearer);
    } catch {
      claims = undefined;
    }
    if (!claims) {
      challenge(ctx, need, 'invalid_token');
      return undefined;
    }
    if (need && !need.actions.every((action) => covers(claims.access, need.name, action))) {
      challenge(ctx, need, 'insufficient_scope');
      return undefined;
    }
    return { ...(claims.sub !== undefined ? { user: claims.sub } : {}), access: claims.access };
  }

  function canPull(principal: Principal, name: string): boolean {
    if (authMode !== 'token') return true;
    return covers(principal.access, name, 'pull');
  }

  function handleToken(ctx: Context): void {
    if (authMode !== 'token') return sendError(ctx, 404, 'NOT_FOUND', 'no token endpoint');
    if (ctx.req.method !== 'GET') {
      return send(ctx, 405, { Allow: 'GET', 'Content-Type': 'application/json' }, '{"details":"use GET"}');
    }
    const service = ctx.url.searchParams.get('service') ?? '';
    if (service !== FAKE_SERVICE) {
      return send(ctx, 400, { 'Content-Type': 'application/json' }, '{"details":"invalid service"}');
    }
    let user: string | undefined;
    if (ctx.req.headers.authorization?.toLowerCase().startsWith('basic ')) {
      user = basicUser(ctx.req.headers.authorization);
      if (user === undefined) {
        return send(
          ctx,
          401,
          { 'Content-Type': 'application/json' },
          '{"details":"incorrect username or password"}',
        );
      }
    }
    const requested = ctx.url.searchParams
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .filter((s) => s !== '');
    const allowed: string[] = user !== undefined ? ['pull', 'push'] : anonymousPull ? ['pull'] : [];
    const access: AccessEntry[] = [];
    for (const scope of requested) {
      const parts = scope.split(':');
      if (parts.length < 3 || parts[0] !== 'repository') continue;
      const name = parts.slice(1, -1).join(':');
      const wanted = parts[parts.length - 1]!.split(',');
      const actions = wanted.includes('*') ? allowed : allowed.filter((a) => wanted.includes(a));
      const existing = access.find((a) => a.name === name);
      if (existing) existing.actions = [...new Set([...existing.actions, ...actions])];
      else access.push({ type: 'repository', name, actions });
    }
    const now = Date.now();
    const claims: TokenClaims = {
      ...(user !== undefined ? { sub: user } : {}),
      access,
      iat: now,
      exp: now + tokenTtlSeconds * 1000,
      jti: randomUUID(),
    };
    const token = issueToken(claims);
    tokensIssued.push({
      scope: requested.join(' '),
      service,
      ...(user !== undefined ? { user } : {}),
      granted: access.flatMap((a) => a.actions.map((action) => `repository:${a.name}:${action}`)),
    });
    send(
      ctx,
      200,
      { 'Content-Type': 'application/json' },
      JSON.stringify({
        token,
        access_token: token,
        expires_in: tokenTtlSeconds,
        issued_at: new Date(now).toISOString(),
      }),
    );
  }

  // ---- rate limit ----

  function rateSource(ctx: Context, principal: Principal): string {
    return principal.user ?? (ctx.req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  }

  function quotaOf(source: string): { used: number; windowStart: number } {
    const now = Date.now();
    let state = quota.get(source);
    if (!state || !rateLimit || now - state.windowStart >= rateLimit.windowSeconds * 1000) {
      state = { used: 0, windowStart: now };
      quota.set(source, state);
    }
    return state;
  }

  function rateHeaders(source: string): Record<string, string> {
    if (!rateLimit) return {};
    const state = quotaOf(source);
    const prefix = rateLimit.headerStyle === 'x' ? 'X-' : '';
    const w = `;w=${rateLimit.windowSeconds}`;
    return {
      [`${prefix}RateLimit-Limit`]: `${rateLimit.limit}${w}`,
      [`${prefix}RateLimit-Remaining`]: `${Math.max(0, rateLimit.limit - state.used)}${w}`,
      'docker-ratelimit-source': source,
    };
  }

  // ---- registry endpoints ----

  function handleManifest(ctx: Context, name: string, reference: string): Promise<void> | void {
    const method = ctx.req.method;
    if (method === 'PUT') return putManifest(ctx, name, reference);
    if (method !== 'GET' && method !== 'HEAD') {
      return sendError(ctx, 405, 'UNSUPPORTED', `${method} is not supported on manifests`);
    }
    const principal = authorize(ctx, { name, actions: ['pull'] });
    if (!principal) return;
    const source = rateSource(ctx, principal);
    if (rateLimit && method === 'GET') {
      const state = quotaOf(source);
      if (state.used >= rateLimit.limit) {
        const retryAfter = Math.max(
          1,
          Math.ceil((state.windowStart + rateLimit.windowSeconds * 1000 - Date.now()) / 1000),
        );
        return sendError(
          ctx,
          429,
          'TOOMANYREQUESTS',
          'You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit',
          undefined,
          { ...rateHeaders(source), 'Retry-After': String(retryAfter) },
        );
      }
    }
    if (!repositories.has(name)) {
      return sendError(
        ctx,
        404,
        'NAME_UNKNOWN',
        'repository name not known to registry',
        { name },
        rateHeaders(source),
      );
    }
    const manifest = findManifest(name, reference);
    if (!manifest) {
      return sendError(
        ctx,
        404,
        'MANIFEST_UNKNOWN',
        'manifest unknown',
        { name, reference },
        rateHeaders(source),
      );
    }
    if (rateLimit && method === 'GET') quotaOf(source).used += 1;
    sendContent(
      ctx,
      200,
      {
        ...rateHeaders(source),
        'Content-Type': manifest.mediaType,
        'Docker-Content-Digest': manifest.digest,
        ETag: `"${manifest.digest}"`,
      },
      manifest.bytes,
    );
  }

  async function putManifest(ctx: Context, name: string, reference: string): Promise<void> {
    if (!authorize(ctx, { name, actions: ['pull', 'push'] })) return;
    const isDigest = DIGEST_PATTERN.test(reference);
    if (!isDigest && !TAG_PATTERN.test(reference)) {
      return sendError(ctx, 400, 'TAG_INVALID', 'invalid tag', { tag: reference });
    }
    const bytes = await readBody(ctx.req);
    let doc: unknown;
    try {
      doc = JSON.parse(bytes.toString('utf8'));
    } catch {
      return sendError(ctx, 400, 'MANIFEST_INVALID', 'manifest is not valid JSON');
    }
    const declared = (doc as Record<string, unknown> | null)?.mediaType;
    const mediaType =
      ctx.req.headers['content-type']?.split(';')[0]?.trim() ||
      (typeof declared === 'string' ? declared : undefined);
    if (!mediaType) return sendError(ctx, 400, 'MANIFEST_INVALID', 'manifest media type unknown');
    if (isDigest && digestOf(bytes, reference.slice(0, reference.indexOf(':'))) !== reference) {
      return sendError(ctx, 400, 'DIGEST_INVALID', 'manifest digest did not match', { digest: reference });
    }
    const target = repositories.get(name);
    const { blobs, manifests } = referencedContent(doc);
    for (const digest of blobs) {
      if (!target?.blobs.has(digest)) {
        return sendError(ctx, 400, 'MANIFEST_BLOB_UNKNOWN', 'blob unknown to registry', { digest });
      }
    }
    for (const digest of manifests) {
      if (!target?.manifests.has(digest)) {
        return sendError(ctx, 400, 'MANIFEST_BLOB_UNKNOWN', 'manifest unknown to registry', { digest });
      }
    }
    const digest = storeManifest(name, reference, mediaType, bytes);
    const headers: Record<string, string> = {
      Location: `${baseUrl}/v2/${name}/manifests/${digest}`,
      'Docker-Content-Digest': digest,
    };
    const referrer = referrerOf(mediaType, digest, bytes);
    if (referrer) headers['OCI-Subject'] = referrer.subject;
    send(ctx, 201, headers);
  }

  function handleBlob(ctx: Context, name: string, digest: string): void {
    const method = ctx.req.method;
    if (method !== 'GET' && method !== 'HEAD') {
      return sendError(ctx, 405, 'UNSUPPORTED', `${method} is not supported on blobs`);
    }
    if (!authorize(ctx, { name, actions: ['pull'] })) return;
    if (!DIGEST_PATTERN.test(digest))
      return sendError(ctx, 400, 'DIGEST_INVALID', 'invalid digest', { digest });
    const target = repositories.get(name);
    if (!target)
      return sendError(ctx, 404, 'NAME_UNKNOWN', 'repository name not known to registry', { name });
    const data = target.blobs.get(digest);
    if (!data) return sendError(ctx, 404, 'BLOB_UNKNOWN', 'blob unknown to registry', { digest });
    if (method === 'GET' && options.blobRedirect) {
      const expires = Date.now() + CDN_URL_LIFETIME_MS;
      const [algorithm, hex] = digest.split(':') as [string, string];
      const location =
        `${cdnBaseUrl}/registry-v2/docker/registry/v2/blobs/${algorithm}/${hex.slice(0, 2)}/${hex}/data` +
        `?verify=${expires}-${sign(`${digest}:${expires}`)}`;
      return send(ctx, 307, { Location: location });
    }
    serveBlob(ctx, data, digest);
  }

  function uploadLocation(name: string, uuid: string, size: number): string {
    const state = Buffer.from(JSON.stringify({ name, uuid, offset: size })).toString('base64url');
    return `${baseUrl}/v2/${name}/blobs/uploads/${uuid}?_state=${state}`;
  }

  function uploadHeaders(name: string, uuid: string, size: number): Record<string, string> {
    return {
      Location: uploadLocation(name, uuid, size),
      Range: `0-${Math.max(0, size - 1)}`,
      'Docker-Upload-UUID': uuid,
    };
  }

  /** Verifies and stores finished upload bytes; answers 201 or DIGEST_INVALID. */
  function finishBlob(ctx: Context, name: string, expected: string | null, data: Buffer): void {
    if (!expected || !DIGEST_PATTERN.test(expected)) {
      return sendError(ctx, 400, 'DIGEST_INVALID', 'digest parameter missing or invalid', {
        digest: expected,
      });
    }
    const actual = digestOf(data, expected.slice(0, expected.indexOf(':')));
    if (actual !== expected) {
      return sendError(ctx, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content', {
        digest: expected,
      });
    }
    repo(name, true)!.blobs.set(expected, data);
    send(ctx, 201, {
      Location: `${baseUrl}/v2/${name}/blobs/${expected}`,
      'Docker-Content-Digest': expected,
    });
  }

  async function handleUpload(ctx: Context, name: string, uuid: string | undefined): Promise<void> {
    const method = ctx.req.method ?? '';
    const params = ctx.url.searchParams;
    if (uuid === undefined) {
      if (method !== 'POST') return sendError(ctx, 405, 'UNSUPPORTED', `${method} is not supported here`);
      const principal = authorize(ctx, { name, actions: ['pull', 'push'] });
      if (!principal) return;
      const mount = params.get('mount');
      const from = params.get('from');
      if (mount && from && !options.ignoreMounts && NAME_PATTERN.test(from) && canPull(principal, from)) {
        const source = repositories.get(from)?.blobs.get(mount);
        if (source) {
          repo(name, true)!.blobs.set(mount, source);
          return send(ctx, 201, {
            Location: `${baseUrl}/v2/${name}/blobs/${mount}`,
            'Docker-Content-Digest': mount,
          });
        }
      }
      const digest = params.get('digest');
      if (digest && !mount) return finishBlob(ctx, name, digest, await readBody(ctx.req));
      const id = randomUUID();
      uploads.set(id, { repository: name, chunks: [], size: 0 });
      return send(ctx, 202, uploadHeaders(name, id, 0));
    }
    if (!authorize(ctx, { name, actions: ['pull', 'push'] })) return;
    const upload = uploads.get(uuid);
    if (!upload || upload.repository !== name) {
      return sendError(ctx, 404, 'BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', { uuid });
    }
    if (method === 'GET') return send(ctx, 204, uploadHeaders(name, uuid, upload.size));
    if (method === 'DELETE') {
      uploads.delete(uuid);
      return send(ctx, 204, {});
    }
    if (method !== 'PATCH' && method !== 'PUT') {
      return sendError(ctx, 405, 'UNSUPPORTED', `${method} is not supported on uploads`);
    }
    const contentRange = ctx.req.headers['content-range'];
    if (contentRange) {
      const m = /^(?:bytes )?(\d+)-(\d+)(?:\/\d+|\/\*)?$/.exec(contentRange);
      if (!m || Number(m[1]) !== upload.size) {
        return send(ctx, 416, uploadHeaders(name, uuid, upload.size));
      }
    }
    const chunk = await readBody(ctx.req);
    upload.chunks.push(chunk);
    upload.size += chunk.length;
    if (method === 'PATCH') return send(ctx, 202, uploadHeaders(name, uuid, upload.size));
    uploads.delete(uuid);
    finishBlob(ctx, name, params.get('digest'), Buffer.concat(upload.chunks));
  }

  function handleTags(ctx: Context, name: string): void {
    if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') {
      return sendError(ctx, 405, 'UNSUPPORTED', 'tags/list is read-only');
    }
    if (!authorize(ctx, { name, actions: ['pull'] })) return;
    const target = repositories.get(name);
    if (!target)
      return sendError(ctx, 404, 'NAME_UNKNOWN', 'repository name not known to registry', { name });
    const nParam = ctx.url.searchParams.get('n');
    const last = ctx.url.searchParams.get('last');
    let tags = [...target.tags.keys()].sort();
    if (last !== null) tags = tags.filter((t) => t > last);
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (nParam !== null) {
      const n = Number(nParam);
      if (!/^\d+$/.test(nParam) || n > 10_000) {
        return sendError(ctx, 400, 'PAGINATION_NUMBER_INVALID', 'invalid number of results requested', {
          n: nParam,
        });
      }
      if (tags.length > n) {
        tags = tags.slice(0, n);
        const lastTag = tags[tags.length - 1];
        if (lastTag !== undefined) {
          headers.Link = `</v2/${name}/tags/list?n=${n}&last=${encodeURIComponent(lastTag)}>; rel="next"`;
        }
      }
    }
    send(ctx, 200, headers, JSON.stringify({ name, tags }));
  }

  function handleReferrers(ctx: Context, name: string, digest: string): void {
    if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') {
      return sendError(ctx, 405, 'UNSUPPORTED', 'referrers is read-only');
    }
    if (!authorize(ctx, { name, actions: ['pull'] })) return;
    if (!DIGEST_PATTERN.test(digest))
      return sendError(ctx, 400, 'DIGEST_INVALID', 'invalid digest', { digest });
    const target = repositories.get(name);
    if (!target)
      return sendError(ctx, 404, 'NAME_UNKNOWN', 'repository name not known to registry', { name });
    const artifactType = ctx.url.searchParams.get('artifactType');
    let manifests = target.referrers.get(digest) ?? [];
    const headers: Record<string, string> = { 'Content-Type': OCI_INDEX };
    if (artifactType !== null) {
      manifests = manifests.filter((d) => d.artifactType === artifactType);
      headers['OCI-Filters-Applied'] = 'artifactType';
    }
    send(ctx, 200, headers, JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
  }

  async function routeRegistry(ctx: Context, route: Route): Promise<void> {
    if (route.kind === 'token') return handleToken(ctx);
    if (route.kind === 'base') {
      if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') {
        return sendError(ctx, 405, 'UNSUPPORTED', 'method not allowed');
      }
      if (!authorize(ctx)) return;
      return send(ctx, 200, { 'Content-Type': 'application/json' }, '{}');
    }
    if (route.kind === 'other' || route.name === undefined) {
      return sendError(ctx, 404, 'NOT_FOUND', 'no such endpoint');
    }
    if (!NAME_PATTERN.test(route.name)) {
      return sendError(ctx, 400, 'NAME_INVALID', 'invalid repository name', { name: route.name });
    }
    switch (route.kind) {
      case 'manifest':
        return handleManifest(ctx, route.name, route.reference ?? '');
      case 'blob':
        return handleBlob(ctx, route.name, route.reference ?? '');
      case 'upload':
        return handleUpload(ctx, route.name, route.uuid);
      case 'tags':
        return handleTags(ctx, route.name);
      case 'referrers':
        return handleReferrers(ctx, route.name, route.reference ?? '');
    }
  }

  // ---- CDN ----

  function handleCdn(ctx: Context): void {
    if (ctx.req.headers.authorization !== undefined) {
      return send(
        ctx,
        400,
        { 'Content-Type': 'application/xml' },
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; the signed URL and an Authorization header were both given</Message></Error>',
      );
    }
    if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') return send(ctx, 405, { Allow: 'GET, HEAD' });
    const m =
      /^\/registry-v2\/docker\/registry\/v2\/blobs\/(sha256|sha512)\/[a-f0-9]{2}\/([a-f0-9]+)\/data$/.exec(
        ctx.url.pathname,
      );
    const verify = /^(\d+)-([\w-]+)$/.exec(ctx.url.searchParams.get('verify') ?? '');
    if (!m) return send(ctx, 404, { 'Content-Type': 'text/plain' }, 'not found');
    const digest = `${m[1]}:${m[2]}`;
    const expected = verify ? Buffer.from(sign(`${digest}:${verify[1]}`)) : undefined;
    const given = verify ? Buffer.from(verify[2]!) : undefined;
    if (
      !verify ||
      !expected ||
      !given ||
      expected.length !== given.length ||
      !timingSafeEqual(expected, given) ||
      Number(verify[1]) < Date.now()
    ) {
      return send(ctx, 403, { 'Content-Type': 'text/plain' }, 'signature invalid or expired');
    }
    for (const target of repositories.values()) {
      const data = target.blobs.get(digest);
      if (data) return serveBlob(ctx, data, digest);
    }
    send(ctx, 404, { 'Content-Type': 'text/plain' }, 'not found');
  }

  // ---- servers ----

  function handler(server: ServerName) {
    return (req: IncomingMessage, res: ServerResponse): void => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const route: Route = server === 'cdn' ? { kind: 'blob' } : parseRoute(url.pathname);
      const record: RecordedRequest = {
        method: req.method ?? '',
        path: url.pathname,
        query: url.search.replace(/^\?/, ''),
        headers: headerRecord(req),
        status: 0,
        server,
        kind: route.kind,
      };
      requests.push(record);
      const ctx: Context = { req, res, record, server, url };
      const run = async (): Promise<void> => {
        if (!(await arrivalFault(ctx))) return;
        if (server === 'cdn') handleCdn(ctx);
        else await routeRegistry(ctx, route);
      };
      run().catch((error: unknown) => {
        if (res.headersSent) {
          res.destroy();
        } else if (error instanceof BodyTooLarge) {
          sendError(ctx, 413, 'SIZE_INVALID', 'request body too large');
        } else {
          sendError(ctx, 500, 'UNKNOWN', error instanceof Error ? error.message : String(error));
        }
      });
    };
  }

  const registryServer = createServer(handler('registry'));
  const port = await listen(registryServer);
  baseUrl = `http://127.0.0.1:${port}`;
  let cdnServer: Server | undefined;
  if (options.blobRedirect) {
    cdnServer = createServer(handler('cdn'));
    cdnBaseUrl = `http://127.0.0.1:${await listen(cdnServer)}`;
  }

  return {
    url: baseUrl,
    host: `127.0.0.1:${port}`,
    ...(cdnServer ? { cdnUrl: cdnBaseUrl } : {}),
    addBlob(repository, data) {
      const digest = sha256Digest(data);
      repo(repository, true)!.blobs.set(digest, Buffer.from(data));
      return digest;
    },
    addManifest: storeManifest,
    addReferrer,
    getBlob(repository, digest) {
      return repositories.get(repository)?.blobs.get(digest);
    },
    getManifest: findManifest,
    listTags(repository) {
      return [...(repositories.get(repository)?.tags.keys() ?? [])].sort();
    },
    inject(fault) {
      faults.push({ match: fault.match, action: fault.action, remaining: fault.times ?? 1 });
    },
    requests,
    count(predicate) {
      return requests.filter(predicate).length;
    },
    tokensIssued,
    setRateLimitRemaining(source, remaining) {
      if (!rateLimit) throw new Error('setRateLimitRemaining needs the rateLimit option');
      quotaOf(source).used = Math.max(0, rateLimit.limit - remaining);
    },
    async close() {
      for (const sleeper of sleepers) {
        clearTimeout(sleeper.timer);
        sleeper.wake();
      }
      sleepers.clear();
      const servers = [registryServer, ...(cdnServer ? [cdnServer] : [])];
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              server.closeAllConnections();
            }),
        ),
      );
    },
  };
}

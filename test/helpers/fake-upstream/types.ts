/** The fake upstream's public shapes: its options, faults, recorded requests and handle. */

export type RequestKind = 'base' | 'manifest' | 'blob' | 'upload' | 'tags' | 'referrers' | 'token' | 'other';
export type ServerName = 'registry' | 'cdn';

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

export interface RateLimitOptions {
  limit: number;
  windowSeconds: number;
  /** `standard`: RateLimit-Limit / RateLimit-Remaining; `x`: X-RateLimit-Limit / X-RateLimit-Remaining. */
  headerStyle?: 'standard' | 'x';
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
  | { delayMs: number }
  /** Send the content in 20 even pieces spread over this many milliseconds (a slow upstream). */
  | { trickleMs: number };

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
  /** The injected fault that hit this request, if any: 'status', 'reset', 'truncate', 'wrong-digest', 'trickle' or 'delay'. */
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

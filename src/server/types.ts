/** Plain request and response records: handlers know nothing of node:http, so they run in-process too. */
import type { Readable, Writable } from 'node:stream';

export interface RegistryRequest {
  method: string;
  /** The raw path, not percent-decoded. */
  path: string;
  query: URLSearchParams;
  /** Lowercased names, as node:http gives them. */
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  requestId: string;
}

export interface RegistryResponse {
  status: number;
  headers: Record<string, string | number>;
  /** A Buffer, a stream or a sender (Content-Length set by the handler), or nothing. */
  body?: Buffer | Readable | BodySender;
  /** Extra fields for this request's log line (the cache's result and upstream). */
  log?: Record<string, string>;
}

/** A body that writes itself into the response (blobs: buffers recycled, no per-chunk allocation). */
export interface BodySender {
  send(sink: Writable): Promise<void>;
  /** Called instead of `send` when the body will not be sent (the client left, the headers failed). */
  cancel?(): void;
}

export function header(request: RegistryRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

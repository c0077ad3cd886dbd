/**
 * Content digests: parsing, and hashing while bytes stream through (never by buffering a whole blob).
 * Only sha256 and sha512 are accepted, with lowercase hex of the exact length; anything else is
 * DIGEST_INVALID. A parsed `Digest` is safe to use as a path component.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { OciError } from './errors.ts';

export type DigestAlgorithm = 'sha256' | 'sha512';
/** `algorithm:hex`, validated. */
export type Digest = string & { readonly __digest: unique symbol };

const hexLength: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const digestPattern = /^(sha256|sha512):([a-f0-9]+)$/;

export function parseDigest(text: string): Digest {
  const match = digestPattern.exec(text);
  if (!match) {
    if (/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(text) && !/^(sha256|sha512):/.test(text)) {
      throw new OciError(
        'UNSUPPORTED',
        `digest algorithm not supported: ${text.split(':')[0]}`,
        { digest: text },
        400,
      );
    }
    throw new OciError('DIGEST_INVALID', `invalid digest: ${truncate(text)}`, { digest: truncate(text) });
  }
  const algorithm = match[1] as DigestAlgorithm;
  if (match[2]!.length !== hexLength[algorithm]) {
    throw new OciError('DIGEST_INVALID', `invalid ${algorithm} digest length: ${truncate(text)}`, {
      digest: truncate(text),
    });
  }
  return text as Digest;
}

export function isDigest(text: string): boolean {
  const match = digestPattern.exec(text);
  return !!match && match[2]!.length === hexLength[match[1] as DigestAlgorithm];
}

export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  return digest.slice(0, digest.indexOf(':')) as DigestAlgorithm;
}

export function digestHex(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}

export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}` as Digest;
}

/**
 * A pass-through stream that hashes what flows through it. `result()` is valid after the stream ended.
 * The hash state can be carried across several streams (chunked uploads) with `fromHash`.
 */
export class DigestingStream extends Transform {
  readonly algorithm: DigestAlgorithm;
  private readonly hash: Hash;
  private byteCount: number;

  constructor(algorithm: DigestAlgorithm = 'sha256', resume?: { hash: Hash; size: number }) {
    super();
    this.algorithm = algorithm;
    this.hash = resume?.hash ?? createHash(algorithm);
    this.byteCount = resume?.size ?? 0;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.byteCount += chunk.length;
    callback(null, chunk);
  }

  get size(): number {
    return this.byteCount;
  }

  /** The hash state so far, still open for more data. */
  get state(): Hash {
    return this.hash;
  }

  result(): Digest {
    return `${this.algorithm}:${this.hash.copy().digest('hex')}` as Digest;
  }
}

function truncate(text: string): string {
  return text.length > 150 ? `${text.slice(0, 150)}…` : text;
}

/**
 * A pass-through that fails at the end, instead of ending, when the bytes do not hash to `digest` or do not
 * add up to `size`: a consumer that commits only on a clean end never commits wrong bytes.
 */
export function verifyingStream(digest: Digest, size?: number): Transform {
  const algorithm = digestAlgorithm(digest);
  const hash = createHash(algorithm);
  let received = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      if (size !== undefined && received > size) {
        callback(new DigestMismatchError(digest, `more than the expected ${size} bytes`));
        return;
      }
      hash.update(chunk);
      callback(null, chunk);
    },
    flush(callback) {
      if (size !== undefined && received !== size) {
        callback(new DigestMismatchError(digest, `${received} bytes instead of ${size}`));
        return;
      }
      const actual = `${algorithm}:${hash.digest('hex')}`;
      callback(actual === digest ? null : new DigestMismatchError(digest, `content hashes to ${actual}`));
    },
  });
}

export class DigestMismatchError extends Error {
  readonly code = 'DIGEST_MISMATCH';
  readonly expected: Digest;
  constructor(expected: Digest, reason: string) {
    super(`content of ${expected} does not verify: ${reason}`);
    this.name = 'DigestMismatchError';
    this.expected = expected;
  }
}

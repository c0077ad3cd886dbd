/**
 * Streams that check content while it flows: a blob download ends cleanly only when its bytes hash to the
 * expected digest and add up to the expected size; otherwise it errors at the point the problem is known
 * (too many bytes: at once; too few or a wrong hash: at the end; a broken connection: when it breaks).
 * A consumer that commits only after a clean end therefore never commits wrong bytes.
 */
import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { digestAlgorithm, type Digest } from '../oci/digest.ts';
import { PullsafeError } from '../errors/index.ts';

export interface VerifyOptions {
  digest: Digest;
  /** Expected byte count, when known. */
  size?: number;
  /** Names the content in messages, e.g. `blob sha256:… of docker.io/library/nginx from registry-1.docker.io`. */
  label: string;
  /** Turns an error of the source (a lost connection) into the error the stream fails with. */
  sourceError?: (error: unknown, received: number) => Error;
}

/** A transform that hashes and counts, failing with PullsafeError DIGEST_MISMATCH on any discrepancy. */
export class VerifyingStream extends Transform {
  readonly digest: Digest;
  private readonly expectedSize: number | undefined;
  private readonly label: string;
  private readonly hash;
  private received = 0;

  constructor(options: Omit<VerifyOptions, 'sourceError'>) {
    super();
    this.digest = options.digest;
    this.expectedSize = options.size;
    this.label = options.label;
    this.hash = createHash(digestAlgorithm(options.digest));
  }

  /** Bytes passed through so far. */
  get bytes(): number {
    return this.received;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.received += chunk.length;
    if (this.expectedSize !== undefined && this.received > this.expectedSize) {
      callback(this.mismatch(`more than the expected ${this.expectedSize} bytes arrived`));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.expectedSize !== undefined && this.received !== this.expectedSize) {
      callback(this.mismatch(`${this.received} bytes arrived instead of ${this.expectedSize} (truncated)`));
      return;
    }
    const actual = `${digestAlgorithm(this.digest)}:${this.hash.digest('hex')}`;
    callback(actual === this.digest ? null : this.mismatch(`the content hashes to ${actual}`));
  }

  private mismatch(reason: string): PullsafeError {
    return new PullsafeError('DIGEST_MISMATCH', `${this.label} does not verify: ${reason}`, {
      hint: 'the registry or something between it and pullsafe delivered wrong bytes; nothing was kept. Retry; if it persists, the stored blob is corrupt',
    });
  }
}

/**
 * Pipes `source` through a `VerifyingStream`. Errors of the source fail the returned stream (through
 * `sourceError` when given); destroying the returned stream destroys the source.
 */
export function verifiedStream(source: Readable, options: VerifyOptions): VerifyingStream {
  const verifier = new VerifyingStream(options);
  source.on('error', (error) => {
    verifier.destroy(options.sourceError ? options.sourceError(error, verifier.bytes) : error);
  });
  verifier.on('close', () => {
    if (!source.destroyed && !source.readableEnded) source.destroy();
  });
  source.pipe(verifier);
  return verifier;
}

/**
 * One bucket and prefix through `@aws-sdk/client-s3`: the small-object operations every object driver has
 * (ObjectStore), and the streaming, copying and multipart ones the blob half needs. Keys are relative to the
 * prefix. Credentials come from the SDK's chain (environment, profile, SSO, web identity, container and
 * instance roles) unless given.
 */
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ByteRange } from './types.ts';
import type { ObjectInfo, ObjectStore } from './objects.ts';

export interface S3ConnectionOptions {
  bucket: string;
  /** '' or a folder ending in `/`. */
  prefix: string;
  /** Where S3 answers, for S3-compatible services and tests (default: AWS's endpoint for the region). */
  endpoint?: string;
  /** Default: the SDK's (AWS_REGION, the profile); us-east-1 for an endpoint when none is set. */
  region?: string;
  /** Bucket in the path instead of the host name; default on for an endpoint on localhost or an IP. */
  forcePathStyle?: boolean;
  /** Instead of the SDK's credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** CopyObject's limit; larger objects are copied part by part. */
const maxSingleCopyBytes = 5 * 1024 * 1024 * 1024;
const copyPartBytes = 512 * 1024 * 1024;
const deleteBatch = 1000;

/** Whether path-style addressing is needed by default: virtual hosts cannot name a bucket on these. */
export function isLocalEndpoint(endpoint: string): boolean {
  let host: string;
  try {
    host = new URL(endpoint).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return false;
  }
  return host === 'localhost' || host.endsWith('.localhost') || isIP(host) !== 0;
}

export async function createS3Client(options: S3ConnectionOptions): Promise<S3Client> {
  const forcePathStyle =
    options.forcePathStyle ?? (options.endpoint !== undefined && isLocalEndpoint(options.endpoint));
  const make = (region: string | undefined): S3Client =>
    new S3Client({
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      ...(region !== undefined ? { region } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      forcePathStyle,
      requestHandler: {
        connectionTimeout: 10_000,
        // Idle time on a socket, not the length of a transfer: a blob sent to a client that stopped
        // reading is resumed with a ranged GET when this cuts it.
        requestTimeout: 60_000,
        // Every blob being sent holds one connection while its client reads.
        httpAgent: { keepAlive: true, maxSockets: 512 },
        httpsAgent: { keepAlive: true, maxSockets: 512 },
      },
    });
  const client = make(options.region);
  if (options.region !== undefined || options.endpoint === undefined) return client;
  try {
    await client.config.region();
    return client;
  } catch {
    // S3-compatible services mostly ignore the region, but requests must be signed for one.
    client.destroy();
    return make('us-east-1');
  }
}

export interface ObjectStream {
  body: Readable;
  /** Bytes in this response (the range's length for a range). */
  length: number;
}

export interface UploadedPart {
  etag: string;
  size: number;
  /** The part's CRC32 when the SDK computed one: a completion must repeat it. */
  crc32?: string;
}

export class S3Objects implements ObjectStore {
  readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;
  /** Whether parts carry CRC32 checksums (the SDK's default); the multipart upload must say so up front. */
  private partChecksums: boolean | undefined;

  constructor(client: S3Client, bucket: string, prefix: string) {
    this.client = client;
    this.bucket = bucket;
    this.prefix = prefix;
  }

  private full(key: string): string {
    return `${this.prefix}${key}`;
  }

  async get(key: string): Promise<{ body: Buffer; modified: Date } | undefined> {
    try {
      const response = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.full(key) }),
      );
      const body = Buffer.from(await response.Body!.transformToByteArray());
      return { body, modified: response.LastModified ?? new Date() };
    } catch (error) {
      if (isMissingObject(error)) return undefined;
      throw error;
    }
  }

  async put(key: string, body: Buffer | string): Promise<void> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.full(key),
        Body: bytes,
        ContentLength: bytes.length,
      }),
    );
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const response = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.full(key) }),
      );
      return { key, size: response.ContentLength ?? 0, modified: response.LastModified ?? new Date() };
    } catch (error) {
      if (isMissingObject(error)) return undefined;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.full(key) }));
  }

  async deleteMany(keys: string[]): Promise<void> {
    for (let start = 0; start < keys.length; start += deleteBatch) {
      const batch = keys.slice(start, start + deleteBatch);
      const response = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((key) => ({ Key: this.full(key) })), Quiet: true },
        }),
      );
      const failed = response.Errors?.[0];
      if (failed) throw new Error(`cannot delete ${failed.Key}: ${failed.Code} ${failed.Message}`);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.full(prefix),
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined || !object.Key.startsWith(this.prefix)) continue;
        yield {
          key: object.Key.slice(this.prefix.length),
          size: object.Size ?? 0,
          modified: object.LastModified ?? new Date(0),
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Whether any object's key starts with `prefix`: one request, which needs s3:ListBucket. */
  async any(prefix: string): Promise<boolean> {
    const page = await this.client.send(
      new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.full(prefix), MaxKeys: 1 }),
    );
    return (page.KeyCount ?? page.Contents?.length ?? 0) > 0;
  }

  /** The object's bytes as they arrive; undefined when there is no object. */
  async stream(key: string, range?: ByteRange): Promise<ObjectStream | undefined> {
    try {
      const response = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.full(key),
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      );
      return { body: response.Body as Readable, length: response.ContentLength ?? 0 };
    } catch (error) {
      if (isMissingObject(error)) return undefined;
      throw error;
    }
  }

  /**
   * A URL that GETs the object for `expiresInSeconds`, signed here without a request (SigV4 query
   * signature: only the host is signed, so a `Range` header may go with it).
   */
  async presignGet(key: string, expiresInSeconds: number): Promise<URL> {
    const command = new GetObjectCommand({ Bucket: this.bucket, Key: this.full(key) });
    return new URL(await getSignedUrl(this.client, command, { expiresIn: expiresInSeconds }));
  }

  /** Copies inside the bucket, without the bytes passing through this process. */
  async copy(from: string, to: string, size: number): Promise<void> {
    const source = `${this.bucket}/${this.full(from).split('/').map(encodeURIComponent).join('/')}`;
    if (size <= maxSingleCopyBytes) {
      await this.client.send(
        new CopyObjectCommand({ Bucket: this.bucket, Key: this.full(to), CopySource: source }),
      );
      return;
    }
    const id = await this.createMultipart(to);
    try {
      const parts: CompletedPart[] = [];
      for (let start = 0, number = 1; start < size; start += copyPartBytes, number++) {
        const end = Math.min(size, start + copyPartBytes) - 1;
        const response = await this.client.send(
          new UploadPartCopyCommand({
            Bucket: this.bucket,
            Key: this.full(to),
            UploadId: id,
            PartNumber: number,
            CopySource: source,
            CopySourceRange: `bytes=${start}-${end}`,
          }),
        );
        parts.push({
          PartNumber: number,
          ETag: response.CopyPartResult?.ETag,
          ...checksumOf(response.CopyPartResult?.ChecksumCRC32),
        });
      }
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.full(to),
          UploadId: id,
          MultipartUpload: { Parts: parts },
        }),
      );
    } catch (error) {
      await this.abortMultipart(to, id);
      throw error;
    }
  }

  async createMultipart(key: string): Promise<string> {
    this.partChecksums ??= (await this.client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED';
    const response = await this.client.send(
      new CreateMultipartUploadCommand({
        Bucket: this.bucket,
        Key: this.full(key),
        ...(this.partChecksums ? { ChecksumAlgorithm: 'CRC32' as const } : {}),
      }),
    );
    if (!response.UploadId) throw new Error('S3 started a multipart upload without an id');
    return response.UploadId;
  }

  async uploadPart(key: string, id: string, number: number, bytes: Buffer): Promise<UploadedPart> {
    const response = await this.client.send(
      new UploadPartCommand({
        Bucket: this.bucket,
        Key: this.full(key),
        UploadId: id,
        PartNumber: number,
        Body: bytes,
        ContentLength: bytes.length,
        ...(this.partChecksums ? { ChecksumAlgorithm: 'CRC32' as const } : {}),
      }),
    );
    if (!response.ETag) throw new Error(`S3 took part ${number} without an ETag`);
    return {
      etag: response.ETag,
      size: bytes.length,
      ...(response.ChecksumCRC32 ? { crc32: response.ChecksumCRC32 } : {}),
    };
  }

  async completeMultipart(key: string, id: string, parts: UploadedPart[]): Promise<void> {
    await this.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.bucket,
        Key: this.full(key),
        UploadId: id,
        MultipartUpload: {
          Parts: parts.map((part, index) => ({
            PartNumber: index + 1,
            ETag: part.etag,
            ...checksumOf(part.crc32),
          })),
        },
      }),
    );
  }

  /**
   * Best effort: parts of an upload that cannot be aborted here (a service without AbortMultipartUpload,
   * s3rver among them, or a failure) are what the bucket's lifecycle rule for incomplete multipart uploads
   * removes.
   */
  async abortMultipart(key: string, id: string): Promise<void> {
    await this.client
      .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.full(key), UploadId: id }))
      .catch(() => undefined);
  }
}

function checksumOf(crc32: string | undefined): { ChecksumCRC32?: string } {
  return crc32 ? { ChecksumCRC32: crc32 } : {};
}

/** A missing key (GET's NoSuchKey, HEAD's bodiless 404); never a missing bucket. */
export function isMissingObject(error: unknown): boolean {
  const name = (error as { name?: string } | undefined)?.name;
  return name === 'NoSuchKey' || name === 'NotFound';
}

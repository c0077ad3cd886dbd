/**
 * The OCI Distribution API v1.1 over a Storage: every endpoint as a function from a RegistryRequest to a
 * RegistryResponse. Access control is applied by the caller (app.ts) before these run.
 */
import type { Readable } from 'node:stream';
import { OciError } from '../oci/errors.ts';
import { digestAlgorithm, digestOf, parseDigest, type Digest } from '../oci/digest.ts';
import { defaultPlatformManifest, parseManifest } from '../oci/manifest.ts';
import { bareMediaType, isNonDistributable, manifestKinds, mediaTypes } from '../oci/mediatypes.ts';
import { checkRepositoryName, checkTag, isTag } from '../oci/names.ts';
import { StoreError, type ByteRange, type ManifestLink, type Storage, type Upload } from '../store/index.ts';
import type { GcFence } from '../store/index.ts';
import { header, type BodySender, type RegistryRequest, type RegistryResponse } from './types.ts';
import { UploadLocations } from './upload-locations.ts';

export interface RegistryOptions {
  /** Manifests larger than this are refused (distribution: 4 MiB). */
  maxManifestBytes: number;
  /** Bytes of manifests kept in memory for fast GETs. */
  manifestCacheBytes: number;
  /** Largest page `n` honoured for tags/list and _catalog. */
  maxPageSize: number;
  /** Keeps gc from deleting what a manifest PUT, mount or upload under way is about to rely on. */
  gcFence?: GcFence;
  /**
   * Blob GETs answer 307 to where the storage says the bytes are (S3: a presigned URL), so that the bytes
   * flow from the storage to the client; needs a storage that can `locate` blobs.
   */
  redirectBlobs?: boolean;
  /**
   * Keys that sign upload locations: the first signs, every one verifies (so a key can be rotated). When
   * given, an upload is reached only through a location signed by one of them: replicas sharing the keys
   * take each other's locations, and a guessed or altered one is refused before the storage is asked.
   */
  uploadKeys?: readonly Buffer[];
}

export const defaultRegistryOptions: RegistryOptions = {
  maxManifestBytes: 4 * 1024 * 1024,
  manifestCacheBytes: 64 * 1024 * 1024,
  maxPageSize: 10_000,
};

/** Events the registry reports for metrics; the server counts them. */
export interface RegistryEvents {
  uploadStarted(): void;
  uploadCompleted(bytes: number): void;
  uploadFailed(): void;
}

const noEvents: RegistryEvents = { uploadStarted() {}, uploadCompleted() {}, uploadFailed() {} };

export class Registry {
  readonly storage: Storage;
  readonly options: RegistryOptions;
  private readonly events: RegistryEvents;
  private readonly manifestBytes: ByteBoundedCache;
  private readonly locations: UploadLocations;
  private readonly dropped = new WeakSet<Upload>();

  constructor(storage: Storage, options: Partial<RegistryOptions> = {}, events: RegistryEvents = noEvents) {
    this.storage = storage;
    this.options = { ...defaultRegistryOptions, ...options };
    this.events = events;
    this.manifestBytes = new ByteBoundedCache(this.options.manifestCacheBytes);
    this.locations = new UploadLocations(this.options.uploadKeys);
  }

  // ---- discovery -------------------------------------------------------------------------------------

  base(): RegistryResponse {
    return json(200, {});
  }

  async catalog(request: RegistryRequest, visible: (name: string) => boolean): Promise<RegistryResponse> {
    const page = this.pageParameters(request);
    const names = (await this.storage.repositories.listRepositories()).filter(visible);
    const { items, next } = paginate(names, page);
    const response = json(200, { repositories: items });
    if (next)
      response.headers.Link = `</v2/_catalog?last=${encodeURIComponent(next)}&n=${page.n}>; rel="next"`;
    return response;
  }

  async tags(request: RegistryRequest, name: string): Promise<RegistryResponse> {
    const page = this.pageParameters(request);
    await this.requireRepository(name);
    const { items, next } = paginate(await this.storage.repositories.listTags(name), page);
    const response = json(200, { name, tags: items });
    if (next) {
      response.headers.Link = `</v2/${name}/tags/list?last=${encodeURIComponent(next)}&n=${page.n}>; rel="next"`;
    }
    return response;
  }

  private pageParameters(request: RegistryRequest): { n: number | undefined; last: string | undefined } {
    const rawN = request.query.get('n');
    let n: number | undefined;
    if (rawN !== null && rawN !== '') {
      if (!/^\d{1,9}$/.test(rawN)) {
        throw new OciError('UNSUPPORTED', 'n must be a non-negative integer', { n: rawN.slice(0, 20) }, 400);
      }
      n = Math.min(Number(rawN), this.options.maxPageSize);
    }
    return { n, last: request.query.get('last') ?? undefined };
  }

  private async requireRepository(name: string): Promise<void> {
    if (!(await this.storage.repositories.repositoryExists(name))) {
      throw new OciError('NAME_UNKNOWN', 'repository name not known to registry', { name });
    }
  }

  // ---- manifests -------------------------------------------------------------------------------------

  async getManifest(request: RegistryRequest, name: string, reference: string): Promise<RegistryResponse> {
    const byTag = !isDigestLike(reference);
    let digest = await this.resolve(name, reference);
    let link = await this.storage.repositories.getManifest(name, digest);
    if (!link) throw manifestUnknown(name, reference);

    const accepted = acceptList(header(request, 'accept'));
    if (!acceptsType(accepted, link.mediaType)) {
      // A client that cannot read indexes gets the linux/amd64 image of a tagged index, as distribution does.
      const canReadImage = accepted.some((type) => manifestKinds.get(type) === 'image');
      if (byTag && manifestKinds.get(link.mediaType) === 'index' && canReadImage) {
        const child = defaultPlatformManifest(await this.manifestContent(link));
        const childLink = child ? await this.storage.repositories.getManifest(name, child.digest) : undefined;
        if (childLink && acceptsType(accepted, childLink.mediaType)) {
          digest = childLink.digest;
          link = childLink;
        }
      }
      if (!acceptsType(accepted, link.mediaType)) {
        throw new OciError(
          'MANIFEST_UNKNOWN',
          `manifest is ${link.mediaType}, which the Accept header excludes`,
          {
            name,
            reference,
            mediaType: link.mediaType,
            accepted,
          },
        );
      }
    }
    const headers = {
      'Content-Type': link.mediaType,
      'Content-Length': link.size,
      'Docker-Content-Digest': digest,
      ETag: `"${digest}"`,
    };
    if (request.method === 'HEAD') return { status: 200, headers };
    return { status: 200, headers, body: await this.manifestContent(link) };
  }

  private async manifestContent(link: ManifestLink): Promise<Buffer> {
    const cached = this.manifestBytes.get(link.digest);
    if (cached) return cached;
    let bytes: Buffer;
    try {
      bytes = await this.storage.blobs.read(link.digest, this.options.maxManifestBytes);
    } catch (error) {
      if (error instanceof StoreError && error.code === 'NOT_FOUND') {
        throw new OciError('MANIFEST_UNKNOWN', 'manifest content is missing from storage', {
          digest: link.digest,
        });
      }
      throw error;
    }
    this.manifestBytes.set(link.digest, bytes);
    return bytes;
  }

  /**
   * The digest a GET or HEAD names. A malformed digest is a 400 DIGEST_INVALID; a reference that cannot be
   * a tag names nothing, so it is MANIFEST_UNKNOWN (404) as the OCI conformance suite expects.
   */
  private async resolve(name: string, reference: string): Promise<Digest> {
    if (isDigestLike(reference)) return parseDigest(reference);
    if (!isTag(reference)) throw manifestUnknown(name, reference);
    const digest = await this.storage.repositories.getTag(name, reference);
    if (!digest) throw manifestUnknown(name, reference);
    return digest;
  }

  async putManifest(request: RegistryRequest, name: string, reference: string): Promise<RegistryResponse> {
    const byDigest = isDigestLike(reference);
    const expectedDigest = byDigest ? parseDigest(reference) : undefined;
    if (!byDigest) checkTag(reference);

    const declared = contentLength(request);
    if (declared !== undefined && declared > this.options.maxManifestBytes) {
      throw manifestTooLarge(this.options.maxManifestBytes);
    }
    const bytes = await readLimited(request.body, this.options.maxManifestBytes);
    const parsed = parseManifest(bytes, header(request, 'content-type'));
    const digest = digestOf(bytes, expectedDigest ? digestAlgorithm(expectedDigest) : 'sha256');
    if (expectedDigest && digest !== expectedDigest) {
      throw new OciError('DIGEST_INVALID', 'manifest digest does not match the reference', {
        reference,
        computed: digest,
      });
    }

    const repositories = this.storage.repositories;
    const stored = parsed.blobs.filter((blob) => !(isNonDistributable(blob.mediaType) && blob.urls?.length));
    // Before looking: what is found stored then stays stored however gc runs meanwhile.
    await this.options.gcFence?.protect([
      digest,
      ...stored.map((blob) => blob.digest),
      ...parsed.manifests.map((child) => child.digest),
    ]);
    for (const blob of stored) {
      if (!(await repositories.hasBlob(name, blob.digest))) {
        throw new OciError('MANIFEST_BLOB_UNKNOWN', `blob unknown to registry: ${blob.digest}`, {
          digest: blob.digest,
        });
      }
      const info = await this.storage.blobs.stat(blob.digest);
      if (!info) {
        throw new OciError('MANIFEST_BLOB_UNKNOWN', `blob unknown to registry: ${blob.digest}`, {
          digest: blob.digest,
        });
      }
      if (info.size !== blob.size) {
        throw new OciError(
          'MANIFEST_INVALID',
          `descriptor size ${blob.size} does not match blob size ${info.size}`,
          {
            digest: blob.digest,
          },
        );
      }
    }
    for (const child of parsed.manifests) {
      const link = await repositories.getManifest(name, child.digest);
      if (!link) {
        throw new OciError('MANIFEST_BLOB_UNKNOWN', `manifest unknown to registry: ${child.digest}`, {
          digest: child.digest,
        });
      }
      if (link.size !== child.size) {
        throw new OciError(
          'MANIFEST_INVALID',
          `descriptor size ${child.size} does not match manifest size ${link.size}`,
          {
            digest: child.digest,
          },
        );
      }
    }

    await this.storage.blobs.put(bytes, digest);
    const link: ManifestLink = { digest, mediaType: parsed.mediaType, size: bytes.length };
    if (parsed.subject) link.subject = parsed.subject.digest;
    if (parsed.artifactType) link.artifactType = parsed.artifactType;
    if (parsed.annotations) link.annotations = parsed.annotations;
    await repositories.linkManifest(name, link);
    if (!byDigest) await repositories.setTag(name, reference, digest);
    this.manifestBytes.set(digest, bytes);

    const headers: Record<string, string | number> = {
      Location: `/v2/${name}/manifests/${digest}`,
      'Docker-Content-Digest': digest,
      'Content-Length': 0,
    };
    if (parsed.subject) headers['OCI-Subject'] = parsed.subject.digest;
    return { status: 201, headers };
  }

  async deleteManifest(name: string, reference: string): Promise<RegistryResponse> {
    const repositories = this.storage.repositories;
    if (isDigestLike(reference)) {
      const digest = parseDigest(reference);
      if (!(await repositories.unlinkManifest(name, digest))) throw manifestUnknown(name, reference);
    } else {
      checkTag(reference);
      if (!(await repositories.deleteTag(name, reference))) throw manifestUnknown(name, reference);
    }
    return { status: 202, headers: { 'Content-Length': 0 } };
  }

  // ---- referrers -------------------------------------------------------------------------------------

  async referrers(request: RegistryRequest, name: string, reference: string): Promise<RegistryResponse> {
    const subject = parseDigest(reference);
    const filter = request.query.get('artifactType');
    let links = await this.storage.repositories.referrers(name, subject);
    if (filter !== null) links = links.filter((link) => link.artifactType === filter);
    const manifests = links.map((link) => {
      const descriptor: Record<string, unknown> = {
        mediaType: link.mediaType,
        digest: link.digest,
        size: link.size,
      };
      if (link.artifactType) descriptor.artifactType = link.artifactType;
      if (link.annotations) descriptor.annotations = link.annotations;
      return descriptor;
    });
    const response = json(
      200,
      { schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests },
      mediaTypes.ociIndex,
    );
    if (filter !== null) response.headers['OCI-Filters-Applied'] = 'artifactType';
    return response;
  }

  // ---- blobs -----------------------------------------------------------------------------------------

  async getBlob(request: RegistryRequest, name: string, reference: string): Promise<RegistryResponse> {
    const digest = parseDigest(reference);
    const unknown = (): OciError => new OciError('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
    if (!(await this.storage.repositories.hasBlob(name, digest))) throw unknown();
    const headers: Record<string, string | number> = {
      'Content-Type': 'application/octet-stream',
      'Docker-Content-Digest': digest,
      'Accept-Ranges': 'bytes',
      ETag: `"${digest}"`,
      'Cache-Control': 'max-age=31536000',
    };
    const rangeHeader = header(request, 'range');
    const blobs = this.storage.blobs;
    if (this.options.redirectBlobs && blobs.locate && request.method === 'GET') {
      const location = await blobs.locate(digest);
      return {
        status: 307,
        headers: { Location: location.href, 'Docker-Content-Digest': digest, 'Content-Length': 0 },
      };
    }
    if (rangeHeader === undefined && request.method === 'GET') {
      const opened = await this.storage.blobs.openSend(digest);
      if (!opened) throw unknown();
      headers['Content-Length'] = opened.size;
      return {
        status: 200,
        headers,
        body: { send: (sink) => opened.sendTo(sink), cancel: () => opened.cancel() },
      };
    }
    const info = await this.storage.blobs.stat(digest);
    if (!info) throw unknown();
    const range = rangeHeader === undefined ? undefined : parseRange(rangeHeader, info.size);
    if (range === 'unsatisfiable') return rangeNotSatisfiable(rangeHeader!, info.size);
    if (range) {
      headers['Content-Range'] = `bytes ${range.start}-${range.end}/${info.size}`;
      headers['Content-Length'] = range.end - range.start + 1;
      if (request.method === 'HEAD') return { status: 206, headers };
      return { status: 206, headers, body: this.blobSender(digest, range) };
    }
    headers['Content-Length'] = info.size;
    if (request.method === 'HEAD') return { status: 200, headers };
    return { status: 200, headers, body: this.blobSender(digest, undefined) };
  }

  private blobSender(digest: Digest, range: ByteRange | undefined): BodySender {
    const blobs = this.storage.blobs;
    return { send: (sink) => blobs.sendTo(digest, range, sink) };
  }

  async deleteBlob(name: string, reference: string): Promise<RegistryResponse> {
    const digest = parseDigest(reference);
    if (!(await this.storage.repositories.unlinkBlob(name, digest))) {
      throw new OciError('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
    }
    return { status: 202, headers: { 'Content-Length': 0, 'Docker-Content-Digest': digest } };
  }

  // ---- uploads ---------------------------------------------------------------------------------------

  /**
   * POST /blobs/uploads/: a cross-repository mount (`mount` + `from`, when `canMountFrom` allows reading
   * the source), a single-request upload (`digest`), or the start of an upload session.
   */
  async startUpload(
    request: RegistryRequest,
    name: string,
    canMountFrom: (repository: string) => boolean,
  ): Promise<RegistryResponse> {
    const mount = request.query.get('mount');
    const from = request.query.get('from');
    if (mount !== null && from !== null && isDigestLike(mount)) {
      const digest = parseDigest(mount);
      const source = checkRepositoryName(from);
      const allowed = canMountFrom(source);
      // Before looking: a blob found stored stays so for gc's grace period, for the manifest to name it.
      if (allowed) await this.options.gcFence?.hold([digest]);
      if (
        allowed &&
        (await this.storage.repositories.hasBlob(source, digest)) &&
        (await this.storage.blobs.stat(digest))
      ) {
        await this.storage.repositories.linkBlob(name, digest);
        return blobCreated(name, digest);
      }
    }

    const single = request.query.get('digest');
    if (single !== null) {
      const digest = parseDigest(single);
      const upload = await this.storage.blobs.startUpload(name);
      this.events.uploadStarted();
      try {
        return await this.finishUpload(request, name, upload, digest);
      } catch (error) {
        // Nobody knows this upload's id, so nobody can resume it: its space is released at once.
        await this.dropUpload(upload);
        throw error;
      }
    }

    const upload = await this.storage.blobs.startUpload(name);
    this.events.uploadStarted();
    return uploadAccepted(this.locations.location(name, upload.id), upload.id, 0, 202);
  }

  private async findUpload(name: string, id: string, query: URLSearchParams): Promise<Upload> {
    this.locations.check(name, id, query);
    const upload = await this.storage.blobs.findUpload(id);
    // An upload belongs to the repository it was started in: another repository's URL (which the caller
    // may be allowed to push to) must not reach it.
    if (!upload || (upload.owner !== undefined && upload.owner !== name)) {
      throw new OciError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', { name, id });
    }
    return upload;
  }

  async uploadStatus(request: RegistryRequest, name: string, id: string): Promise<RegistryResponse> {
    const upload = await this.findUpload(name, id, request.query);
    return uploadAccepted(this.locations.location(name, upload.id), upload.id, upload.size, 204);
  }

  async patchUpload(request: RegistryRequest, name: string, id: string): Promise<RegistryResponse> {
    const upload = await this.findUpload(name, id, request.query);
    const maxBytes = this.checkChunkRange(request, upload);
    const size = await this.appendTo(upload, request.body, maxBytes);
    return uploadAccepted(this.locations.location(name, upload.id), upload.id, size, 202);
  }

  async putUpload(request: RegistryRequest, name: string, id: string): Promise<RegistryResponse> {
    const upload = await this.findUpload(name, id, request.query);
    const rawDigest = request.query.get('digest');
    if (rawDigest === null) {
      throw new OciError('DIGEST_INVALID', 'the digest query parameter is required to complete an upload');
    }
    return this.finishUpload(request, name, upload, parseDigest(rawDigest));
  }

  /** Removes an upload that failed, counting it once however many paths saw it fail. */
  private async dropUpload(upload: Upload): Promise<void> {
    if (this.dropped.has(upload)) return;
    this.dropped.add(upload);
    await upload.abort().catch(() => undefined);
    this.events.uploadFailed();
  }

  async cancelUpload(request: RegistryRequest, name: string, id: string): Promise<RegistryResponse> {
    const upload = await this.findUpload(name, id, request.query);
    await upload.abort();
    this.events.uploadFailed();
    return { status: 204, headers: { 'Content-Length': 0 } };
  }

  /** Appends the request body (if any), then verifies and commits. */
  private async finishUpload(
    request: RegistryRequest,
    name: string,
    upload: Upload,
    digest: Digest,
  ): Promise<RegistryResponse> {
    const declared = contentLength(request);
    if (declared !== 0) {
      const maxBytes =
        header(request, 'content-range') !== undefined ? this.checkChunkRange(request, upload) : declared;
      await this.appendTo(upload, request.body, maxBytes);
    }
    try {
      // A blob gc is deleting is written again only after gc is done with it.
      await this.options.gcFence?.hold([digest]);
      const info = await upload.commit({ digest });
      await this.storage.repositories.linkBlob(name, digest);
      this.events.uploadCompleted(info.size);
      return blobCreated(name, digest);
    } catch (error) {
      if (error instanceof StoreError && error.code === 'DIGEST_MISMATCH') {
        await this.dropUpload(upload);
        throw new OciError('DIGEST_INVALID', 'provided digest did not match uploaded content', { digest });
      }
      if (error instanceof StoreError && error.code === 'FULL') await this.dropUpload(upload);
      throw error;
    }
  }

  /**
   * Checks an optional `Content-Range: <start>-<end>` against what the upload holds: a chunk must start
   * where the last one ended (416 otherwise). Returns how many bytes the chunk may carry.
   */
  private checkChunkRange(request: RegistryRequest, upload: Upload): number | undefined {
    const declared = contentLength(request);
    const rangeHeader = header(request, 'content-range');
    if (rangeHeader === undefined) return declared;
    const match = /^(?:bytes[ =])?(\d{1,15})-(\d{1,15})$/.exec(rangeHeader.trim());
    if (!match) throw new OciError('RANGE_INVALID', 'malformed Content-Range', { contentRange: rangeHeader });
    const start = Number(match[1]);
    const end = Number(match[2]);
    if (end < start)
      throw new OciError('RANGE_INVALID', 'Content-Range ends before it starts', {
        contentRange: rangeHeader,
      });
    if (start !== upload.size) {
      throw new OciError('RANGE_INVALID', `chunk out of order: upload holds ${upload.size} bytes`, {
        contentRange: rangeHeader,
        size: upload.size,
      });
    }
    const length = end - start + 1;
    if (declared !== undefined && declared !== length) {
      throw new OciError('SIZE_INVALID', 'Content-Length does not match Content-Range', {
        contentLength: declared,
        contentRange: rangeHeader,
      });
    }
    return length;
  }

  private async appendTo(upload: Upload, body: Readable, maxBytes: number | undefined): Promise<number> {
    try {
      const size = await upload.append(body, maxBytes === undefined ? undefined : { maxBytes });
      return size;
    } catch (error) {
      if (error instanceof StoreError && error.code === 'TOO_LARGE') {
        throw new OciError(
          'SIZE_INVALID',
          'request body is longer than its Content-Length or Content-Range',
          undefined,
        );
      }
      if (error instanceof StoreError && error.code === 'BUSY') {
        throw new OciError(
          'BLOB_UPLOAD_INVALID',
          'another request is writing to this upload',
          undefined,
          409,
        );
      }
      // A partial upload on a full storage would hold the space other writes need.
      if (error instanceof StoreError && error.code === 'FULL') await this.dropUpload(upload);
      throw error;
    }
  }
}

// ---- helpers -----------------------------------------------------------------------------------------

function isDigestLike(reference: string): boolean {
  return reference.includes(':');
}

function manifestUnknown(name: string, reference: string): OciError {
  return new OciError('MANIFEST_UNKNOWN', 'manifest unknown to registry', {
    name,
    [isTag(reference) ? 'tag' : 'reference']: reference.slice(0, 140),
  });
}

function manifestTooLarge(limit: number): OciError {
  return new OciError('SIZE_INVALID', `manifest larger than ${limit} bytes`, { limit }, 413);
}

function json(status: number, value: unknown, contentType = 'application/json'): RegistryResponse {
  const body = Buffer.from(JSON.stringify(value));
  return { status, headers: { 'Content-Type': contentType, 'Content-Length': body.length }, body };
}

function blobCreated(name: string, digest: Digest): RegistryResponse {
  return {
    status: 201,
    headers: {
      Location: `/v2/${name}/blobs/${digest}`,
      'Docker-Content-Digest': digest,
      'Content-Length': 0,
    },
  };
}

function uploadAccepted(location: string, id: string, size: number, status: number): RegistryResponse {
  return {
    status,
    headers: {
      Location: location,
      'Docker-Upload-UUID': id,
      Range: `0-${size > 0 ? size - 1 : 0}`,
      'Content-Length': 0,
    },
  };
}

function contentLength(request: RegistryRequest): number | undefined {
  const value = header(request, 'content-length');
  if (value === undefined) return undefined;
  if (!/^\d{1,15}$/.test(value)) throw new OciError('SIZE_INVALID', 'invalid Content-Length');
  return Number(value);
}

/** Reads a body of at most `limit` bytes; past it, stops reading (the server answers 413 and drops the rest). */
async function readLimited(body: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body.iterator({ destroyOnReturn: false })) {
    total += (chunk as Buffer).length;
    if (total > limit) throw manifestTooLarge(limit);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, total);
}

/** The media types of an Accept header, parameters dropped; empty means "anything". */
export function acceptList(value: string | undefined): string[] {
  if (!value) return [];
  return value
    .split(',')
    .map((part) => bareMediaType(part))
    .filter((part) => part.length > 0);
}

function acceptsType(accepted: string[], mediaType: string): boolean {
  if (accepted.length === 0) return true;
  const family = `${mediaType.split('/')[0]}/*`;
  return accepted.some((type) => type === mediaType || type === '*/*' || type === family);
}

/**
 * The byte range a `Range` header asks for, or undefined to serve the whole blob: a unit other than
 * `bytes` is ignored (RFC 9110 14.2), and so are several ranges (RFC 9110 allows serving them whole).
 * A malformed or unsatisfiable `bytes` range is 'unsatisfiable'.
 */
export function parseRange(value: string, size: number): ByteRange | 'unsatisfiable' | undefined {
  const specifier = value.trim();
  const equals = specifier.indexOf('=');
  if (equals < 0 || specifier.slice(0, equals).toLowerCase() !== 'bytes') return undefined;
  const set = specifier.slice(equals + 1);
  if (set.includes(',')) return undefined;
  const match = /^(\d*)-(\d*)$/.exec(set);
  if (!match) return 'unsatisfiable';
  const [, first, last] = match;
  if (first === '' && last === '') return 'unsatisfiable';
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

// 416 with `Content-Range: bytes */SIZE`, so the client learns the size it may ask for (RFC 9110 15.5.17).
function rangeNotSatisfiable(range: string, size: number): RegistryResponse {
  const error = new OciError('RANGE_INVALID', 'requested range not satisfiable', {
    range: range.slice(0, 200),
    size,
  });
  const response = json(error.status, error.body());
  response.headers['Content-Range'] = `bytes */${size}`;
  return response;
}

function paginate(
  sorted: string[],
  page: { n: number | undefined; last: string | undefined },
): { items: string[]; next: string | undefined } {
  let items = page.last === undefined ? sorted : sorted.filter((item) => item > page.last!);
  if (page.n === undefined) return { items, next: undefined };
  const more = items.length > page.n;
  items = items.slice(0, page.n);
  return { items, next: more && items.length > 0 ? items[items.length - 1] : undefined };
}

/** Keeps recently used byte buffers up to a total size. */
class ByteBoundedCache {
  private readonly limit: number;
  private readonly entries = new Map<string, Buffer>();
  private total = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  get(key: string): Buffer | undefined {
    const value = this.entries.get(key);
    if (value) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: string, value: Buffer): void {
    if (value.length > this.limit) return;
    const previous = this.entries.get(key);
    if (previous) {
      this.total -= previous.length;
      this.entries.delete(key);
    }
    this.entries.set(key, value);
    this.total += value.length;
    for (const [oldKey, oldValue] of this.entries) {
      if (this.total <= this.limit) break;
      this.entries.delete(oldKey);
      this.total -= oldValue.length;
    }
  }
}

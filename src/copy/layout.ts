/**
 * OCI image layout folders (`oci:DIR[:TAG]`) as a copy source or target. As a target, blobs are written to a
 * temporary name, verified, and renamed; index.json is rewritten atomically once, at the end.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PullsafeError } from '../errors/index.ts';
import {
  digestAlgorithm,
  digestHex,
  digestOf,
  isDigest,
  parseDigest,
  verifyingStream,
  type Digest,
} from '../oci/digest.ts';
import { mediaTypes } from '../oci/mediatypes.ts';
import type { FetchedManifest, ImageSource, ImageTarget, ManifestHead } from './endpoints.ts';

const refNameAnnotation = 'org.opencontainers.image.ref.name';
const maxManifestBytes = 8 * 1024 * 1024;

export interface LayoutReference {
  dir: string;
  /** Tag or digest; undefined when the layout is named without one. */
  reference: string | undefined;
}

/** `oci:DIR` or `oci:DIR:TAG` (the first colon after the folder separates the tag). */
export function parseLayoutReference(text: string): LayoutReference | undefined {
  if (!text.startsWith('oci:')) return undefined;
  const rest = text.slice(4);
  const at = rest.indexOf(':');
  const dir = at === -1 ? rest : rest.slice(0, at);
  const reference = at === -1 ? undefined : rest.slice(at + 1);
  if (!dir) throw new PullsafeError('USAGE', `${text}: an OCI layout needs a folder, as in oci:./dir:tag`);
  if (
    reference !== undefined &&
    !/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(reference) &&
    !isDigest(reference)
  ) {
    throw new PullsafeError('USAGE', `${text}: "${reference}" is neither a tag nor a digest`);
  }
  return { dir: resolve(dir), reference };
}

interface IndexEntry {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

interface LayoutIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: IndexEntry[];
  [key: string]: unknown;
}

export class OciLayout implements ImageSource, ImageTarget {
  readonly label: string;
  readonly registry = undefined;
  private readonly dir: string;
  private index: LayoutIndex | undefined;
  private readonly tagged = new Map<string, IndexEntry>();

  constructor(dir: string) {
    this.dir = dir;
    this.label = `oci:${dir}`;
  }

  private blobPath(digest: Digest): string {
    return join(this.dir, 'blobs', digestAlgorithm(digest), digestHex(digest));
  }

  private async readIndex(): Promise<LayoutIndex> {
    if (this.index) return this.index;
    let text: string;
    try {
      text = await readFile(join(this.dir, 'index.json'), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        this.index = { schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: [] };
        return this.index;
      }
      throw error;
    }
    try {
      const parsed = JSON.parse(text) as LayoutIndex;
      if (!Array.isArray(parsed.manifests)) throw new Error('manifests is not a list');
      this.index = parsed;
      return parsed;
    } catch (error) {
      throw new PullsafeError(
        'LAYOUT_INVALID',
        `${this.label}: index.json is invalid: ${(error as Error).message}`,
      );
    }
  }

  private async findEntry(reference: string | undefined): Promise<IndexEntry | undefined> {
    const index = await this.readIndex();
    const pending = reference === undefined ? undefined : this.tagged.get(reference);
    if (pending) return pending;
    if (reference === undefined) {
      if (index.manifests.length === 1) return index.manifests[0];
      throw new PullsafeError(
        'USAGE',
        `${this.label}: the layout holds ${index.manifests.length} images; name one as oci:DIR:TAG`,
        {
          hint: `tags here: ${
            index.manifests
              .map((entry) => entry.annotations?.[refNameAnnotation])
              .filter(Boolean)
              .join(', ') || 'none'
          }`,
        },
      );
    }
    if (isDigest(reference)) {
      const entry = index.manifests.find((candidate) => candidate.digest === reference);
      if (entry) return entry;
      const info = await stat(this.blobPath(parseDigest(reference))).catch(() => undefined);
      if (!info) return undefined;
      const bytes = await readFile(this.blobPath(parseDigest(reference)));
      const mediaType =
        (JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType ?? mediaTypes.ociManifest;
      return { mediaType, digest: reference, size: info.size };
    }
    return index.manifests.find((entry) => entry.annotations?.[refNameAnnotation] === reference);
  }

  async resolveManifest(reference: string): Promise<ManifestHead | undefined> {
    const entry = await this.findEntry(reference);
    if (!entry || !isDigest(entry.digest)) return undefined;
    if (!(await this.hasBlob(entry.digest as Digest))) return undefined;
    return { digest: entry.digest as Digest, mediaType: entry.mediaType };
  }

  async getManifest(reference: string | undefined): Promise<FetchedManifest> {
    const entry = await this.findEntry(reference);
    if (!entry || !isDigest(entry.digest)) {
      throw new PullsafeError('USAGE', `${this.label}: no image ${reference ?? ''} in the layout`);
    }
    const digest = entry.digest as Digest;
    const bytes = await readFile(this.blobPath(digest)).catch(() => {
      throw new PullsafeError('LAYOUT_INVALID', `${this.label}: manifest blob ${digest} is missing`);
    });
    if (bytes.length > maxManifestBytes || digestOf(bytes, digestAlgorithm(digest)) !== digest) {
      throw new PullsafeError('DIGEST_MISMATCH', `${this.label}: manifest blob ${digest} does not verify`);
    }
    const mediaType =
      (JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType ?? entry.mediaType;
    return { bytes, digest, mediaType };
  }

  async getBlob(digest: Digest, size: number): Promise<Readable> {
    const path = this.blobPath(digest);
    await stat(path).catch(() => {
      throw new PullsafeError('LAYOUT_INVALID', `${this.label}: blob ${digest} is missing`);
    });
    const verifier = verifyingStream(digest, size);
    const file = createReadStream(path, { highWaterMark: 1024 * 1024 });
    file.on('error', (error) => verifier.destroy(error));
    return file.pipe(verifier);
  }

  async referrers(): Promise<Digest[]> {
    return [];
  }

  mountableFrom(): string | undefined {
    return undefined;
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    return (await stat(this.blobPath(digest)).catch(() => undefined)) !== undefined;
  }

  async putBlob(digest: Digest, size: number, open: () => Promise<Readable>): Promise<'uploaded'> {
    const path = this.blobPath(digest);
    await mkdir(join(path, '..'), { recursive: true });
    const temp = `${path}.partial-${randomBytes(6).toString('hex')}`;
    try {
      await pipeline(await open(), verifyingStream(digest, size), createWriteStream(temp));
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    return 'uploaded';
  }

  async mountBlob(): Promise<boolean> {
    return false;
  }

  async putManifest(reference: string, bytes: Buffer, mediaType: string): Promise<void> {
    const digest = digestOf(bytes);
    if (!(await this.hasBlob(digest))) {
      await this.putBlob(digest, bytes.length, async () => Readable.from([bytes]));
    }
    if (!isDigest(reference)) {
      this.tagged.set(reference, {
        mediaType,
        digest,
        size: bytes.length,
        annotations: { [refNameAnnotation]: reference },
      });
    }
  }

  async finish(): Promise<void> {
    if (this.tagged.size === 0) return;
    const index = await this.readIndex();
    const kept = index.manifests.filter((entry) => {
      const name = entry.annotations?.[refNameAnnotation];
      return name === undefined || !this.tagged.has(name);
    });
    const updated: LayoutIndex = { ...index, manifests: [...kept, ...this.tagged.values()] };
    await mkdir(this.dir, { recursive: true });
    await writeFile(join(this.dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    const temp = join(this.dir, `index.json.partial-${randomBytes(6).toString('hex')}`);
    await writeFile(temp, JSON.stringify(updated));
    await rename(temp, join(this.dir, 'index.json'));
    this.index = updated;
    this.tagged.clear();
  }
}

/** What the fake upstream holds: repositories of blobs, manifests, tags and referrers. */
import { createHash } from 'node:crypto';
import { DIGEST_PATTERN } from './http.ts';
import type { Descriptor, StoredManifest } from './types.ts';

export interface Repository {
  blobs: Map<string, Buffer>;
  manifests: Map<string, { mediaType: string; bytes: Buffer }>;
  tags: Map<string, string>;
  referrers: Map<string, Descriptor[]>;
}

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function digestOf(data: Buffer, algorithm: string): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** Digests a manifest refers to and that must exist in the repository before it is pushed. */
export function referencedContent(doc: unknown): { blobs: string[]; manifests: string[] } {
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
export function referrerOf(
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

/** The repositories, by name, and how content is added to them. */
export class FakeContent {
  readonly repositories = new Map<string, Repository>();

  repo(name: string, create: boolean): Repository | undefined {
    let found = this.repositories.get(name);
    if (!found && create) {
      found = { blobs: new Map(), manifests: new Map(), tags: new Map(), referrers: new Map() };
      this.repositories.set(name, found);
    }
    return found;
  }

  addReferrer(repository: string, subjectDigest: string, descriptor: Descriptor): void {
    const target = this.repo(repository, true)!;
    const list = target.referrers.get(subjectDigest) ?? [];
    const at = list.findIndex((d) => d.digest === descriptor.digest);
    if (at >= 0) list[at] = descriptor;
    else list.push(descriptor);
    target.referrers.set(subjectDigest, list);
  }

  storeManifest(repository: string, reference: string, mediaType: string, bytes: Buffer): string {
    const digest = DIGEST_PATTERN.test(reference)
      ? digestOf(bytes, reference.slice(0, reference.indexOf(':')))
      : sha256Digest(bytes);
    if (DIGEST_PATTERN.test(reference) && reference !== digest) {
      throw new Error(`manifest bytes do not match ${reference}`);
    }
    const target = this.repo(repository, true)!;
    target.manifests.set(digest, { mediaType, bytes: Buffer.from(bytes) });
    if (!DIGEST_PATTERN.test(reference)) target.tags.set(reference, digest);
    const referrer = referrerOf(mediaType, digest, bytes);
    if (referrer) this.addReferrer(repository, referrer.subject, referrer.descriptor);
    return digest;
  }

  findManifest(repository: string, reference: string): StoredManifest | undefined {
    const target = this.repositories.get(repository);
    if (!target) return undefined;
    const digest = DIGEST_PATTERN.test(reference) ? reference : target.tags.get(reference);
    const stored = digest ? target.manifests.get(digest) : undefined;
    return stored && digest ? { mediaType: stored.mediaType, digest, bytes: stored.bytes } : undefined;
  }
}

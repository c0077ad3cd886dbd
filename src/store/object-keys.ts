/**
 * Keys of the drivers that keep storage as named objects (S3, memory), relative to the storage's prefix:
 *   blobs/<alg>/<first two hex>/<hex>                         committed content, named by its verified digest
 *   uploads/<id>/…                                            uploads in progress (see s3-uploads.ts)
 *   repositories/<name>/_layers/<alg>/<hex>                   a blob belongs to the repository (empty)
 *   repositories/<name>/_manifests/<alg>/<hex>                a manifest belongs to it (JSON ManifestLink)
 *   repositories/<name>/_tags/<tag>                           the digest the tag points to
 *   repositories/<name>/_referrers/<alg>/<subject hex>/<alg>-<hex>   a manifest whose subject is that digest
 *   catalog/<name>                                            the repository was ever linked to (empty)
 * The layout of the filesystem driver's folders, plus the catalog: one flat listing names every repository,
 * where a walk of `repositories/` would need a listing per level (and S3-compatible servers differ in how
 * they group keys by `/`). Every key is built from validated parts only, so no name, tag, digest or upload
 * id can reach outside its place.
 */
import { digestAlgorithm, digestHex, isDigest, type Digest } from '../oci/digest.ts';
import { isRepositoryName, isTag } from '../oci/names.ts';
import { StoreError } from './types.ts';

export const uploadIdPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const blobsPrefix = 'blobs/';
export const uploadsPrefix = 'uploads/';
export const repositoriesPrefix = 'repositories/';
export const catalogPrefix = 'catalog/';

function checkDigest(digest: Digest): void {
  if (!isDigest(digest)) throw new StoreError('INVALID_KEY', 'invalid digest');
}

export function blobKey(digest: Digest): string {
  checkDigest(digest);
  const hex = digestHex(digest);
  return `${blobsPrefix}${digestAlgorithm(digest)}/${hex.slice(0, 2)}/${hex}`;
}

/** The digest a key under `blobs/` names, or undefined for anything else. */
export function digestOfBlobKey(key: string): Digest | undefined {
  const match = /^blobs\/(sha256|sha512)\/([0-9a-f]{2})\/([0-9a-f]+)$/.exec(key);
  if (!match || !match[3]!.startsWith(match[2]!)) return undefined;
  const digest = `${match[1]}:${match[3]}`;
  return isDigest(digest) ? (digest as Digest) : undefined;
}

export function uploadPrefix(id: string): string {
  if (!uploadIdPattern.test(id)) throw new StoreError('INVALID_KEY', 'invalid upload id');
  return `${uploadsPrefix}${id}/`;
}

export function repositoryPrefix(repository: string): string {
  if (!isRepositoryName(repository)) throw new StoreError('INVALID_KEY', 'invalid repository name');
  return `${repositoriesPrefix}${repository}/`;
}

export function catalogKey(repository: string): string {
  repositoryPrefix(repository);
  return `${catalogPrefix}${repository}`;
}

export function linkKey(repository: string, folder: '_layers' | '_manifests', digest: Digest): string {
  const prefix = repositoryPrefix(repository);
  checkDigest(digest);
  return `${prefix}${folder}/${digestAlgorithm(digest)}/${digestHex(digest)}`;
}

export function tagKey(repository: string, tag: string): string {
  const prefix = repositoryPrefix(repository);
  if (!isTag(tag)) throw new StoreError('INVALID_KEY', 'invalid tag');
  return `${prefix}_tags/${tag}`;
}

export function referrersPrefix(repository: string, subject: Digest): string {
  const prefix = repositoryPrefix(repository);
  checkDigest(subject);
  return `${prefix}_referrers/${digestAlgorithm(subject)}/${digestHex(subject)}/`;
}

export function referrerKey(repository: string, subject: Digest, digest: Digest): string {
  const prefix = referrersPrefix(repository, subject);
  checkDigest(digest);
  return `${prefix}${digestAlgorithm(digest)}-${digestHex(digest)}`;
}

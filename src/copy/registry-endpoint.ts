/** A repository in a registry as a copy source or target, through the registry client. */
import type { Readable } from 'node:stream';
import type { RegistryClient, RepositoryRef } from '../client/index.ts';
import type { RateLimit } from '../client/index.ts';
import type { Digest } from '../oci/digest.ts';
import type { BlobCopyEvents, FetchedManifest, ImageSource, ImageTarget, ManifestHead } from './endpoints.ts';

export class RegistryEndpoint implements ImageSource, ImageTarget {
  readonly label: string;
  readonly registry: string;
  readonly repository: string;
  private readonly client: RegistryClient;
  /** Called with the quota headers of every manifest response (HEAD or GET) that carries them (Docker Hub). */
  onRateLimit: ((rate: RateLimit) => void) | undefined;
  /** Awaited before every manifest GET (not HEAD): the quota guard of `sync` waits or throws here. */
  beforeManifestGet: (() => void | Promise<void>) | undefined;

  constructor(client: RegistryClient, repo: RepositoryRef) {
    this.client = client;
    this.registry = repo.registry;
    this.repository = repo.repository;
    this.label = `${repo.registry}/${repo.repository}`;
  }

  private get repo(): RepositoryRef {
    return { registry: this.registry, repository: this.repository };
  }

  async resolveManifest(reference: string): Promise<ManifestHead | undefined> {
    const head = await this.client.checkManifest(this.repo, reference);
    if (head?.rateLimit) this.onRateLimit?.(head.rateLimit);
    return head ? { digest: head.digest, mediaType: head.mediaType } : undefined;
  }

  async getManifest(reference: string): Promise<FetchedManifest> {
    await this.beforeManifestGet?.();
    const fetched = await this.client.getManifest(this.repo, reference);
    if (fetched.rateLimit) this.onRateLimit?.(fetched.rateLimit);
    return { bytes: fetched.bytes, digest: fetched.digest, mediaType: fetched.mediaType };
  }

  async getBlob(digest: Digest, size: number): Promise<Readable> {
    return (await this.client.getBlob(this.repo, digest, { expectedSize: size })).stream;
  }

  async referrers(digest: Digest): Promise<Digest[]> {
    return (await this.client.listReferrers(this.repo, digest)).map((descriptor) => descriptor.digest);
  }

  mountableFrom(target: ImageTarget): string | undefined {
    return target instanceof RegistryEndpoint &&
      target.registry === this.registry &&
      target.repository !== this.repository
      ? this.repository
      : undefined;
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    return (await this.client.checkBlob(this.repo, digest)) !== undefined;
  }

  get checksOnUpload(): boolean {
    return this.client.probesBlobs(this.repo.registry);
  }

  get ignoresMounts(): boolean {
    return this.client.ignoresMounts(this.repo.registry);
  }

  putBlob(digest: Digest, size: number, open: () => Promise<Readable>): Promise<'uploaded' | 'present'> {
    return this.client.pushBlob(this.repo, digest, size, open, { probe: 'auto' });
  }

  copyBlobFrom(
    source: ImageSource,
    digest: Digest,
    size: number,
    events: BlobCopyEvents,
  ): Promise<'uploaded' | 'present'> | undefined {
    if (!(source instanceof RegistryEndpoint) || source.client !== this.client) return undefined;
    return this.client.copyBlob(source.repo, this.repo, digest, size, { probe: 'auto', ...events });
  }

  mountBlob(digest: Digest, fromRepository: string): Promise<boolean> {
    return this.client.mountBlob(this.repo, digest, fromRepository);
  }

  /** A manifest with a subject is also listed in the referrers tag when the registry needs that. */
  async putManifest(reference: string, bytes: Buffer, mediaType: string): Promise<void> {
    await this.client.putManifest(this.repo, reference, bytes, mediaType);
  }
}

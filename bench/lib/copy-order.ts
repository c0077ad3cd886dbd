/**
 * The order both reference copiers (sync-pipe.ts, sync-raw.ts) move the image set in, so that they differ
 * only in how they speak HTTP: at most `images` images at once; per image its blobs (at most `blobs` at
 * once across all images), then its platform manifests by digest, then the index under its tag. The
 * target repository is `mirror/<source repository>`.
 */
import { Limiter } from '../../src/copy/limit.ts';
import type { Described, ImageSet, ImageSpec } from './sync-images.ts';

export interface SetCopier {
  blob(spec: ImageSpec, targetRepo: string, blob: Described): Promise<void>;
  manifest(spec: ImageSpec, targetRepo: string, reference: string, described: Described): Promise<void>;
}

export async function copyImageSet(
  set: ImageSet,
  concurrency: { images: number; blobs: number },
  copier: SetCopier,
): Promise<void> {
  const images = new Limiter(concurrency.images);
  const blobs = new Limiter(concurrency.blobs);
  await Promise.all(
    set.images.map((spec) =>
      images.run(async () => {
        const targetRepo = `mirror/${spec.repository}`;
        await Promise.all(spec.blobs.map((blob) => blobs.run(() => copier.blob(spec, targetRepo, blob))));
        await Promise.all(spec.manifests.map((m) => copier.manifest(spec, targetRepo, m.digest, m)));
        await copier.manifest(spec, targetRepo, spec.tag, spec.index);
      }),
    ),
  );
}

/**
 * The image sets of bench/sync.ts, made deterministically with the test fixtures, pushed once to the
 * source registry, and checked digest by digest in each target afterwards. Two shapes:
 *   - small: N multi-arch OCI images, an index over 2-3 platforms, 2-3 gzip'd tar layers of random bytes
 *     per platform (many small images);
 *   - large: N two-platform images with 4 large layers per platform (few images, large layers).
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { makeImage, pushImage, type Platform, type TestImage } from '../../test/helpers/fixtures.ts';
import { ALL_MANIFEST_TYPES, request } from '../../test/helpers/http.ts';

export const MiB = 1024 * 1024;

const allPlatforms: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
];

export interface Described {
  digest: string;
  size: number;
  mediaType: string;
}

/** What one image is, without its bytes: enough to check a copy. */
export interface ImageSpec {
  /** Repository in the source, e.g. bench/img00. */
  repository: string;
  tag: string;
  index: Described;
  manifests: Described[];
  /** Configs and layers, each once. */
  blobs: Described[];
  platforms: number;
  layersPerPlatform: number;
}

export interface ImageSet {
  images: ImageSpec[];
  /** Sum of the sizes of every blob, manifest and index (what a complete copy stores). */
  totalBytes: number;
  layerBytes: number;
  layers: number;
  manifests: number;
}

export type SetShape = 'small' | 'large';

/** Images and mean layer payload of each shape, for full runs and for --quick. */
export const setSizes: Record<SetShape, { images: number; layerBytes: number; quickLayerBytes: number }> = {
  small: { images: 20, layerBytes: 2.5 * MiB, quickLayerBytes: 0.35 * MiB },
  // 6 images × 2 platforms × 4 layers of 6-18 MiB (mean 11 MiB): 528 MiB of layers.
  large: { images: 6, layerBytes: 12 * MiB, quickLayerBytes: 1.5 * MiB },
};

/**
 * The shape of image `i`. Layer payloads are 0.5x to 1.5x `layerBytes` by i % 5 in both shapes.
 *   small: 3 platforms for even i, 2 for odd; 3 layers per platform when i % 3 == 0, else 2.
 *   large: 2 platforms (linux/amd64, linux/arm64), 4 layers per platform.
 */
function shapeOf(
  shape: SetShape,
  i: number,
  layerBytes: number,
): { platforms: Platform[]; layers: number; size: number } {
  const size = Math.round(layerBytes * (0.5 + 0.25 * (i % 5)));
  if (shape === 'large') return { platforms: allPlatforms.slice(0, 2), layers: 4, size };
  return {
    platforms: allPlatforms.slice(0, i % 2 === 0 ? 3 : 2),
    layers: i % 3 === 0 ? 3 : 2,
    size,
  };
}

function specOf(repository: string, tag: string, image: TestImage, layersPerPlatform: number): ImageSpec {
  const blobs = new Map<string, Described>();
  for (const manifest of image.manifests) {
    blobs.set(manifest.config.digest, {
      digest: manifest.config.digest,
      size: manifest.config.bytes.length,
      mediaType: manifest.config.mediaType,
    });
    for (const layer of manifest.layers) {
      blobs.set(layer.digest, { digest: layer.digest, size: layer.data.length, mediaType: layer.mediaType });
    }
  }
  return {
    repository,
    tag,
    index: { digest: image.index.digest, size: image.index.bytes.length, mediaType: image.index.mediaType },
    manifests: image.manifests.map((m) => ({
      digest: m.digest,
      size: m.bytes.length,
      mediaType: m.mediaType,
    })),
    blobs: [...blobs.values()],
    platforms: image.manifests.length,
    layersPerPlatform,
  };
}

/**
 * Makes `count` images (bench/img00..) and pushes each to `sourceBase` as soon as it is made (only one
 * image's bytes are held at a time). Same arguments, same bytes.
 */
export async function makeAndSeed(
  sourceBase: string,
  shape: SetShape,
  count: number,
  layerBytes: number,
  log: (message: string) => void,
): Promise<ImageSet> {
  const images: ImageSpec[] = [];
  let layerTotal = 0;
  let layers = 0;
  for (let i = 0; i < count; i++) {
    const repository = `bench/img${String(i).padStart(2, '0')}`;
    const form = shapeOf(shape, i, layerBytes);
    const image = await makeImage({
      format: 'oci',
      platforms: form.platforms,
      seed: `bench-sync/${shape === 'large' ? 'large/' : ''}${repository}`,
      layerSize: form.size,
      layers: form.layers,
    });
    await pushImage(sourceBase, repository, 'v1', image);
    const spec = specOf(repository, 'v1', image, form.layers);
    for (const manifest of image.manifests) {
      for (const layer of manifest.layers) {
        layerTotal += layer.data.length;
        layers++;
      }
    }
    images.push(spec);
    if ((i + 1) % 5 === 0 || i + 1 === count || shape === 'large')
      log(`  made and pushed ${i + 1} of ${count} images`);
  }
  const totalBytes = images.reduce(
    (sum, spec) =>
      sum +
      spec.index.size +
      spec.manifests.reduce((s, m) => s + m.size, 0) +
      spec.blobs.reduce((s, b) => s + b.size, 0),
    0,
  );
  const manifests = images.reduce((sum, spec) => sum + spec.manifests.length, 0);
  return { images, totalBytes, layerBytes: layerTotal, layers, manifests };
}

/** The image set as the report's Method section names it, wrapped at 110 columns. */
export function describeSet(shape: SetShape, set: ImageSet): string {
  const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
  const platforms =
    shape === 'large'
      ? '2 platforms (linux/amd64, linux/arm64), 4'
      : '2-3 platforms (linux/amd64, linux/arm64, linux/arm/v7), 2-3';
  const text =
    `- Image set: ${set.images.length} OCI images (bench/img00..:v1), each an index over ${platforms} gzip'd ` +
    `tar layers of random bytes per platform: ${set.manifests} platform manifests, ${set.layers} layers ` +
    `(${mb(set.layerBytes)} MB, ${(set.layerBytes / MiB).toFixed(1)} MiB), ${mb(set.totalBytes)} MB with ` +
    'configs and manifests. Made deterministically (test/helpers/fixtures.ts) and pushed once to the source registry.';
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > 110) {
      lines.push(line);
      line = `  ${word}`;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line].join('\n');
}

/** Runs `task` over `items`, at most `width` at a time. */
async function eachLimited<T>(items: T[], width: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await task(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

/**
 * Checks that `base` holds every image of `set` under `repositoryOf(spec)`: HEAD on the tag answers the
 * source's index digest, HEAD on each platform manifest its digest, HEAD on each blob its size. Returns
 * the problems found (empty: a complete, byte-exact copy).
 */
export async function verifyCopy(
  base: string,
  set: ImageSet,
  repositoryOf: (spec: ImageSpec) => string,
): Promise<string[]> {
  const problems: string[] = [];
  const accept = ALL_MANIFEST_TYPES.join(', ');
  const head = async (path: string, accept?: string) =>
    request(`${base}/v2/${path}`, {
      method: 'HEAD',
      headers: accept ? { Accept: accept } : {},
      timeoutMs: 10_000,
    });
  const checks: (() => Promise<void>)[] = [];
  for (const spec of set.images) {
    const repo = repositoryOf(spec);
    const manifestCheck = (reference: string, expected: Described) => async () => {
      const answer = await head(`${repo}/manifests/${reference}`, accept);
      const digest = answer.headers['docker-content-digest'];
      if (answer.status !== 200 || digest !== expected.digest) {
        problems.push(
          `${repo}:${reference}: HEAD ${answer.status}, digest ${String(digest)} (want ${expected.digest})`,
        );
      }
    };
    checks.push(manifestCheck(spec.tag, spec.index));
    for (const manifest of spec.manifests) checks.push(manifestCheck(manifest.digest, manifest));
    for (const blob of spec.blobs) {
      checks.push(async () => {
        const answer = await head(`${repo}/blobs/${blob.digest}`);
        const length = Number(answer.headers['content-length']);
        if (answer.status !== 200 || length !== blob.size) {
          problems.push(`${repo}@${blob.digest}: HEAD ${answer.status}, ${length} bytes (want ${blob.size})`);
        }
      });
    }
  }
  await eachLimited(checks, 8, (check) => check());
  return problems;
}

/** Files and bytes under distribution's blob store (docker/registry/v2/blobs/sha256/xx/<hex>/data). */
export async function storedBlobs(storage: string): Promise<{ files: number; bytes: number }> {
  const root = join(storage, 'docker', 'registry', 'v2', 'blobs', 'sha256');
  let files = 0;
  let bytes = 0;
  const prefixes = await readdir(root).catch(() => [] as string[]);
  for (const prefix of prefixes) {
    for (const hex of await readdir(join(root, prefix))) {
      const info = await stat(join(root, prefix, hex, 'data')).catch(() => undefined);
      if (info?.isFile()) {
        files++;
        bytes += info.size;
      }
    }
  }
  return { files, bytes };
}

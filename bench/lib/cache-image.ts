/**
 * The images of bench/cache.ts: an OCI index over several platforms, each platform with its own layers
 * of random bytes (incompressible, as gzip'd tar layers are) cut from one file, so that a layer of
 * gigabytes never has to be held in memory. Pushed once to the upstream registry.
 */
import { join } from 'node:path';
import { blobFromRange, digestOf, writeRandomFile, type BlobSource } from './data.ts';
import { httpRequest, uploadBlob } from './http.ts';

export const ociIndexType = 'application/vnd.oci.image.index.v1+json';
export const ociManifestType = 'application/vnd.oci.image.manifest.v1+json';
const ociConfigType = 'application/vnd.oci.image.config.v1+json';
const ociLayerType = 'application/vnd.oci.image.layer.v1.tar+gzip';

export interface Platform {
  os: string;
  architecture: string;
}

export interface ImageShape {
  repository: string;
  tag: string;
  platforms: Platform[];
  /** Sizes of each platform's layers, in bytes (every platform gets its own bytes). */
  layerSizes: number[];
}

export interface Described {
  mediaType: string;
  digest: string;
  size: number;
}

export interface ImageBlob extends Described {
  source: BlobSource | { bytes: Buffer; digest: string };
}

export interface ImageManifest extends Described {
  bytes: Buffer;
}

export interface BenchImage {
  repository: string;
  tag: string;
  index: ImageManifest;
  manifests: ImageManifest[];
  /** Configs and layers, each once. */
  blobs: ImageBlob[];
  /** Index, manifests, configs and layers: what one complete pull of every platform reads. */
  totalBytes: number;
  layers: number;
  largestLayer: number;
}

function described(mediaType: string, bytes: Buffer): ImageManifest {
  return { mediaType, digest: digestOf(bytes), size: bytes.length, bytes };
}

/** Writes the random file for `shape` under `work` and describes the image made of it. */
export async function makeBenchImage(work: string, shape: ImageShape): Promise<BenchImage> {
  const perPlatform = shape.layerSizes.reduce((sum, size) => sum + size, 0);
  const file = join(work, `${shape.repository.replaceAll('/', '-')}.bin`);
  await writeRandomFile(file, perPlatform * shape.platforms.length);
  const blobs: ImageBlob[] = [];
  const manifests: ImageManifest[] = [];
  let offset = 0;
  for (const platform of shape.platforms) {
    const layers: ImageBlob[] = [];
    for (const size of shape.layerSizes) {
      const source = await blobFromRange(file, offset, size);
      offset += size;
      layers.push({ mediaType: ociLayerType, digest: source.digest, size, source });
    }
    const configBytes = Buffer.from(
      JSON.stringify({
        created: '2026-01-01T00:00:00Z',
        architecture: platform.architecture,
        os: platform.os,
        config: { Cmd: ['/app'] },
        rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.digest) },
      }),
    );
    const config = described(ociConfigType, configBytes);
    blobs.push({ ...config, source: { bytes: configBytes, digest: config.digest } }, ...layers);
    manifests.push(
      described(
        ociManifestType,
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: ociManifestType,
            config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
            layers: layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
          }),
        ),
      ),
    );
  }
  const index = described(
    ociIndexType,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: ociIndexType,
        manifests: manifests.map((manifest, i) => ({
          mediaType: manifest.mediaType,
          digest: manifest.digest,
          size: manifest.size,
          platform: shape.platforms[i],
        })),
      }),
    ),
  );
  const totalBytes = index.size + [...manifests, ...blobs].reduce((sum, item) => sum + item.size, 0);
  return {
    repository: shape.repository,
    tag: shape.tag,
    index,
    manifests,
    blobs,
    totalBytes,
    layers: shape.layerSizes.length * shape.platforms.length,
    largestLayer: Math.max(...shape.layerSizes),
  };
}

async function putManifest(base: string, repository: string, reference: string, manifest: ImageManifest) {
  const answer = await httpRequest(`${base}/v2/${repository}/manifests/${reference}`, {
    method: 'PUT',
    headers: { 'Content-Type': manifest.mediaType, 'Content-Length': manifest.size },
    body: manifest.bytes,
    timeoutMs: 30_000,
  });
  if (answer.status !== 201) {
    throw new Error(
      `PUT manifest ${repository}:${reference}: status ${answer.status} ${answer.body.toString()}`,
    );
  }
}

/** Pushes every blob, each platform manifest by digest and the index by tag. */
export async function pushBenchImage(base: string, image: BenchImage): Promise<void> {
  for (const blob of image.blobs) await uploadBlob(base, image.repository, blob.source);
  for (const manifest of image.manifests)
    await putManifest(base, image.repository, manifest.digest, manifest);
  await putManifest(base, image.repository, image.tag, image.index);
}

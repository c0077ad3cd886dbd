/**
 * Test images made locally, with no network: real gzip'd tar layers, valid image configs, manifests and
 * an index, in OCI or Docker v2 media types. The same seed always gives the same bytes (on one machine:
 * the gzip header's OS byte comes from the zlib build). Manifests are serialized with 3-space indentation,
 * deliberately non-canonical, so a registry that re-serializes instead of storing bytes is caught.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import {
  DOCKER_LIST,
  DOCKER_MANIFEST,
  OCI_INDEX,
  OCI_MANIFEST,
  pushBlob,
  pushManifest,
  sha256,
} from './http.ts';

const gzip = promisify(gzipCallback);

export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

/** The fixed `created` time of every test image config. */
export const CREATED = '2024-01-01T00:00:00Z';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface TestLayer {
  mediaType: string;
  /** The gzip'd tar, as pushed. */
  data: Buffer;
  digest: string;
  /** sha256 of the uncompressed tar, as listed in the config's rootfs.diff_ids. */
  diffId: string;
}

export interface TestBlob {
  mediaType: string;
  bytes: Buffer;
  digest: string;
}

export interface TestManifest extends TestBlob {
  platform: Platform;
  config: TestBlob;
  layers: TestLayer[];
}

export interface TestImage {
  format: 'oci' | 'docker';
  index: TestBlob;
  manifests: TestManifest[];
}

/** `size` pseudo-random bytes, a pure function of `seed` (AES-256-CTR keystream keyed by sha256(seed)). */
export function deterministicBytes(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(`pullsafe-fixture:${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** A ustar archive of one regular file: a 512-byte header, the data padded to 512, two zero blocks. */
export function tarOneFile(name: string, data: Buffer): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name longer than 100 bytes: ${name}`);
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write(octal(0o644, 8), 100, 'ascii'); // mode
  header.write(octal(0, 8), 108, 'ascii'); // uid
  header.write(octal(0, 8), 116, 'ascii'); // gid
  header.write(octal(data.length, 12), 124, 'ascii'); // size
  header.write(octal(0, 12), 136, 'ascii'); // mtime
  header.write('        ', 148, 'ascii'); // checksum field counts as spaces while summing
  header.write('0', 156, 'ascii'); // typeflag: regular file
  header.write('ustar\0', 257, 'ascii');
  header.write('00', 263, 'ascii');
  header.write('root', 265, 'ascii'); // uname
  header.write('root', 297, 'ascii'); // gname
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  const padding = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, padding, Buffer.alloc(1024)]);
}

/** A gzip'd tar holding one file of `size` bytes derived from `seed`. */
export async function makeLayer(seed: string, size: number, mediaType = OCI_LAYER): Promise<TestLayer> {
  const name = `data/${createHash('sha256').update(seed).digest('hex').slice(0, 16)}.bin`;
  const tar = tarOneFile(name, deterministicBytes(seed, size));
  const data = await gzip(tar, { level: 6 });
  return { mediaType, data, digest: sha256(data), diffId: sha256(tar) };
}

/** Serializes a manifest or index the way test images do: 3-space indentation. */
export function serializeManifest(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value, null, 3), 'utf8');
}

function platformKey(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

export interface MakeImageOptions {
  format: 'oci' | 'docker';
  platforms: Platform[];
  seed: string;
  /** Bytes of random data in each layer's file (default 1024). */
  layerSize?: number;
  /** Layers per platform manifest (default 1). */
  layers?: number;
}

/** A multi-platform image: one manifest (config + layers) per platform, and the index listing them. */
export async function makeImage(options: MakeImageOptions): Promise<TestImage> {
  const oci = options.format === 'oci';
  const types = oci
    ? { index: OCI_INDEX, manifest: OCI_MANIFEST, config: OCI_CONFIG, layer: OCI_LAYER }
    : { index: DOCKER_LIST, manifest: DOCKER_MANIFEST, config: DOCKER_CONFIG, layer: DOCKER_LAYER };
  const layerSize = options.layerSize ?? 1024;
  const layerCount = options.layers ?? 1;

  const manifests: TestManifest[] = [];
  for (const platform of options.platforms) {
    const key = `${options.seed}/${platformKey(platform)}`;
    const layers: TestLayer[] = [];
    for (let i = 0; i < layerCount; i++)
      layers.push(await makeLayer(`${key}/layer${i}`, layerSize, types.layer));
    const configBytes = Buffer.from(
      JSON.stringify({
        created: CREATED,
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant ? { variant: platform.variant } : {}),
        config: {},
        rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.diffId) },
        history: layers.map((_, i) => ({
          created: CREATED,
          created_by: `pullsafe fixture ${key} layer ${i}`,
        })),
      }),
      'utf8',
    );
    const config: TestBlob = { mediaType: types.config, bytes: configBytes, digest: sha256(configBytes) };
    const bytes = serializeManifest({
      schemaVersion: 2,
      mediaType: types.manifest,
      config: { mediaType: config.mediaType, digest: config.digest, size: config.bytes.length },
      layers: layers.map((layer) => ({
        mediaType: layer.mediaType,
        digest: layer.digest,
        size: layer.data.length,
      })),
    });
    manifests.push({ platform, mediaType: types.manifest, bytes, digest: sha256(bytes), config, layers });
  }

  const indexBytes = serializeManifest({
    schemaVersion: 2,
    mediaType: types.index,
    manifests: manifests.map((manifest) => ({
      mediaType: manifest.mediaType,
      digest: manifest.digest,
      size: manifest.bytes.length,
      platform: {
        architecture: manifest.platform.architecture,
        os: manifest.platform.os,
        ...(manifest.platform.variant ? { variant: manifest.platform.variant } : {}),
      },
    })),
  });
  return {
    format: options.format,
    index: { mediaType: types.index, bytes: indexBytes, digest: sha256(indexBytes) },
    manifests,
  };
}

/**
 * Pushes a whole image over the distribution API: every blob, each platform manifest by digest, then the
 * index by `tag`. Throws on any answer other than success. Returns the index digest.
 */
export async function pushImage(base: string, repo: string, tag: string, image: TestImage): Promise<string> {
  const pushed = new Set<string>();
  for (const manifest of image.manifests) {
    for (const blob of [manifest.config.bytes, ...manifest.layers.map((layer) => layer.data)]) {
      const digest = sha256(blob);
      if (pushed.has(digest)) continue;
      await pushBlob(base, repo, blob);
      pushed.add(digest);
    }
    const result = await pushManifest(base, repo, manifest.digest, manifest.mediaType, manifest.bytes);
    if (result.status !== 201) {
      throw new Error(
        `PUT manifest ${manifest.digest} to ${repo}: ${result.status} ${result.response.text()}`,
      );
    }
  }
  const result = await pushManifest(base, repo, tag, image.index.mediaType, image.index.bytes);
  if (result.status !== 201) {
    throw new Error(`PUT index ${repo}:${tag}: ${result.status} ${result.response.text()}`);
  }
  if (result.digest && result.digest !== image.index.digest) {
    throw new Error(
      `PUT index ${repo}:${tag}: registry says ${result.digest}, bytes are ${image.index.digest}`,
    );
  }
  return image.index.digest;
}

/**
 * Writes an OCI image layout (oci-layout, index.json, blobs/sha256/...) holding `image` under `tag`
 * (the org.opencontainers.image.ref.name annotation), readable as `oci:DIR:TAG`. OCI-format images only.
 */
export async function writeOciLayout(dir: string, image: TestImage, tag: string): Promise<void> {
  if (image.format !== 'oci') throw new Error('writeOciLayout: only OCI-format images fit an OCI layout');
  const blobsDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobsDir, { recursive: true });
  const write = (digest: string, bytes: Buffer) =>
    writeFile(join(blobsDir, digest.replace(/^sha256:/, '')), bytes);
  for (const manifest of image.manifests) {
    await write(manifest.config.digest, manifest.config.bytes);
    for (const layer of manifest.layers) await write(layer.digest, layer.data);
    await write(manifest.digest, manifest.bytes);
  }
  await write(image.index.digest, image.index.bytes);
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          mediaType: image.index.mediaType,
          digest: image.index.digest,
          size: image.index.bytes.length,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
}

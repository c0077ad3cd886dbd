/** Benchmark data: one file of random bytes, blobs cut from it, their digests. */
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { ociManifestType } from './http.ts';

export const MiB = 1024 * 1024;

/** A blob that lives in `file` at [offset, offset + size). */
export interface BlobSource {
  file: string;
  offset: number;
  size: number;
  digest: string;
}

/** Writes `bytes` random bytes to `path`. */
export async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const handle = await open(path, 'w');
  try {
    const chunk = Buffer.allocUnsafe(16 * MiB);
    let written = 0;
    while (written < bytes) {
      const length = Math.min(chunk.length, bytes - written);
      randomFillSync(chunk, 0, length);
      const { bytesWritten } = await handle.write(chunk, 0, length);
      written += bytesWritten;
    }
  } finally {
    await handle.close();
  }
}

/** Describes [offset, offset + size) of `file` as a blob, computing its digest. */
export async function blobFromRange(file: string, offset: number, size: number): Promise<BlobSource> {
  const hash = createHash('sha256');
  await pipeline(
    createReadStream(file, { start: offset, end: offset + size - 1, highWaterMark: MiB }),
    async function (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) hash.update(chunk);
    },
  );
  return { file, offset, size, digest: `sha256:${hash.digest('hex')}` };
}

/** Copies a range of one file into a file of its own (for clients that upload whole files). */
export async function copyRange(source: BlobSource, destination: string): Promise<BlobSource> {
  await pipeline(
    createReadStream(source.file, {
      start: source.offset,
      end: source.offset + source.size - 1,
      highWaterMark: MiB,
    }),
    createWriteStream(destination),
  );
  return { file: destination, offset: 0, size: source.size, digest: source.digest };
}

export function digestOf(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** An OCI image of `layers` (amd64 Linux): its config blob and its manifest's bytes. */
export function imageOf(layers: BlobSource[]): {
  config: { bytes: Buffer; digest: string };
  layers: BlobSource[];
  manifest: Buffer;
} {
  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.digest) },
    }),
  );
  const config = { bytes: configBytes, digest: digestOf(configBytes) };
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: ociManifestType,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: config.digest,
        size: configBytes.length,
      },
      layers: layers.map((layer) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        digest: layer.digest,
        size: layer.size,
      })),
    }),
  );
  return { config, layers, manifest };
}

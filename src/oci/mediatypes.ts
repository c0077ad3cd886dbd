/** Media types of OCI and Docker images, and what kind of document each one is. */

export const mediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerTarGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export type ManifestKind = 'image' | 'index';

/** The manifest media types this registry stores and serves, by kind. */
export const manifestKinds: ReadonlyMap<string, ManifestKind> = new Map<string, ManifestKind>([
  [mediaTypes.ociManifest, 'image'],
  [mediaTypes.dockerManifest, 'image'],
  [mediaTypes.ociIndex, 'index'],
  [mediaTypes.dockerManifestList, 'index'],
]);

export function isSchema1(mediaType: string): boolean {
  return mediaType === mediaTypes.dockerSchema1 || mediaType === mediaTypes.dockerSchema1Signed;
}

/** Layers a registry need not hold (Windows base layers and `urls`-carrying non-distributable layers). */
export function isNonDistributable(mediaType: string): boolean {
  return mediaType === mediaTypes.dockerForeignLayer || mediaType.includes('.nondistributable.');
}

/** `type/subtype` without parameters, lowercased. */
export function bareMediaType(value: string): string {
  return value.split(';')[0]!.trim().toLowerCase();
}

/** What a found reference depends on, and how risky that is for pulls on AWS. */
import { parseReference, type ImageReference } from '../reference/index.ts';
import { officialImages } from './official-images.ts';

export type RegistryKind =
  | 'docker-hub'
  | 'ecr-private'
  | 'ecr-public'
  | 'ghcr'
  | 'quay'
  | 'gcr'
  | 'mcr'
  /** A CodeBuild curated image (`aws/codebuild/standard:7.0`): CodeBuild provides it, nothing pulls it from a registry. */
  | 'codebuild'
  | 'other';

/** The registry value of CodeBuild's curated images, which have no registry host. */
export const codebuildRegistry = 'codebuild';

export interface Classification {
  /** Normalised: `docker.io` for Docker Hub, explicit or implied. */
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
  registryKind: RegistryKind;
  /** Docker Hub was not written: `nginx` rather than `docker.io/library/nginx`. */
  implicitRegistry: boolean;
  /** A Docker official image (`docker.io/library/<name>`). */
  official: boolean;
  pinned: boolean;
  /** No tag, or `latest`, and no digest: what is pulled can change under you. */
  floating: boolean;
  /** ECR Public's copy of a Docker official image, same tag or digest. */
  ecrPublicEquivalent?: string;
}

const ecrPrivate =
  /^\d{12}\.dkr(?:-ecr)?\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?$|^\d{12}\.dkr-ecr\.[a-z0-9-]+\.on\.aws$/;

export function registryKind(registry: string): RegistryKind {
  if (registry === 'docker.io') return 'docker-hub';
  if (ecrPrivate.test(registry)) return 'ecr-private';
  if (registry === 'public.ecr.aws') return 'ecr-public';
  if (registry === 'ghcr.io') return 'ghcr';
  if (registry === 'quay.io') return 'quay';
  if (registry === 'gcr.io' || registry.endsWith('.gcr.io') || registry.endsWith('-docker.pkg.dev'))
    return 'gcr';
  if (registry === 'mcr.microsoft.com') return 'mcr';
  return 'other';
}

/**
 * Undefined when `text` is not a valid image reference. `codebuild`: the image is run by CodeBuild, whose
 * curated images (`aws/codebuild/...` with no registry written) are its own, not Docker Hub's.
 */
export function classify(text: string, options: { codebuild?: boolean } = {}): Classification | undefined {
  let reference: ImageReference;
  try {
    reference = parseReference(text);
  } catch {
    return undefined;
  }
  if (options.codebuild && /^aws\/codebuild\/[^/]/.test(text)) {
    const curated: Classification = {
      registry: codebuildRegistry,
      repository: reference.repository,
      registryKind: 'codebuild',
      implicitRegistry: false,
      official: false,
      pinned: reference.digest !== undefined,
      floating: reference.digest === undefined && (reference.tag === undefined || reference.tag === 'latest'),
    };
    if (reference.tag !== undefined) curated.tag = reference.tag;
    if (reference.digest !== undefined) curated.digest = reference.digest;
    return curated;
  }
  const kind = registryKind(reference.registry);
  const name = reference.repository.startsWith('library/')
    ? reference.repository.slice('library/'.length)
    : undefined;
  const official =
    kind === 'docker-hub' && name !== undefined && !name.includes('/') && officialImages.has(name);
  const firstComponent = text.split('/')[0] ?? '';
  const implicitRegistry =
    kind === 'docker-hub' && !/^(docker\.io|index\.docker\.io|registry-1\.docker\.io)$/i.test(firstComponent);
  const result: Classification = {
    registry: reference.registry,
    repository: reference.repository,
    registryKind: kind,
    implicitRegistry,
    official,
    pinned: reference.digest !== undefined,
    floating: reference.digest === undefined && (reference.tag === undefined || reference.tag === 'latest'),
  };
  if (reference.tag !== undefined) result.tag = reference.tag;
  if (reference.digest !== undefined) result.digest = reference.digest;
  if (official) {
    const suffix = `${reference.tag !== undefined ? `:${reference.tag}` : ''}${reference.digest !== undefined ? `@${reference.digest}` : ''}`;
    result.ecrPublicEquivalent = `public.ecr.aws/docker/library/${name}${suffix}`;
  }
  return result;
}

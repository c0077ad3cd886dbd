/** The image itself: its reference, its platform, its media types, whether it exists (`image-*`). */
import { wording } from '../wording.ts';
import { make, type Candidate, type Context } from './detector.ts';
import { common, imageLabel, pullThroughLibraryTrap, regionOf } from './fixes.ts';

export function referenceInvalid({ text, x }: Context): Candidate[] {
  if (!wording.referenceInvalid.test(text)) return [];
  return [
    make(
      'image-reference-invalid',
      10,
      'high',
      `The image reference${x.image ? ` ${x.image}` : ''} is not valid`,
      'the runtime rejected the reference before any request',
      { ...common(x), dockerApiStatus: x.dockerApiStatus },
      [
        'write the repository in lowercase, with a valid tag (letters, digits, _ . -) or digest (sha256:<64 hex>), no spaces or URL scheme',
        'if the reference is built from variables, check that none is empty (a trailing ":" or "/" is invalid)',
      ],
    ),
  ];
}

export function execFormat({ text, x }: Context): Candidate[] {
  if (!wording.execFormat.test(text) || wording.platform.test(text)) return [];
  const executable = /exec:? "?([^\s":]+)"?: exec format error/.exec(text)?.[1];
  const image = x.image ?? '<image>';
  return [
    make(
      'image-platform-mismatch',
      10,
      'high',
      `The entrypoint${executable ? ` ${executable}` : ''} of ${imageLabel(x)} is built for another CPU architecture than the one it runs on (exec format error)`,
      'the kernel refused to run the executable: most often an arm64 image on an X86_64 task, or the reverse',
      { ...common(x), executable, platforms: x.platforms },
      [
        `run the task on the image's architecture: set the task definition's \`runtimePlatform\` to it, {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"} or "X86_64" (\`pullsafe inspect ${image}\` shows the platforms the image has)${x.source === 'kubernetes' ? '; on Kubernetes: a nodeSelector on kubernetes.io/arch' : ''}`,
        `or build the image for the task's architecture: \`docker buildx build --platform linux/amd64 -t ${image} --push .\` (or --platform linux/amd64,linux/arm64 for both); a build on Apple silicon or Graviton gives arm64 unless told otherwise`,
        `if the image was copied with \`pullsafe copy --platform\`, copy the task's platform too (--platform linux/amd64), or all of them (no --platform)`,
        'if the entrypoint is a script, its first line must be a #! line (#!/bin/sh); a binary downloaded or copied into the image must be built for the same architecture',
      ],
    ),
  ];
}

export function platformMismatch({ text, x }: Context): Candidate[] {
  if (!wording.platform.test(text)) return [];
  const platform = x.platforms?.[0];
  return [
    make(
      'image-platform-mismatch',
      10,
      'high',
      `${imageLabel(x)} has no variant for ${platform ?? 'the platform the task runs on'}`,
      'the registry answered and the runtime found no matching platform: a definite answer',
      { ...common(x), platforms: x.platforms, mediaTypes: x.mediaTypes },
      [
        `build and push the image for ${platform ?? 'the task platform'} too: \`docker buildx build --platform linux/amd64,linux/arm64 -t ${x.image ?? '<image>'} --push .\``,
        `or run the task on the image's architecture: set \`runtimePlatform.cpuArchitecture\` (X86_64 or ARM64) in the task definition${x.source === 'kubernetes' ? ' (on Kubernetes: a nodeSelector on kubernetes.io/arch)' : ''}`,
        `check which platforms the tag has: \`pullsafe inspect ${x.image ?? '<image>'}\``,
      ],
    ),
  ];
}

export function mediaType({ text, x }: Context): Candidate[] {
  if (!wording.mediaType.test(text)) return [];
  return [
    make(
      'image-media-type',
      12,
      'high',
      `The runtime does not accept the format of ${imageLabel(x)}${x.mediaTypes?.length ? ` (${x.mediaTypes.join(', ')})` : ''}`,
      'the registry answered with content the runtime refuses: a definite answer',
      { ...common(x), mediaTypes: x.mediaTypes },
      [
        'rebuild and push the image as OCI or Docker schema 2 (schema 1 `prettyjws` manifests are no longer pulled)',
        'use one layer compression for the whole image (do not mix gzip and zstd layers on ECS): e.g. buildx `--output type=image,oci-mediatypes=true,compression=gzip,force-compression=true`',
        'if an attestation or SBOM manifest is the problem, push with `--provenance=false --sbom=false`',
      ],
    ),
  ];
}

export function imageNotFound(ctx: Context): Candidate[] {
  const { text, x } = ctx;
  const trap = pullThroughLibraryTrap(x);
  if (!wording.notFound.test(text) && !trap) return [];
  if (
    /no match for platform|no matching manifest|log group|ResourceNotFoundException|ParameterNotFound/i.test(
      text,
    )
  )
    return [];
  if (x.iamAction && !/requested access to the resource is denied/.test(text)) return [];
  const fixes: string[] = [];
  if (trap)
    fixes.push(
      `official Docker Hub images need the library/ segment behind the pull-through prefix: use ${trap}`,
    );
  fixes.push(
    x.registry && /\.dkr\.ecr\./.test(x.registry) && x.repository
      ? `check the repository and tag exist: \`aws ecr describe-images --repository-name ${x.repository} --image-ids ${x.digest ? `imageDigest=${x.digest}` : `imageTag=${x.tag ?? 'latest'}`} --region ${regionOf(x)}${x.accountId ? ` --registry-id ${x.accountId}` : ''}\``
      : `check the name, tag and registry of ${imageLabel(x)} (\`pullsafe inspect ${x.image ?? '<image>'}\`)`,
  );
  if (x.digest) {
    fixes.push(
      'ECS pins the digest it resolved at deployment: if the tag was pushed again or the image deleted since, redeploy the service (force new deployment) or push tags that are never overwritten',
    );
  }
  if (wording.credentialsWeak.test(text)) {
    fixes.push('a private repository answers like a missing one: if it exists, the pull needs credentials');
  }
  return [
    make(
      'image-not-found',
      trap ? 18 : 30,
      trap || /manifest unknown|not found/i.test(text) ? 'high' : 'medium',
      trap
        ? `${imageLabel(x)} misses the library/ segment of the pull-through cache`
        : `${imageLabel(x)} was not found in ${x.registry ?? 'the registry'}`,
      trap
        ? 'the pull-through prefix trap: the repository name is known to be wrong'
        : 'the registry answered that the name or tag does not exist',
      {
        ...common(x),
        repository: x.repository,
        tag: x.tag,
        digest: x.digest,
        httpStatus: x.httpStatus,
        dockerApiStatus: x.dockerApiStatus,
      },
      fixes,
    ),
  ];
}

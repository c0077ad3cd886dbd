/** Docker Hub's and other registries' pull rate limits (`rate-limit`). */
import { familiarName, isDockerHub } from '../../reference/index.ts';
import { wording } from '../wording.ts';
import { make, type Candidate, type Context } from './detector.ts';
import {
  accountOf,
  cacheFix,
  common,
  credentialsFix,
  imageLabel,
  officialImage,
  placed,
  pullerOf,
  referenceSuffix,
  regionOf,
} from './fixes.ts';

export function rateLimit({ text, x }: Context): Candidate[] {
  if (!wording.rateLimit.test(text)) return [];
  if (/ThrottlingException|ThrottledException/.test(text) && !/toomanyrequests/i.test(text)) return [];
  const puller = pullerOf(x);
  const ecrHost = `${accountOf(x)}.dkr.ecr.${regionOf(x)}.amazonaws.com`;
  // A docker client pulling from ECR logs in itself; ECS, CodeBuild's image fetch and EKS nodes do it for it.
  const ecrLogin = ['docker-build', 'codebuild-buildspec', 'docker'].includes(puller)
    ? `log in to ECR first: \`aws ecr get-login-password --region ${regionOf(x)} | docker login --username AWS --password-stdin ${ecrHost}\``
    : undefined;
  const official = officialImage(x);
  const ecrPublic = x.registry === 'public.ecr.aws';
  const dockerHub = !x.registry || isDockerHub({ registry: x.registry });
  const fixes: string[] = [];
  if (official) {
    const copy = `public.ecr.aws/docker/library/${official.name}${official.suffix}`;
    fixes.push(
      `use the ECR Public copy of the official image: ${placed(x, puller, copy)} (no Docker Hub quota; \`pullsafe rewrite --to-ecr-public\` edits your files${x.digest ? `; the digest is kept: \`pullsafe inspect ${copy}\` checks that the copy has it` : ''})`,
    );
    fixes.push(
      `or an ECR pull-through cache rule for Docker Hub: ${placed(x, puller, `${ecrHost}/docker-hub/library/${official.name}${official.suffix}`)} (official images need the library/ segment${ecrLogin ? `; ${ecrLogin}` : ''})`,
    );
  } else if (ecrPublic) {
    fixes.push(
      'authenticate ECR Public pulls (anonymous pulls get 1 per second and 500 GB a month per IP): `aws ecr-public get-login-password --region us-east-1 | docker login --username AWS --password-stdin public.ecr.aws`',
    );
    fixes.push(
      `or an ECR pull-through cache rule with upstream public.ecr.aws: ${placed(x, puller, `${ecrHost}/ecr-public/${x.repository ?? '<repository>'}${referenceSuffix(x)}`)}${ecrLogin ? ` (${ecrLogin})` : ''}`,
    );
  } else if (x.repository && dockerHub) {
    fixes.push(
      `use an ECR pull-through cache rule for Docker Hub: ${placed(x, puller, `${ecrHost}/docker-hub/${x.repository}${referenceSuffix(x)}`)}${ecrLogin ? ` (${ecrLogin})` : ''}`,
    );
  }
  if (x.repository && x.registry) {
    const name = official?.name ?? x.repository;
    const source = familiarName({
      registry: x.registry,
      repository: x.repository,
      original: '',
      ...(x.tag !== undefined ? { tag: x.tag } : {}),
      ...(x.digest !== undefined ? { digest: x.digest } : {}),
    });
    fixes.push(
      `or copy it once into your own ECR repository and pull it from there (${placed(x, puller, `${ecrHost}/${name}${referenceSuffix(x)}`)}): \`aws ecr create-repository --repository-name ${name}\`, then \`pullsafe copy ${source} ${ecrHost}/${name}\` (the tag and digest are kept; for many images \`pullsafe sync --file mirror.yaml\`)`,
    );
  }
  if (dockerHub) fixes.push(cacheFix(x, puller));
  if (!ecrPublic) fixes.push(`or authenticate the pulls: ${credentialsFix(x, puller)}`);
  if (puller === 'codebuild-environment' || puller === 'codebuild-buildspec') {
    fixes.push(
      "CodeBuild's builds share a few egress IP addresses per region, so anonymous Docker Hub pulls reach the limit there first" +
        (puller === 'codebuild-environment'
          ? "; CodeBuild's own build images (aws/codebuild/standard:7.0, …) are not rate limited"
          : ''),
    );
  }
  fixes.push(
    'check what quota is left with `pullsafe ratelimit` (HEAD requests only: checking costs nothing)',
  );
  return [
    make(
      'rate-limit',
      10,
      'high',
      `${ecrPublic ? 'ECR Public' : dockerHub ? 'Docker Hub' : x.registry} refused to serve ${imageLabel(x)}: pull rate limit reached`,
      'the registry answered with its rate-limit error: a definite answer',
      { ...common(x), httpStatus: x.httpStatus ?? 429, dialIp: x.dialIp },
      fixes,
    ),
  ];
}

/** The pulling host: its disk (`disk-full`) and the time it allows a pull (`pull-timeout`). */
import { layerDownload, wording } from '../wording.ts';
import { make, type Candidate, type Context } from './detector.ts';
import { common, imageLabel, networkEvidence } from './fixes.ts';

export function diskFull({ text, x }: Context): Candidate[] {
  if (!wording.diskFull.test(text)) return [];
  const certain = /no space left on device/i.test(text);
  return [
    make(
      'disk-full',
      certain ? 12 : 30,
      certain ? 'high' : 'medium',
      `Storage ran out while pulling or extracting ${imageLabel(x)}`,
      certain
        ? 'the kernel reported no space left'
        : 'layer registration failed, most often for lack of space',
      common(x),
      [
        'on Fargate: raise `ephemeralStorage.sizeInGiB` in the task definition (21 to 200 GiB)',
        'on EC2: enlarge the Docker volume or clean old images (`ECS_IMAGE_CLEANUP_INTERVAL`, `docker system prune`)',
        'shrink the image: multi-stage builds, a smaller base image',
      ],
    ),
  ];
}

export function pullTimeout(ctx: Context): Candidate[] {
  const { text, x } = ctx;
  const named = wording.pullTimeout.test(text);
  // A layer download cancelled by its caller: the manifest came, and the pull ran out of time on a layer.
  const cancelledLayer =
    /context canceled/i.test(text) &&
    !/RequestCanceled/.test(text) &&
    !ctx.secrets &&
    !ctx.logs &&
    layerDownload.test(text) &&
    !/\/manifests\//.test(text);
  if (!named && !cancelledLayer) return [];
  const fixes = [
    'on EC2: raise ECS_IMAGE_PULL_TIMEOUT (the whole pull) or ECS_IMAGE_PULL_INACTIVITY_TIMEOUT (no progress) in /etc/ecs/ecs.config, or pre-pull the image into the AMI; Fargate has no such setting, so the download must get faster',
    'pull from the same region (ECR, an ECR pull-through cache) and shrink the image',
    'check NAT gateway throughput and proxies on the way',
  ];
  if (named)
    return [
      make(
        'pull-timeout',
        60,
        'medium',
        `Pulling ${imageLabel(x)} took too long or stalled`,
        'the agent gave up waiting; the slow hop is not named in the message',
        { ...common(x), ...networkEvidence(x) },
        fixes,
      ),
    ];
  return [
    make(
      'pull-timeout',
      45,
      'medium',
      `A layer download of ${imageLabel(x)} was cancelled (context canceled): the pull ran out of time`,
      "a layer download cancelled by its caller: ECS's image pull timeout, reached by a slow or stalled layer download",
      { ...common(x), ...networkEvidence(x) },
      [
        ...fixes,
        'if not one byte of the layer arrived, the path to the layer host is the cause: see the network cause in this list',
      ],
    ),
  ];
}

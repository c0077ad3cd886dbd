/**
 * Collectors: read-only AWS calls that turn a task, service, task definition or CodeBuild project into
 * `Facts`. Independent lookups run in parallel; a call that fails is kept as a `failed` lookup (and in
 * `facts.failures`), so checks report "could not check" instead of passing.
 */
import type { AwsCaller } from './aws.ts';
import { Collector, type DoctorTarget } from './collect/collector.ts';
import { collectCodeBuild } from './collect/codebuild.ts';
import { collectEcs } from './collect/ecs.ts';
import type { Facts } from './types.ts';

export type { DoctorTarget } from './collect/collector.ts';
export { configDigestOf, platformsOfManifest } from './collect/images.ts';
export { credentialShape, parseSecretReference, secretUses } from './collect/secrets.ts';

export async function collect(caller: AwsCaller, target: DoctorTarget, region: string): Promise<Facts> {
  const collector = new Collector(caller, region);
  if (target.codebuildProject) return collectCodeBuild(collector, target);
  return collectEcs(collector, target);
}

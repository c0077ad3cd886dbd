/** `pullsafe doctor`: why pulls fail for an ECS task, service or task definition, or a CodeBuild project. */
import { PullsafeError } from '../errors/index.ts';
import { arnRegion } from '../shared/arn.ts';
import { sdkCaller, withRetries, type AwsCaller } from '../doctor/aws.ts';
import { readSnapshot, recordingCaller, replayCaller, writeSnapshot } from '../doctor/snapshot.ts';
import type { DoctorTarget } from '../doctor/collect.ts';
import { runDoctor, type DoctorReport } from '../doctor/doctor.ts';
import { renderMarkdown, renderText } from '../doctor/report.ts';
import { exitCodes, writeJson, type CommandIo, type OutputStream } from './output.ts';

export interface DoctorFlags {
  cluster?: string;
  task?: string;
  service?: string;
  taskDefinition?: string;
  codebuildProject?: string;
  buildId?: string;
  buildspec?: string;
  source?: string;
  subnets?: string;
  securityGroups?: string;
  assignPublicIp?: boolean;
  region?: string;
  profile?: string;
  json?: boolean;
  markdown?: boolean;
  saveSnapshot?: string;
  snapshot?: string;
}

function list(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  return items.length > 0 ? items : undefined;
}

/** Collects the facts, checks them and prints the report; with --save-snapshot, writes what AWS answered. */
export async function runDoctorCommand(flags: DoctorFlags, io: CommandIo): Promise<number> {
  checkFlags(flags);
  const { env } = io;
  let caller: AwsCaller;
  let region: string | undefined;
  let recorder: ReturnType<typeof recordingCaller> | undefined;
  if (flags.snapshot) {
    const snapshot = await readSnapshot(flags.snapshot);
    region = flags.region ?? snapshot.region;
    caller = replayCaller(snapshot);
  } else {
    region =
      flags.region ??
      // The region an ARN names: `--task arn:aws:ecs:eu-west-1:…` needs no `--region`.
      arnRegion(flags.task ?? flags.service ?? flags.taskDefinition ?? flags.buildId ?? flags.cluster) ??
      env.AWS_REGION ??
      env.AWS_DEFAULT_REGION;
    if (!region) {
      throw new PullsafeError('USAGE', 'no AWS region', { hint: 'pass --region, or set AWS_REGION' });
    }
    const profile = flags.profile ?? env.AWS_PROFILE;
    caller = withRetries(sdkCaller({ region, ...(profile ? { profile } : {}) }));
    if (flags.saveSnapshot) {
      recorder = recordingCaller(caller, region);
      caller = recorder;
    }
  }
  try {
    const report = await runDoctor(caller, targetOf(flags), region);
    printDoctor(report, flags, io.stdout);
    return report.problems ? exitCodes.findings : exitCodes.ok;
  } finally {
    if (recorder && flags.saveSnapshot) {
      await writeSnapshot(flags.saveSnapshot, recorder.snapshot());
      io.stderr.write(`pullsafe: snapshot written to ${flags.saveSnapshot}\n`);
    }
  }
}

/** The report as text, Markdown (--markdown) or JSON (--json). */
export function printDoctor(report: DoctorReport, flags: DoctorFlags, out: OutputStream): void {
  if (flags.json) writeJson(out, report);
  else if (flags.markdown) out.write(renderMarkdown(report));
  else out.write(renderText(report));
}

/** Flags that contradict each other or go without the subject they belong to, before any AWS call. */
function checkFlags(flags: DoctorFlags): void {
  const subjects = [flags.task, flags.service, flags.taskDefinition, flags.codebuildProject].filter(Boolean);
  if (subjects.length !== 1) {
    throw new PullsafeError(
      'USAGE',
      'give exactly one of --task, --service, --task-definition, --codebuild-project',
      {
        hint: 'pullsafe doctor --cluster prod --task 0123456789abcdef (see docs/doctor.md)',
      },
    );
  }
  if ((flags.task || flags.service) && !flags.cluster && !flags.task?.startsWith('arn:')) {
    throw new PullsafeError('USAGE', `--${flags.task ? 'task' : 'service'} needs --cluster`, {
      hint: 'the cluster name or ARN the task runs in',
    });
  }
  if (flags.json && flags.markdown) throw new PullsafeError('USAGE', 'choose one of --json and --markdown');
  if (flags.snapshot && flags.saveSnapshot) {
    throw new PullsafeError('USAGE', '--snapshot replays a snapshot; it cannot also --save-snapshot');
  }
  if ((flags.buildId || flags.buildspec || flags.source) && !flags.codebuildProject) {
    throw new PullsafeError('USAGE', '--build-id, --buildspec and --source go with --codebuild-project', {
      hint: 'pullsafe doctor --codebuild-project app --source .',
    });
  }
  if ((flags.subnets || flags.securityGroups) && !flags.taskDefinition) {
    throw new PullsafeError('USAGE', '--subnets and --security-groups go with --task-definition', {
      hint: 'for a task or service, doctor reads them from ECS',
    });
  }
}

/** What doctor looks at, from the flags. */
function targetOf(flags: DoctorFlags): DoctorTarget {
  const subnets = list(flags.subnets);
  const securityGroups = list(flags.securityGroups);
  return {
    ...(flags.cluster ? { cluster: flags.cluster } : {}),
    ...(flags.task ? { task: flags.task } : {}),
    ...(flags.service ? { service: flags.service } : {}),
    ...(flags.taskDefinition ? { taskDefinition: flags.taskDefinition } : {}),
    ...(flags.codebuildProject ? { codebuildProject: flags.codebuildProject } : {}),
    ...(flags.buildId ? { buildId: flags.buildId } : {}),
    ...(flags.buildspec ? { buildspecFile: flags.buildspec } : {}),
    ...(flags.source ? { sourceDir: flags.source } : {}),
    ...(subnets ? { subnets } : {}),
    ...(securityGroups ? { securityGroups } : {}),
    ...(flags.assignPublicIp !== undefined ? { assignPublicIp: flags.assignPublicIp } : {}),
  };
}

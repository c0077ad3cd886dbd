/**
 * CodeBuild builds: the last failed build of a project (or the one given), the lines its failed phase wrote
 * to CloudWatch Logs, the buildspec (inline, `--buildspec FILE`, or the project's path in `--source DIR`)
 * and the source files it builds from, and the secrets and parameters it reads.
 */
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import type { Build, BuildPhase, Project } from '@aws-sdk/client-codebuild';
import { PullsafeError } from '../../errors/index.ts';
import { arnRegion } from '../../shared/arn.ts';
import { redactLogLine } from '../snapshot.ts';
import { parsePolicyDocument } from '../iam-eval.ts';
import type { BuildSecretRef } from '../build-plan.ts';
import type { BuildFacts, Lookup, PolicyDocument, SecretFacts } from '../types.ts';
import type { Collector } from './collector.ts';
import { call } from './collector.ts';
import { describeParameter, describeSecret, parseSecretReference, secretString } from './secrets.ts';

/** How many of a project's most recent builds are looked through for the last failed one. */
const buildSample = 25;
/** The log is read backwards from the end of the failed phase: at most this many pages of events. */
const logPages = 4;
const logPageSize = 1000;
/** Source files larger than this are not Dockerfiles or buildspecs doctor reads. */
const sourceFileLimit = 1024 * 1024;

const failedStatuses = new Set(['FAILED', 'FAULT', 'TIMED_OUT']);
const failedPhaseStatuses = new Set(['FAILED', 'FAULT', 'TIMED_OUT', 'STOPPED']);

/**
 * The build given by id (the run's subject: a failure to read it ends the run), or the most recent failed
 * build when no build succeeded after it.
 */
export async function readBuild(
  c: Collector,
  project: Project,
  region: string,
  buildId: string | undefined,
): Promise<Pick<BuildFacts, 'build' | 'failure'>> {
  const projectName = project.name ?? '';
  if (buildId !== undefined) {
    const answer = await call(c, 'codebuild', 'BatchGetBuilds', { ids: [buildId] }, region);
    const build = answer.builds?.[0];
    if (!build) {
      throw new PullsafeError('AWS_NOT_FOUND', `CodeBuild has no build ${buildId}`, {
        hint: `build ids look like ${projectName}:<uuid>; list them with aws codebuild list-builds-for-project --project-name ${projectName}`,
      });
    }
    if (build.projectName !== undefined && build.projectName !== projectName) {
      throw new PullsafeError(
        'USAGE',
        `build ${buildId} belongs to project ${build.projectName}, not ${projectName}`,
        { hint: `run doctor with --codebuild-project ${build.projectName}` },
      );
    }
    return { build };
  }
  let ids: string[];
  try {
    const listed = await c.caller.call(
      'codebuild',
      'ListBuildsForProject',
      { projectName, sortOrder: 'DESCENDING' },
      region,
    );
    ids = (listed.ids ?? []).slice(0, buildSample);
  } catch (error) {
    return { failure: c.fail(error, 'codebuild', 'ListBuildsForProject') };
  }
  if (ids.length === 0) return {};
  let builds: Build[];
  try {
    const answer = await c.caller.call('codebuild', 'BatchGetBuilds', { ids }, region);
    // In the order listed, most recent first.
    builds = ids.flatMap((id) => answer.builds?.find((build) => build.id === id) ?? []);
  } catch (error) {
    return { failure: c.fail(error, 'codebuild', 'BatchGetBuilds') };
  }
  // A build that succeeded since means the project builds now: an older failure is history, not a
  // diagnosis (--build-id reads it all the same). Builds still running or stopped by hand say nothing.
  for (const build of builds) {
    if (build.buildStatus === 'SUCCEEDED') return {};
    if (failedStatuses.has(build.buildStatus ?? '')) return { build };
  }
  return {};
}

/** The phase the build failed in: the first one that did not succeed. */
export function failedPhase(build: Build): BuildPhase | undefined {
  return build.phases?.find((phase) => failedPhaseStatuses.has(phase.phaseStatus ?? ''));
}

/**
 * The log lines of the failed phase (its time window, with a second of slack for the closing lines),
 * newest pages first and at most `logPages` of them, returned in order. Credentials are removed from every
 * line before it is kept.
 */
export async function readBuildLog(c: Collector, build: Build, region: string): Promise<BuildFacts['log']> {
  const logs = build.logs;
  const group = logs?.groupName;
  const stream = logs?.streamName;
  if (!group || !stream || logs?.cloudWatchLogs?.status === 'DISABLED') return undefined;
  const phase = failedPhase(build);
  const time = (value: Date | undefined) => (value === undefined ? undefined : new Date(value).getTime());
  const start = time(phase?.startTime);
  const end = time(phase?.endTime);
  const input = {
    logGroupName: group,
    logStreamName: stream,
    startFromHead: false,
    limit: logPageSize,
    ...(start !== undefined ? { startTime: start } : {}),
    ...(end !== undefined ? { endTime: end + 1000 } : {}),
  };
  const lines = await c.lookup<string[]>(
    'logs',
    'GetLogEvents',
    async () => {
      const pages: string[][] = [];
      let token: string | undefined;
      for (let page = 0; page < logPages; page++) {
        const answer = await c.caller.call(
          'logs',
          'GetLogEvents',
          token === undefined ? input : { ...input, nextToken: token },
          region,
        );
        const events = answer.events ?? [];
        pages.unshift(
          events.flatMap((event) =>
            (event.message ?? '')
              .replace(/\r?\n$/, '')
              .split(/\r?\n/)
              .map(redactLogLine),
          ),
        );
        const next = answer.nextBackwardToken;
        if (events.length === 0 || next === undefined || next === token) break;
        token = next;
      }
      return pages.flat();
    },
    ['ResourceNotFoundException'],
    `no log stream ${stream} in log group ${group}`,
  );
  return { group, stream, lines };
}

/**
 * The phase messages and log lines of a failed build, as one text for explain. CodeBuild writes each phase
 * message to the log as well: one seen there is not repeated.
 */
export function buildFailureText(build: Build, log: BuildFacts['log']): string {
  const logLines = log?.lines.state === 'found' ? log.lines.value : [];
  const lines: string[] = [];
  for (const phase of build.phases ?? []) {
    if (!failedPhaseStatuses.has(phase.phaseStatus ?? '')) continue;
    for (const context of phase.contexts ?? []) {
      if (!context.message && !context.statusCode) continue;
      const first = (context.message ?? '').split('\n')[0] ?? '';
      const logged = logLines.some(
        (line) => line.includes('Phase context status code') && line.includes(first),
      );
      if (!logged) {
        lines.push(
          `Phase context status code: ${context.statusCode ?? ''} Message: ${context.message ?? ''}`,
        );
      }
    }
  }
  return [...lines, ...logLines].join('\n');
}

/** Reads the buildspec named on the command line (`--buildspec FILE`): it must be there. */
export async function readBuildspecFile(path: string): Promise<string> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new Error('not a file');
    if (info.size > sourceFileLimit) throw new Error(`larger than ${sourceFileLimit} bytes`);
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new PullsafeError(
      'CONFIG_UNREADABLE',
      `cannot read buildspec ${path}: ${(error as Error).message}`,
      {
        hint: 'give the buildspec file the project runs (--buildspec FILE)',
      },
    );
  }
}

/** The source folder must be a folder: doctor reads Dockerfiles and compose files from it. */
export async function checkSourceDir(dir: string): Promise<void> {
  const folder = await stat(dir).then(
    (info) => info.isDirectory(),
    () => false,
  );
  if (!folder) {
    throw new PullsafeError('CONFIG_UNREADABLE', `--source ${dir} is not a folder`, {
      hint: "give the build's source checkout (the folder its buildspec runs in)",
    });
  }
}

/**
 * Files of the source, by path relative to its root; `undefined` for a file that is not there (or not a
 * file, or too large). A path that leads outside the root is never read.
 */
export async function readSourceFiles(
  dir: string,
  paths: readonly string[],
): Promise<Map<string, string | undefined>> {
  const root = resolve(dir);
  const files = new Map<string, string | undefined>();
  await Promise.all(
    paths.map(async (path) => {
      const full = resolve(root, path);
      const inside = relative(root, full);
      if (inside.startsWith('..') || isAbsolute(inside)) {
        files.set(path, undefined);
        return;
      }
      try {
        const info = await stat(full);
        files.set(
          path,
          info.isFile() && info.size <= sourceFileLimit ? await readFile(full, 'utf8') : undefined,
        );
      } catch {
        files.set(path, undefined);
      }
    }),
  );
  return files;
}

/**
 * The secrets and parameters a build reads: metadata (ARN with its random suffix, KMS key), the keys of a
 * secret read by JSON key (the value is judged and dropped), and the secret's resource policy. One lookup
 * per secret, however many variables read it.
 */
export async function collectBuildSecrets(
  c: Collector,
  refs: readonly BuildSecretRef[],
  region: string,
  accountId: string | undefined,
): Promise<SecretFacts[]> {
  const described = new Map<string, Promise<SecretFacts['metadata']>>();
  const policies = new Map<string, Promise<Lookup<PolicyDocument>>>();
  const keys = new Map<string, Promise<Lookup<string[] | null>>>();
  const once = <T>(cache: Map<string, Promise<T>>, key: string, run: () => Promise<T>): Promise<T> => {
    let value = cache.get(key);
    if (value === undefined) {
      value = run();
      cache.set(key, value);
    }
    return value;
  };
  return Promise.all(
    refs.map(async (ref): Promise<SecretFacts> => {
      const base = {
        container: `${ref.declaredIn} ${ref.variable}`,
        use: 'build-env' as const,
        reference: ref.reference,
      };
      if (ref.service === 'ssm') {
        const where = parseSecretReference(ref.id, 'secret', region, accountId);
        const metadata = await once(described, `ssm ${ref.id}`, () =>
          describeParameter(c, where.id, where.region, where.arn),
        );
        return {
          ...base,
          service: 'ssm',
          region: where.region,
          ...(where.arn ? { arn: where.arn } : {}),
          metadata,
        };
      }
      const secretRegion = arnRegion(ref.id) ?? region;
      const metadata = await once(described, `sm ${secretRegion} ${ref.id}`, () =>
        describeSecret(c, ref.id, secretRegion),
      );
      const facts: SecretFacts = {
        ...base,
        service: 'secretsmanager',
        region: secretRegion,
        ...(ref.id.startsWith('arn:') ? { arn: ref.id } : {}),
        ...(ref.jsonKey ? { jsonKey: ref.jsonKey } : {}),
        metadata,
      };
      if (metadata.state !== 'found') return facts;
      const arn = metadata.value.arn;
      facts.resourcePolicy = await once(policies, arn, () => resourcePolicy(c, arn, secretRegion));
      if (ref.jsonKey) {
        const version = {
          ...(ref.versionStage ? { VersionStage: ref.versionStage } : {}),
          ...(ref.versionId ? { VersionId: ref.versionId } : {}),
        };
        facts.keys = await once(keys, `${arn} ${JSON.stringify(version)}`, () =>
          c.lookup<string[] | null>(
            'secretsmanager',
            'GetSecretValue',
            async () => keysOf(await secretString(c, { SecretId: arn, ...version }, secretRegion)),
            ['ResourceNotFoundException'],
          ),
        );
      }
      return facts;
    }),
  );
}

/** The keys of a JSON object value, `null` for anything else: the value itself is dropped here. */
function keysOf(value: string | undefined): string[] | null {
  if (value === undefined) return null;
  try {
    const parsed = JSON.parse(value) as unknown;
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      ? Object.keys(parsed)
      : null;
  } catch {
    return null;
  }
}

async function resourcePolicy(c: Collector, arn: string, region: string): Promise<Lookup<PolicyDocument>> {
  return c.lookup<PolicyDocument>(
    'secretsmanager',
    'GetResourcePolicy',
    async () => {
      const answer = await c.caller.call('secretsmanager', 'GetResourcePolicy', { SecretId: arn }, region);
      return answer.ResourcePolicy ? parsePolicyDocument(answer.ResourcePolicy) : undefined;
    },
    [],
    'the secret has no resource policy',
  );
}

/** A CodeBuild project and its builds (phases, log events) in a fake account, and the shipped CodeBuild example's. */
import type { Build, Project } from '@aws-sdk/client-codebuild';
import { ACCOUNT, REGION, logStreamKey, type FakeAccount, type FakeLogEvent } from './account.ts';
import { healthyAccount } from './healthy.ts';

export const PROJECT = 'app';
export const CODEBUILD_ROLE = 'codebuild-app-service-role';
export const CODEBUILD_ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/service-role/${CODEBUILD_ROLE}`;
export const CODEBUILD_LOG_GROUP = `/aws/codebuild/${PROJECT}`;

/**
 * CodeBuild project `app` as the console creates it: CodePipeline source, a curated image, CloudWatch Logs
 * on, and a service role with the console's base policy (its log group, the pipeline's artifact bucket).
 */
export function withCodeBuildProject(account: FakeAccount, overrides: Partial<Project> = {}): Project {
  const base = `CodeBuildBasePolicy-${PROJECT}-${REGION}`;
  account.roles[CODEBUILD_ROLE] = {
    arn: CODEBUILD_ROLE_ARN,
    attached: [],
    inline: {
      [base]: {
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Resource: [
              `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${CODEBUILD_LOG_GROUP}`,
              `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${CODEBUILD_LOG_GROUP}:*`,
            ],
            Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'],
          },
          {
            Effect: 'Allow',
            Resource: ['arn:aws:s3:::codepipeline-us-east-1-*'],
            Action: [
              's3:PutObject',
              's3:GetObject',
              's3:GetObjectVersion',
              's3:GetBucketAcl',
              's3:GetBucketLocation',
            ],
          },
        ],
      },
    },
  };
  account.logGroups.push({ name: CODEBUILD_LOG_GROUP, region: REGION });
  const project: Project = {
    name: PROJECT,
    arn: `arn:aws:codebuild:${REGION}:${ACCOUNT}:project/${PROJECT}`,
    serviceRole: CODEBUILD_ROLE_ARN,
    source: {
      type: 'CODEPIPELINE',
      buildspec: 'version: 0.2\nphases:\n  build:\n    commands:\n      - make\n',
    },
    artifacts: { type: 'CODEPIPELINE', name: PROJECT, packaging: 'NONE', encryptionDisabled: false },
    environment: {
      type: 'LINUX_CONTAINER',
      image: 'aws/codebuild/standard:7.0',
      computeType: 'BUILD_GENERAL1_SMALL',
      environmentVariables: [],
      privilegedMode: true,
      imagePullCredentialsType: 'CODEBUILD',
    },
    timeoutInMinutes: 60,
    queuedTimeoutInMinutes: 480,
    encryptionKey: `arn:aws:kms:${REGION}:${ACCOUNT}:alias/aws/s3`,
    created: new Date('2026-09-01T08:00:00Z'),
    lastModified: new Date('2026-11-20T08:00:00Z'),
    logsConfig: {
      cloudWatchLogs: { status: 'ENABLED' },
      s3Logs: { status: 'DISABLED', encryptionDisabled: false },
    },
    ...overrides,
  };
  account.projects.push(project);
  return project;
}

const buildPhases = [
  'SUBMITTED',
  'QUEUED',
  'PROVISIONING',
  'DOWNLOAD_SOURCE',
  'INSTALL',
  'PRE_BUILD',
  'BUILD',
  'POST_BUILD',
  'UPLOAD_ARTIFACTS',
  'FINALIZING',
  'COMPLETED',
] as const;

export interface FakeBuildOptions {
  number: number;
  /** The build's uuid (its id is `app:<uuid>`, its log stream the uuid). */
  uuid: string;
  startedAt: string;
  /** The phase that failed, with the context CodeBuild wrote; absent for a build that succeeded. */
  failed?: { phase: (typeof buildPhases)[number]; statusCode: string; message: string };
  /** Log lines by phase (what the build wrote while in it), without CodeBuild's `[Container]` framing. */
  log?: Partial<Record<(typeof buildPhases)[number], string[]>>;
}

/**
 * A build of `project` as BatchGetBuilds answers it: every phase with its times (ten seconds each), the
 * failed one with its context and the later ones skipped as CodeBuild does (POST_BUILD, UPLOAD_ARTIFACTS
 * and FINALIZING still run), and its CloudWatch log lines timed inside their phases.
 */
export function addBuild(account: FakeAccount, project: Project, options: FakeBuildOptions): Build {
  const start = new Date(options.startedAt).getTime();
  const id = `${project.name}:${options.uuid}`;
  const { phases, events } = phasesOf(start, options);
  account.logEvents[logStreamKey(CODEBUILD_LOG_GROUP, options.uuid)] = events.sort(
    (a, b) => a.timestamp - b.timestamp,
  );
  const build: Build = {
    id,
    arn: `arn:aws:codebuild:${REGION}:${ACCOUNT}:build/${id}`,
    buildNumber: options.number,
    startTime: new Date(start),
    endTime: new Date(start + buildPhases.length * 10_000),
    currentPhase: 'COMPLETED',
    buildStatus: options.failed ? 'FAILED' : 'SUCCEEDED',
    projectName: project.name,
    phases,
    source: project.source,
    environment: project.environment,
    serviceRole: project.serviceRole,
    logs: {
      groupName: CODEBUILD_LOG_GROUP,
      streamName: options.uuid,
      deepLink: `https://console.aws.amazon.com/cloudwatch/home?region=${REGION}#logsV2:log-groups/log-group/$252Faws$252Fcodebuild$252F${project.name}/log-events/${options.uuid}`,
      cloudWatchLogsArn: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${CODEBUILD_LOG_GROUP}:log-stream:${options.uuid}`,
      cloudWatchLogs: { status: 'ENABLED' },
      s3Logs: { status: 'DISABLED', encryptionDisabled: false },
    },
    timeoutInMinutes: 60,
    queuedTimeoutInMinutes: 480,
    buildComplete: true,
    initiator: `codepipeline/${project.name}-pipeline`,
    ...(project.vpcConfig ? { vpcConfig: project.vpcConfig } : {}),
    encryptionKey: project.encryptionKey,
  };
  account.builds.push(build);
  return build;
}

/** The build's phases, ten seconds each, and the log events written in them (CodeBuild's lines included). */
function phasesOf(
  start: number,
  options: FakeBuildOptions,
): { phases: Build['phases']; events: FakeLogEvent[] } {
  const failedAt = options.failed ? buildPhases.indexOf(options.failed.phase) : -1;
  const stamp = (ms: number) =>
    new Date(ms).toISOString().replace('T', ' ').replace('Z', '').replaceAll('-', '/');
  const events: FakeLogEvent[] = [];
  const phases = buildPhases.flatMap((phaseType, index) => {
    const skipped =
      failedAt >= 0 && index > failedAt && ['INSTALL', 'PRE_BUILD', 'BUILD'].includes(phaseType);
    if (skipped) return [];
    const from = start + index * 10_000;
    const to = from + 10_000;
    const failed = index === failedAt;
    const lines = options.log?.[phaseType] ?? [];
    lines.forEach((line, n) => {
      const at = from + 100 + n * 10;
      // CodeBuild's own lines carry the time they were written.
      const message = line.replace(/^\[Container\] \S+ \S+ /, `[Container] ${stamp(at)} `);
      events.push({ timestamp: at, message: `${message}\n` });
    });
    if (phaseType !== 'SUBMITTED' && phaseType !== 'COMPLETED') {
      events.push({
        timestamp: to - 5,
        message: `[Container] ${stamp(to - 5)} Phase complete: ${phaseType} State: ${failed ? 'FAILED' : 'SUCCEEDED'}\n`,
      });
      events.push({
        timestamp: to - 4,
        message: `[Container] ${stamp(to - 4)} Phase context status code: ${failed ? options.failed!.statusCode : ''} Message: ${failed ? options.failed!.message : ''}\n`,
      });
    }
    return [
      {
        phaseType,
        phaseStatus: failed ? 'FAILED' : 'SUCCEEDED',
        startTime: new Date(from),
        ...(phaseType === 'COMPLETED' ? {} : { endTime: new Date(to), durationInSeconds: 10 }),
        ...(phaseType === 'SUBMITTED' || phaseType === 'COMPLETED'
          ? {}
          : {
              contexts: [
                failed
                  ? { statusCode: options.failed!.statusCode, message: options.failed!.message }
                  : { statusCode: '', message: '' },
              ],
            }),
      },
    ];
  }) as Build['phases'];
  return { phases, events };
}

/** CodeBuild's framing of a command it runs, as its log shows it. */
export function running(command: string): string {
  return `[Container] 2026/11/28 10:00:00.000000 Running command ${command}`;
}

/**
 * The account behind the shipped CodeBuild example (`examples/doctor-codebuild-app.json`): project `app`
 * builds its image with `docker build` from a Dockerfile whose base image is `node:20` from Docker Hub. Its
 * buildspec logs in with `docker login -u AWS --password-stdin $ECR_REGISTRY` (ECR, where it pushes), never
 * to Docker Hub, and its last build failed on Docker Hub's rate limit; the build before it succeeded.
 */
export function exampleCodeBuildAccount(): FakeAccount {
  const account = healthyAccount();
  const buildspec = [
    'version: 0.2',
    'env:',
    '  variables:',
    '    IMAGE_REPO_NAME: app',
    'phases:',
    '  pre_build:',
    '    commands:',
    '      - ECR_REGISTRY=$AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com',
    '      - aws ecr get-login-password --region $AWS_DEFAULT_REGION | docker login -u AWS --password-stdin $ECR_REGISTRY',
    '  build:',
    '    commands:',
    '      - docker build -t $ECR_REGISTRY/$IMAGE_REPO_NAME:$CODEBUILD_RESOLVED_SOURCE_VERSION .',
    '  post_build:',
    '    commands:',
    '      - docker push $ECR_REGISTRY/$IMAGE_REPO_NAME:$CODEBUILD_RESOLVED_SOURCE_VERSION',
    '',
  ].join('\n');
  const project = withCodeBuildProject(account, {
    source: { type: 'CODEPIPELINE', buildspec },
  });
  project.environment!.environmentVariables = [{ name: 'AWS_ACCOUNT_ID', value: ACCOUNT, type: 'PLAINTEXT' }];
  const build = 'docker build -t $ECR_REGISTRY/$IMAGE_REPO_NAME:$CODEBUILD_RESOLVED_SOURCE_VERSION .';
  const tooMany = `failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/node/manifests/sha256:${'c3'.repeat(32)}: 429 Too Many Requests - Server message: toomanyrequests: You have reached your unauthenticated pull rate limit. https://www.docker.com/increase-rate-limit`;
  addBuild(account, project, {
    number: 41,
    uuid: '0b9e4c1d-7a52-4f0e-9c3b-5d8e2f1a6b70',
    startedAt: '2026-11-28T09:00:00Z',
  });
  addBuild(account, project, {
    number: 42,
    uuid: '7f3c2a91-4d6e-4b8a-a1c5-2e9d0b7f4c36',
    startedAt: '2026-11-28T10:00:00Z',
    failed: {
      phase: 'BUILD',
      statusCode: 'COMMAND_EXECUTION_ERROR',
      message: `Error while executing command: ${build}. Reason: exit status 1`,
    },
    log: {
      PRE_BUILD: [
        running('ECR_REGISTRY=$AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com'),
        running(
          'aws ecr get-login-password --region $AWS_DEFAULT_REGION | docker login -u AWS --password-stdin $ECR_REGISTRY',
        ),
        'Login Succeeded',
      ],
      BUILD: [
        running(build),
        '#0 building with "default" instance using docker driver',
        '#1 [internal] load build definition from Dockerfile',
        '#1 transferring dockerfile: 212B done',
        '#2 [internal] load metadata for docker.io/library/node:20',
        `#2 ERROR: ${tooMany}`,
        '------',
        ' > [internal] load metadata for docker.io/library/node:20:',
        '------',
        'Dockerfile:1',
        '--------------------',
        '   1 | >>> FROM node:20',
        '   2 |     WORKDIR /app',
        '   3 |     COPY package*.json ./',
        '--------------------',
        `ERROR: failed to solve: node:20: failed to resolve source metadata for docker.io/library/node:20: ${tooMany}`,
        `[Container] 2026/11/28 10:01:04.512873 Command did not exit successfully ${build} exit status 1`,
      ],
    },
  });
  return account;
}

/**
 * `doctor --codebuild-project` against recorded CodeBuild accounts, through the real AWS SDK v3 clients
 * (aws-sdk-client-mock answers from the fake account): the last failed build's phases and log, what the
 * buildspec pulls and logs in to, the secrets it reads, the VPC path to every host it reaches. Each
 * scenario names the findings doctor must report (errors and warnings), no more, and replays from its own
 * snapshot to the same report.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Project } from '@aws-sdk/client-codebuild';
import { sdkCaller, withRetries } from '../src/doctor/aws.ts';
import { recordingCaller, replayCaller, type Snapshot } from '../src/doctor/snapshot.ts';
import type { DoctorTarget } from '../src/doctor/collect.ts';
import { runDoctor, type DoctorReport } from '../src/doctor/doctor.ts';
import { renderMarkdown, renderText } from '../src/doctor/report.ts';
import { runCli, runCliInProcess } from './helpers/cli.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';
import {
  ACCOUNT,
  CODEBUILD_ROLE,
  REGION,
  S3_PREFIX_LIST,
  addBuild,
  exampleCodeBuildAccount,
  healthyAccount,
  installSdkMocks,
  running,
  withCodeBuildProject,
  type FakeAccount,
} from './helpers/fake-aws.ts';

let account: FakeAccount = healthyAccount();
let sent: string[] = [];
let restore: () => void = () => {};
let dir: string;

before(async () => {
  ({ sent, restore } = await installSdkMocks(() => account));
  dir = await makeTempDir('pullsafe-doctor-codebuild-');
});

after(async () => {
  restore();
  await removeTempDir(dir);
});

const project: DoctorTarget = { codebuildProject: 'app' };
const reports: DoctorReport[] = [];

/** Runs doctor through the SDK clients, recording; replays the snapshot; both must give the same report. */
async function diagnose(
  fake: FakeAccount,
  target: DoctorTarget = project,
): Promise<DoctorReport & { snapshot: Snapshot }> {
  account = fake;
  const recorder = recordingCaller(
    withRetries(sdkCaller({ region: REGION }), { sleep: async () => {} }),
    REGION,
  );
  const live = await runDoctor(recorder, target, REGION);
  const snapshot = JSON.parse(JSON.stringify(recorder.snapshot())) as Snapshot;
  const replayed = await runDoctor(replayCaller(snapshot), target, REGION);
  assert.deepEqual(replayed, live, 'the snapshot must replay to the same report');
  reports.push(live);
  return { ...live, snapshot };
}

function problems(report: DoctorReport): string[] {
  return [
    ...new Set(
      report.findings.filter((f) => f.severity === 'error' || f.severity === 'warning').map((f) => f.id),
    ),
  ].sort();
}

function finding(report: DoctorReport, id: string, index = 0) {
  const found = report.findings.filter((f) => f.id === id)[index];
  assert.ok(found, `expected finding ${id}; got ${report.findings.map((f) => f.id).join(', ') || 'none'}`);
  return found;
}

function textOf(report: DoctorReport, id: string): string {
  const f = finding(report, id);
  return [
    f.title,
    f.detail,
    ...f.evidence.map((e) => `${e.label}: ${e.value}`),
    ...f.fixes.map((x) => `${x.summary} ${x.content ?? ''}`),
  ].join('\n');
}

const SECRET_ARN = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:dockerhub/creds-Qw3rTy`;
const PULL_SECRET_ARN = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:dockerhub/pull-AbC123`;

function buildspec(...lines: string[]): string {
  return ['version: 0.2', ...lines, ''].join('\n');
}

/** The role may read `arn`: the statement teams add by hand. */
function allowSecret(fake: FakeAccount, arn: string): void {
  fake.roles[CODEBUILD_ROLE]!.inline['read-dockerhub'] = {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: arn }],
  };
}

/** The project's subnet loses its NAT route; the VPC keeps an S3 gateway endpoint, as most have. */
function privateSubnetWithoutEgress(fake: FakeAccount): void {
  const table = fake.routeTables.find((t) => t.RouteTableId === 'rtb-0priv')!;
  table.Routes = [
    ...(table.Routes ?? []).filter((route) => route.DestinationCidrBlock !== '0.0.0.0/0'),
    {
      DestinationPrefixListId: S3_PREFIX_LIST,
      GatewayId: 'vpce-0s3',
      State: 'active',
      Origin: 'CreateRoute',
    },
  ];
  fake.vpcEndpoints = [
    {
      VpcEndpointId: 'vpce-0s3',
      VpcEndpointType: 'Gateway',
      VpcId: 'vpc-0main',
      ServiceName: `com.amazonaws.${REGION}.s3`,
      State: 'available' as never,
      RouteTableIds: ['rtb-0priv'],
      PolicyDocument: JSON.stringify({
        Statement: [{ Effect: 'Allow', Principal: '*', Action: '*', Resource: '*' }],
      }),
    },
  ];
}

const inVpc: Partial<Project> = {
  vpcConfig: { vpcId: 'vpc-0main', subnets: ['subnet-0a1'], securityGroupIds: ['sg-0task'] },
};

/** A buildspec that logs in to Docker Hub and to ECR before it builds: what AWS documents. */
const documentedBuildspec = buildspec(
  'env:',
  '  secrets-manager:',
  '    DOCKERHUB_USER: dockerhub/pull:username',
  '    DOCKERHUB_TOKEN: dockerhub/pull:password',
  'phases:',
  '  pre_build:',
  '    commands:',
  '      - echo "$DOCKERHUB_TOKEN" | docker login --username "$DOCKERHUB_USER" --password-stdin',
  '      - aws ecr get-login-password --region $AWS_DEFAULT_REGION | docker login --username AWS --password-stdin $ECR_REGISTRY',
  '  build:',
  '    commands:',
  '      - docker build -t $ECR_REGISTRY/app:latest .',
  '      - docker push $ECR_REGISTRY/app:latest',
);

function healthyProject(): FakeAccount {
  const fake = healthyAccount();
  const p = withCodeBuildProject(fake, {
    ...inVpc,
    source: { type: 'CODEPIPELINE', buildspec: documentedBuildspec },
  });
  p.environment!.environmentVariables = [
    { name: 'ECR_REGISTRY', value: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com`, type: 'PLAINTEXT' },
  ];
  fake.secrets.push({
    arn: PULL_SECRET_ARN,
    name: 'dockerhub/pull',
    region: REGION,
    value: '{"username":"acme-ci","password":"dckr_pat_0123456789"}',
  });
  allowSecret(fake, PULL_SECRET_ARN);
  return fake;
}

describe('doctor --codebuild-project: recorded accounts', () => {
  test('a healthy project (VPC behind a NAT, Docker Hub login first, builds succeed): no finding', async () => {
    const fake = healthyProject();
    const p = fake.projects[0]!;
    addBuild(fake, p, {
      number: 7,
      uuid: '11111111-2222-4333-8444-555555555555',
      startedAt: '2026-11-27T10:00:00Z',
      failed: {
        phase: 'BUILD',
        statusCode: 'COMMAND_EXECUTION_ERROR',
        message: 'Error while executing command: make. Reason: exit status 2',
      },
    });
    addBuild(fake, p, {
      number: 8,
      uuid: '66666666-7777-4888-9999-000000000000',
      startedAt: '2026-11-28T10:00:00Z',
    });
    sent.length = 0;
    const report = await diagnose(fake);
    assert.deepEqual(report.findings, []);
    assert.equal(report.problems, false);
    assert.equal(
      report.subject.build,
      undefined,
      'a build succeeded since the failure: no build is diagnosed',
    );
    assert.match(renderText(report), /every check passed/);
    assert.ok(sent.includes('codebuild:ListBuildsForProject') && sent.includes('codebuild:BatchGetBuilds'));
    assert.ok(!sent.includes('logs:GetLogEvents'), 'no failed build, no log read');
  });

  test('a rate-limited build: toomanyrequests on the FROM line, the login goes to ECR', async () => {
    sent.length = 0;
    const report = await diagnose(exampleCodeBuildAccount());
    assert.deepEqual(problems(report), [
      'codebuild-anonymous-docker-hub',
      'docker-hub-rate-limit',
      'stop-reason',
    ]);
    const said = finding(report, 'stop-reason');
    assert.equal(said.cause, 'rate-limit');
    assert.match(said.detail, /failed in phase BUILD \(COMMAND_EXECUTION_ERROR\)/);
    assert.match(textOf(report, 'stop-reason'), /image: docker\.io\/library\/node:20/);
    assert.equal(report.findings[0]?.id, 'stop-reason');
    for (const id of ['codebuild-anonymous-docker-hub', 'docker-hub-rate-limit']) {
      assert.equal(finding(report, id).matchesStopReason, true, `${id} explains the build's failure`);
    }
    // The ECR login is read as one, not as a login to Docker Hub.
    const anonymous = textOf(report, 'codebuild-anonymous-docker-hub');
    assert.match(
      anonymous,
      /docker login \(pre_build command 2\): \$ECR_REGISTRY: not Docker Hub: .*111122223333\.dkr\.ecr\.us-east-1\.amazonaws\.com/,
    );
    const fixes = finding(report, 'codebuild-anonymous-docker-hub').fixes;
    assert.equal(fixes[0]?.kind, 'buildspec');
    assert.match(
      fixes[0]?.content ?? '',
      /secrets-manager:\n\s+DOCKERHUB_USER: dockerhub\/pull:username[\s\S]*pre_build:\n\s+commands:\n\s+- echo "\$DOCKERHUB_TOKEN" \| docker login --username "\$DOCKERHUB_USER" --password-stdin/,
    );
    assert.ok(
      fixes.some((fix) => fix.kind === 'iam-policy' && fix.content?.includes(':secret:dockerhub/pull-*')),
    );
    const rewrites = finding(report, 'docker-hub-rate-limit').fixes.filter(
      (fix) => fix.kind === 'dockerfile',
    );
    assert.deepEqual(
      rewrites.map((fix) => fix.content),
      [
        'FROM public.ecr.aws/docker/library/node:20',
        'FROM 111122223333.dkr.ecr.us-east-1.amazonaws.com/docker-hub/library/node:20',
        'FROM 111122223333.dkr.ecr.us-east-1.amazonaws.com/mirror/library/node:20',
        'FROM CACHE:5000/docker.io/library/node:20',
      ],
    );
    // The log is read from the failed phase only, and both reads are in the snapshot.
    const reads = report.snapshot.calls.filter((call) => call.operation === 'GetLogEvents');
    assert.ok(reads.length >= 1);
    const window = reads[0]?.input as { startTime: number; endTime: number };
    assert.equal(window.startTime, new Date('2026-11-28T10:01:00Z').getTime(), 'from the start of BUILD');
    assert.ok(!JSON.stringify(report.snapshot).includes('Login Succeeded'), 'PRE_BUILD lines are not read');
  });

  test('an unreadable secret behind a policy on another secret: AccessDeniedException from Secrets Manager', async () => {
    const fake = healthyAccount();
    const p = withCodeBuildProject(fake, {
      source: {
        type: 'CODEPIPELINE',
        buildspec: buildspec(
          'env:',
          '  secrets-manager:',
          '    DOCKERHUB_USER: dockerhub/creds:username',
          '    DOCKERHUB_TOKEN: dockerhub/creds:password',
          'phases:',
          '  pre_build:',
          '    commands:',
          '      - echo "$DOCKERHUB_TOKEN" | docker login --username "$DOCKERHUB_USER" --password-stdin',
          '  build:',
          '    commands:',
          '      - docker build -t app .',
        ),
      },
    });
    fake.secrets.push({
      arn: SECRET_ARN,
      name: 'dockerhub/creds',
      region: REGION,
      value: '{"username":"acme-ci","password":"dckr_pat_0123456789"}',
    });
    // The statement someone wrote for the secret of another pipeline.
    allowSecret(fake, `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:dockerhub/pull-*`);
    const denied =
      `AccessDeniedException: User: arn:aws:sts::${ACCOUNT}:assumed-role/${CODEBUILD_ROLE}/AWSCodeBuild-e82e201d-c4cb-4d57-b2a4-1f9715d97d1b ` +
      `is not authorized to perform: secretsmanager:GetSecretValue on resource: ${SECRET_ARN} because no identity-based policy allows the secretsmanager:GetSecretValue action\n` +
      '\tstatus code: 400, request id: 365dce27-74fb-444b-87ba-a88b8f438cee';
    addBuild(fake, p, {
      number: 12,
      uuid: '2b7d9e10-3c4f-4a5b-8c6d-7e8f9a0b1c2d',
      startedAt: '2026-11-28T10:00:00Z',
      failed: { phase: 'DOWNLOAD_SOURCE', statusCode: 'Secrets Manager Error', message: denied },
      log: {
        DOWNLOAD_SOURCE: [
          '[Container] 2026/11/28 10:00:30.100000 Waiting for DOWNLOAD_SOURCE',
          '[Container] 2026/11/28 10:00:30.200000 Phase is DOWNLOAD_SOURCE',
          '[Container] 2026/11/28 10:00:30.300000 Processing environment variables',
          '[Container] 2026/11/28 10:00:30.400000 Decrypting secrets manager environment variables',
        ],
      },
    });
    const report = await diagnose(fake);
    assert.deepEqual(problems(report), ['role-no-secret-access', 'stop-reason']);
    const said = finding(report, 'stop-reason');
    assert.equal(said.cause, 'secrets-access');
    assert.match(said.title, /^CodeBuild service role codebuild-app-service-role may not read/);
    assert.match(said.detail, /failed in phase DOWNLOAD_SOURCE \(Secrets Manager Error\)/);
    const access = finding(report, 'role-no-secret-access');
    assert.equal(access.matchesStopReason, true);
    assert.equal(access.title, "codebuild-app-service-role may not read the build's secrets");
    const text = textOf(report, 'role-no-secret-access');
    assert.match(
      text,
      /secretsmanager:GetSecretValue is allowed only on: arn:aws:secretsmanager:us-east-1:111122223333:secret:dockerhub\/pull-\*/,
    );
    assert.match(
      text,
      /needed for secret dockerhub\/creds:username of buildspec env\.secrets-manager DOCKERHUB_USER/,
    );
    const statement = JSON.parse(access.fixes.find((fix) => fix.kind === 'iam-policy')?.content ?? '{}');
    assert.deepEqual(statement.Statement, [
      {
        Sid: 'AllowSecretAccess',
        Effect: 'Allow',
        Action: ['secretsmanager:GetSecretValue'],
        Resource: SECRET_ARN,
      },
    ]);
    // The secret's keys were checked without its value reaching the snapshot.
    assert.ok(!JSON.stringify(report.snapshot).includes('dckr_pat_0123456789'));
    assert.ok(!report.findings.some((f) => f.id === 'secret-key-missing'));
  });

  test('a private subnet without egress: the missing route is the hop at fault, not a logs endpoint', async () => {
    const fake = healthyAccount();
    privateSubnetWithoutEgress(fake);
    const p = withCodeBuildProject(fake, {
      ...inVpc,
      source: {
        type: 'CODEPIPELINE',
        buildspec: buildspec('phases:', '  build:', '    commands:', '      - docker build -t app .'),
      },
    });
    addBuild(fake, p, {
      number: 3,
      uuid: '5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d',
      startedAt: '2026-11-28T10:00:00Z',
      failed: {
        phase: 'BUILD',
        statusCode: 'COMMAND_EXECUTION_ERROR',
        message: 'Error while executing command: docker build -t app .. Reason: exit status 1',
      },
      log: {
        BUILD: [
          running('docker build -t app .'),
          'Sending build context to Docker daemon  4.096kB',
          'Step 1/6 : FROM node:20',
          'Get "https://registry-1.docker.io/v2/": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)',
        ],
      },
    });
    const report = await diagnose(fake);
    assert.deepEqual(problems(report), [
      'codebuild-anonymous-docker-hub',
      'docker-hub-rate-limit',
      'internet-registry-unreachable',
      'no-route-out',
      'stop-reason',
    ]);
    assert.equal(finding(report, 'stop-reason').cause, 'network-no-route');
    assert.match(finding(report, 'stop-reason').title, /from the build to registry-1\.docker\.io/);
    const unreachable = finding(report, 'internet-registry-unreachable');
    assert.equal(unreachable.matchesStopReason, true);
    assert.match(
      unreachable.title,
      /registry-1\.docker\.io is on the internet, and the build has no route there/,
    );
    assert.match(textOf(report, 'internet-registry-unreachable'), /route table rtb-0priv: no default route/);
    assert.ok(!report.findings.some((f) => f.id === 'endpoint-missing'), 'no "add an endpoint" diagnosis');
    for (const f of report.findings.filter((x) => x.cause === 'network-no-route' && x.id !== 'stop-reason')) {
      assert.match(
        f.fixes[0]?.content ?? '',
        /create-nat-gateway[\s\S]*create-route --region us-east-1 --route-table-id rtb-0priv --destination-cidr-block 0\.0\.0\.0\/0/,
        `${f.id}: the NAT route first`,
      );
    }
    assert.match(finding(report, 'no-route-out').title, /No route from the build to logs/);
  });

  test('docker login -u AWS --password-stdin $ECR_REGISTRY is not a Docker Hub login', async () => {
    const fake = healthyAccount();
    withCodeBuildProject(fake, {
      source: {
        type: 'CODEPIPELINE',
        buildspec: buildspec(
          'phases:',
          '  pre_build:',
          '    commands:',
          '      - aws ecr get-login-password --region $AWS_DEFAULT_REGION | docker login -u AWS --password-stdin $ECR_REGISTRY',
          '  build:',
          '    commands:',
          '      - docker pull node:20',
          '      - docker run --rm -v "$PWD":/src -w /src node:20 npm test',
        ),
      },
    });
    const report = await diagnose(fake);
    assert.deepEqual(problems(report), ['codebuild-anonymous-docker-hub', 'docker-hub-rate-limit']);
    const text = textOf(report, 'codebuild-anonymous-docker-hub');
    assert.match(text, /without logging in to Docker Hub/);
    assert.match(text, /docker pull: node:20 \(build command 1\)/);
    assert.match(
      text,
      /docker login \(pre_build command 1\): \$ECR_REGISTRY: not Docker Hub: the password comes from aws ecr get-login-password; \$ECR_REGISTRY is not set/,
    );
    const rewrite = finding(report, 'docker-hub-rate-limit').fixes.find((fix) => fix.kind === 'reference');
    assert.equal(rewrite?.content, 'public.ecr.aws/docker/library/node:20');
    assert.match(rewrite?.summary ?? '', /in build command 1 \(docker pull\)/);
  });

  test('the Docker Hub login after the first pull does not count', async () => {
    const fake = healthyProject();
    fake.projects[0]!.source!.buildspec = buildspec(
      'env:',
      '  secrets-manager:',
      '    DOCKERHUB_USER: dockerhub/pull:username',
      '    DOCKERHUB_TOKEN: dockerhub/pull:password',
      'phases:',
      '  install:',
      '    commands:',
      '      - docker pull postgres:16',
      '  pre_build:',
      '    commands:',
      '      - echo "$DOCKERHUB_TOKEN" | docker login --username "$DOCKERHUB_USER" --password-stdin',
      '      - docker pull redis:7',
    );
    const report = await diagnose(fake);
    assert.deepEqual(problems(report), ['codebuild-anonymous-docker-hub', 'docker-hub-rate-limit']);
    const f = finding(report, 'codebuild-anonymous-docker-hub');
    assert.match(
      f.title,
      /login comes after it pulls docker\.io\/library\/postgres:16|login comes after it pulls postgres:16/,
    );
    assert.match(
      f.fixes[0]?.summary ?? '',
      /move the Docker Hub login of pre_build command 1 before install command 1/,
    );
    assert.match(f.fixes[1]?.content ?? '', /^ {2}install:/m, 'the login fragment goes in install');
    assert.equal(
      report.findings.filter((x) => x.id === 'docker-hub-rate-limit').length,
      1,
      'redis comes after the login',
    );
  });

  test('--source: FROM lines of a multi-stage Dockerfile and a compose file, fixed on their own lines', async () => {
    const source = join(dir, 'checkout');
    await mkdir(join(source, 'web'), { recursive: true });
    await writeFile(
      join(source, 'web', 'Dockerfile'),
      'ARG NODE=20\nFROM node:${NODE} AS build\nRUN npm ci\nFROM build AS test\nRUN npm test\nFROM --platform=linux/amd64 nginx:1.27-alpine\nCOPY --from=build /app/dist /usr/share/nginx/html\n',
    );
    await writeFile(
      join(source, 'docker-compose.yml'),
      'services:\n  db:\n    image: postgres:16\n  web:\n    build: ./web\n',
    );
    await writeFile(
      join(source, 'buildspec.yml'),
      buildspec(
        'phases:',
        '  build:',
        '    commands:',
        '      - docker build --build-arg NODE=22 -f web/Dockerfile web',
        '      - docker compose up -d',
      ),
    );
    const fake = healthyAccount();
    withCodeBuildProject(fake, { source: { type: 'CODEPIPELINE' } });
    const report = await diagnose(fake, { codebuildProject: 'app', sourceDir: source });
    const images = report.findings
      .filter((f) => f.id === 'docker-hub-rate-limit')
      .map((f) => f.evidence.find((e) => e.label === 'image')?.value);
    // docker build passes NODE=22; compose builds the same Dockerfile with the ARG's default.
    assert.deepEqual(images.sort(), ['nginx:1.27-alpine', 'node:20', 'node:22', 'postgres:16']);
    const node = report.findings.find(
      (f) => f.id === 'docker-hub-rate-limit' && f.evidence.some((e) => e.value === 'node:22'),
    );
    const rewrite = node?.fixes.find((fix) => fix.kind === 'dockerfile');
    assert.equal(
      rewrite?.summary,
      'Pull the official image from ECR Public instead (no Docker Hub quota): in web/Dockerfile line 2',
    );
    assert.equal(rewrite?.content, 'FROM public.ecr.aws/docker/library/node:22 AS build');
    const nginx = report.findings.find(
      (f) => f.id === 'docker-hub-rate-limit' && f.evidence.some((e) => e.value === 'nginx:1.27-alpine'),
    );
    assert.equal(
      nginx?.fixes.find((fix) => fix.kind === 'dockerfile')?.content,
      'FROM --platform=linux/amd64 public.ecr.aws/docker/library/nginx:1.27-alpine',
    );
    assert.match(
      textOf(report, 'codebuild-anonymous-docker-hub'),
      /docker compose: postgres:16 \(docker-compose\.yml service db\)/,
    );
    assert.match(textOf(report, 'codebuild-anonymous-docker-hub'), /buildspec: buildspec\.yml in --source/);
  });

  test('a buildspec kept in the source and not given: the log alone, and a note saying what to give', async () => {
    const fake = exampleCodeBuildAccount();
    fake.projects[0]!.source = { type: 'CODEPIPELINE', buildspec: 'ci/buildspec.yml' };
    const report = await diagnose(fake);
    assert.deepEqual(problems(report), ['docker-hub-rate-limit', 'stop-reason']);
    const note = finding(report, 'codebuild-buildspec-in-source');
    assert.equal(note.severity, 'info');
    assert.match(note.title, /ci\/buildspec\.yml/);
    assert.match(note.fixes[0]?.summary ?? '', /pullsafe doctor --codebuild-project app --source \./);
    const rateLimit = textOf(report, 'docker-hub-rate-limit');
    assert.match(rateLimit, /credentials: unknown: the buildspec was not read/);
    assert.match(
      rateLimit,
      /Log in to Docker Hub before the first pull/,
      'the login fixes stay with the image',
    );
  });

  test('a secret without the key the buildspec reads, and a resource policy that denies the role', async () => {
    const fake = healthyProject();
    fake.projects[0]!.source!.buildspec = documentedBuildspec.replace(
      'dockerhub/pull:password',
      'dockerhub/pull:token',
    );
    fake.secrets[fake.secrets.length - 1]!.policy = {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'OnlyDeployRole',
          Effect: 'Deny',
          Principal: '*',
          Action: 'secretsmanager:GetSecretValue',
          Resource: '*',
          Condition: { StringNotEquals: { 'aws:PrincipalArn': `arn:aws:iam::${ACCOUNT}:role/deploy` } },
        },
      ],
    };
    const report = await diagnose(fake);
    assert.deepEqual(problems(report), ['secret-key-missing', 'secret-policy-denies']);
    assert.match(finding(report, 'secret-key-missing').title, /has no key token/);
    assert.match(textOf(report, 'secret-key-missing'), /keys: username, password/);
    assert.match(textOf(report, 'secret-policy-denies'), /denied by: .*OnlyDeployRole/);
  });

  test('--build-id reads that build; one of another project or none at all is a clear error', async () => {
    const fake = exampleCodeBuildAccount();
    const older = fake.builds.find((b) => b.buildNumber === 41)!;
    const report = await diagnose(fake, { codebuildProject: 'app', buildId: older.id! });
    assert.equal(report.subject.build, older.id);
    assert.ok(!report.findings.some((f) => f.id === 'stop-reason'), 'that build succeeded: nothing it said');
    await assert.rejects(
      runDoctor(
        withRetries(sdkCaller({ region: REGION })),
        { codebuildProject: 'app', buildId: 'app:nope' },
        REGION,
      ),
      /CodeBuild has no build app:nope/,
    );
    fake.builds.push({ ...older, id: 'other:1', projectName: 'other' });
    await assert.rejects(
      runDoctor(
        withRetries(sdkCaller({ region: REGION })),
        { codebuildProject: 'app', buildId: 'other:1' },
        REGION,
      ),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, 'USAGE');
        assert.match(error.message, /build other:1 belongs to project other, not app/);
        return true;
      },
    );
  });

  test('builds or the log that cannot be read are "not checked", and the configuration is still judged', async () => {
    const fake = exampleCodeBuildAccount();
    fake.denied.add('logs:GetLogEvents');
    const noLog = await diagnose(fake);
    assert.equal(finding(noLog, 'codebuild-log-unchecked').severity, 'unchecked');
    const denied = exampleCodeBuildAccount();
    denied.denied.add('codebuild:ListBuildsForProject');
    const noBuilds = await diagnose(denied);
    assert.equal(finding(noBuilds, 'codebuild-builds-unchecked').severity, 'unchecked');
    assert.doesNotMatch(renderText(noBuilds), /every check passed/);
    assert.ok(
      noBuilds.failures.some(
        (f) => f.operation === 'ListBuildsForProject' && f.code === 'AccessDeniedException',
      ),
    );
  });

  test('credentials in a build log never reach the snapshot; ARNs stay whole', async () => {
    const fake = exampleCodeBuildAccount();
    const stream = Object.keys(fake.logEvents).find((key) => key.includes('7f3c2a91'))!;
    const events = fake.logEvents[stream]!;
    const at = events.find(
      (event) => event.message.includes('Step') || event.message.includes('#2 ERROR'),
    )!.timestamp;
    events.push({
      timestamp: at + 1,
      message: `fetching https://ci-bot:hunter2-S3cr3t@git.example.com/acme/app.git with role ${SECRET_ARN}\n`,
    });
    events.sort((a, b) => a.timestamp - b.timestamp);
    const report = await diagnose(fake);
    const written = JSON.stringify(report.snapshot);
    assert.ok(!written.includes('hunter2-S3cr3t'), 'the password in a URL is removed');
    assert.ok(written.includes(SECRET_ARN), 'an ARN is kept as it is');
  });
});

describe('pullsafe doctor --codebuild-project (CLI)', () => {
  const env = {
    AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_REGION: REGION,
  };

  for (const [name, args, pattern] of [
    [
      '--source without a project',
      ['doctor', '--cluster', 'prod', '--service', 'web', '--source', '.'],
      /go with --codebuild-project/,
    ],
    [
      '--build-id without a project',
      ['doctor', '--task-definition', 'web:3', '--build-id', 'app:1'],
      /go with --codebuild-project/,
    ],
    [
      'a buildspec that is not there',
      ['doctor', '--codebuild-project', 'app', '--buildspec', '/nonexistent/buildspec.yml'],
      /cannot read buildspec \/nonexistent\/buildspec\.yml/,
    ],
    [
      'a source that is not a folder',
      ['doctor', '--codebuild-project', 'app', '--source', '/nonexistent/checkout'],
      /--source \/nonexistent\/checkout is not a folder/,
    ],
  ] as const) {
    test(`usage: ${name} is exit 2 with a message, before any AWS call`, async () => {
      const result = await runCli([...args], { env: { ...env, AWS_ENDPOINT_URL: 'http://127.0.0.1:9' } });
      assert.equal(result.code, 2, result.stdout + result.stderr);
      assert.match(result.stderr, pattern);
      assert.doesNotMatch(result.stderr, /at .*\.ts:\d+/, 'no stack trace');
    });
  }
});

describe('doctor texts for CodeBuild hold for every scenario above', () => {
  test('every `pullsafe <command> --flag` a finding names exists in the CLI', async () => {
    const named = new Map<string, Set<string>>();
    for (const report of reports) {
      for (const match of renderText(report).matchAll(
        /(?:^|[\s`'"(])pullsafe\s+([a-z][a-z-]*)([^`'"()\n]*)/g,
      )) {
        const flags = named.get(match[1] ?? '') ?? new Set<string>();
        for (const flag of (match[2] ?? '').matchAll(/(?:^|\s)(--[a-z][a-z-]*)/g)) flags.add(flag[1] ?? '');
        named.set(match[1] ?? '', flags);
      }
    }
    assert.ok(named.has('copy') && named.has('doctor'), [...named.keys()].join(', '));
    for (const [command, flags] of named) {
      const help = await runCliInProcess([command, '--help']);
      assert.equal(help.code, 0, `pullsafe ${command} is a command: ${help.stderr}`);
      for (const flag of flags) assert.ok(help.stdout.includes(flag), `pullsafe ${command} has ${flag}`);
    }
  });

  test('no sentence ends twice, and the words are the build’s', () => {
    assert.ok(reports.length >= 10, `scenarios ran first (${reports.length} reports)`);
    for (const report of reports) {
      const text = renderText(report) + renderMarkdown(report);
      assert.doesNotMatch(text, /What the task said|explains the stop reason/);
      for (const f of report.findings) {
        for (const line of [f.title, ...f.fixes.map((x) => x.summary)]) {
          assert.doesNotMatch(line, /[^.]\.\.(?!\.)/, `${f.id}: ${line}`);
          assert.doesNotMatch(line, /\btask\b/, `${f.id} speaks of a task: ${line}`);
        }
      }
    }
  });
});

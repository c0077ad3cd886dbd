/**
 * doctor against broken accounts. Each scenario starts from a healthy Fargate service (NAT gateway, ECR
 * image, a secret, awslogs), breaks one thing the way teams break it, and names the findings doctor must
 * report: exactly those (errors and warnings), no more. Every run is recorded to a snapshot and replayed
 * offline, and the replay must give the same report.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AwsCallError, withRetries, type AwsCaller } from '../src/doctor/aws.ts';
import { exitCodeFor, exitCodes } from '../src/cli/output.ts';
import type { PullsafeError, PullsafeErrorCode } from '../src/errors/index.ts';
import { recordingCaller, replayCaller } from '../src/doctor/snapshot.ts';
import type { DoctorTarget } from '../src/doctor/collect.ts';
import { runDoctor, type DoctorReport } from '../src/doctor/doctor.ts';
import { renderMarkdown, renderText } from '../src/doctor/report.ts';
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runCliInProcess } from './helpers/cli.ts';
import {
  ACCOUNT,
  CLUSTER,
  EXECUTION_ROLE,
  EXECUTION_ROLE_ARN,
  IMAGE_DIGEST,
  OTHER_ACCOUNT,
  REGION,
  REGISTRY_SECRET_ARN,
  S3_PREFIX_LIST,
  SECRET_ARN,
  TASK_ARN,
  TASK_EXECUTION_POLICY_ARN,
  awsError,
  fakeCaller,
  healthyAccount,
  indexManifest,
  singlePlatformImage,
  useEndpoints,
  webContainer,
  type FakeAccount,
} from './helpers/fake-aws.ts';

const service: DoctorTarget = { cluster: CLUSTER, service: 'web' };
const task: DoctorTarget = { cluster: CLUSTER, task: TASK_ARN };

/** Every report the scenarios produced, for the checks on wording that hold for all of them. */
const reports: DoctorReport[] = [];

async function diagnoseWithReplay(account: FakeAccount, target: DoctorTarget): Promise<DoctorReport> {
  const recorder = recordingCaller(withRetries(fakeCaller(account), { sleep: async () => {} }), REGION);
  const live = await runDoctor(recorder, target, REGION);
  const snapshot = JSON.parse(JSON.stringify(recorder.snapshot()));
  const replayed = await runDoctor(replayCaller(snapshot), target, REGION);
  assert.deepEqual(replayed, live, 'the snapshot must replay to the same report');
  reports.push(live);
  return live;
}

function problems(report: DoctorReport): string[] {
  return [
    ...new Set(
      report.findings.filter((f) => f.severity === 'error' || f.severity === 'warning').map((f) => f.id),
    ),
  ].sort();
}

function finding(report: DoctorReport, id: string) {
  const found = report.findings.find((f) => f.id === id);
  assert.ok(found, `expected finding ${id}; got ${report.findings.map((f) => f.id).join(', ') || 'none'}`);
  return found;
}

function evidenceText(report: DoctorReport, id: string): string {
  const f = finding(report, id);
  return [
    f.title,
    f.detail,
    ...f.evidence.map((e) => `${e.label}: ${e.value}`),
    ...f.fixes.map((x) => `${x.summary} ${x.content ?? ''}`),
  ].join('\n');
}

function stopTask(account: FakeAccount, reason: string): void {
  const t = account.tasks[0]!;
  t.lastStatus = 'STOPPED';
  t.desiredStatus = 'STOPPED';
  t.stopCode = 'TaskFailedToStart';
  t.stoppedAt = new Date('2026-11-28T10:05:00Z');
  t.stoppedReason = reason;
}

function privateRouteTable(account: FakeAccount) {
  const table = account.routeTables.find((t) => t.RouteTableId === 'rtb-0priv');
  assert.ok(table);
  return table;
}

/** The task's image becomes `shared/base:2.0` in another account's registry, with this repository policy. */
function useSharedBaseImage(account: FakeAccount, policy?: Record<string, unknown>): void {
  const image = `${OTHER_ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/shared/base:2.0`;
  account.taskDefinitions[0]!.containerDefinitions = [webContainer({ image })];
  account.tasks[0]!.containers = [{ name: 'web', image, imageDigest: IMAGE_DIGEST }];
  account.repositories.push({
    registryId: OTHER_ACCOUNT,
    region: REGION,
    name: 'shared/base',
    images: [
      {
        tags: ['2.0'],
        digest: IMAGE_DIGEST,
        manifest: indexManifest(['linux/amd64']),
        mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
      },
    ],
    ...(policy ? { policy } : {}),
  });
}

describe('doctor scenarios', () => {
  test('a healthy task behind a NAT gateway: no finding', async () => {
    const report = await diagnoseWithReplay(healthyAccount(), task);
    assert.deepEqual(report.findings, []);
    assert.equal(report.problems, false);
    assert.equal(report.launchType, 'FARGATE');
    assert.equal(report.accountId, ACCOUNT);
  });

  test('a healthy service on VPC endpoints only: no finding', async () => {
    const account = healthyAccount();
    useEndpoints(account);
    const report = await diagnoseWithReplay(account, service);
    assert.deepEqual(report.findings, []);
  });

  test('no NAT and no endpoints: no route out, for every service the task needs', async () => {
    const account = healthyAccount();
    const table = privateRouteTable(account);
    table.Routes = table.Routes!.filter((r) => r.DestinationCidrBlock !== '0.0.0.0/0');
    const report = await diagnoseWithReplay(account, service);
    assert.deepEqual(problems(report), ['no-route-out']);
    const text = evidenceText(report, 'no-route-out');
    assert.match(text, /rtb-0priv/);
    assert.match(text, /subnet-0a1/);
    assert.equal(finding(report, 'no-route-out').cause, 'network-no-route');
  });

  test('endpoints but no S3 gateway: layers fail after the manifest', async () => {
    const account = healthyAccount();
    useEndpoints(account);
    account.vpcEndpoints = account.vpcEndpoints.filter((e) => e.VpcEndpointType !== 'Gateway');
    const table = privateRouteTable(account);
    table.Routes = table.Routes!.filter((r) => !r.DestinationPrefixListId);
    const report = await diagnoseWithReplay(account, service);
    assert.deepEqual(problems(report), ['s3-gateway-missing']);
    const f = finding(report, 's3-gateway-missing');
    assert.equal(f.hop, 'layers');
    assert.equal(f.cause, 'network-s3-layers');
    assert.ok(
      f.fixes.some((x) =>
        /aws ec2 create-vpc-endpoint[\s\S]*--vpc-endpoint-type Gateway[\s\S]*rtb-0priv/.test(x.content ?? ''),
      ),
    );
  });

  test('S3 gateway present, but the task SG egress lacks the S3 prefix list', async () => {
    const account = healthyAccount();
    useEndpoints(account);
    const sg = account.securityGroups.find((g) => g.GroupId === 'sg-0task')!;
    sg.IpPermissionsEgress = sg.IpPermissionsEgress!.filter((p) => (p.PrefixListIds ?? []).length === 0);
    const report = await diagnoseWithReplay(account, service);
    assert.deepEqual(problems(report), ['sg-egress-no-s3-prefix-list']);
    const text = evidenceText(report, 'sg-egress-no-s3-prefix-list');
    assert.match(text, /sg-0task/);
    assert.match(text, new RegExp(`authorize-security-group-egress[\\s\\S]*${S3_PREFIX_LIST}`));
  });

  test('endpoint security group without 443 inbound', async () => {
    const account = healthyAccount();
    useEndpoints(account);
    const sg = account.securityGroups.find((g) => g.GroupId === 'sg-0vpce')!;
    sg.IpPermissions = [
      { IpProtocol: 'tcp', FromPort: 80, ToPort: 80, IpRanges: [{ CidrIp: '10.0.0.0/16' }] },
    ];
    const report = await diagnoseWithReplay(account, service);
    assert.deepEqual(problems(report), ['endpoint-sg-no-443']);
    assert.match(evidenceText(report, 'endpoint-sg-no-443'), /sg-0vpce/);
    assert.match(evidenceText(report, 'endpoint-sg-no-443'), /authorize-security-group-ingress/);
  });

  test('private DNS off on the ecr.dkr endpoint', async () => {
    const account = healthyAccount();
    useEndpoints(account);
    account.vpcEndpoints.find((e) => e.VpcEndpointId === 'vpce-0dkr')!.PrivateDnsEnabled = false;
    const report = await diagnoseWithReplay(account, service);
    assert.ok(problems(report).includes('endpoint-private-dns-off'), problems(report).join(', '));
    assert.match(evidenceText(report, 'endpoint-private-dns-off'), /vpce-0dkr[\s\S]*--private-dns-enabled/);
  });

  test('execution role without ecr:GetAuthorizationToken', async () => {
    const account = healthyAccount();
    const policy = 'arn:aws:iam::111122223333:policy/ecr-pull-only';
    account.managedPolicies[policy] = {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'Pull',
          Effect: 'Allow',
          Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'],
          Resource: '*',
        },
        {
          Sid: 'Logs',
          Effect: 'Allow',
          Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          Resource: '*',
        },
      ],
    };
    account.roles[EXECUTION_ROLE]!.attached = [policy];
    stopTask(
      account,
      'ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve ecr registry auth: service call has been retried 3 time(s): AccessDeniedException: User: arn:aws:sts::111122223333:assumed-role/ecsTaskExecutionRole/0f1e2d3c is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action',
    );
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(problems(report), ['role-no-ecr-auth-token', 'stop-reason']);
    const f = finding(report, 'role-no-ecr-auth-token');
    assert.equal(f.matchesStopReason, true, 'the finding explains the task’s own error');
    assert.equal(finding(report, 'stop-reason').cause, 'auth-ecr-token');
    const grant = JSON.parse(f.fixes.find((x) => x.kind === 'iam-policy')!.content!);
    assert.deepEqual(grant.Statement[0].Action, ['ecr:GetAuthorizationToken']);
    assert.equal(grant.Statement[0].Resource, '*');
    assert.match(evidenceText(report, 'role-no-ecr-auth-token'), new RegExp(EXECUTION_ROLE_ARN));
    assert.match(
      evidenceText(report, 'role-no-ecr-auth-token'),
      /put-role-policy --role-name ecsTaskExecutionRole/,
    );
  });

  test('cross-account image whose repository has no policy', async () => {
    const account = healthyAccount();
    useSharedBaseImage(account);
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(problems(report), ['repository-policy-missing']);
    const f = finding(report, 'repository-policy-missing');
    const statement = JSON.parse(f.fixes.find((x) => x.kind === 'repository-policy')!.content!);
    assert.deepEqual(statement.Principal, { AWS: EXECUTION_ROLE_ARN });
    assert.ok(statement.Action.includes('ecr:BatchGetImage'));
    assert.match(
      evidenceText(report, 'repository-policy-missing'),
      /--registry-id 444455556666 --repository-name shared\/base/,
    );
  });

  test('cross-account repository policy that trusts another principal', async () => {
    const account = healthyAccount();
    useSharedBaseImage(account, {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'OnlyCi',
          Effect: 'Allow',
          Principal: { AWS: 'arn:aws:iam::999988887777:root' },
          Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
        },
      ],
    });
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(problems(report), ['repository-policy-denies']);
  });

  test('the same repository shared with the right principal passes', async () => {
    const account = healthyAccount();
    useSharedBaseImage(account, {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'Prod',
          Effect: 'Allow',
          Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` },
          Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'],
        },
      ],
    });
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(problems(report), []);
  });

  test('registry credentials that are not {"username","password"} JSON', async () => {
    const account = healthyAccount();
    account.taskDefinitions[0]!.containerDefinitions = [
      webContainer({
        image: 'ghcr.io/acme/web:1.4.2',
        repositoryCredentials: { credentialsParameter: REGISTRY_SECRET_ARN },
      }),
    ];
    account.secrets.push({
      arn: REGISTRY_SECRET_ARN,
      name: 'dockerhub/pull',
      region: REGION,
      value: 'ghp_plainTokenNotJson',
    });
    account.roles[EXECUTION_ROLE]!.inline['read-registry'] = {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: REGISTRY_SECRET_ARN },
      ],
    };
    const recorder = recordingCaller(fakeCaller(account), REGION);
    const report = await runDoctor(recorder, task, REGION);
    assert.deepEqual(problems(report), ['registry-credentials-malformed']);
    const saved = JSON.stringify(recorder.snapshot());
    assert.doesNotMatch(
      saved,
      /ghp_plainTokenNotJson|s3cr3t-db-password/,
      'secret values never enter a snapshot',
    );
    const replayed = await runDoctor(replayCaller(JSON.parse(saved)), task, REGION);
    assert.deepEqual(problems(replayed), ['registry-credentials-malformed']);
  });

  test('a secret referenced in another region where it does not exist', async () => {
    const account = healthyAccount();
    const elsewhere = SECRET_ARN.replace(REGION, 'us-west-2');
    account.taskDefinitions[0]!.containerDefinitions = [
      webContainer({ secrets: [{ name: 'DB_PASSWORD', valueFrom: elsewhere }] }),
    ];
    account.roles[EXECUTION_ROLE]!.inline['read-db-secret'] = {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: 'secretsmanager:GetSecretValue',
          Resource: 'arn:aws:secretsmanager:*:111122223333:secret:prod/*',
        },
      ],
    };
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(problems(report), ['secret-not-found']);
    assert.match(evidenceText(report, 'secret-not-found'), /us-west-2/);
    assert.match(
      finding(report, 'secret-not-found').detail,
      /can't find the specified secret\. The task runs/,
    );
  });

  test('awslogs-create-group without logs:CreateLogGroup', async () => {
    const account = healthyAccount();
    account.taskDefinitions[0]!.containerDefinitions = [
      webContainer({
        logConfiguration: {
          logDriver: 'awslogs',
          options: {
            'awslogs-group': '/ecs/web-new',
            'awslogs-region': REGION,
            'awslogs-create-group': 'true',
            'awslogs-stream-prefix': 'web',
          },
        },
      }),
    ];
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(problems(report), ['role-no-create-log-group']);
    const grant = JSON.parse(
      finding(report, 'role-no-create-log-group').fixes.find((x) => x.kind === 'iam-policy')!.content!,
    );
    assert.deepEqual(grant.Statement[0].Action, ['logs:CreateLogGroup']);
    assert.match(grant.Statement[0].Resource, /log-group:\/ecs\/web-new/);
  });

  test('a log group that does not exist, without awslogs-create-group', async () => {
    const account = healthyAccount();
    account.logGroups = [];
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(problems(report), ['log-group-missing']);
    assert.match(
      evidenceText(report, 'log-group-missing'),
      /aws logs create-log-group --log-group-name \/ecs\/web --region us-east-1/,
    );
  });

  test('an arm64-only image on an X86_64 task', async () => {
    const account = healthyAccount();
    account.repositories[0]!.images[0]!.manifest = indexManifest(['linux/arm64/v8']);
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(problems(report), ['platform-mismatch']);
    assert.match(evidenceText(report, 'platform-mismatch'), /ARM64/);
  });

  test('a single-platform arm64 image (platform only in its config) on an X86_64 task', async () => {
    const account = healthyAccount();
    const image = singlePlatformImage(['1.4.2'], 'linux/arm64/v8');
    account.repositories[0]!.images = [image];
    account.tasks[0]!.containers![0]!.imageDigest = image.digest;
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(problems(report), ['platform-mismatch']);
    assert.match(evidenceText(report, 'platform-mismatch'), /linux\/arm64/);
  });

  test('a single-platform amd64 image on an X86_64 task: no finding', async () => {
    const account = healthyAccount();
    const image = singlePlatformImage(['1.4.2'], 'linux/amd64');
    account.repositories[0]!.images = [image];
    account.tasks[0]!.containers![0]!.imageDigest = image.digest;
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(report.findings, []);
  });

  test('the image was deleted after the task pinned its digest', async () => {
    const account = healthyAccount();
    account.repositories[0]!.images = [];
    const report = await diagnoseWithReplay(account, task);
    const ids = problems(report);
    assert.ok(ids.includes('digest-not-found') || ids.includes('tag-not-found'), ids.join(', '));
    assert.match(
      evidenceText(report, ids.includes('digest-not-found') ? 'digest-not-found' : 'tag-not-found'),
      /1\.4\.2|sha256:a1a1/,
    );
  });

  test('the tag moved since the task started', async () => {
    const account = healthyAccount();
    account.repositories[0]!.images[0]!.digest = `sha256:${'c3'.repeat(32)}`;
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(problems(report), ['tag-moved']);
  });

  test('a Docker Hub image rate-limited: the stop reason and every remediation', async () => {
    const account = healthyAccount();
    account.taskDefinitions[0]!.containerDefinitions = [webContainer({ image: 'nginx:1.27' })];
    stopTask(
      account,
      'CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref docker.io/library/nginx:1.27: unexpected status from HEAD request to https://registry-1.docker.io/v2/library/nginx/manifests/1.27: 429 Too Many Requests - Server message: toomanyrequests: You have reached your unauthenticated pull rate limit. https://www.docker.com/increase-rate-limit',
    );
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(problems(report), ['docker-hub-rate-limit', 'stop-reason']);
    assert.equal(finding(report, 'stop-reason').cause, 'rate-limit');
    const f = finding(report, 'docker-hub-rate-limit');
    assert.equal(f.matchesStopReason, true);
    const fixes = f.fixes.map((x) => `${x.summary} ${x.content ?? ''}`).join('\n');
    assert.match(fixes, /public\.ecr\.aws\/docker\/library\/nginx:1\.27/);
    assert.match(fixes, /create-pull-through-cache-rule/);
    assert.match(fixes, /docker-hub\/library\/nginx:1\.27/);
    assert.match(fixes, /repositoryCredentials/);
    assert.match(fixes, /secretsmanager:GetSecretValue/);
    assert.equal(report.findings[0]?.id, 'stop-reason', 'the task’s own words come first');
  });

  test('the IAM simulator’s answer is used when doctor may call it', async () => {
    const account = healthyAccount();
    account.simulator = (_role, action) => (action === 'ecr:BatchGetImage' ? 'explicitDeny' : 'allowed');
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(problems(report), ['role-no-ecr-pull']);
    assert.match(evidenceText(report, 'role-no-ecr-pull'), /iam:SimulatePrincipalPolicy/);
  });

  test('a simulator deny that only lacks a condition key is a warning, not a verdict', async () => {
    const account = healthyAccount();
    account.simulator = (_role, action) =>
      action === 'ecr:BatchGetImage'
        ? { decision: 'implicitDeny', missingContext: ['aws:SourceVpce'] }
        : 'allowed';
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(problems(report), ['role-no-ecr-pull']);
    const f = finding(report, 'role-no-ecr-pull');
    assert.equal(f.severity, 'warning');
    assert.equal(f.certainty, 'possible');
    assert.match(evidenceText(report, 'role-no-ecr-pull'), /aws:SourceVpce/);
  });

  test('an explicit deny in an inline policy is named', async () => {
    const account = healthyAccount();
    account.roles[EXECUTION_ROLE]!.inline['guardrail'] = {
      Version: '2012-10-17',
      Statement: [{ Sid: 'NoProdSecrets', Effect: 'Deny', Action: 'secretsmanager:*', Resource: '*' }],
    };
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(problems(report), ['role-no-secret-access']);
    assert.match(evidenceText(report, 'role-no-secret-access'), /guardrail#NoProdSecrets/);
  });

  test('a permissions boundary that lacks the logs actions', async () => {
    const account = healthyAccount();
    const boundary = `arn:aws:iam::${ACCOUNT}:policy/boundary`;
    account.managedPolicies[boundary] = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['ecr:*', 'secretsmanager:GetSecretValue'], Resource: '*' }],
    };
    account.roles[EXECUTION_ROLE]!.boundary = boundary;
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(problems(report), ['role-no-logs']);
    assert.match(evidenceText(report, 'role-no-logs'), /boundary/);
  });

  test('EC2 launch type: the container instance role pulls', async () => {
    const account = healthyAccount();
    const t = account.tasks[0]!;
    t.launchType = 'EC2';
    t.containerInstanceArn = `arn:aws:ecs:${REGION}:${ACCOUNT}:container-instance/${CLUSTER}/ci-1`;
    account.containerInstances.push({ arn: t.containerInstanceArn, ec2InstanceId: 'i-0abc' });
    account.instances.push({
      InstanceId: 'i-0abc',
      SubnetId: 'subnet-0a1',
      SecurityGroups: [{ GroupId: 'sg-0task' }],
      IamInstanceProfile: { Arn: `arn:aws:iam::${ACCOUNT}:instance-profile/ecs-node` },
    });
    account.instanceProfiles['ecs-node'] = 'ecsInstanceRole';
    account.roles['ecsInstanceRole'] = {
      arn: `arn:aws:iam::${ACCOUNT}:role/ecsInstanceRole`,
      attached: [],
      inline: {},
    };
    account.services[0]!.launchType = 'EC2';
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(problems(report), ['role-no-ecr-auth-token', 'role-no-ecr-pull']);
    assert.match(evidenceText(report, 'role-no-ecr-pull'), /ecsInstanceRole/);
  });

  test('a diagnostic call that is denied is reported as not checked, never as a pass', async () => {
    const account = healthyAccount();
    const table = privateRouteTable(account);
    table.Routes = table.Routes!.filter((r) => r.DestinationCidrBlock !== '0.0.0.0/0');
    account.denied.add('ec2:DescribeRouteTables');
    const report = await diagnoseWithReplay(account, task);
    assert.ok(
      !problems(report).includes('no-route-out'),
      'without route tables doctor cannot claim a route problem',
    );
    const unchecked = report.findings.filter((f) => f.severity === 'unchecked');
    assert.ok(unchecked.some((f) => f.id === 'network-unchecked'));
    assert.ok(
      report.failures.some(
        (f) => f.operation === 'DescribeRouteTables' && f.code === 'UnauthorizedOperation',
      ),
    );
  });

  test('denied IAM reads leave the permissions unchecked', async () => {
    const account = healthyAccount();
    account.denied.add('iam:ListRolePolicies');
    account.denied.add('iam:ListAttachedRolePolicies');
    const report = await diagnoseWithReplay(account, task);
    assert.ok(report.findings.some((f) => f.id === 'role-unchecked' && f.severity === 'unchecked'));
    assert.deepEqual(problems(report), []);
  });

  test('throttled calls are retried until they succeed', async () => {
    const account = healthyAccount();
    account.throttle.set('ecs:DescribeTaskDefinition', 2);
    account.throttle.set('ec2:DescribeSecurityGroups', 1);
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(report.findings, []);
  });

  test('throttling that does not stop is a clear failure, not a hang', async () => {
    const account = healthyAccount();
    account.throttle.set('ecs:DescribeTaskDefinition', 100);
    const caller = withRetries(fakeCaller(account), { sleep: async () => {}, attempts: 3 });
    await assert.rejects(runDoctor(caller, task, REGION), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'AWS_UNAVAILABLE');
      assert.match(error.message, /ThrottlingException/);
      return true;
    });
  });

  test('a task ECS no longer knows is a clear error with a hint', async () => {
    const account = healthyAccount();
    account.tasks = [];
    await assert.rejects(
      runDoctor(fakeCaller(account), task, REGION),
      (error: Error & { code?: string; hint?: string }) => {
        assert.equal(error.code, 'AWS_NOT_FOUND');
        assert.match(error.hint ?? '', /--task-definition/);
        return true;
      },
    );
  });

  test('a service: its recent stopped tasks are read for their stop reasons', async () => {
    const account = healthyAccount();
    stopTask(
      account,
      'CannotPullContainerError: ref pull has been retried 1 time(s): failed to copy: httpReadSeeker: failed open: failed to do request: Get "https://prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com/abc": dial tcp 52.216.10.5:443: i/o timeout',
    );
    useEndpoints(account);
    const sg = account.securityGroups.find((g) => g.GroupId === 'sg-0task')!;
    sg.IpPermissionsEgress = sg.IpPermissionsEgress!.filter((p) => (p.PrefixListIds ?? []).length === 0);
    const report = await diagnoseWithReplay(account, service);
    assert.deepEqual(problems(report), ['sg-egress-no-s3-prefix-list', 'stop-reason']);
    assert.equal(finding(report, 'stop-reason').cause, 'network-s3-layers');
    assert.equal(finding(report, 'sg-egress-no-s3-prefix-list').matchesStopReason, true);
  });

  test('a task definition checked before deploying, with the subnets it will use', async () => {
    const account = healthyAccount();
    const report = await diagnoseWithReplay(account, {
      taskDefinition: 'web:3',
      subnets: ['subnet-0a1'],
      securityGroups: ['sg-0task'],
    });
    assert.deepEqual(report.findings, []);
    assert.equal(report.subject.kind, 'task-definition');
  });

  test('a task definition without an execution role', async () => {
    const account = healthyAccount();
    delete account.taskDefinitions[0]!.executionRoleArn;
    const report = await diagnoseWithReplay(account, { taskDefinition: 'web:3' });
    assert.deepEqual(problems(report), ['execution-role-missing']);
  });
});

describe('doctor scenarios: CodeBuild', () => {
  function project(account: FakeAccount, overrides: Record<string, unknown>) {
    account.roles['codebuild-app'] = {
      arn: `arn:aws:iam::${ACCOUNT}:role/codebuild-app`,
      attached: [],
      inline: {
        logs: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'logs:*', Resource: '*' }] },
      },
    };
    account.projects.push({
      name: 'app',
      arn: `arn:aws:codebuild:${REGION}:${ACCOUNT}:project/app`,
      serviceRole: `arn:aws:iam::${ACCOUNT}:role/codebuild-app`,
      source: {
        type: 'CODEPIPELINE',
        buildspec: 'version: 0.2\nphases:\n  build:\n    commands:\n      - make\n',
      },
      environment: {
        type: 'LINUX_CONTAINER',
        image: 'aws/codebuild/standard:7.0',
        computeType: 'BUILD_GENERAL1_SMALL',
        imagePullCredentialsType: 'CODEBUILD',
      },
      logsConfig: { cloudWatchLogs: { status: 'DISABLED' } },
      ...overrides,
    } as never);
  }

  test('a curated image with CODEBUILD credentials: no finding', async () => {
    const account = healthyAccount();
    project(account, {});
    const report = await diagnoseWithReplay(account, { codebuildProject: 'app' });
    assert.deepEqual(report.findings, []);
    assert.equal(report.launchType, 'CODEBUILD');
  });

  test('a curated image with SERVICE_ROLE credentials', async () => {
    const account = healthyAccount();
    project(account, {
      environment: {
        type: 'LINUX_CONTAINER',
        image: 'aws/codebuild/standard:7.0',
        computeType: 'BUILD_GENERAL1_SMALL',
        imagePullCredentialsType: 'SERVICE_ROLE',
      },
    });
    const report = await diagnoseWithReplay(account, { codebuildProject: 'app' });
    assert.deepEqual(problems(report), ['codebuild-curated-needs-codebuild-credentials']);
  });

  test('a private ECR image pulled with CODEBUILD credentials, repository policy not trusting CodeBuild', async () => {
    const account = healthyAccount();
    project(account, {
      environment: {
        type: 'LINUX_CONTAINER',
        image: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/web:1.4.2`,
        computeType: 'BUILD_GENERAL1_SMALL',
        imagePullCredentialsType: 'CODEBUILD',
      },
    });
    const report = await diagnoseWithReplay(account, { codebuildProject: 'app' });
    assert.deepEqual(problems(report), ['codebuild-repository-policy-no-codebuild']);
    assert.match(
      evidenceText(report, 'codebuild-repository-policy-no-codebuild'),
      /codebuild\.amazonaws\.com/,
    );
  });

  test('a private ECR image pulled with SERVICE_ROLE credentials, role without ECR actions', async () => {
    const account = healthyAccount();
    project(account, {
      environment: {
        type: 'LINUX_CONTAINER',
        image: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/web:1.4.2`,
        computeType: 'BUILD_GENERAL1_SMALL',
        imagePullCredentialsType: 'SERVICE_ROLE',
      },
    });
    const report = await diagnoseWithReplay(account, { codebuildProject: 'app' });
    assert.deepEqual(problems(report), ['role-no-ecr-auth-token', 'role-no-ecr-pull']);
    assert.match(evidenceText(report, 'role-no-ecr-pull'), /codebuild-app/);
  });

  test('a buildspec that pulls from Docker Hub without logging in', async () => {
    const account = healthyAccount();
    project(account, {
      source: {
        type: 'CODEPIPELINE',
        buildspec:
          'version: 0.2\nphases:\n  pre_build:\n    commands:\n      - docker pull node:20\n  build:\n    commands:\n      - docker run --rm -v $PWD:/src node:20 npm test\n',
      },
    });
    const report = await diagnoseWithReplay(account, { codebuildProject: 'app' });
    assert.deepEqual(problems(report), ['codebuild-anonymous-docker-hub', 'docker-hub-rate-limit']);
    const fixes = finding(report, 'codebuild-anonymous-docker-hub').fixes;
    assert.match(
      fixes[0]?.content ?? '',
      /secrets-manager:[\s\S]*docker login --username "\$DOCKERHUB_USER" --password-stdin/,
    );
  });

  test('the same buildspec with a docker login first passes', async () => {
    const account = healthyAccount();
    account.secrets.push({
      arn: REGISTRY_SECRET_ARN,
      name: 'dockerhub/pull',
      region: REGION,
      value: '{"username":"acme","password":"dckr_pat_x"}',
    });
    project(account, {
      source: {
        type: 'CODEPIPELINE',
        buildspec:
          'version: 0.2\nenv:\n  secrets-manager:\n    DH_USER: dockerhub/pull:username\n    DH_TOKEN: dockerhub/pull:password\nphases:\n  pre_build:\n    commands:\n      - echo "$DH_TOKEN" | docker login --username "$DH_USER" --password-stdin\n      - docker pull node:20\n',
      },
    });
    account.roles['codebuild-app']!.inline['dockerhub'] = {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: REGISTRY_SECRET_ARN },
      ],
    };
    const report = await diagnoseWithReplay(account, { codebuildProject: 'app' });
    assert.deepEqual(problems(report), []);
  });

  test('a project in a public subnet: CodeBuild gets no public IP, so it needs a NAT gateway', async () => {
    const account = healthyAccount();
    project(account, {
      vpcConfig: { vpcId: 'vpc-0main', subnets: ['subnet-0pub'], securityGroupIds: ['sg-0task'] },
      logsConfig: { cloudWatchLogs: { status: 'ENABLED' } },
    });
    const report = await diagnoseWithReplay(account, { codebuildProject: 'app' });
    assert.ok(problems(report).includes('public-ip-missing'), problems(report).join(', '));
    assert.match(evidenceText(report, 'public-ip-missing'), /subnet-0pub/);
  });

  test('a project in a private subnet with a NAT gateway: no finding', async () => {
    const account = healthyAccount();
    project(account, {
      vpcConfig: { vpcId: 'vpc-0main', subnets: ['subnet-0a1'], securityGroupIds: ['sg-0task'] },
      logsConfig: { cloudWatchLogs: { status: 'ENABLED' } },
    });
    const report = await diagnoseWithReplay(account, { codebuildProject: 'app' });
    assert.deepEqual(report.findings, []);
  });

  test('a project that does not exist', async () => {
    const account = healthyAccount();
    await assert.rejects(
      runDoctor(fakeCaller(account), { codebuildProject: 'nope' }, REGION),
      /no project nope/,
    );
  });
});

describe('doctor: AWS errors from the fake account look like the SDK’s', () => {
  test('awsError carries the name and status the collectors match on', () => {
    const error = awsError('RepositoryNotFoundException', 'gone') as Error & {
      $metadata: { httpStatusCode: number };
    };
    assert.equal(error.name, 'RepositoryNotFoundException');
    assert.equal(error.$metadata.httpStatusCode, 400);
  });

  test('the replay of a snapshot lacking a call reports it as a miss', async () => {
    const caller: AwsCaller = replayCaller({
      format: 'pullsafe-doctor-snapshot',
      version: 1,
      region: REGION,
      recordedAt: '',
      calls: [],
    });
    await assert.rejects(runDoctor(caller, task, REGION), /SnapshotMiss/);
  });
});

void TASK_EXECUTION_POLICY_ARN;

describe('doctor scenarios: endpoint policies', () => {
  test('an S3 gateway endpoint policy that only allows the team’s own bucket', async () => {
    const account = healthyAccount();
    useEndpoints(account);
    account.vpcEndpoints.find((e) => e.VpcEndpointId === 'vpce-0s3')!.PolicyDocument = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'OwnBucket',
          Effect: 'Allow',
          Principal: '*',
          Action: 's3:*',
          Resource: ['arn:aws:s3:::acme-artifacts', 'arn:aws:s3:::acme-artifacts/*'],
        },
      ],
    });
    const report = await diagnoseWithReplay(account, service);
    assert.deepEqual(problems(report), ['s3-endpoint-policy-blocks-layers']);
    assert.match(
      evidenceText(report, 's3-endpoint-policy-blocks-layers'),
      /prod-us-east-1-starport-layer-bucket\/\*/,
    );
  });

  test('an ecr.dkr endpoint policy that denies the task role', async () => {
    const account = healthyAccount();
    useEndpoints(account);
    account.vpcEndpoints.find((e) => e.VpcEndpointId === 'vpce-0dkr')!.PolicyDocument = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: '*', Action: '*', Resource: '*' },
        {
          Sid: 'NoProdPulls',
          Effect: 'Deny',
          Principal: { AWS: EXECUTION_ROLE_ARN },
          Action: 'ecr:BatchGetImage',
          Resource: '*',
        },
      ],
    });
    const report = await diagnoseWithReplay(account, service);
    assert.deepEqual(problems(report), ['ecr-endpoint-policy-denies']);
  });
});

describe('doctor scenarios: a failed call is never "not found"', () => {
  test('a task definition ECS does not have is named as such', async () => {
    await assert.rejects(
      runDoctor(fakeCaller(healthyAccount()), { taskDefinition: 'web:9' }, REGION),
      (error: Error & { code?: string; hint?: string }) => {
        assert.equal(error.code, 'AWS_NOT_FOUND');
        assert.match(error.message, /ECS has no task definition web:9/);
        assert.match(error.hint ?? '', /family:revision/);
        return true;
      },
    );
  });

  test('a service ECS answers as MISSING is not found; denied DescribeServices is access denied', async () => {
    await assert.rejects(
      runDoctor(fakeCaller(healthyAccount()), { cluster: CLUSTER, service: 'api' }, REGION),
      /ECS has no service api in cluster prod \(MISSING\)/,
    );
    const account = healthyAccount();
    account.denied.add('ecs:DescribeServices');
    await assert.rejects(
      runDoctor(fakeCaller(account), service, REGION),
      (error: Error & { code?: string; hint?: string }) => {
        assert.equal(error.code, 'AWS_ACCESS_DENIED');
        assert.match(error.message, /cannot call ecs:DescribeServices: access denied/);
        assert.doesNotMatch(error.message, /has no service/);
        assert.match(error.hint ?? '', /allow the identity running doctor ecs:DescribeServices/);
        return true;
      },
    );
  });

  test("a subject call that fails carries doctor's own error code, and exits 3", async () => {
    const cases: [string, PullsafeErrorCode][] = [
      ['CredentialsProviderError', 'AWS_NO_CREDENTIALS'],
      ['ExpiredTokenException', 'AWS_CREDENTIALS_REFUSED'],
      ['AccessDeniedException', 'AWS_ACCESS_DENIED'],
      ['NetworkError', 'AWS_UNAVAILABLE'],
      ['ThrottlingException', 'AWS_UNAVAILABLE'],
      ['ValidationException', 'AWS_UNAVAILABLE'],
      ['ClusterNotFoundException', 'AWS_NOT_FOUND'],
    ];
    for (const [awsName, code] of cases) {
      const failing: AwsCaller = {
        call: async (service, operation) => {
          throw new AwsCallError(service, operation, awsName, 'the answer');
        },
      };
      await assert.rejects(runDoctor(failing, task, REGION), (error: PullsafeError) => {
        assert.equal(error.code, code, awsName);
        assert.equal(exitCodeFor(error.code), exitCodes.upstream, awsName);
        return true;
      });
    }
  });

  test('a service whose stopped tasks cannot be listed says so, never "every check passed"', async () => {
    const account = healthyAccount();
    account.denied.add('ecs:ListTasks');
    const report = await diagnoseWithReplay(account, service);
    const f = finding(report, 'stop-reason-unchecked');
    assert.equal(f.severity, 'unchecked');
    assert.match(f.title, /stopped tasks of service web/);
    assert.doesNotMatch(renderText(report), /every check passed/);
  });

  test('with nothing found but a call failed, the summary does not say every check passed', async () => {
    const account = healthyAccount();
    account.denied.add('ecr:DescribePullThroughCacheRules');
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(report.findings, []);
    assert.equal(report.failures.length, 1);
    const text = renderText(report);
    assert.doesNotMatch(text, /every check passed/);
    assert.match(text, /No problem found in what could be checked; 1 call failed/);
  });

  test('pull-through rules unreadable: a repository missing under a prefix is a possible warning', async () => {
    const account = healthyAccount();
    const image = `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/docker-hub/library/nginx:1.27`;
    account.taskDefinitions[0]!.containerDefinitions = [webContainer({ image })];
    account.tasks[0]!.containers = [{ name: 'web', image }];
    account.denied.add('ecr:DescribePullThroughCacheRules');
    const report = await diagnoseWithReplay(account, task);
    const f = finding(report, 'repository-not-found');
    assert.equal(f.severity, 'warning');
    assert.equal(f.certainty, 'possible');
    const text = evidenceText(report, 'repository-not-found');
    assert.match(text, /pull-through cache rules of registry 111122223333 could not be read/);
    assert.doesNotMatch(text, /no pull-through cache rule with that prefix was found/);
  });

  test('with the rules read, the same missing repository is an error', async () => {
    const account = healthyAccount();
    const image = `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/docker-hub/library/nginx:1.27`;
    account.taskDefinitions[0]!.containerDefinitions = [webContainer({ image })];
    account.tasks[0]!.containers = [{ name: 'web', image }];
    const report = await diagnoseWithReplay(account, task);
    const f = finding(report, 'repository-not-found');
    assert.equal(f.severity, 'error');
    assert.match(evidenceText(report, 'repository-not-found'), /no pull-through cache rule with that prefix/);
  });

  test('an EC2 task whose container instance ECS forgot: the instance role is not checked, nothing else judged', async () => {
    const account = healthyAccount();
    const t = account.tasks[0]!;
    t.launchType = 'EC2';
    t.containerInstanceArn = `arn:aws:ecs:${REGION}:${ACCOUNT}:container-instance/${CLUSTER}/ci-gone`;
    account.services[0]!.launchType = 'EC2';
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(problems(report), []);
    assert.ok(report.findings.some((f) => f.id === 'role-unchecked'));
    assert.ok(
      report.failures.some((f) => f.operation === 'DescribeContainerInstances' && f.code === 'MISSING'),
      JSON.stringify(report.failures),
    );
  });

  test('an SSM parameter whose match is on a later page exists', async () => {
    const account = healthyAccount();
    const arn = `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/prod/api-key`;
    account.parameters.push({ name: '/prod/api-key', arn, region: REGION });
    account.taskDefinitions[0]!.containerDefinitions = [
      webContainer({ secrets: [{ name: 'API_KEY', valueFrom: '/prod/api-key' }] }),
    ];
    account.roles[EXECUTION_ROLE]!.inline['read-parameter'] = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'ssm:GetParameters', Resource: arn }],
    };
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(report.findings, []);
  });

  test('ECR refusing a manifest in BatchGetImage’s body (KmsError): platforms not checked, not passed', async () => {
    const account = healthyAccount();
    account.repositories[0]!.images[0]!.batchGetFailure = {
      failureCode: 'KmsError',
      failureReason: 'The KMS key is disabled',
    };
    const report = await diagnoseWithReplay(account, task);
    const f = finding(report, 'ecr-image-unchecked');
    assert.match(f.title, /Could not read the platforms of/);
    assert.match(f.detail, /ecr:BatchGetImage \(KmsError\)/);
  });
});

describe('doctor scenarios: wording that does not contradict itself (item 18)', () => {
  test('a missing tag and a denied BatchGetImage: tag-not-found alone, no "was not checked" about it', async () => {
    const account = healthyAccount();
    account.repositories[0]!.images = [];
    delete account.tasks[0]!.containers![0]!.imageDigest;
    account.denied.add('ecr:BatchGetImage');
    const report = await diagnoseWithReplay(account, task);
    assert.deepEqual(problems(report), ['tag-not-found']);
    assert.ok(
      !report.findings.some((f) => f.id === 'ecr-image-unchecked'),
      report.findings.map((f) => `${f.id}: ${f.detail}`).join('\n'),
    );
  });

  test('an existing tag and a denied BatchGetImage: only the platforms are said to be unchecked', async () => {
    const account = healthyAccount();
    account.denied.add('ecr:BatchGetImage');
    const report = await diagnoseWithReplay(account, task);
    const f = finding(report, 'ecr-image-unchecked');
    assert.match(f.title, /platforms/);
    assert.match(f.detail, /^This call failed, so which platforms the image offers was not checked/);
    assert.doesNotMatch(f.detail, /whether the (tag|repository)/);
    assert.equal(f.cause, 'image-platform-mismatch');
  });

  test('counts in the summary agree with their nouns', async () => {
    const account = healthyAccount();
    account.logGroups = [];
    const report = await diagnoseWithReplay(account, task);
    assert.equal(report.summary.error, 1);
    const text = renderText(report);
    assert.match(text, /^1 error, 0 warnings, 0 not checked, 0 notes$/m);
    assert.doesNotMatch(text, /\(s\)/);
    assert.match(renderMarkdown(report), /^1 error, 0 warnings/m);
  });
});

describe('doctor scenarios: the stop reason outranks guesses (item 2)', () => {
  const unmarshal = `ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret ${REGISTRY_SECRET_ARN} from secrets manager: unable to unmarshal secret value of authorization data from asm: invalid character 'g' looking for beginning of value`;

  /**
   * A private-registry image with repositoryCredentials that the task says it could not unmarshal, a
   * sidecar from ECR whose pull permission only a condition doctor cannot decide would grant (a
   * `possible` warning from the IAM check), and doctor itself denied the secret's value.
   */
  function brokenCredentials(stopReason: string): FakeAccount {
    const account = healthyAccount();
    account.taskDefinitions[0]!.containerDefinitions = [
      webContainer({
        image: 'ghcr.io/acme/web:1.4.2',
        repositoryCredentials: { credentialsParameter: REGISTRY_SECRET_ARN },
      }),
      webContainer({ name: 'sidecar', secrets: [] }),
    ];
    account.secrets.push({
      arn: REGISTRY_SECRET_ARN,
      name: 'dockerhub/pull',
      region: REGION,
      value: 'ghp_plainTokenNotJson',
    });
    account.simulator = (_role, action) =>
      action === 'ecr:BatchGetImage'
        ? { decision: 'implicitDeny', missingContext: ['aws:SourceVpce'] }
        : 'allowed';
    account.denied.add('secretsmanager:GetSecretValue');
    stopTask(account, stopReason);
    return account;
  }

  function assertRanked(report: DoctorReport): void {
    const ids = report.findings.map((f) => f.id);
    assert.equal(ids[0], 'stop-reason');
    assert.equal(ids[1], 'registry-credentials-unchecked', ids.join(', '));
    assert.equal(report.findings[1]?.matchesStopReason, true);
    const guess = ids.indexOf('role-no-ecr-pull');
    assert.ok(guess > 1, `the possible role-no-ecr-pull ranks after: ${ids.join(', ')}`);
    assert.equal(report.findings[guess]?.certainty, 'possible');
    const text = renderText(report);
    assert.ok(
      text.indexOf('[registry-credentials-unchecked]') < text.indexOf('[role-no-ecr-pull]'),
      'the text report keeps the same order',
    );
    assert.match(
      text,
      /\[registry-credentials-unchecked\].*<- would confirm the stop reason \(not checked\)/,
    );
  }

  test('ECS could not unmarshal the credentials secret it names; doctor could not read it', async () => {
    assertRanked(await diagnoseWithReplay(brokenCredentials(unmarshal), task));
  });

  test('ECS says the registry refused the credentials; doctor could not read the secret', async () => {
    const refused =
      'CannotPullContainerError: Error response from daemon: Get "https://ghcr.io/v2/acme/web/manifests/1.4.2": unauthorized: incorrect username or password';
    const report = await diagnoseWithReplay(brokenCredentials(refused), task);
    assert.equal(finding(report, 'stop-reason').cause, 'auth-registry-credentials');
    assertRanked(report);
  });
});

const root = fileURLToPath(new URL('..', import.meta.url));

/** `pullsafe <command>` mentions in a text, with the `--flags` written after them on the same command. */
function pullsafeCommands(text: string): { command: string; flags: string[] }[] {
  const found: { command: string; flags: string[] }[] = [];
  for (const match of text.matchAll(/(?:^|[\s`'"(])(?:\.\/)?pullsafe\s+([a-z][a-z-]*)([^`'"()\n]*)/g)) {
    const rest = match[2] ?? '';
    found.push({
      command: match[1] ?? '',
      flags: [...rest.matchAll(/(?:^|\s)(--[a-z][a-z-]*)/g)].map((m) => m[1] ?? ''),
    });
  }
  return found;
}

describe('doctor texts hold for every scenario above', () => {
  test('no sentence ends twice ("secret.." and the like)', () => {
    assert.ok(reports.length > 30, `scenarios ran first (${reports.length} reports)`);
    for (const report of reports) {
      for (const f of report.findings) {
        for (const text of [
          f.title,
          f.detail,
          ...f.evidence.map((e) => e.value),
          ...f.fixes.map((x) => x.summary),
        ]) {
          assert.doesNotMatch(text, /[^.]\.\.(?!\.)/, `${f.id}: ${text}`);
        }
      }
    }
  });

  test('every `pullsafe <command>` a finding or fix names is a command of the CLI, with flags it has', async () => {
    const help = await runCliInProcess(['--help']);
    assert.equal(help.code, 0, help.stderr);
    const commands = new Set(
      [...help.stdout.slice(help.stdout.indexOf('Commands:')).matchAll(/^ {2}([a-z][a-z-]*)/gm)].map(
        (m) => m[1],
      ),
    );
    assert.ok(commands.has('copy') && commands.has('doctor'), [...commands].join(', '));
    const texts = reports.flatMap((report) => [renderText(report), renderMarkdown(report)]);
    // Every string in doctor's sources too, so fixes no scenario reaches are held to the same rule.
    const sources = join(root, 'src', 'doctor');
    for (const entry of await readdir(sources, { recursive: true })) {
      if (entry.endsWith('.ts') && !entry.endsWith('.test.ts') && !entry.includes('test-support')) {
        texts.push(await readFile(join(sources, entry), 'utf8'));
      }
    }
    const named = texts.flatMap(pullsafeCommands);
    assert.ok(
      named.some((n) => n.command === 'copy'),
      'the rate-limit fix names pullsafe copy',
    );
    const helpOf = new Map<string, string>();
    for (const { command, flags } of named) {
      assert.ok(
        commands.has(command),
        `"pullsafe ${command}" is named in a doctor text, and pullsafe has no such command`,
      );
      if (!helpOf.has(command)) {
        const result = await runCliInProcess([command, '--help']);
        assert.equal(result.code, 0, result.stderr);
        helpOf.set(command, result.stdout);
      }
      for (const flag of flags) {
        assert.ok(helpOf.get(command)?.includes(flag), `pullsafe ${command} has no ${flag}`);
      }
    }
  });
});

/**
 * The collectors through the real AWS SDK v3 clients (commands built, sent and answered through
 * aws-sdk-client-mock), so what users run is what is tested: command names, input shapes, pagination,
 * AWS error names, throttling and access denied on the diagnostic calls themselves.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isThrottling, sdkCaller, toCallError, withRetries } from '../src/doctor/aws.ts';
import { allowedOperations, type AwsService } from '../src/doctor/aws-operations.ts';
import { recordingCaller, replayCaller } from '../src/doctor/snapshot.ts';
import { runDoctor } from '../src/doctor/doctor.ts';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CLUSTER,
  REGION,
  TASK_ARN,
  healthyAccount,
  installSdkMocks,
  singlePlatformImage,
  type FakeAccount,
} from './helpers/fake-aws.ts';

let account: FakeAccount = healthyAccount();
let sent: string[] = [];
let restore: () => void = () => {};

before(async () => {
  ({ sent, restore } = await installSdkMocks(() => account));
});

after(() => restore());

function caller() {
  return withRetries(sdkCaller({ region: REGION }), { sleep: async () => {} });
}

describe('doctor through the AWS SDK clients', () => {
  test('a healthy task: every needed call is made, pages followed, no finding', async () => {
    account = healthyAccount();
    account.roles.ecsTaskExecutionRole!.inline['second'] = { Version: '2012-10-17', Statement: [] };
    account.logGroups.unshift({ name: '/ecs/web-old', region: REGION });
    sent.length = 0;
    const report = await runDoctor(caller(), { cluster: CLUSTER, task: TASK_ARN }, REGION);
    assert.deepEqual(report.findings, []);
    const count = (op: string) => sent.filter((s) => s === op).length;
    assert.equal(count('iam:ListRolePolicies'), 2, 'two inline policies, one per page');
    assert.ok(count('logs:DescribeLogGroups') >= 2, 'log groups paged until the exact name was found');
    assert.equal(count('ecs:DescribeTasks'), 1);
    assert.equal(count('ecr:DescribeImages'), 1);
    for (const op of sent) {
      const [service, operation] = op.split(':') as [AwsService, string];
      assert.ok(allowedOperations[service].includes(operation), `${op} is a read-only call`);
      assert.match(operation, /^(Describe|Get|List|BatchGet|Simulate)/, `${op} only reads`);
    }
  });

  test('SDK errors keep their AWS names; access denied on a diagnostic call is "could not check"', async () => {
    account = healthyAccount();
    account.denied.add('ec2:DescribeNetworkAcls');
    account.denied.add('logs:DescribeLogGroups');
    const report = await runDoctor(caller(), { cluster: CLUSTER, task: TASK_ARN }, REGION);
    const failures = report.failures.map((f) => `${f.service}:${f.operation}:${f.code}`);
    assert.ok(failures.includes('ec2:DescribeNetworkAcls:UnauthorizedOperation'), failures.join(', '));
    assert.ok(failures.includes('logs:DescribeLogGroups:AccessDeniedException'), failures.join(', '));
    assert.ok(report.findings.some((f) => f.id === 'log-group-unchecked' && f.severity === 'unchecked'));
    assert.ok(report.findings.some((f) => f.id === 'network-unchecked' && f.severity === 'unchecked'));
    assert.equal(report.summary.error, 0, 'nothing failed that doctor could see');
  });

  test('throttling through the SDK is retried, then succeeds', async () => {
    account = healthyAccount();
    account.throttle.set('ecs:DescribeTaskDefinition', 3);
    account.throttle.set('iam:GetPolicyVersion', 2);
    sent.length = 0;
    const report = await runDoctor(caller(), { cluster: CLUSTER, task: TASK_ARN }, REGION);
    assert.deepEqual(report.findings, []);
    assert.equal(sent.filter((s) => s === 'ecs:DescribeTaskDefinition').length, 4);
  });

  test('a snapshot recorded through the SDK replays, offline, to the same report', async () => {
    account = healthyAccount();
    account.repositories[0]!.images[0]!.manifest = account.repositories[0]!.images[0]!.manifest.replace(
      '"amd64"',
      '"s390x"',
    );
    const recorder = recordingCaller(caller(), REGION);
    const live = await runDoctor(recorder, { cluster: CLUSTER, task: TASK_ARN }, REGION);
    assert.ok(live.findings.some((f) => f.id === 'platform-mismatch'));
    const snapshot = JSON.parse(JSON.stringify(recorder.snapshot()));
    sent.length = 0;
    const replayed = await runDoctor(replayCaller(snapshot), { cluster: CLUSTER, task: TASK_ARN }, REGION);
    assert.deepEqual(replayed, live);
    assert.equal(sent.length, 0, 'a replay makes no AWS call');
    const createdAt = snapshot.calls.find((c: { operation: string }) => c.operation === 'DescribeTasks')
      .output.tasks[0].createdAt;
    assert.deepEqual(createdAt, { $date: '2026-11-28T10:00:00.000Z' }, 'dates survive the snapshot');
  });

  test('a write operation does not compile, and is refused before it reaches AWS', async () => {
    sent.length = 0;
    // @ts-expect-error PutImage is not in the operation map, so a call to it does not type-check.
    await assert.rejects(sdkCaller({ region: REGION }).call('ecr', 'PutImage', {}), /not a read-only call/);
    // @ts-expect-error CreateRole is not in the operation map either.
    await assert.rejects(sdkCaller({ region: REGION }).call('iam', 'CreateRole', {}), /not a read-only call/);
    assert.deepEqual(sent, []);
  });
});

describe('image configs through presigned URLs', () => {
  let server: Server;
  let served = 0;
  let status = 200;
  before(async () => {
    server = createServer((request, response) => {
      served++;
      if (status !== 200) {
        response.writeHead(status).end('<Error><Code>AccessDenied</Code></Error>');
        return;
      }
      const digest = request.url?.slice(1);
      const image = account.repositories.flatMap((r) => r.images).find((i) => i.config?.digest === digest);
      response.writeHead(image ? 200 : 404, { 'content-type': 'application/octet-stream' });
      response.end(
        image ? JSON.stringify({ ...image.config, rootfs: { type: 'layers', diff_ids: [] } }) : '',
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  function singleArm64(): void {
    account = healthyAccount();
    account.blobBaseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const image = singlePlatformImage(['1.4.2'], 'linux/arm64');
    account.repositories[0]!.images = [image];
    account.tasks[0]!.containers![0]!.imageDigest = image.digest;
  }

  test('the platform of a single-platform image is read from its config blob', async () => {
    singleArm64();
    status = 200;
    served = 0;
    const recorder = recordingCaller(caller(), REGION);
    const report = await runDoctor(recorder, { cluster: CLUSTER, task: TASK_ARN }, REGION);
    assert.equal(served, 1);
    assert.ok(report.findings.some((f) => f.id === 'platform-mismatch'));
    const recorded = recorder.snapshot().calls.find((c) => c.operation === 'GetImageConfigPlatform');
    assert.deepEqual(recorded?.output, { os: 'linux', architecture: 'arm64' }, 'only the platform is kept');
  });

  test('a refused download leaves the platform unchecked, not passed', async () => {
    singleArm64();
    status = 403;
    const report = await runDoctor(caller(), { cluster: CLUSTER, task: TASK_ARN }, REGION);
    assert.ok(!report.findings.some((f) => f.id === 'platform-mismatch'));
    assert.ok(
      report.failures.some((f) => f.operation === 'GetImageConfigPlatform'),
      JSON.stringify(report.failures),
    );
    assert.ok(report.findings.some((f) => f.severity === 'unchecked'));
  });
});

describe('AWS call errors', () => {
  test('names, statuses and throttling are read from SDK errors', () => {
    const throttled = toCallError(
      'ecs',
      'DescribeTasks',
      Object.assign(new Error('Rate exceeded'), {
        name: 'ThrottlingException',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    assert.equal(throttled.awsName, 'ThrottlingException');
    assert.ok(isThrottling(throttled));
    const ec2Limit = toCallError(
      'ec2',
      'DescribeSubnets',
      Object.assign(new Error('Request limit exceeded.'), {
        name: 'RequestLimitExceeded',
        $metadata: { httpStatusCode: 503 },
      }),
    );
    assert.ok(isThrottling(ec2Limit));
    const denied = toCallError(
      'iam',
      'GetRole',
      Object.assign(new Error('no'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }),
    );
    assert.equal(isThrottling(denied), false);
    const network = toCallError(
      'ecs',
      'DescribeTasks',
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:443'), { code: 'ECONNREFUSED' }),
    );
    assert.equal(network.awsName, 'NetworkError');
  });

  test('credentials in an error message are redacted', () => {
    const error = toCallError('ecs', 'DescribeTasks', new Error('bad key AKIAABCDEFGHIJKLMNOP in request'));
    assert.doesNotMatch(error.message, /AKIAABCDEFGHIJKLMNOP/);
  });
});

/**
 * `pullsafe doctor` as users run it: a child process replaying snapshots (human, JSON and Markdown
 * output, exit codes), bad input, and a live run through the real SDK against a local stand-in for ECS
 * that records a snapshot.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { recordingCaller } from '../src/doctor/aws.ts';
import { runDoctor } from '../src/doctor/doctor.ts';
import { runCli } from './helpers/cli.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';
import {
  CLUSTER,
  REGION,
  TASK_ARN,
  fakeCaller,
  healthyAccount,
  type FakeAccount,
} from './helpers/fake-aws.ts';

let dir: string;
let healthy: string;
let broken: string;

/** AWS settings that keep the SDK away from any real address: static keys, no instance metadata. */
const offlineEnv = {
  AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_REGION: REGION,
};

async function record(account: FakeAccount, file: string): Promise<void> {
  const recorder = recordingCaller(fakeCaller(account), REGION);
  await runDoctor(recorder, { cluster: CLUSTER, task: TASK_ARN }, REGION);
  await writeFile(file, JSON.stringify(recorder.snapshot()));
}

before(async () => {
  dir = await makeTempDir('pullsafe-doctor-');
  healthy = join(dir, 'healthy.json');
  broken = join(dir, 'broken.json');
  await record(healthyAccount(), healthy);
  const account = healthyAccount();
  const table = account.routeTables.find((t) => t.RouteTableId === 'rtb-0priv')!;
  table.Routes = table.Routes!.filter((r) => r.DestinationCidrBlock !== '0.0.0.0/0');
  account.taskDefinitions[0]!.containerDefinitions![0]!.image = 'nginx:1.27';
  await record(account, broken);
});

after(async () => removeTempDir(dir));

const taskArgs = ['doctor', '--cluster', CLUSTER, '--task', TASK_ARN];

describe('pullsafe doctor (CLI)', () => {
  test('a healthy snapshot: exit 0 and says so', async () => {
    const result = await runCli([...taskArgs, '--snapshot', healthy], { env: offlineEnv });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /No problem found/);
    assert.match(result.stdout, /task arn:aws:ecs:us-east-1:111122223333:task\/prod\//);
  });

  test('a broken snapshot: exit 1, findings grouped by hop with fixes', async () => {
    const result = await runCli([...taskArgs, '--snapshot', broken], { env: offlineEnv });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stdout, /== Manifest/);
    assert.match(result.stdout, /\[no-route-out\]/);
    assert.match(result.stdout, /== Rate limits/);
    assert.match(result.stdout, /public\.ecr\.aws\/docker\/library\/nginx:1\.27/);
  });

  test('--json is one object with the findings, their ids and fixes', async () => {
    const result = await runCli([...taskArgs, '--snapshot', broken, '--json'], { env: offlineEnv });
    assert.equal(result.code, 1, result.stderr);
    const report = JSON.parse(result.stdout);
    assert.equal(report.subject.kind, 'task');
    assert.equal(report.problems, true);
    const ids = report.findings.map((f: { id: string }) => f.id);
    assert.ok(ids.includes('no-route-out'));
    assert.ok(ids.includes('docker-hub-rate-limit'));
    for (const f of report.findings) {
      for (const key of [
        'id',
        'cause',
        'hop',
        'severity',
        'certainty',
        'title',
        'detail',
        'evidence',
        'fixes',
      ]) {
        assert.ok(key in f, `finding ${f.id} has ${key}`);
      }
    }
  });

  test('--markdown renders headings, evidence tables and fenced fixes', async () => {
    const result = await runCli([...taskArgs, '--snapshot', broken, '--markdown'], { env: offlineEnv });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stdout, /^# pullsafe doctor: /);
    assert.match(result.stdout, /\n## Rate limits\n/);
    assert.match(result.stdout, /\| evidence \| value \|/);
    assert.match(result.stdout, /```sh\n/);
  });

  for (const [name, args, pattern] of [
    ['no subject', ['doctor', '--cluster', CLUSTER], /exactly one of --task/],
    ['two subjects', ['doctor', '--cluster', CLUSTER, '--task', 'a', '--service', 'b'], /exactly one of/],
    ['a task without its cluster', ['doctor', '--task', 'abc'], /--task needs --cluster/],
    ['both output formats', [...taskArgs, '--json', '--markdown'], /one of --json and --markdown/],
    [
      'subnets without a task definition',
      [...taskArgs, '--subnets', 'subnet-1'],
      /go with --task-definition/,
    ],
    [
      'a snapshot that does not exist',
      [...taskArgs, '--snapshot', '/nonexistent/snap.json'],
      /cannot read snapshot/,
    ],
  ] as const) {
    test(`usage: ${name} is exit 2 with a message`, async () => {
      const result = await runCli([...args], { env: offlineEnv });
      assert.equal(result.code, 2, result.stdout + result.stderr);
      assert.match(result.stderr, pattern);
      assert.doesNotMatch(result.stderr, /at .*\.ts:\d+/, 'no stack trace');
    });
  }

  test('a file that is not a snapshot is exit 2', async () => {
    const junk = join(dir, 'junk.json');
    await writeFile(junk, '{"calls": 3}');
    const result = await runCli([...taskArgs, '--snapshot', junk], { env: offlineEnv });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /not a pullsafe doctor snapshot/);
  });

  test('no region anywhere is exit 2 with a hint', async () => {
    const result = await runCli(['doctor', '--cluster', CLUSTER, '--task', 'abc'], {
      env: { ...offlineEnv, AWS_REGION: '', AWS_DEFAULT_REGION: '' },
    });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /no AWS region/);
  });
});

describe('pullsafe doctor --save-snapshot through the SDK', () => {
  let server: Server;
  let endpoint: string;
  const seen: string[] = [];

  before(async () => {
    // A stand-in for ECS's JSON 1.1 API on loopback: the cluster does not exist.
    server = createServer((request, response) => {
      seen.push(String(request.headers['x-amz-target']));
      request.resume();
      request.on('end', () => {
        response.writeHead(400, {
          'content-type': 'application/x-amz-json-1.1',
          'x-amzn-requestid': 'req-1',
        });
        response.end(JSON.stringify({ __type: 'ClusterNotFoundException', message: 'Cluster not found.' }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('records the answer, and the snapshot replays to the same error', async () => {
    const file = join(dir, 'recorded.json');
    const live = await runCli(['doctor', '--cluster', 'nope', '--task', 'abc', '--save-snapshot', file], {
      env: { ...offlineEnv, AWS_ENDPOINT_URL: endpoint },
    });
    assert.equal(live.code, 3, live.stderr);
    assert.match(live.stderr, /ECS has no cluster nope/);
    assert.ok(seen.includes('AmazonEC2ContainerServiceV20141113.DescribeTasks'), seen.join(', '));
    const snapshot = JSON.parse(await readFile(file, 'utf8'));
    assert.equal(snapshot.format, 'pullsafe-doctor-snapshot');
    assert.equal(snapshot.calls[0].error.name, 'ClusterNotFoundException');
    const replay = await runCli(['doctor', '--cluster', 'nope', '--task', 'abc', '--snapshot', file], {
      env: offlineEnv,
    });
    assert.equal(replay.code, 3);
    assert.match(replay.stderr, /ECS has no cluster nope/);
  });
});

/**
 * `pullsafe doctor` as users run it: replaying snapshots in process (human, JSON and Markdown output,
 * exit codes), bad input, and in a child process (the SDK reads its own environment) a live run through
 * the real SDK against a local stand-in for ECS that records a snapshot.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { recordingCaller, snapshotKey, type Snapshot } from '../src/doctor/snapshot.ts';
import { runDoctor } from '../src/doctor/doctor.ts';
import { cliPath, runCli, runCliInProcess, type CliResult } from './helpers/cli.ts';
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
    const result = await runCliInProcess([...taskArgs, '--snapshot', healthy], { env: offlineEnv });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /No problem found/);
    assert.match(result.stdout, /task arn:aws:ecs:us-east-1:111122223333:task\/prod\//);
  });

  test('a broken snapshot: exit 1, findings grouped by hop with fixes', async () => {
    const result = await runCliInProcess([...taskArgs, '--snapshot', broken], { env: offlineEnv });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stdout, /== Manifest/);
    assert.match(result.stdout, /\[no-route-out\]/);
    assert.match(result.stdout, /== Rate limits/);
    assert.match(result.stdout, /public\.ecr\.aws\/docker\/library\/nginx:1\.27/);
  });

  test('--json is one object with the findings, their ids and fixes', async () => {
    const result = await runCliInProcess([...taskArgs, '--snapshot', broken, '--json'], { env: offlineEnv });
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
    const result = await runCliInProcess([...taskArgs, '--snapshot', broken, '--markdown'], {
      env: offlineEnv,
    });
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
      const result = await runCliInProcess([...args], { env: offlineEnv });
      assert.equal(result.code, 2, result.stdout + result.stderr);
      assert.match(result.stderr, pattern);
      assert.doesNotMatch(result.stderr, /at .*\.ts:\d+/, 'no stack trace');
    });
  }

  test('a file that is not a snapshot is exit 2', async () => {
    const junk = join(dir, 'junk.json');
    await writeFile(junk, '{"calls": 3}');
    const result = await runCliInProcess([...taskArgs, '--snapshot', junk], { env: offlineEnv });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /not a pullsafe doctor snapshot/);
  });

  test('no region anywhere is exit 2 with a hint', async () => {
    const result = await runCliInProcess(['doctor', '--cluster', CLUSTER, '--task', 'abc'], {
      env: { ...offlineEnv, AWS_REGION: '', AWS_DEFAULT_REGION: '' },
    });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /no AWS region/);
  });
});

/** Environment in which the SDK's credential chain finds nothing: no keys, profiles, SSO or metadata. */
function noCredentialsEnv(home: string): Record<string, string> {
  return {
    HOME: home,
    AWS_ACCESS_KEY_ID: '',
    AWS_SECRET_ACCESS_KEY: '',
    AWS_SESSION_TOKEN: '',
    AWS_PROFILE: '',
    AWS_CONFIG_FILE: join(home, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-credentials'),
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '',
    AWS_CONTAINER_CREDENTIALS_FULL_URI: '',
    AWS_WEB_IDENTITY_TOKEN_FILE: '',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_REGION: REGION,
  };
}

describe('pullsafe doctor when AWS cannot be asked: what failed, never "not found"', () => {
  let server: Server;
  let endpoint: string;
  /** What the stand-in for ECS answers to DescribeServices: status and JSON body. */
  let describeServices: { status: number; body: Record<string, unknown> };

  before(async () => {
    server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        const target = String(request.headers['x-amz-target']);
        const answer = target.endsWith('.DescribeServices')
          ? describeServices
          : { status: 400, body: { __type: 'ClientException', message: `not expected: ${target}` } };
        response.writeHead(answer.status, {
          'content-type': 'application/x-amz-json-1.1',
          'x-amzn-requestid': 'req-2',
        });
        response.end(JSON.stringify(answer.body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  for (const subject of [
    ['--service', 'web'],
    ['--task', 'abc'],
    ['--task-definition', 'web:3'],
    ['--codebuild-project', 'app'],
  ]) {
    test(`no credentials at all, ${subject[0]}: says so, exit 3`, async () => {
      const result = await runCli(['doctor', '--cluster', CLUSTER, ...subject], {
        env: noCredentialsEnv(dir),
      });
      assert.equal(result.code, 3, result.stdout + result.stderr);
      assert.match(result.stderr, /no AWS credentials/);
      assert.match(result.stderr, /hint: .*--profile/);
      assert.doesNotMatch(result.stderr, /has no (service|task|project)/);
      assert.doesNotMatch(result.stderr, /at .*\.ts:\d+/, 'no stack trace');
    });
  }

  test('--service with access denied on ecs:DescribeServices names the action', async () => {
    describeServices = {
      status: 400,
      body: {
        __type: 'AccessDeniedException',
        message: `User: arn:aws:iam::111122223333:user/diagnose is not authorized to perform: ecs:DescribeServices on resource: arn:aws:ecs:${REGION}:111122223333:service/${CLUSTER}/web`,
      },
    };
    const result = await runCli(['doctor', '--cluster', CLUSTER, '--service', 'web'], {
      env: { ...offlineEnv, AWS_ENDPOINT_URL: endpoint },
    });
    assert.equal(result.code, 3, result.stdout + result.stderr);
    assert.match(result.stderr, /access denied/);
    assert.match(result.stderr, /hint: allow the identity running doctor ecs:DescribeServices/);
    assert.doesNotMatch(result.stderr, /has no service/);
  });

  test('--service with AWS unreachable says the network failed', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const result = await runCli(['doctor', '--cluster', CLUSTER, '--service', 'web'], {
      env: { ...offlineEnv, AWS_ENDPOINT_URL: `http://127.0.0.1:${port}` },
    });
    assert.equal(result.code, 3, result.stdout + result.stderr);
    assert.match(result.stderr, /could not reach AWS/);
    assert.match(result.stderr, /ECONNREFUSED/);
    assert.doesNotMatch(result.stderr, /has no service/);
  });

  test('--service that ECS answers is MISSING: not found, with the reason', async () => {
    describeServices = {
      status: 200,
      body: {
        services: [],
        failures: [{ arn: `arn:aws:ecs:${REGION}:111122223333:service/${CLUSTER}/web`, reason: 'MISSING' }],
      },
    };
    const result = await runCli(['doctor', '--cluster', CLUSTER, '--service', 'web'], {
      env: { ...offlineEnv, AWS_ENDPOINT_URL: endpoint },
    });
    assert.equal(result.code, 3, result.stdout + result.stderr);
    assert.match(result.stderr, /ECS has no service web in cluster prod \(MISSING\)/);
    assert.match(result.stderr, /hint: check --cluster and --region/);
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

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * The snapshots shipped in examples/ and replayed in docs/doctor.md: each recorded from an example account
 * of the tests, each with the command the docs show (under `heading`) and the findings it gives.
 */
const examples = [
  {
    file: 'examples/doctor-service-web.json',
    heading: '## Try it without AWS',
    account: 'exampleServiceAccount',
    args: ['--cluster', CLUSTER, '--service', 'web'],
    findings: ['✗ stop-reason', '✗ stop-reason', '✗ role-no-secret-access', '! docker-hub-rate-limit'],
    inReadme: true,
  },
  {
    file: 'examples/doctor-codebuild-app.json',
    heading: '### A CodeBuild build',
    account: 'exampleCodeBuildAccount',
    args: ['--codebuild-project', 'app'],
    findings: ['✗ stop-reason', '! codebuild-anonymous-docker-hub', '! docker-hub-rate-limit'],
    inReadme: false,
  },
] as const;

/** Runs the CLI from the repository root, as the docs' commands are written. */
function runFromRoot(args: string[], env: Record<string, string>, preload?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(preload ? ['--import', preload] : []), cliPath, ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The calls of a snapshot in a stable order (parallel lookups record in the order they finish). */
function callsOf(snapshot: Snapshot): unknown[] {
  return [...snapshot.calls].sort((a, b) => {
    const ka = snapshotKey(a.service, a.operation, a.region, a.input);
    const kb = snapshotKey(b.service, b.operation, b.region, b.input);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

/** `✗ [id]` lines and the summary line: what the docs promise about a report. */
function reportShape(text: string): { summary: string | undefined; findings: string[] } {
  return {
    summary: text.split('\n')[1],
    findings: [...text.matchAll(/^([✗!?i]) \[([a-z0-9-]+)\]/gm)].map((m) => `${m[1]} ${m[2]}`),
  };
}

for (const example of examples) {
  describe(`the example snapshot ${example.file} (docs/doctor.md, "${example.heading.replace(/^#+ /, '')}")`, () => {
    test('is what `doctor --save-snapshot` records from the example account of the tests', async () => {
      // The real CLI, its real recorder and the real SDK clients; only the clients' answers come from the
      // fake account (installed before the CLI starts). PULLSAFE_WRITE_EXAMPLES=1 rewrites the shipped file.
      const fakeAws = pathToFileURL(join(root, 'test/helpers/fake-aws.ts')).href;
      const preload = `data:text/javascript,import { installSdkMocks, ${example.account} } from '${fakeAws}'; await installSdkMocks(() => ${example.account}());`;
      const recorded = join(dir, 'example.json');
      const result = await runFromRoot(
        ['doctor', ...example.args, '--region', REGION, '--save-snapshot', recorded],
        offlineEnv,
        preload,
      );
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /snapshot written to/);
      if (process.env.PULLSAFE_WRITE_EXAMPLES === '1') {
        // Written as the repository formats JSON, so that `npm run lint` stays clean after a regeneration.
        const prettier = await import('prettier');
        const target = join(root, example.file);
        const options = (await prettier.resolveConfig(target)) ?? {};
        const text = await readFile(recorded, 'utf8');
        await writeFile(target, await prettier.format(text, { ...options, filepath: target }));
      }
      const fresh = JSON.parse(await readFile(recorded, 'utf8')) as Snapshot;
      const shipped = JSON.parse(await readFile(join(root, example.file), 'utf8')) as Snapshot;
      assert.equal(shipped.format, 'pullsafe-doctor-snapshot');
      assert.equal(shipped.region, fresh.region);
      assert.deepEqual(
        callsOf(shipped),
        callsOf(fresh),
        `${example.file} is out of date: regenerate it with PULLSAFE_WRITE_EXAMPLES=1 node --test test/doctor-cli.test.ts`,
      );
    });

    test('the documented command gives the documented findings', async () => {
      const docs = await readFile(join(root, 'docs/doctor.md'), 'utf8');
      const at = docs.indexOf(example.heading);
      assert.ok(at >= 0, `docs/doctor.md has a section "${example.heading}"`);
      const section = docs.slice(at);
      const command = /^pullsafe (doctor --snapshot examples\/\S+.*)$/m.exec(section)?.[1];
      assert.ok(command, 'it shows a `pullsafe doctor --snapshot examples/…` command');
      assert.ok(command.includes(example.file), `the command replays ${example.file}`);
      const output = /```text\n([\s\S]*?)```/.exec(section.slice(section.indexOf(command)))?.[1];
      assert.ok(output, 'and its output in a text block after it');
      const result = await runFromRoot(command.split(/\s+/), { ...offlineEnv, AWS_REGION: '' });
      assert.equal(result.code, 1, result.stderr);
      const documented = reportShape(output);
      assert.deepEqual(reportShape(result.stdout), documented);
      assert.deepEqual(documented.findings, example.findings);
      if (example.inReadme) {
        const readme = await readFile(join(root, 'README.md'), 'utf8');
        assert.ok(readme.includes(`pullsafe ${command}`), 'README.md shows the same command');
      }
    });
  });
}

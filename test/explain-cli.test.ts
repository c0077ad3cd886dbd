/**
 * `pullsafe explain` as users run it: message as argument or on stdin, human and JSON output, exit codes.
 * In this process, except where stdin is a pipe or stdout is closed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cliPath, runCliInProcess, type CliResult } from './helpers/cli.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';

/**
 * Runs the CLI with stdin a pipe carrying `input`, or streamed from `stdinFile` (as `< file`), and, with
 * `closeStdout`, its stdout closed before it writes anything: a reader that went away (`| head`).
 */
function runCliWith(
  args: string[],
  options: { input?: string; stdinFile?: string; closeStdout?: boolean },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    if (options.closeStdout) child.stdout.destroy();
    else child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // The CLI may end before it has read all of stdin; that is not the test's failure.
    child.stdin.on('error', () => {});
    if (options.stdinFile) createReadStream(options.stdinFile).pipe(child.stdin);
    else child.stdin.end(options.input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const rateLimited =
  'toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit';

/** A CodeBuild log of about 6 MB whose docker build failed on its FROM line. */
function bigBuildLog(): string {
  const lines = [
    '[Container] 2024/05/14 10:01:58.117266 Running on CodeBuild On-demand',
    '[Container] 2024/05/14 10:02:01.324845 Running command docker build -t $REPOSITORY_URI:latest .',
  ];
  for (let i = 0; lines.length < 75_000; i++) {
    lines.push(`npm http fetch GET 200 https://registry.npmjs.org/package-${i} 12ms (cache miss)`);
  }
  lines.push(
    'Sending build context to Docker daemon  15.36kB',
    'Step 1/9 : FROM python:3.11-slim',
    rateLimited,
  );
  lines.push(
    '[Container] 2024/05/14 10:02:03.546211 Command did not exit successfully docker build -t $REPOSITORY_URI:latest . exit status 1',
    '[Container] 2024/05/14 10:02:03.550113 Phase complete: BUILD State: FAILED',
  );
  return `${lines.join('\n')}\n`;
}

const permissionMessage =
  "CannotPullContainerError: The task can’t pull the image. Check that the role has the permissions to pull images from the registry. Error response from daemon: pull access denied for 123123123123.dkr.ecr.us-east-1.amazonaws.com/my_image, repository does not exist or may require 'docker login': denied: User: arn:aws:sts::123123123123:assumed-role/MyBrokenRole/xyz is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:123123123123:repository/test_image because no identity-based policy allows the ecr:BatchGetImage action";

const endpointMessage =
  'ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve ecr registry auth: service call has been retried 3 time(s): RequestError: send request failed caused by: Post "https://api.ecr.us-east-1.amazonaws.com/": dial tcp 10.0.12.34:443: i/o timeout';

interface JsonCause {
  id: string;
  summary: string;
  evidence: Record<string, unknown>;
  fixes: string[];
}

describe('pullsafe explain', () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir('pullsafe-explain-');
  });
  after(async () => {
    if (dir) await removeTempDir(dir);
  });

  it('explains a message given as an argument, with the names from the message in the fixes', async () => {
    const result = await runCliInProcess(['explain', permissionMessage]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^auth-ecr-permission: Role MyBrokenRole may not call ecr:BatchGetImage/m);
    assert.match(result.stdout, /evidence:\n(?:.*\n)*\s+iamAction: ecr:BatchGetImage/);
    assert.match(
      result.stdout,
      /fixes:\n\s+1\. allow ecr:BatchGetImage on arn:aws:ecr:us-east-1:123123123123:repository\/test_image to role MyBrokenRole/,
    );
  });

  it('joins several words into one message', async () => {
    const result = await runCliInProcess([
      'explain',
      'Error',
      'response',
      'from',
      'daemon:',
      'toomanyrequests:',
      'Rate',
      'exceeded',
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^rate-limit:/m);
  });

  it('reads the message from stdin and prints the JSON contract', async () => {
    const result = await runCliWith(['explain', '--json'], { input: `${endpointMessage}\n` });
    assert.equal(result.code, 0, result.stderr);
    const output = JSON.parse(result.stdout) as {
      causes: JsonCause[];
      extracted: Record<string, unknown>;
      message: string;
    };
    assert.deepEqual(Object.keys(output).sort(), ['causes', 'extracted', 'inputLines', 'lines', 'message']);
    assert.deepEqual(
      output.causes.map((cause) => cause.id),
      ['network-vpc-endpoint', 'auth-ecr-token'],
    );
    for (const cause of output.causes) {
      assert.equal(typeof cause.summary, 'string');
      assert.equal(typeof cause.evidence, 'object');
      assert.ok(Array.isArray(cause.fixes) && cause.fixes.length > 0);
    }
    assert.equal(output.causes[0]?.evidence.dialIp, '10.0.12.34');
    assert.equal(output.extracted.ipClass, 'private');
    assert.equal(output.extracted.retries, 3);
    assert.ok(!output.message.includes('ResourceInitializationError'));
  });

  it('exits 1 for a message it does not know, and shows what it extracted', async () => {
    const result = await runCliInProcess([
      'explain',
      '--json',
      'the registry at https://registry.example.com/v2/ said something odd',
    ]);
    assert.equal(result.code, 1, result.stderr);
    const output = JSON.parse(result.stdout) as { causes: JsonCause[]; extracted: { hosts?: string[] } };
    assert.equal(output.causes[0]?.id, 'unknown');
    assert.deepEqual(output.extracted.hosts, ['registry.example.com']);
  });

  it('exits 2 without any message', async () => {
    const result = await runCliInProcess(['explain']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /no message to explain/);
    assert.equal(result.stdout, '');
  });

  it('exits 2 on empty stdin', async () => {
    const result = await runCliInProcess(['explain'], { stdin: '  \n' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /no message to explain/);
  });

  it('never prints a password that was in the message', async () => {
    const message =
      'Error response from daemon: Get "https://deploy:S3cr3tPassw0rd@registry.example.com/v2/app/manifests/1": unauthorized: authentication required; password=S3cr3tPassw0rd';
    for (const args of [
      ['explain', message],
      ['explain', '--json', message],
    ]) {
      const result = await runCliInProcess(args);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /auth-registry-credentials/);
      assert.ok(!result.stdout.includes('S3cr3tPassw0rd'), result.stdout);
      assert.ok(!result.stderr.includes('S3cr3tPassw0rd'));
    }
  });

  it('classifies addresses with a supplied ip-ranges.json', async () => {
    const file = join(dir, 'ip-ranges.json');
    await writeFile(
      file,
      JSON.stringify({
        syncToken: '1',
        prefixes: [{ ip_prefix: '198.51.100.0/24', region: 'eu-north-1', service: 'S3' }],
        ipv6_prefixes: [],
      }),
    );
    const message =
      'CannotPullContainerError: ref pull has been retried 1 time(s): failed to copy: httpReadSeeker: failed open: failed to do request: Get "https://example.invalid/layer": dial tcp 198.51.100.7:443: i/o timeout';
    const result = await runCliInProcess(['explain', '--json', '--ip-ranges', file, message]);
    assert.equal(result.code, 0, result.stderr);
    const output = JSON.parse(result.stdout) as { causes: JsonCause[]; extracted: Record<string, unknown> };
    assert.equal(output.extracted.ipClass, 'amazon-s3');
    assert.equal(output.causes[0]?.id, 'network-s3-layers');
    assert.ok(output.causes[0]?.fixes.some((fix) => fix.includes('prod-eu-north-1-starport-layer-bucket')));
  });

  it('answers a 6 MB log with its evidence lines, not the log', async () => {
    const log = bigBuildLog();
    assert.ok(log.length > 6_000_000);

    const human = await runCliInProcess(['explain'], { stdin: log });
    assert.equal(human.code, 0, human.stderr);
    assert.ok(human.stdout.length < 5_000, `${human.stdout.length} bytes of output`);
    assert.match(
      human.stdout,
      /^from the input \(2 of 75005 lines\):\n {2}Step 1\/9 : FROM python:3\.11-slim\n {2}toomanyrequests: /,
    );
    assert.match(human.stdout, /^rate-limit: Docker Hub refused to serve python:3\.11-slim/m);
    assert.match(
      human.stdout,
      /`FROM public\.ecr\.aws\/docker\/library\/python:3\.11-slim` in the Dockerfile/,
    );
    assert.ok(!human.stdout.includes('npm http fetch'));
    assert.ok(!human.stdout.includes('repositoryCredentials'));

    const json = await runCliInProcess(['explain', '--json'], { stdin: log });
    assert.equal(json.code, 0, json.stderr);
    assert.ok(json.stdout.length < 20_000, `${json.stdout.length} bytes of output`);
    const output = JSON.parse(json.stdout) as { lines: string[]; inputLines: number; message: string };
    assert.deepEqual(output.lines, ['Step 1/9 : FROM python:3.11-slim', rateLimited]);
    assert.equal(output.inputLines, 75_005);
  });

  it('ends quietly, with its usual exit code, when its reader has gone (`| head`)', async () => {
    const file = join(dir, 'codebuild-closed.log');
    await writeFile(file, bigBuildLog());
    const explained = await runCliWith(['explain'], { stdinFile: file, closeStdout: true });
    assert.equal(explained.code, 0);
    assert.equal(explained.stderr, '');

    const unknown = join(dir, 'unknown.log');
    await writeFile(unknown, 'the registry said something odd\n');
    const unexplained = await runCliWith(['explain', '--json'], { stdinFile: unknown, closeStdout: true });
    assert.equal(unexplained.code, 1);
    assert.equal(unexplained.stderr, '');
  });

  it('a closed stdout is a quiet exit for other commands too (help, scan)', async () => {
    await writeFile(join(dir, 'Dockerfile'), 'FROM nginx:1.27\n');
    for (const args of [['--help'], ['explain', '--help'], ['scan', dir]]) {
      const result = await runCliWith(args, { closeStdout: true });
      assert.equal(result.stderr, '', `pullsafe ${args.join(' ')}`);
      assert.equal(result.code, 0, `pullsafe ${args.join(' ')}`);
    }
  });

  it('exits 2 when the ip-ranges file is missing or not ip-ranges.json', async () => {
    const missing = await runCliInProcess([
      'explain',
      '--ip-ranges',
      join(dir, 'absent.json'),
      endpointMessage,
    ]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--ip-ranges .*absent\.json: cannot read the file/);
    const wrong = join(dir, 'wrong.json');
    await writeFile(wrong, '{"hello": 1}');
    const malformed = await runCliInProcess(['explain', '--ip-ranges', wrong, endpointMessage]);
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /not an AWS ip-ranges\.json document/);
  });
});

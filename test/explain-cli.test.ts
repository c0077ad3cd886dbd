/** `pullsafe explain` as users run it: message as argument or on stdin, human and JSON output, exit codes. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cliPath, runCli, type CliResult } from './helpers/cli.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';

/** Runs the CLI with `input` written to its stdin (a pipe, not a terminal). */
function runWithStdin(args: string[], input: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
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
    child.stdin.end(input);
  });
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
    const result = await runCli(['explain', permissionMessage]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^auth-ecr-permission: Role MyBrokenRole may not call ecr:BatchGetImage/m);
    assert.match(result.stdout, /evidence:\n(?:.*\n)*\s+iamAction: ecr:BatchGetImage/);
    assert.match(
      result.stdout,
      /fixes:\n\s+1\. allow ecr:BatchGetImage on arn:aws:ecr:us-east-1:123123123123:repository\/test_image to role MyBrokenRole/,
    );
  });

  it('joins several words into one message', async () => {
    const result = await runCli([
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
    const result = await runWithStdin(['explain', '--json'], `${endpointMessage}\n`);
    assert.equal(result.code, 0, result.stderr);
    const output = JSON.parse(result.stdout) as {
      causes: JsonCause[];
      extracted: Record<string, unknown>;
      message: string;
    };
    assert.deepEqual(Object.keys(output).sort(), ['causes', 'extracted', 'message']);
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
    const result = await runCli([
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
    const result = await runCli(['explain']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /no message to explain/);
    assert.equal(result.stdout, '');
  });

  it('exits 2 on empty stdin', async () => {
    const result = await runWithStdin(['explain'], '  \n');
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
      const result = await runCli(args);
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
    const result = await runCli(['explain', '--json', '--ip-ranges', file, message]);
    assert.equal(result.code, 0, result.stderr);
    const output = JSON.parse(result.stdout) as { causes: JsonCause[]; extracted: Record<string, unknown> };
    assert.equal(output.extracted.ipClass, 'amazon-s3');
    assert.equal(output.causes[0]?.id, 'network-s3-layers');
    assert.ok(output.causes[0]?.fixes.some((fix) => fix.includes('prod-eu-north-1-starport-layer-bucket')));
  });

  it('exits 2 when the ip-ranges file is missing or not ip-ranges.json', async () => {
    const missing = await runCli(['explain', '--ip-ranges', join(dir, 'absent.json'), endpointMessage]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--ip-ranges .*absent\.json: cannot read the file/);
    const wrong = join(dir, 'wrong.json');
    await writeFile(wrong, '{"hello": 1}');
    const malformed = await runCli(['explain', '--ip-ranges', wrong, endpointMessage]);
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /not an AWS ip-ranges\.json document/);
  });
});

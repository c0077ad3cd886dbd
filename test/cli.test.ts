/**
 * The CLI end to end, as a user runs it: serve, gc, fsck, exit codes, crash safety (SIGKILL mid-push) and
 * graceful shutdown (SIGTERM lets in-flight transfers finish). gc and fsck run in process; that this is
 * the same as a process of its own is checked here too.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath, runCli, runCliInProcess, startServeProcess, type ServeProcess } from './helpers/cli.ts';
import { spawn, spawnSync } from 'node:child_process';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

let folder: string;
before(async () => {
  folder = await mkdtemp(join(tmpdir(), 'pullsafe-cli-'));
});
after(async () => {
  await rm(folder, { recursive: true, force: true });
});

async function pushBlob(base: string, repo: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const response = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    body: data,
  });
  assert.equal(response.status, 201, await response.text());
  return digest;
}

async function pushImage(base: string, repo: string, tag: string) {
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layer = randomBytes(50_000);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: await pushBlob(base, repo, config),
        size: config.length,
      },
      layers: [
        {
          mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
          digest: await pushBlob(base, repo, layer),
          size: layer.length,
        },
      ],
    }),
  );
  const response = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    body: manifest,
    headers: { 'Content-Type': OCI_MANIFEST },
  });
  assert.equal(response.status, 201);
  return { manifest, layer, layerDigest: sha256(layer) };
}

function runNode(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

async function stop(server: ServeProcess): Promise<number | null> {
  server.child.kill('SIGTERM');
  return server.exited;
}

describe('command line usage', () => {
  it('prints help and exits 0', async () => {
    const result = await runCli(['--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /serve/);
    assert.match(result.stdout, /fsck/);
  });

  it('exits 2 on usage errors, with a message and no stack trace', async () => {
    for (const args of [
      ['gc'],
      ['no-such-command'],
      ['serve', '--listen', 'nonsense'],
      ['gc', '--storage', join(folder, 'missing')],
      ['gc', '--storage', folder, '--min-age', 'soon'],
    ]) {
      const result = await runCli(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.ok(result.stderr.length > 0);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  it('gives the same output and exit code in process as in a process of its own', async () => {
    // Other test files run most commands in process: this is what makes that a faithful stand-in.
    const project = join(folder, 'same-project');
    await mkdir(project);
    await writeFile(
      join(project, 'Dockerfile'),
      'FROM nginx:1.27\nFROM ghcr.io/org/app@sha256:' + 'a'.repeat(64) + '\n',
    );
    for (const args of [
      ['--help'],
      ['--version'],
      ['help', 'copy'],
      ['sync', '--help'],
      ['no-such-command'],
      ['scan', '--frob'],
      ['copy', 'only-one'],
      ['copy', '--plain-http', 'http://x', 'a', 'b'],
      ['copy', '--src-tls-verify=maybe', 'a', 'b'],
      ['inspect', '--raw', '--json', 'x'],
      ['scan', project],
      ['scan', '--json', project],
      ['scan', '--fail-on', 'docker-hub', project],
      ['rewrite', '--dry-run', '--to-ecr-public', project],
      ['explain', 'toomanyrequests: You have reached your pull rate limit.'],
      ['explain', '--json', 'something odd'],
      ['explain'],
      ['client-config', '--endpoint', 'https://cache.example.com', '--proxy', 'docker.io'],
      ['gc', '--storage', join(folder, 'missing')],
    ]) {
      const [child, inProcess] = [await runCli(args), await runCliInProcess(args)];
      assert.deepEqual(inProcess, child, `pullsafe ${args.join(' ')}`);
    }
  });

  it('on a Node older than 22.12 says what it needs and exits 2, without a stack trace', async () => {
    // The same check twice: under this Node told it is 22.11, and under the machine's own older Node
    // (fresh machines have one) running the entry point as plain JavaScript, as `node dist/cli/main.js` would.
    const told = await runNode([
      '--import',
      'data:text/javascript,Object.defineProperty(process,"versions",{value:{...process.versions,node:"22.11.0"}})',
      cliPath,
      '--version',
    ]);
    assert.equal(told.code, 2);
    assert.match(told.stderr, /^pullsafe needs Node >= 22\.12 and this is Node 22\.11\.0: run \.\/pullsafe/);
    const oldNode = ['/usr/bin/node', '/usr/local/bin/node', '/bin/node'].find((path) => {
      const version = spawnSync(path, ['--version'], { encoding: 'utf8' }).stdout ?? '';
      return /^v(1\d|20|21)\./.test(version);
    });
    assert.ok(oldNode, "peer missing: an old Node (the machine's own node, older than 22) at /usr/bin/node");
    const entry = join(folder, 'main.mjs');
    await writeFile(entry, await readFile(cliPath));
    const old = spawnSync(oldNode, [entry, 'serve'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(old.status, 2, old.stderr);
    assert.match(old.stderr, /^pullsafe needs Node >= 22\.12 and this is Node (1\d|20|21)\./);
    assert.doesNotMatch(old.stderr, /SyntaxError|\n\s+at /);
  });

  it('reports a bad config file with the key and a suggestion, exit 2', async () => {
    const file = join(folder, 'bad.yaml');
    await writeFile(file, 'storge: ./x\n');
    const result = await runCli(['serve', '--config', file]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /storge: unknown key \(did you mean "storage"\?\)/);
  });

  it('reports a bad htpasswd file, exit 2', async () => {
    const file = join(folder, 'htpasswd');
    await writeFile(file, 'alice:$apr1$abc$def\n');
    const result = await runCli(['serve', '--htpasswd', file, '--storage', join(folder, 'unused')]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /line 1/);
    assert.doesNotMatch(result.stderr, /\$apr1\$abc/);
  });
});

describe('serve, gc and fsck on one storage', () => {
  const storage = () => join(folder, 'registry');
  let image: Awaited<ReturnType<typeof pushImage>>;
  let orphan: string;

  it('serve stores what is pushed and stops cleanly on SIGTERM', async () => {
    const server = await startServeProcess(['--storage', storage()]);
    image = await pushImage(server.url, 'app/web', 'v1');
    orphan = await pushBlob(server.url, 'app/web', randomBytes(20_000));
    assert.equal(await stop(server), 0);
  });

  it('serve gives itself its V8 memory flags, in the same process, when started without them', async () => {
    const server = await startServeProcess(['--storage', join(folder, 'flags')]);
    try {
      const commandLine = (await readFile(`/proc/${server.child.pid}/cmdline`, 'utf8')).split('\0');
      assert.ok(commandLine.includes('--max-semi-space-size=2'), commandLine.join(' '));
      assert.ok(commandLine.includes('--optimize-for-size'), commandLine.join(' '));
      assert.ok(commandLine.includes('serve'), commandLine.join(' '));
    } finally {
      assert.equal(await stop(server), 0);
    }
  });

  it('gc --dry-run reports the unreferenced blob and removes nothing', async () => {
    const result = await runCliInProcess([
      'gc',
      '--storage',
      storage(),
      '--dry-run',
      '--min-age',
      '0',
      '--json',
    ]);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as {
      blobsSwept: { digest: string }[];
      blobsKept: number;
      dryRun: boolean;
    };
    assert.equal(report.dryRun, true);
    assert.deepEqual(
      report.blobsSwept.map((blob) => blob.digest),
      [orphan],
    );
    assert.equal(report.blobsKept, 3, 'manifest, config and layer');
    const again = await runCliInProcess([
      'gc',
      '--storage',
      storage(),
      '--dry-run',
      '--min-age',
      '0',
      '--json',
    ]);
    assert.deepEqual((JSON.parse(again.stdout) as { blobsSwept: unknown[] }).blobsSwept.length, 1);
  });

  it('gc keeps young blobs by default (a push may be in progress)', async () => {
    const result = await runCliInProcess(['gc', '--storage', storage()]);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /removed 0 unreferenced blobs/);
    assert.match(result.stdout, /kept 1 unreferenced blob younger than --min-age/);
  });

  it('gc removes the unreferenced blob; fsck is clean; the image still pulls', async () => {
    const result = await runCliInProcess(['gc', '--storage', storage(), '--min-age', '0']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /removed 1 unreferenced blob \(/);
    const fsck = await runCliInProcess(['fsck', '--storage', storage()]);
    assert.equal(fsck.code, 0, fsck.stdout);
    assert.match(fsck.stdout, /storage is consistent/);

    const server = await startServeProcess(['--storage', storage()]);
    try {
      const manifest = await fetch(`${server.url}/v2/app/web/manifests/v1`);
      assert.deepEqual(Buffer.from(await manifest.arrayBuffer()), image.manifest);
      const layer = await fetch(`${server.url}/v2/app/web/blobs/${image.layerDigest}`);
      assert.deepEqual(Buffer.from(await layer.arrayBuffer()), image.layer);
      assert.equal((await fetch(`${server.url}/v2/app/web/blobs/${orphan}`)).status, 404);
    } finally {
      await stop(server);
    }
  });

  it('fsck finds a corrupted blob and exits 1', async () => {
    const hex = image.layerDigest.slice('sha256:'.length);
    await writeFile(join(storage(), 'blobs', 'sha256', hex.slice(0, 2), hex), 'bit rot');
    const fsck = await runCliInProcess(['fsck', '--storage', storage(), '--json']);
    assert.equal(fsck.code, 1);
    const report = JSON.parse(fsck.stdout) as { problems: { kind: string; digest?: string }[] };
    assert.ok(
      report.problems.some(
        (problem) => problem.kind === 'corrupt-blob' && problem.digest === image.layerDigest,
      ),
    );
    assert.ok(report.problems.some((problem) => problem.kind === 'missing-blob'));
  });
});

describe('crash safety and graceful shutdown', () => {
  it('SIGKILL in the middle of a push leaves no partial blob visible, and fsck clean', async () => {
    const storage = join(folder, 'crash');
    const server = await startServeProcess(['--storage', storage]);
    await pushImage(server.url, 'crash/app', 'v1');
    const data = randomBytes(4 * 1024 * 1024);
    const digest = sha256(data);
    const start = await fetch(`${server.url}/v2/crash/app/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;

    // A monolithic PUT that sends half its body, then stalls.
    const url = new URL(`${server.url}${location}?digest=${digest}`);
    const req = httpRequest({
      host: url.hostname,
      port: url.port,
      method: 'PUT',
      path: `${url.pathname}${url.search}`,
      headers: { 'Content-Length': data.length },
    });
    req.on('error', () => undefined);
    req.write(data.subarray(0, data.length / 2));
    let received = 0;
    for (let i = 0; i < 200 && received === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      const status = await fetch(`${server.url}${location}`);
      received = Number((status.headers.get('range') ?? '0-0').split('-')[1]);
    }
    assert.ok(received > 0, 'the server has written part of the body');
    server.child.kill('SIGKILL');
    await server.exited;
    req.destroy();

    const restarted = await startServeProcess(['--storage', storage]);
    try {
      const head = await fetch(`${restarted.url}/v2/crash/app/blobs/${digest}`, { method: 'HEAD' });
      assert.equal(head.status, 404, 'the half-written blob is not visible');
      assert.equal((await fetch(`${restarted.url}/v2/crash/app/manifests/v1`)).status, 200);
    } finally {
      await stop(restarted);
    }
    const fsck = await runCliInProcess(['fsck', '--storage', storage]);
    assert.equal(fsck.code, 0, fsck.stdout);
    const blobs: string[] = [];
    for (const prefix of await readdir(join(storage, 'blobs', 'sha256')))
      blobs.push(...(await readdir(join(storage, 'blobs', 'sha256', prefix))));
    assert.ok(!blobs.includes(digest.slice(7)));
    assert.ok(
      blobs.every((name) => /^[0-9a-f]{64}$/.test(name)),
      'no temporary names among blobs',
    );
  });

  it('SIGTERM lets an in-flight download finish, then exits 0', async () => {
    const storage = join(folder, 'drain');
    const server = await startServeProcess(['--storage', storage]);
    const data = randomBytes(32 * 1024 * 1024);
    const digest = await pushBlob(server.url, 'drain/app', data);

    const url = new URL(`${server.url}/v2/drain/app/blobs/${digest}`);
    const downloaded = new Promise<Buffer>((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname }, (res) => {
        const chunks: Buffer[] = [];
        let first = true;
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          if (first) {
            // Stop reading, ask the server to stop while the transfer is under way, then read on.
            first = false;
            res.pause();
            server.child.kill('SIGTERM');
            setTimeout(() => res.resume(), 300);
          }
        });
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    const body = await downloaded;
    assert.equal(body.length, data.length);
    assert.equal(sha256(body), digest);
    assert.equal(await server.exited, 0);
    assert.match(server.logs(), /shutting down/);
  });
});

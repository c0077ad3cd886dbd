/**
 * The OCI image layout endpoint against real files, real peers (docker-registry, skopeo) and pullsafe's
 * own registry for referrers: untagged entries, concurrent writers (in one process and in several),
 * bad paths, temporaries, damaged layouts and referrers. Copies go through the engine (`copyImage`).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeImage, pushImage, writeOciLayout, type TestImage } from '../../test/helpers/fixtures.ts';
import { OCI_MANIFEST, pushBlob, pushManifest, request, sha256 } from '../../test/helpers/http.ts';
import { skopeoOk, startDistribution, type Distribution } from '../../test/helpers/peers.ts';
import { startPullsafe, type TestRegistry } from '../../test/helpers/pullsafe.ts';
import { makeTempDir, removeTempDir } from '../../test/helpers/tmp.ts';
import { RegistryClient } from '../client/index.ts';
import { PullsafeError } from '../errors/index.ts';
import { parseDigest, type Digest } from '../oci/digest.ts';
import { copyImage } from './copy.ts';
import { OciLayout, parseLayoutReference } from './layout.ts';
import { RegistryEndpoint } from './registry-endpoint.ts';

const layoutModule = fileURLToPath(new URL('./layout.ts', import.meta.url));
const moduleUrl = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
const refName = 'org.opencontainers.image.ref.name';
const host = hostname().replace(/[^A-Za-z0-9.-]/g, '_') || 'localhost';

interface IndexFile {
  manifests: {
    mediaType: string;
    digest: string;
    size: number;
    artifactType?: string;
    annotations?: Record<string, string>;
  }[];
}

async function readIndexFile(dir: string): Promise<IndexFile> {
  return JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as IndexFile;
}

function tags(index: IndexFile): string[] {
  return index.manifests.map((entry) => entry.annotations?.[refName] ?? '').sort();
}

function blobFile(dir: string, digest: string): string {
  return join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

/** A failure a person can act on: a usage error (the CLI's exit 2) with its message, never another error. */
async function assertUsageError(work: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(work, (error: unknown) => {
    assert.ok(error instanceof PullsafeError, `not a PullsafeError: ${String(error)}`);
    assert.equal(error.code, 'USAGE', error.message);
    assert.match(error.message, message);
    return true;
  });
}

/** Resolves once `child` has exited (also when it already had). */
function exited(child: ChildProcess): Promise<unknown> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => child.once('exit', done));
}

/** Runs an ES module script in a Node process of its own; resolves with its exit code and stderr. */
function runScript(
  script: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

/** The pid of a process that has exited (for stale owners). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await exited(child);
  return child.pid!;
}

let distribution: Distribution;
let client: RegistryClient;
let work: string;
let image: TestImage;
let source: string;

/** A repository of the test's distribution, as a copy source. */
function fromDistribution(repository: string): RegistryEndpoint {
  return new RegistryEndpoint(client, { registry: distribution.host, repository });
}

before(async () => {
  work = await makeTempDir('pullsafe-layout-');
  image = await makeImage({
    format: 'oci',
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ],
    seed: 'layout-tests',
    layers: 2,
    layerSize: 50_000,
  });
  source = join(work, 'source');
  await writeOciLayout(source, image, 'v1');
  distribution = await startDistribution();
  await pushImage(distribution.url, 'team/app', 'v1', image);
  client = new RegistryClient();
});

after(async () => {
  await client?.close();
  await distribution?.stop();
  if (work) await removeTempDir(work);
});

describe('OCI layout target: copies by digest', () => {
  it('writes oci-layout and one untagged index.json entry that skopeo reads; a re-run adds nothing', async () => {
    const dir = join(work, 'by-digest');
    const digest = image.index.digest;
    const first = await copyImage(fromDistribution('team/app'), digest, new OciLayout(dir), digest);
    assert.equal(first.upToDate, false);
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8')), {
      imageLayoutVersion: '1.0.0',
    });
    const index = await readIndexFile(dir);
    assert.deepEqual(index.manifests, [
      { mediaType: image.index.mediaType, digest: image.index.digest, size: image.index.bytes.length },
    ]);

    const raw = await skopeoOk(['inspect', '--raw', `oci:${dir}`]);
    assert.equal(sha256(Buffer.from(raw.stdout)), image.index.digest);
    await skopeoOk(['copy', '--all', `oci:${dir}`, `dir:${join(work, 'by-digest-out')}`]);

    const again = await copyImage(fromDistribution('team/app'), digest, new OciLayout(dir), digest);
    assert.equal(again.upToDate, true);
    await copyImage(fromDistribution('team/app'), digest, new OciLayout(dir), digest, { referrers: true });
    assert.equal((await readIndexFile(dir)).manifests.length, 1);
  });

  it('records a digest-only copy of one platform manifest, but not the children of a tagged index', async () => {
    const dir = join(work, 'child-and-tag');
    const child = image.manifests[0]!;
    const layout = new OciLayout(dir);
    await copyImage(new OciLayout(source), 'v1', layout, 'v1');
    assert.deepEqual(tags(await readIndexFile(dir)), ['v1']);
    // Held through the tagged index: nothing to add.
    const held = await copyImage(new OciLayout(source), child.digest, new OciLayout(dir), child.digest);
    assert.equal(held.upToDate, true);
    assert.deepEqual(tags(await readIndexFile(dir)), ['v1']);

    const alone = join(work, 'child-alone');
    await copyImage(new OciLayout(source), child.digest, new OciLayout(alone), child.digest);
    const index = await readIndexFile(alone);
    assert.deepEqual(index.manifests, [
      { mediaType: child.mediaType, digest: child.digest, size: child.bytes.length },
    ]);
  });

  it('repairs a layout whose blobs were written without an index.json', async () => {
    const dir = join(work, 'no-index');
    await copyImage(new OciLayout(source), image.index.digest, new OciLayout(dir), image.index.digest);
    await rm(join(dir, 'index.json'));
    const result = await copyImage(
      new OciLayout(source),
      image.index.digest,
      new OciLayout(dir),
      image.index.digest,
    );
    assert.equal(result.upToDate, false);
    assert.equal(result.blobsCopied, 0);
    assert.deepEqual(
      (await readIndexFile(dir)).manifests.map((entry) => entry.digest),
      [image.index.digest],
    );
  });
});

describe('OCI layout target: concurrent writers', () => {
  it('keeps every tag when six writers in one process finish at once', async () => {
    const dir = join(work, 'concurrent');
    await copyImage(new OciLayout(source), 'v1', new OciLayout(dir), 'old');
    await Promise.all(
      ['t0', 't1', 't2', 't3', 't4', 't5'].map((tag) =>
        copyImage(new OciLayout(source), 'v1', new OciLayout(dir), tag),
      ),
    );
    assert.deepEqual(tags(await readIndexFile(dir)), ['old', 't0', 't1', 't2', 't3', 't4', 't5']);
    assert.equal(existsSync(join(dir, 'index.json.lock')), false);
  });

  it('keeps every tag when four processes copy into one layout', async () => {
    const dir = join(work, 'concurrent-processes');
    const script = [
      `import { RegistryClient } from ${moduleUrl('../client/index.ts')};`,
      `import { copyImage } from ${moduleUrl('./copy.ts')};`,
      `import { OciLayout } from ${moduleUrl('./layout.ts')};`,
      `import { RegistryEndpoint } from ${moduleUrl('./registry-endpoint.ts')};`,
      `const client = new RegistryClient();`,
      `const source = new RegistryEndpoint(client, { registry: process.env.REGISTRY, repository: 'team/app' });`,
      `await copyImage(source, 'v1', new OciLayout(process.env.DIR), process.env.TAG);`,
      `await client.close();`,
    ].join('\n');
    const results = await Promise.all(
      ['p0', 'p1', 'p2', 'p3'].map((tag) =>
        runScript(script, { REGISTRY: distribution.host, DIR: dir, TAG: tag }),
      ),
    );
    for (const result of results) assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(tags(await readIndexFile(dir)), ['p0', 'p1', 'p2', 'p3']);
  });

  it('waits for a live lock holder, and breaks a lock left by a dead process or too old', async () => {
    const dir = join(work, 'locked');
    await copyImage(new OciLayout(source), 'v1', new OciLayout(dir), 'a');
    const lock = join(dir, 'index.json.lock');

    await writeFile(lock, JSON.stringify({ pid: process.pid, host, token: 'other-writer' }));
    let settled = false;
    const waiting = copyImage(new OciLayout(source), 'v1', new OciLayout(dir), 'b').finally(
      () => (settled = true),
    );
    await sleep(400);
    assert.equal(settled, false, 'finish must wait while a live writer holds the lock');
    assert.deepEqual(tags(await readIndexFile(dir)), ['a']);
    await rm(lock);
    await waiting;
    assert.deepEqual(tags(await readIndexFile(dir)), ['a', 'b']);

    await writeFile(lock, JSON.stringify({ pid: await deadPid(), host, token: 'dead' }));
    await copyImage(new OciLayout(source), 'v1', new OciLayout(dir), 'c');
    await writeFile(lock, 'garbage');
    const old = new Date(Date.now() - 5 * 60_000);
    await utimes(lock, old, old);
    await copyImage(new OciLayout(source), 'v1', new OciLayout(dir), 'd');
    assert.deepEqual(tags(await readIndexFile(dir)), ['a', 'b', 'c', 'd']);
    assert.equal(existsSync(lock), false);
  });
});

describe('OCI layout: paths that cannot be a layout', () => {
  it('fails with a usage error (no hang) for a file, /dev/null/x and /proc', async () => {
    const file = join(work, 'afile');
    await writeFile(file, 'not a folder');
    for (const target of [file, `${file}/sub`, '/dev/null/x', '/proc/nope']) {
      const started = Date.now();
      await assertUsageError(
        copyImage(new OciLayout(source), 'v1', new OciLayout(target), 'x'),
        /not a folder|a file, not a folder|cannot create/,
      );
      assert.ok(Date.now() - started < 15_000, `${target} took too long`);
    }
    await assertUsageError(new OciLayout(file).getManifest('x'), /afile/);
    assert.equal(await readFile(file, 'utf8'), 'not a folder');
  });

  it('names a missing folder, or a folder without index.json, as the source', async () => {
    const missing = join(work, 'nonexistent');
    await assertUsageError(new OciLayout(missing).getManifest('1'), /folder .*nonexistent does not exist/);
    const empty = join(work, 'empty-folder');
    await mkdir(empty);
    await assertUsageError(
      new OciLayout(empty).getManifest('1'),
      /not an OCI layout: .*index\.json does not exist/,
    );
    const never = join(work, 'never');
    await assertUsageError(
      copyImage(new OciLayout(missing), '1', new OciLayout(never), '1'),
      /does not exist/,
    );
    assert.equal(existsSync(never), false);
    await assertUsageError(new OciLayout(source).getManifest('nope'), /no image nope in the layout/);
  });
});

describe('OCI layout target: temporaries', () => {
  it('removes temporaries of a writer killed mid-blob, keeps a live process’s, and never shows a partial blob', async () => {
    const dir = join(work, 'killed');
    const digest = sha256('never finished');
    const script = [
      `import { OciLayout } from ${JSON.stringify(layoutModule)};`,
      `import { Readable } from 'node:stream';`,
      `setInterval(() => {}, 1000);`,
      `const stream = new Readable({ read() {} });`,
      `stream.push(Buffer.alloc(4096, 1));`,
      `await new OciLayout(process.env.DIR).putBlob(process.env.DIGEST, 1_000_000, async () => stream);`,
    ].join('\n');
    const writer = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, DIR: dir, DIGEST: digest },
      stdio: 'ignore',
    });
    const blobs = join(dir, 'blobs', 'sha256');
    const ownTemp = new RegExp(`\\.partial-${writer.pid}@`);
    let partial: string | undefined;
    for (let i = 0; i < 200 && !partial; i++) {
      await sleep(50);
      partial = (await readdir(blobs).catch(() => [] as string[])).find((name) => ownTemp.test(name));
    }
    writer.kill('SIGKILL');
    await exited(writer);
    assert.ok(partial, 'the writer made a temporary');
    assert.equal(existsSync(blobFile(dir, digest)), false);

    const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      const live = `${'cd'.repeat(32)}.partial-${sleeper.pid}@${host}-0123456789ab`;
      const otherHost = `${'ef'.repeat(32)}.partial-${await deadPid()}@elsewhere.example-0123456789ab`;
      const ownerlessOld = `${'12'.repeat(32)}.partial-0123456789ab`;
      const ownerlessNew = `${'34'.repeat(32)}.partial-0123456789ab`;
      for (const name of [live, otherHost, ownerlessOld, ownerlessNew])
        await writeFile(join(blobs, name), 'x');
      const old = new Date(Date.now() - 2 * 3600_000);
      await utimes(join(blobs, ownerlessOld), old, old);

      await copyImage(new OciLayout(source), 'v1', new OciLayout(dir), 'v1');
      const names = await readdir(blobs);
      assert.equal(names.includes(partial), false, 'the dead writer’s temporary is removed');
      assert.equal(names.includes(ownerlessOld), false);
      for (const kept of [live, otherHost, ownerlessNew]) assert.ok(names.includes(kept), `${kept} is kept`);
    } finally {
      sleeper.kill('SIGKILL');
    }

    // Wrong bytes never appear under the digest, and leave no temporary.
    const layout = new OciLayout(dir);
    const wanted = parseDigest(sha256('right bytes'));
    await assert.rejects(layout.putBlob(wanted, 11, async () => Readable.from([Buffer.from('wrong bytes')])));
    assert.equal(existsSync(blobFile(dir, wanted)), false);
    assert.equal(
      (await readdir(blobs)).filter((name) => name.includes(`.partial-${process.pid}@`)).length,
      0,
    );
  });
});

describe('OCI layout target: up to date only when the tree is complete', () => {
  it('rewrites a deleted layer, a truncated layer and a deleted child manifest', async () => {
    const dir = join(work, 'dmg');
    const copy = () => copyImage(fromDistribution('team/app'), 'v1', new OciLayout(dir), '1');
    await copy();
    const layer = image.manifests[0]!.layers[1]!;
    const child = image.manifests[1]!;

    await rm(blobFile(dir, layer.digest));
    let result = await copy();
    assert.equal(result.upToDate, false);
    assert.equal(result.blobsCopied, 1);
    assert.deepEqual(await readFile(blobFile(dir, layer.digest)), layer.data);

    await truncate(blobFile(dir, layer.digest), 100);
    result = await copy();
    assert.equal(result.blobsCopied, 1);
    assert.deepEqual(await readFile(blobFile(dir, layer.digest)), layer.data);

    await rm(blobFile(dir, child.digest));
    result = await copy();
    assert.equal(result.upToDate, false);
    assert.deepEqual(await readFile(blobFile(dir, child.digest)), child.bytes);

    result = await copy();
    assert.equal(result.upToDate, true);
    assert.deepEqual(tags(await readIndexFile(dir)), ['1']);
    assert.equal((await stat(blobFile(dir, layer.digest))).size, layer.data.length);
  });
});

describe('OCI layout: referrers', () => {
  let pullsafe: TestRegistry;
  let referrerDigest: string;
  const artifactType = 'application/vnd.example.sbom';

  before(async () => {
    pullsafe = await startPullsafe();
    await pushImage(pullsafe.url, 'signed/app', 'v1', image);
    const config = Buffer.from('{}');
    await pushBlob(pullsafe.url, 'signed/app', config);
    const subject = image.manifests[0]!;
    const referrer = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType,
        config: {
          mediaType: 'application/vnd.oci.empty.v1+json',
          digest: sha256(config),
          size: config.length,
        },
        layers: [],
        subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.bytes.length },
      }),
    );
    referrerDigest = sha256(referrer);
    const pushed = await pushManifest(pullsafe.url, 'signed/app', referrerDigest, OCI_MANIFEST, referrer);
    assert.equal(pushed.status, 201, pushed.response.text());
  });
  after(async () => pullsafe?.stop());

  it('records referrers as untagged entries, lists them, and copies them out of the layout again', async () => {
    const registry = new URL(pullsafe.url).host;
    const signed = new RegistryEndpoint(client, { registry, repository: 'signed/app' });
    const dir = join(work, 'referrers');
    await copyImage(signed, 'v1', new OciLayout(dir), 'v1', { referrers: true });
    const index = await readIndexFile(dir);
    const untagged = index.manifests.filter((entry) => !entry.annotations);
    assert.equal(untagged.length, 1);
    assert.equal(untagged[0]!.digest, referrerDigest);
    assert.equal(untagged[0]!.artifactType, artifactType);
    assert.equal(untagged[0]!.mediaType, OCI_MANIFEST);

    const layout = new OciLayout(dir);
    assert.deepEqual(await layout.referrers(image.manifests[0]!.digest as Digest), [referrerDigest]);
    assert.deepEqual(await layout.referrers(image.manifests[1]!.digest as Digest), []);

    await copyImage(signed, 'v1', new OciLayout(dir), 'v1', { referrers: true });
    assert.equal((await readIndexFile(dir)).manifests.length, 2);

    const backTarget = new RegistryEndpoint(client, { registry, repository: 'back/app' });
    const back = await copyImage(new OciLayout(dir), 'v1', backTarget, 'v1', { referrers: true });
    assert.equal(back.referrersCopied, 1);
    const listed = await request(`${pullsafe.url}/v2/back/app/referrers/${image.manifests[0]!.digest}`);
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.json<{ manifests: { digest: string }[] }>().manifests.map((entry) => entry.digest),
      [referrerDigest],
    );
    // Named without a tag, the layout still means its one image, not the referrer.
    const only = await new OciLayout(dir).getManifest(undefined);
    assert.equal(sha256(only.bytes), image.index.digest);
  });
});

describe('layout names', () => {
  it('oci:DIR@DIGEST is a digest; an @ elsewhere in a folder name is part of the name', () => {
    const digest = `sha256:${'c'.repeat(64)}`;
    assert.deepEqual(parseLayoutReference(`oci:/l/app@${digest}`), { dir: '/l/app', reference: digest });
    assert.deepEqual(parseLayoutReference(`oci:/l/backup@v2:${'a'.repeat(40)}`), {
      dir: '/l/backup@v2',
      reference: 'a'.repeat(40),
    });
    assert.deepEqual(parseLayoutReference('oci:/l/backup@v2:tag1'), {
      dir: '/l/backup@v2',
      reference: 'tag1',
    });
    assert.throws(() => parseLayoutReference('oci:/l/app@sha256'), /a digest after "@" is ALGORITHM:HEX/);
    assert.throws(() => parseLayoutReference('oci:/l/app@sha256:zz'), /a digest after "@" is ALGORITHM:HEX/);
  });
});

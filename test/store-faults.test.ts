/**
 * The filesystem storage under faults: concurrent writers of one key, writers killed at random moments
 * (in-process store and `pullsafe serve`), interrupted gc runs, leftover temporaries; checked through the
 * real store and the real CLI (serve in a process of its own, gc and fsck in process).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf, type Digest } from '../src/oci/digest.ts';
import { FsRepositoryStore, openFsStorage, type FsckReport, type GcReport } from '../src/store/index.ts';
import { cliPath, runCliInProcess, startServeProcess, type ServeProcess } from './helpers/cli.ts';
import { startPullsafe } from './helpers/pullsafe.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';

let folder: string;
before(async () => {
  folder = await makeTempDir('pullsafe-faults-');
});
after(async () => {
  await removeTempDir(folder);
});

let storageCount = 0;
function freshStorageDir(): string {
  return join(folder, `storage-${++storageCount}`);
}

const digests = Array.from({ length: 32 }, (_, index) => digestOf(`manifest ${index}`));

describe('what is served is what is on disk', () => {
  it('concurrent setTag of one tag: the old instance and a restarted one agree, every round', async () => {
    const root = freshStorageDir();
    const storage = await openFsStorage(root);
    for (let round = 0; round < 40; round++) {
      await Promise.all(digests.map((digest) => storage.repositories.setTag('app', 'latest', digest)));
      const served = await storage.repositories.getTag('app', 'latest');
      const restarted = new FsRepositoryStore(root);
      assert.equal(await restarted.getTag('app', 'latest'), served, `round ${round}`);
    }
  });

  it('a cache-miss read racing setTag never leaves the old digest in memory', async () => {
    const root = freshStorageDir();
    const writer = await openFsStorage(root);
    const tags = Array.from({ length: 16 }, (_, index) => `t${index}`);
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    for (let round = 0; round < 40; round++) {
      const before = digests[round % digests.length]!;
      const next = digests[(round + 1) % digests.length]!;
      await Promise.all(tags.map((tag) => writer.repositories.setTag('app', tag, before)));
      // One fresh instance per tag, so each read below is a cache miss, started at a random moment of the
      // write.
      const stores = tags.map(() => new FsRepositoryStore(root));
      await Promise.all(
        tags.flatMap((tag, index) => [
          stores[index]!.setTag('app', tag, next),
          ...Array.from({ length: 3 }, () =>
            pause(Math.random() * 8).then(() => stores[index]!.getTag('app', tag)),
          ),
        ]),
      );
      for (const [index, tag] of tags.entries()) {
        assert.equal(await stores[index]!.getTag('app', tag), next, `round ${round}, ${tag}`);
      }
    }
  });

  it('deleteTag and setTag racing on one tag: served and on-disk agree', async () => {
    const root = freshStorageDir();
    const storage = await openFsStorage(root);
    for (let round = 0; round < 40; round++) {
      await Promise.all(
        digests
          .slice(0, 8)
          .flatMap((digest) => [
            storage.repositories.setTag('app', 'v1', digest),
            storage.repositories.deleteTag('app', 'v1'),
          ]),
      );
      const served = await storage.repositories.getTag('app', 'v1');
      assert.equal(await new FsRepositoryStore(root).getTag('app', 'v1'), served, `round ${round}`);
    }
  });

  it('linkManifest and unlinkManifest racing on one digest: served and on-disk agree', async () => {
    const root = freshStorageDir();
    const storage = await openFsStorage(root);
    const digest = digests[0]!;
    for (let round = 0; round < 40; round++) {
      await Promise.all(
        Array.from({ length: 8 }, (_, index) =>
          index % 2 === 0
            ? storage.repositories.linkManifest('app', { digest, mediaType: 'm', size: index })
            : storage.repositories.unlinkManifest('app', digest),
        ),
      );
      const served = await storage.repositories.getManifest('app', digest);
      assert.deepEqual(
        await new FsRepositoryStore(root).getManifest('app', digest),
        served,
        `round ${round}`,
      );
    }
  });
});

/** Runs a child process that sets tags through the real store in a loop until it is killed. */
function tagWriterScript(root: string): string {
  const storeUrl = new URL('../src/store/index.ts', import.meta.url).href;
  return `
    const { openFsStorage } = await import(${JSON.stringify(storeUrl)});
    const storage = await openFsStorage(${JSON.stringify(root)});
    const digests = ${JSON.stringify(digests.slice(0, 4))};
    process.stdout.write('ready\\n');
    for (let i = 0; ; i++) {
      await Promise.all(['a', 'b', 'c', 'd'].map((tag, n) =>
        storage.repositories.setTag('app', tag, digests[(i + n) % digests.length])));
    }
  `;
}

async function runUntilKilled(script: string, killAfterMs: number): Promise<void> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the writer did not start within 10 s')), 10_000);
    child.stdout.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('error', reject);
  });
  await new Promise((resolve) => setTimeout(resolve, killAfterMs));
  child.kill('SIGKILL');
  await exited;
}

describe('writers killed at random moments', () => {
  it('a store killed while setting tags leaves only tags that were set, each readable', async () => {
    const root = freshStorageDir();
    for (let round = 0; round < 8; round++) {
      await runUntilKilled(tagWriterScript(root), 20 + Math.floor(Math.random() * 80));
      const store = new FsRepositoryStore(root);
      const tags = await store.listTags('app');
      assert.ok(
        tags.every((tag) => ['a', 'b', 'c', 'd'].includes(tag)),
        `round ${round}: tags nobody set: ${tags.join(', ')}`,
      );
      for (const tag of tags) {
        assert.ok(digests.includes((await store.getTag('app', tag)) as Digest), `${tag} is readable`);
      }
      const names = await readdir(join(root, 'repositories', 'app', '_tags'));
      assert.deepEqual(names.sort(), tags, 'nothing else in the tags folder');
    }
  });
});

// ---- helpers for images pushed over HTTP -----------------------------------------------------------------

const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
const ociIndex = 'application/vnd.oci.image.index.v1+json';
const ociConfig = 'application/vnd.oci.image.config.v1+json';
const ociLayer = 'application/vnd.oci.image.layer.v1.tar+gzip';
const ociEmpty = 'application/vnd.oci.empty.v1+json';

interface Pushed {
  digest: Digest;
  size: number;
  mediaType: string;
}

async function pushBlob(
  base: string,
  repository: string,
  data: Buffer,
  mediaType = ociLayer,
): Promise<Pushed> {
  const digest = digestOf(data);
  const response = await fetch(`${base}/v2/${repository}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    body: data,
  });
  assert.equal(response.status, 201, await response.text());
  return { digest, size: data.length, mediaType };
}

async function pushManifest(
  base: string,
  repository: string,
  reference: string | undefined,
  document: object,
): Promise<Pushed> {
  const bytes = Buffer.from(JSON.stringify(document));
  const digest = digestOf(bytes);
  const mediaType = (document as { mediaType: string }).mediaType;
  const response = await fetch(`${base}/v2/${repository}/manifests/${reference ?? digest}`, {
    method: 'PUT',
    body: bytes,
    headers: { 'Content-Type': mediaType },
  });
  assert.equal(response.status, 201, await response.text());
  return { digest, size: bytes.length, mediaType };
}

function descriptor(pushed: Pushed): { mediaType: string; digest: string; size: number } {
  return { mediaType: pushed.mediaType, digest: pushed.digest, size: pushed.size };
}

function image(config: Pushed, layers: Pushed[], extra: object = {}): object {
  return {
    schemaVersion: 2,
    mediaType: ociManifest,
    config: descriptor(config),
    layers: layers.map(descriptor),
    ...extra,
  };
}

function index(children: Pushed[]): object {
  return { schemaVersion: 2, mediaType: ociIndex, manifests: children.map(descriptor) };
}

async function gc(storage: string, ...flags: string[]): Promise<GcReport> {
  const result = await runCliInProcess(['gc', '--storage', storage, '--json', ...flags]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as GcReport;
}

async function fsck(storage: string): Promise<{ code: number | null; report: FsckReport }> {
  const result = await runCliInProcess(['fsck', '--storage', storage, '--json']);
  assert.ok(result.code === 0 || result.code === 1, result.stderr);
  return { code: result.code, report: JSON.parse(result.stdout) as FsckReport };
}

/** Every layer link in the storage whose blob file is missing, as `repository digest`. */
async function linksToMissingBlobs(storage: string): Promise<string[]> {
  const store = await openFsStorage(storage, { removeStaleTemporaries: false });
  const dangling: string[] = [];
  for (const repository of await store.repositories.listRepositories()) {
    for (const digest of await store.repositories.listBlobLinks(repository)) {
      if (!(await store.blobs.stat(digest))) dangling.push(`${repository} ${digest}`);
    }
  }
  return dangling;
}

async function blobPath(storage: string, digest: Digest): Promise<string> {
  const hex = digest.slice('sha256:'.length);
  const path = join(storage, 'blobs', 'sha256', hex.slice(0, 2), hex);
  await stat(path);
  return path;
}

describe('gc --delete-untagged', () => {
  let root: string;
  const pushed: Record<string, Pushed> = {};

  before(async () => {
    root = join(folder, 'untagged');
    const registry = await startPullsafe({ storageDir: root });
    try {
      const base = registry.url;
      const configBytes = Buffer.from('{"os":"linux"}');
      const config = await pushBlob(base, 'app', configBytes, ociConfig);
      await pushBlob(base, 'other', configBytes, ociConfig);
      const empty = await pushBlob(base, 'app', Buffer.from('{}'), ociEmpty);
      const layer = (name: string) => Buffer.from(`layer of ${name} ${randomBytes(8).toString('hex')}`);
      const untaggedBytes = layer('untagged');
      const taggedLayer = await pushBlob(base, 'app', layer('tagged'));
      const untaggedLayer = await pushBlob(base, 'app', untaggedBytes);
      await pushBlob(base, 'other', untaggedBytes);
      const childLayer = await pushBlob(base, 'app', layer('child'));
      const orphanChildLayer = await pushBlob(base, 'app', layer('orphan child'));
      const signatureLayer = await pushBlob(base, 'app', layer('signature'));
      pushed.tagged = await pushManifest(base, 'app', 'v1', image(config, [taggedLayer]));
      pushed.untagged = await pushManifest(base, 'app', undefined, image(config, [untaggedLayer]));
      // The same content, tagged in another repository: its blobs stay.
      await pushManifest(base, 'other', 'keep', image(config, [untaggedLayer]));
      pushed.child = await pushManifest(base, 'app', undefined, image(config, [childLayer]));
      pushed.index = await pushManifest(base, 'app', 'multi', index([pushed.child]));
      pushed.orphanChild = await pushManifest(base, 'app', undefined, image(config, [orphanChildLayer]));
      pushed.orphanIndex = await pushManifest(base, 'app', undefined, index([pushed.orphanChild]));
      const artifact = (subject: Pushed, layer: Pushed) =>
        image(empty, [layer], {
          artifactType: 'application/example.signature',
          subject: descriptor(subject),
        });
      pushed.signature = await pushManifest(base, 'app', undefined, artifact(pushed.tagged, signatureLayer));
      pushed.signatureOfSignature = await pushManifest(
        base,
        'app',
        undefined,
        artifact(pushed.signature, signatureLayer),
      );
      pushed.signatureOfUntagged = await pushManifest(
        base,
        'app',
        undefined,
        artifact(pushed.untagged, signatureLayer),
      );
      pushed.orphanChildLayer = orphanChildLayer;
      pushed.untaggedLayer = untaggedLayer;
    } finally {
      await registry.stop();
    }
  });

  const removable = () =>
    ['untagged', 'orphanChild', 'orphanIndex', 'signatureOfUntagged']
      .map((name) => `app@${pushed[name]!.digest}`)
      .sort();

  it('is off by default: every manifest stays', async () => {
    const report = await gc(root, '--dry-run', '--min-age', '0');
    assert.equal(report.deleteUntagged, false);
    assert.deepEqual(report.manifestsRemoved, []);
    assert.deepEqual(report.blobsSwept, []);
  });

  it('keeps untagged manifests younger than --min-age (a push in progress)', async () => {
    const report = await gc(root, '--delete-untagged', '--dry-run');
    assert.deepEqual(report.manifestsRemoved, []);
    assert.equal(report.manifestsTooNew, 4);
  });

  it('--dry-run lists the untagged manifests and their blobs, and removes nothing', async () => {
    const report = await gc(root, '--delete-untagged', '--dry-run', '--min-age', '0');
    assert.equal(report.dryRun, true);
    assert.deepEqual(
      report.manifestsRemoved.map(({ repository, digest }) => `${repository}@${digest}`).sort(),
      removable(),
    );
    const swept = report.blobsSwept.map((blob) => blob.digest).sort();
    assert.deepEqual(
      swept,
      [pushed.orphanChild!, pushed.orphanIndex!, pushed.signatureOfUntagged!, pushed.orphanChildLayer!]
        .map((item) => item.digest)
        .sort(),
      'the untagged manifest tagged in another repository keeps its content and layer',
    );
    const text = await runCliInProcess([
      'gc',
      '--storage',
      root,
      '--delete-untagged',
      '--dry-run',
      '--min-age',
      '0',
    ]);
    assert.match(text.stdout, /would remove 4 untagged manifests\n/);
    for (const name of removable()) assert.ok(text.stdout.includes(`  ${name}\n`), text.stdout);
    assert.deepEqual(
      (await gc(root, '--delete-untagged', '--dry-run', '--min-age', '0')).manifestsRemoved.length,
      4,
    );
  });

  it('removes them; tagged images, their children and referrers of kept manifests still pull', async () => {
    const report = await gc(root, '--delete-untagged', '--min-age', '0');
    assert.equal(report.manifestsRemoved.length, 4);
    assert.equal(report.blobsSwept.length, 4);
    const registry = await startPullsafe({ storageDir: root });
    try {
      const status = async (repository: string, reference: string) =>
        (await fetch(`${registry.url}/v2/${repository}/manifests/${reference}`)).status;
      for (const name of ['tagged', 'child', 'index', 'signature', 'signatureOfSignature']) {
        assert.equal(await status('app', pushed[name]!.digest), 200, name);
      }
      for (const name of ['untagged', 'orphanChild', 'orphanIndex', 'signatureOfUntagged']) {
        assert.equal(await status('app', pushed[name]!.digest), 404, name);
      }
      assert.equal(await status('other', 'keep'), 200);
      assert.equal(await status('app', 'v1'), 200);
      assert.equal(await status('app', 'multi'), 200);
      const referrers = (await (
        await fetch(`${registry.url}/v2/app/referrers/${pushed.tagged!.digest}`)
      ).json()) as { manifests: { digest: string }[] };
      assert.deepEqual(
        referrers.manifests.map((item) => item.digest),
        [pushed.signature!.digest],
      );
      const layer = await fetch(`${registry.url}/v2/other/blobs/${pushed.untaggedLayer!.digest}`);
      assert.equal(layer.status, 200);
    } finally {
      await registry.stop();
    }
    const checked = await fsck(root);
    assert.deepEqual(checked.report.problems, []);
    assert.equal(checked.code, 0);
    assert.deepEqual(
      (await gc(root, '--delete-untagged', '--min-age', '0')).manifestsRemoved,
      [],
      'idempotent',
    );
  });
});

describe('gc and fsck after interrupted runs', () => {
  it('links left to blobs an interrupted gc deleted: fsck reports them, gc removes them', async () => {
    const root = freshStorageDir();
    const storage = await openFsStorage(root);
    const kept = await storage.blobs.put(Buffer.from('kept'));
    await storage.repositories.linkBlob('app', kept.digest);
    const gone = await storage.blobs.put(Buffer.from('deleted by a gc that was killed before unlinking'));
    await storage.repositories.linkBlob('app', gone.digest);
    await storage.repositories.linkBlob('team/web', gone.digest);
    // What a gc that deleted blobs before their links leaves when killed in between.
    await storage.blobs.delete(gone.digest);

    const before = await fsck(root);
    assert.equal(before.code, 1);
    assert.deepEqual(
      before.report.problems.map((problem) => [problem.kind, problem.repository, problem.digest]),
      [
        ['dangling-layer-link', 'app', gone.digest],
        ['dangling-layer-link', 'team/web', gone.digest],
      ],
    );
    const dry = await gc(root, '--dry-run');
    assert.equal(dry.danglingLinks.length, 2);
    assert.equal((await linksToMissingBlobs(root)).length, 2, '--dry-run removes nothing');

    const report = await gc(root);
    assert.deepEqual(
      report.danglingLinks.map(({ repository, digest }) => `${repository} ${digest}`),
      [`app ${gone.digest}`, `team/web ${gone.digest}`],
    );
    assert.equal(report.linksRemoved, 2);
    assert.deepEqual(await linksToMissingBlobs(root), []);
    assert.equal(
      await storage.repositories.hasBlob('app', kept.digest),
      true,
      'a link to a stored blob stays',
    );
    assert.equal((await fsck(root)).code, 0);
  });

  it('gc killed at random moments of its sweep: no link is left to a missing blob', async () => {
    const root = freshStorageDir();
    const storage = await openFsStorage(root);
    const orphans: { repository: string; digest: Digest }[] = [];
    for (let batch = 0; batch < 15; batch++) {
      const repository = `repo${batch % 3}`;
      await Promise.all(
        Array.from({ length: 40 }, async () => {
          const blob = await storage.blobs.put(randomBytes(64));
          await storage.repositories.linkBlob(repository, blob.digest);
          orphans.push({ repository, digest: blob.digest });
        }),
      );
    }
    const hex = (digest: Digest) => digest.slice('sha256:'.length);
    const present = (path: string) =>
      stat(path).then(
        () => true,
        () => false,
      );
    const untouched = async (orphan: { repository: string; digest: Digest }) =>
      (await present(join(root, 'blobs', 'sha256', hex(orphan.digest).slice(0, 2), hex(orphan.digest)))) &&
      (await present(join(root, 'repositories', orphan.repository, '_layers', 'sha256', hex(orphan.digest))));
    let kills = 0;
    for (let round = 0; round < 4; round++) {
      const remaining: typeof orphans = [];
      for (const orphan of orphans) if (await untouched(orphan)) remaining.push(orphan);
      if (remaining.length < 50) break;
      const samples = Array.from(
        { length: 12 },
        () => remaining[Math.floor(Math.random() * remaining.length)]!,
      );
      const child = spawn(process.execPath, [cliPath, 'gc', '--storage', root, '--min-age', '0'], {
        stdio: 'ignore',
      });
      let running = true;
      const exited = new Promise<void>((resolve) =>
        child.on('close', () => {
          running = false;
          resolve();
        }),
      );
      // Kill once the sweep has touched a sampled blob or link, after a random extra moment.
      const deadline = Date.now() + 15_000;
      while (running && Date.now() < deadline) {
        const touched = await Promise.all(samples.map(async (sample) => !(await untouched(sample))));
        if (touched.includes(true)) break;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
      if (running) {
        child.kill('SIGKILL');
        kills++;
      }
      await exited;
      assert.deepEqual(await linksToMissingBlobs(root), [], `round ${round}: links go before their blobs`);
    }
    assert.ok(kills > 0, 'at least one gc was killed during its sweep');
    await gc(root, '--min-age', '0');
    assert.deepEqual(await linksToMissingBlobs(root), []);
    for await (const blob of storage.blobs.list()) assert.fail(`${blob.digest} is still stored`);
    assert.equal((await fsck(root)).code, 0);
  });
});

describe('fsck wording', () => {
  it('one problem is "1 problem found"; a problem without a repository has one space', async () => {
    const root = freshStorageDir();
    const storage = await openFsStorage(root);
    const blob = await storage.blobs.put(Buffer.from('original'));
    await writeFile(await blobPath(root, blob.digest), 'bit rot');
    const result = await runCliInProcess(['fsck', '--storage', root]);
    assert.equal(result.code, 1);
    const lines = result.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^checked 1 blob \(7 B\), 0 repositories, 0 manifests, 0 tags$/);
    assert.match(
      lines[1]!,
      new RegExp(`^corrupt-blob: ${blob.digest}: content hashes to sha256:[0-9a-f]{64}$`),
    );
    assert.equal(lines.at(-1), '1 problem found');

    await storage.repositories.linkBlob('app', digestOf('never stored'));
    const two = await runCliInProcess(['fsck', '--storage', root]);
    assert.match(two.stdout, new RegExp(`\ndangling-layer-link: app ${digestOf('never stored')}: `));
    assert.match(two.stdout, /\n2 problems found\n$/);
  });
});

describe('temporaries', () => {
  it('fsck lists them (exit 1), gc --dry-run keeps them, gc removes dead ones, --min-age 0 all', async () => {
    const root = freshStorageDir();
    const storage = await openFsStorage(root);
    await storage.repositories.setTag('app', 'v1', digests[0]!);
    await mkdir(join(root, 'tmp'), { recursive: true });
    await writeFile(join(root, 'tmp', 'young'), digests[1]!);
    await writeFile(join(root, 'tmp', 'old'), digests[2]!);
    const tenMinutesAgo = new Date(Date.now() - 600_000);
    await utimes(join(root, 'tmp', 'old'), tenMinutesAgo, tenMinutesAgo);

    const checked = await fsck(root);
    assert.equal(checked.code, 1);
    assert.deepEqual(
      checked.report.problems.map((problem) => [problem.kind, problem.path]),
      [
        ['temporary-file', 'tmp/old'],
        ['temporary-file', 'tmp/young'],
      ],
    );
    const text = await runCliInProcess(['fsck', '--storage', root]);
    assert.match(text.stdout, /\ntemporary-file: tmp\/old: left by an interrupted write at /);
    assert.deepEqual(await storage.repositories.listTags('app'), ['v1'], 'never a tag');

    assert.deepEqual((await gc(root, '--dry-run', '--min-age', '0')).temporariesRemoved, [
      'tmp/old',
      'tmp/young',
    ]);
    assert.deepEqual((await readdir(join(root, 'tmp'))).sort(), ['old', 'young']);
    assert.deepEqual(
      (await gc(root)).temporariesRemoved,
      ['tmp/old'],
      'a young one may be a write in progress',
    );
    assert.deepEqual((await gc(root, '--min-age', '0')).temporariesRemoved, ['tmp/young']);
    assert.deepEqual(await readdir(join(root, 'tmp')), []);
    assert.equal((await fsck(root)).code, 0);
  });
});

describe('pullsafe serve killed during manifest pushes', () => {
  it('after each restart tags/list holds only pushed tags on pushed manifests; fsck lists temporaries, gc removes them', async (t) => {
    const root = freshStorageDir();
    const repository = 'kill/app';
    const tags = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    const sent = new Map<string, Set<string>>(tags.map((tag) => [tag, new Set<string>()]));
    let server: ServeProcess = await startServeProcess(['--storage', root]);
    let span = 0;
    let rounds = 0;
    try {
      const config = await pushBlob(server.url, repository, Buffer.from('{"os":"linux"}'), ociConfig);
      const layer = await pushBlob(server.url, repository, randomBytes(4096));
      const manifests = Array.from({ length: 8 }, (_, variant) =>
        Buffer.from(JSON.stringify(image(config, [layer], { annotations: { variant: String(variant) } }))),
      );
      // Resolves when the first push of the batch is answered: the others are then being written.
      let firstAnswer: () => void = () => undefined;
      const pushTags = (url: string, round: number) =>
        Promise.allSettled(
          Array.from({ length: 24 }, async (_, index) => {
            const tag = tags[index % tags.length]!;
            const body = manifests[(round + index) % manifests.length]!;
            sent.get(tag)!.add(digestOf(body));
            const response = await fetch(`${url}/v2/${repository}/manifests/${tag}`, {
              method: 'PUT',
              body,
              headers: { 'Content-Type': ociManifest },
            });
            await response.arrayBuffer();
            firstAnswer();
            return response.status;
          }),
        );

      // A round that runs to its end tells how long the answers take to come: kills land in that span.
      let answered = 0;
      firstAnswer = () => void (answered ||= performance.now());
      const first = await pushTags(server.url, 0);
      span = performance.now() - answered;
      assert.ok(first.every((result) => result.status === 'fulfilled' && result.value === 201));

      const testStarted = Date.now();
      for (let round = 1; round <= 20 && Date.now() - testStarted < 25_000; round++) {
        rounds++;
        const answer = new Promise<void>((resolve) => (firstAnswer = resolve));
        const pushes = pushTags(server.url, round);
        await Promise.race([answer, pushes]);
        await new Promise((resolve) => setTimeout(resolve, Math.random() * span));
        server.child.kill('SIGKILL');
        await server.exited;
        await pushes;

        server = await startServeProcess(['--storage', root]);
        const listed = (await (await fetch(`${server.url}/v2/${repository}/tags/list`)).json()) as {
          tags: string[];
        };
        assert.ok(
          listed.tags.every((tag) => tags.includes(tag)),
          `round ${round}: tags nobody pushed: ${listed.tags.join(', ')}`,
        );
        for (const tag of listed.tags) {
          const response = await fetch(`${server.url}/v2/${repository}/manifests/${tag}`, {
            headers: { Accept: ociManifest },
          });
          assert.equal(response.status, 200, `round ${round}: ${tag}`);
          const digest = digestOf(Buffer.from(await response.arrayBuffer()));
          assert.ok(sent.get(tag)!.has(digest), `round ${round}: ${tag} is on a manifest pushed under it`);
        }
      }
    } finally {
      server.child.kill('SIGKILL');
      await server.exited;
    }

    const left = (await readdir(join(root, 'tmp'))).map((name) => `tmp/${name}`).sort();
    t.diagnostic(`${rounds} kills within ${span.toFixed(0)} ms of answers, ${left.length} temporaries left`);
    const checked = await fsck(root);
    assert.deepEqual(
      checked.report.problems.map((problem) => `${problem.kind} ${problem.path}`),
      left.map((path) => `temporary-file ${path}`),
    );
    assert.equal(checked.code, left.length === 0 ? 0 : 1);
    assert.deepEqual((await gc(root, '--min-age', '0')).temporariesRemoved, left);
    assert.deepEqual(await readdir(join(root, 'tmp')), []);
    assert.equal((await fsck(root)).code, 0);
  });
});

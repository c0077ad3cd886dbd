/**
 * `pullsafe copy`, `sync`, `inspect` and `ratelimit` as users run them, against a Docker-Hub-like fake
 * upstream (token auth, quota headers, faults), pullsafe, CNCF distribution and skopeo. Commands run in
 * this process (the whole program, arguments to exit code); a kill, Ctrl-C and the AWS SDK's environment
 * take a process of their own.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { addImage } from './helpers/cache.ts';
import { cliPath, noCacheHome, runCli, runCliInProcess } from './helpers/cli.ts';
import { startFakeUpstream, type FakeUpstream } from './helpers/fake-upstream.ts';
import { makeImage, pushImage, type TestImage } from './helpers/fixtures.ts';
import { sha256 } from './helpers/http.ts';
import { skopeoOk, startDistribution, type Distribution } from './helpers/peers.ts';
import { startPullsafe, type TestRegistry } from './helpers/pullsafe.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';

const PLATFORMS = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
];

/** Writes `work/NAME.yaml`, one line each, and returns its path. */
async function writeMirror(name: string, lines: string[]): Promise<string> {
  const file = join(work, `${name}.yaml`);
  await writeFile(file, [...lines, ''].join('\n'));
  return file;
}

async function rawDigest(ref: string): Promise<string> {
  return sha256(Buffer.from((await skopeoOk(['inspect', '--raw', '--tls-verify=false', ref])).stdout));
}

let pullsafe: TestRegistry;
let target: string;
let work: string;
let image: TestImage;

before(async () => {
  pullsafe = await startPullsafe();
  target = new URL(pullsafe.url).host;
  work = await makeTempDir('pullsafe-copy-');
  image = await makeImage({
    format: 'docker',
    platforms: PLATFORMS,
    seed: 'copy-tests',
    layers: 2,
    layerSize: 100_000,
  });
});

after(async () => {
  await pullsafe?.stop();
  if (work) await removeTempDir(work);
});

describe('pullsafe copy', () => {
  let distribution: Distribution;
  before(async () => {
    distribution = await startDistribution();
    await pushImage(distribution.url, 'library/app', 'v1', image);
  });
  after(async () => distribution?.stop());

  it('produces the same digests as skopeo copy --all, and a re-run moves nothing', async () => {
    const ours = await runCliInProcess([
      'copy',
      `${distribution.host}/library/app:v1`,
      `${target}/ours/app:v1`,
    ]);
    assert.equal(ours.code, 0, ours.stderr);
    assert.match(ours.stdout, /6 blobs copied/);
    await skopeoOk([
      'copy',
      '--all',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${distribution.host}/library/app:v1`,
      `docker://${target}/skopeo/app:v1`,
    ]);
    assert.equal(await rawDigest(`docker://${target}/ours/app:v1`), image.index.digest);
    assert.equal(
      await rawDigest(`docker://${target}/ours/app:v1`),
      await rawDigest(`docker://${target}/skopeo/app:v1`),
    );
    for (const manifest of image.manifests) {
      assert.equal(await rawDigest(`docker://${target}/ours/app@${manifest.digest}`), manifest.digest);
    }

    const uploads = pullsafe.metrics.uploadsStarted;
    const again = await runCliInProcess([
      'copy',
      `${distribution.host}/library/app:v1`,
      `${target}/ours/app:v1`,
    ]);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /up to date/);
    assert.equal(pullsafe.metrics.uploadsStarted, uploads, 'nothing uploaded on the second run');
  });

  it('mounts across repositories of the same registry instead of copying bytes', async () => {
    const result = await runCliInProcess([
      'copy',
      `${target}/ours/app:v1`,
      `${target}/mounted/app:v1`,
      '--json',
    ]);
    assert.equal(result.code, 0, result.stderr);
    const summary = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((event) => event.event === 'summary')!;
    assert.equal(summary.blobsMounted, 6);
    assert.equal(summary.bytesCopied, 0);
    assert.equal(summary.targetDigest, image.index.digest);
  });

  it('--platform keeps one platform and says the digest changed', async () => {
    const result = await runCliInProcess([
      'copy',
      '--platform',
      'linux/arm64',
      `${target}/ours/app:v1`,
      `${target}/arm/app:v1`,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const arm = image.manifests.find((manifest) => manifest.platform.architecture === 'arm64')!;
    assert.match(result.stdout, /platform filter changed the digest/);
    assert.match(result.stdout, /0 blobs copied \(0 B\), 0 already there, 3 mounted, 1 manifest written$/m);
    assert.equal(await rawDigest(`docker://${target}/arm/app:v1`), arm.digest);
  });

  it('copies to an OCI layout and back, byte-exact; skopeo reads the OCI-format layout', async () => {
    const layout = join(work, 'layout');
    const out = await runCliInProcess(['copy', `${target}/ours/app:v1`, `oci:${layout}:v1`]);
    assert.equal(out.code, 0, out.stderr);
    const back = await runCliInProcess(['copy', `oci:${layout}:v1`, `${target}/from-layout/app`]);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(await rawDigest(`docker://${target}/from-layout/app:v1`), image.index.digest);

    const ociImage = await makeImage({ format: 'oci', platforms: PLATFORMS, seed: 'layout-oci' });
    await pushImage(pullsafe.url, 'oci/app', 'v2', ociImage);
    const ociLayout = join(work, 'oci-layout');
    assert.equal((await runCliInProcess(['copy', `${target}/oci/app:v2`, `oci:${ociLayout}:v2`])).code, 0);
    assert.equal(await rawDigest(`oci:${ociLayout}:v2`), ociImage.index.digest);
    await skopeoOk([
      'copy',
      '--all',
      '--dest-tls-verify=false',
      `oci:${ociLayout}:v2`,
      `docker://${target}/oci/by-skopeo:v2`,
    ]);
    assert.equal(await rawDigest(`docker://${target}/oci/by-skopeo:v2`), ociImage.index.digest);
  });

  it('inspect shows platforms, and --raw the exact bytes', async () => {
    const shown = await runCliInProcess(['inspect', `${target}/ours/app:v1`]);
    assert.equal(shown.code, 0);
    assert.match(shown.stdout, /linux\/amd64/);
    assert.match(shown.stdout, /linux\/arm64\/v8/);
    const raw = await runCliInProcess(['inspect', '--raw', `${target}/ours/app:v1`]);
    assert.equal(raw.stdout, image.index.bytes.toString('utf8'));
    const json = await runCliInProcess([
      'inspect',
      '--json',
      `${target}/ours/app@${image.manifests[0]!.digest}`,
    ]);
    const report = JSON.parse(json.stdout) as { architecture: string; created: string; layers: unknown[] };
    assert.equal(report.architecture, 'amd64');
    assert.equal(report.layers.length, 2);
  });

  it('fails clearly on bad input and missing images', async () => {
    const bad = await runCliInProcess(['copy', 'Not/A/Valid:Ref', `${target}/x/y`]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /pullsafe: /);
    const missing = await runCliInProcess(['copy', `${target}/no/such:tag`, `${target}/x/y:tag`]);
    assert.equal(missing.code, 3, missing.stderr);
    assert.match(missing.stderr, new RegExp(target.replace(/\./g, '\\.')));
    assert.match(missing.stderr, /404/);
    assert.doesNotMatch(missing.stderr, /\n\s+at /);
    const platform = await runCliInProcess([
      'copy',
      '--platform',
      'plan9',
      `${target}/ours/app:v1`,
      `${target}/x/y:v1`,
    ]);
    assert.equal(platform.code, 2);
  });
});

describe('copy from a Docker-Hub-like upstream', () => {
  let upstream: FakeUpstream;
  before(async () => {
    upstream = await startFakeUpstream({
      auth: 'token',
      blobRedirect: true,
      rateLimit: { limit: 100, windowSeconds: 21600 },
    });
    addImage(upstream, 'library/app', 'v1', image);
  });
  after(async () => upstream?.close());

  it('uses one token per scope, follows CDN redirects without Authorization, survives 429 and 503', async () => {
    upstream.inject({ match: { kind: 'manifest', method: 'GET' }, action: { status: 429, retryAfter: 1 } });
    upstream.inject({ match: { kind: 'blob', server: 'cdn' }, action: { status: 503 } });
    const result = await runCliInProcess(['copy', `${upstream.host}/library/app:v1`, `${target}/hub/app:v1`]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await rawDigest(`docker://${target}/hub/app:v1`), image.index.digest);
    const cdn = upstream.requests.filter((request) => request.server === 'cdn');
    assert.ok(cdn.length >= 6);
    assert.ok(
      cdn.every((request) => request.headers.authorization === undefined),
      'no Authorization sent to the CDN',
    );
    assert.ok(upstream.tokensIssued.length <= 2, `tokens fetched: ${upstream.tokensIssued.length}`);
  });

  it('refuses a blob whose bytes do not match its digest and writes nothing', async () => {
    const layer = image.manifests[0]!.layers[0]!;
    upstream.inject({
      match: { kind: 'blob', pathIncludes: layer.digest.slice(7) },
      times: 10,
      action: 'wrong-digest',
    });
    const result = await runCliInProcess([
      'copy',
      `${upstream.host}/library/app:v1`,
      `${target}/poisoned/app:v1`,
    ]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, new RegExp(layer.digest));
    const head = await fetch(`${pullsafe.url}/v2/poisoned/app/blobs/${layer.digest}`, { method: 'HEAD' });
    assert.equal(head.status, 404);
    assert.equal((await fetch(`${pullsafe.url}/v2/poisoned/app/manifests/v1`)).status, 404);
  });

  it('--json reports a blob the fast path gave up on, which the general path then copies', async () => {
    // An upstream of its own: faults left over by other tests must not reach the general path here.
    const own = await startFakeUpstream({ auth: 'token' });
    try {
      addImage(own, 'library/app', 'v1', image);
      const layer = image.manifests[1]!.layers[0]!;
      own.inject({
        match: { kind: 'blob', pathIncludes: layer.digest.slice(7) },
        times: 1,
        action: 'wrong-digest',
      });
      const result = await runCliInProcess([
        'copy',
        '--json',
        `${own.host}/library/app:v1`,
        `${target}/fallback/app:v1`,
      ]);
      assert.equal(result.code, 0, result.stderr);
      const events = result.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { event: string; digest?: string; reason?: string });
      const fallbacks = events.filter((event) => event.event === 'blob-fallback');
      assert.deepEqual(
        fallbacks.map((event) => event.digest),
        [layer.digest],
      );
      assert.match(fallbacks[0]!.reason ?? '', /hash to sha256:/);
      assert.equal(
        own.count((request) => request.fault === 'wrong-digest'),
        1,
      );
      assert.equal(await rawDigest(`docker://${target}/fallback/app:v1`), image.index.digest);
    } finally {
      await own.close();
    }
  });

  it('ratelimit reads the quota with HEAD requests only', async () => {
    const before = upstream.count((request) => request.kind === 'manifest' && request.method === 'GET');
    const result = await runCliInProcess(['ratelimit', `${upstream.host}/library/app:v1`, '--json']);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as {
      results: { who: string; rateLimit: { limit: number; remaining: number; windowSeconds: number } }[];
    };
    assert.equal(report.results[0]!.who, 'anonymous');
    assert.equal(report.results[0]!.rateLimit.limit, 100);
    assert.equal(report.results[0]!.rateLimit.windowSeconds, 21600);
    assert.equal(
      upstream.count((request) => request.kind === 'manifest' && request.method === 'GET'),
      before,
    );
  });
});

describe('pullsafe sync', () => {
  let upstream: FakeUpstream;
  const tags = ['1.0.0', '1.1.0', '1.2.0', '2.0.0', 'latest'];
  before(async () => {
    upstream = await startFakeUpstream({ auth: 'token', rateLimit: { limit: 100, windowSeconds: 3600 } });
    for (const tag of tags) {
      const tagged = await makeImage({
        format: 'oci',
        platforms: PLATFORMS,
        seed: `sync-${tag}`,
        layerSize: 20_000,
      });
      addImage(upstream, 'team/tool', tag, tagged);
    }
  });
  after(async () => upstream?.close());

  it('stops before the quota reserve, and a re-run finishes without fetching anything twice', async () => {
    const file = await writeMirror('mirror', [
      `target: ${target}/mirror/{repository}`,
      'quota: { reserve: 10 }',
      'concurrency: { images: 1, blobs: 2 }',
      'images:',
      `  - source: ${upstream.host}/team/tool`,
      "    tags: [{ semver: '>=1.0 <2' }]",
    ]);
    // Room for one image's three manifest GETs (index + two platforms), then the reserve.
    upstream.setRateLimitRemaining('127.0.0.1', 14);
    const first = await runCliInProcess(['sync', '-f', file]);
    assert.equal(first.code, 3, first.stdout + first.stderr);
    assert.match(first.stdout, /deferred/);
    assert.match(first.stdout, /stopped before a pull quota fell below the reserve/);
    const copiedFirst = (first.stdout.match(/^copied /gm) ?? []).length;
    assert.ok(copiedFirst >= 1, first.stdout);

    const blobGets = upstream.count((request) => request.kind === 'blob' && request.method === 'GET');
    upstream.setRateLimitRemaining('127.0.0.1', 100);
    const second = await runCliInProcess(['sync', '-f', file]);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.equal((second.stdout.match(/^up to date /gm) ?? []).length, copiedFirst);
    assert.equal((second.stdout.match(/^copied /gm) ?? []).length, 3 - copiedFirst);
    assert.match(second.stdout, /3 images: /);
    const blobGetsSecond =
      upstream.count((request) => request.kind === 'blob' && request.method === 'GET') - blobGets;
    assert.equal(blobGetsSecond, (3 - copiedFirst) * 4, 'only the missing images were fetched');
    for (const tag of ['1.0.0', '1.1.0', '1.2.0']) {
      assert.equal(
        (await fetch(`${pullsafe.url}/v2/mirror/team/tool/manifests/${tag}`, { method: 'HEAD' })).status,
        200,
      );
    }
    assert.equal(
      (await fetch(`${pullsafe.url}/v2/mirror/team/tool/manifests/2.0.0`, { method: 'HEAD' })).status,
      404,
    );
  });

  it('a quota already below the reserve, seen in HEADs, stops every image before its first GET', async () => {
    const file = await writeMirror('below-reserve', [
      `target: ${target}/below/{repository}`,
      'quota: { reserve: 5 }',
      'concurrency: { images: 4, blobs: 4 }',
      'images:',
      `  - source: ${upstream.host}/team/tool`,
      "    tags: [{ glob: '*' }]",
    ]);
    upstream.setRateLimitRemaining('127.0.0.1', 4);
    const manifestGets = () =>
      upstream.count((request) => request.method === 'GET' && request.path.includes('/manifests/'));
    const before = manifestGets();
    const result = await runCliInProcess(['sync', '-f', file]);
    assert.equal(result.code, 3, result.stdout + result.stderr);
    assert.equal(manifestGets() - before, 0, 'no manifest GET spent below the reserve');
    assert.equal((result.stdout.match(/^deferred /gm) ?? []).length, 5, result.stdout);
    assert.match(result.stdout, /pull quota of 127\.0\.0\.1:\d+: 4\/100 left/);

    // Above the reserve, concurrent images share one count: the run stops at the reserve, not below it.
    upstream.setRateLimitRemaining('127.0.0.1', 12);
    const spent = manifestGets();
    const partial = await runCliInProcess(['sync', '-f', file]);
    assert.equal(partial.code, 3, partial.stdout + partial.stderr);
    assert.ok(manifestGets() - spent <= 12 - 5, `manifest GETs: ${manifestGets() - spent}`);
    upstream.setRateLimitRemaining('127.0.0.1', 100);
  });

  it('starts an image only when all its manifest GETs fit above the reserve, and defers the rest unspent', async () => {
    const wide = await startFakeUpstream({ auth: 'token', rateLimit: { limit: 100, windowSeconds: 3600 } });
    try {
      const threePlatforms = [...PLATFORMS, { os: 'linux', architecture: 's390x' }];
      for (const tag of ['1', '2', '3']) {
        addImage(
          wide,
          'team/wide',
          tag,
          await makeImage({ format: 'oci', platforms: threePlatforms, seed: `wide-${tag}`, layerSize: 500 }),
        );
      }
      const file = await writeMirror('wide', [
        `target: ${target}/wide/{repository}`,
        'quota: { reserve: 2 }',
        'concurrency: { images: 3, blobs: 4 }',
        'images:',
        `  - source: ${wide.host}/team/wide`,
        "    tags: [{ exact: ['1', '2', '3'] }]",
      ]);
      const manifestGets = () =>
        wide.count((request) => request.kind === 'manifest' && request.method === 'GET');
      // Each image costs 4 GETs (an index and 3 platforms): 6 left above a reserve of 2 pays for one.
      wide.setRateLimitRemaining('127.0.0.1', 6);
      const first = await runCliInProcess(['sync', '-f', file]);
      assert.equal(first.code, 3, first.stdout + first.stderr);
      assert.equal((first.stdout.match(/^copied /gm) ?? []).length, 1, first.stdout);
      assert.equal((first.stdout.match(/^deferred /gm) ?? []).length, 2, first.stdout);
      assert.equal(manifestGets(), 4, 'only the copied image spent GETs');

      wide.setRateLimitRemaining('127.0.0.1', 100);
      const second = await runCliInProcess(['sync', '-f', file]);
      assert.equal(second.code, 0, second.stdout + second.stderr);
      assert.equal((second.stdout.match(/^copied /gm) ?? []).length, 2, second.stdout);
      assert.equal((second.stdout.match(/^up to date /gm) ?? []).length, 1, second.stdout);
      assert.equal(manifestGets(), 12, 'the re-run pays only for the two deferred images');
    } finally {
      await wide.close();
    }
  });

  it('a 429 from the source defers the image and the rest from that registry, instead of failing them', async () => {
    const refusing = await startFakeUpstream({ auth: 'token' });
    try {
      for (const tag of ['1.0.0', '1.1.0']) addImage(refusing, 'team/tool', tag, image);
      const file = await writeMirror('refused-429', [
        `target: ${target}/refused/{repository}`,
        'concurrency: { images: 1, blobs: 2 }',
        'images:',
        `  - source: ${refusing.host}/team/tool`,
        "    tags: [{ exact: ['1.0.0', '1.1.0'] }]",
      ]);
      refusing.inject({
        match: { kind: 'manifest', method: 'GET' },
        times: 100,
        action: { status: 429, retryAfter: 0 },
      });
      const result = await runCliInProcess(['sync', '-f', file]);
      assert.equal(result.code, 3, result.stdout + result.stderr);
      assert.equal((result.stdout.match(/^deferred /gm) ?? []).length, 2, result.stdout);
      assert.doesNotMatch(result.stdout, /^failed /m);
    } finally {
      await refusing.close();
    }
  });

  it('a sync killed halfway, re-run, transfers only what was missing', async () => {
    const file = await writeMirror('killed', [
      `target: ${target}/killed/{repository}`,
      'concurrency: { images: 1, blobs: 1 }',
      'images:',
      `  - source: ${upstream.host}/team/tool`,
      "    tags: [{ glob: '*' }]",
    ]);
    const before = upstream.count((request) => request.kind === 'blob' && request.method === 'GET');
    // Slow blobs so the run is still going when it is killed.
    upstream.inject({ match: { kind: 'blob', method: 'GET' }, times: 100, action: { delayMs: 150 } });
    const child = spawn(process.execPath, [cliPath, 'sync', '-f', file], {
      env: { ...process.env, XDG_CACHE_HOME: noCacheHome },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no image copied in time: ${output}`)), 30_000);
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if ((output.match(/^copied /gm) ?? []).length >= 2) {
          clearTimeout(timer);
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await new Promise((resolve) => child.on('close', resolve));
    const fetchedBeforeKill =
      upstream.count((request) => request.kind === 'blob' && request.method === 'GET') - before;
    upstream.requests.length = 0;
    const rerun = await runCliInProcess(['sync', '-f', file]);
    assert.equal(rerun.code, 0, rerun.stdout + rerun.stderr);
    assert.match(rerun.stdout, /5 images: /);
    assert.ok((rerun.stdout.match(/^up to date /gm) ?? []).length >= 2);
    const fetchedAfter = upstream.count((request) => request.kind === 'blob' && request.method === 'GET');
    assert.ok(
      fetchedBeforeKill + fetchedAfter <= 5 * 4 + 2,
      `blob GETs: ${fetchedBeforeKill} + ${fetchedAfter}`,
    );
    for (const tag of tags) {
      assert.equal(
        (await fetch(`${pullsafe.url}/v2/killed/team/tool/manifests/${tag}`, { method: 'HEAD' })).status,
        200,
        tag,
      );
    }
  });

  it('reads skopeo sync YAML with --dest, and --dry-run changes nothing', async () => {
    const file = join(work, 'skopeo.yaml');
    await writeFile(
      file,
      [`${upstream.host}:`, '  tls-verify: false', '  images:', '    team/tool:', '      - "2.0.0"', ''].join(
        '\n',
      ),
    );
    const dry = await runCliInProcess(['sync', '-f', file, '--dest', `${target}/skopeo-style`, '--dry-run']);
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    assert.match(dry.stdout, /would copy .* → .*skopeo-style\/tool:2\.0\.0/);
    assert.equal(
      (await fetch(`${pullsafe.url}/v2/skopeo-style/tool/manifests/2.0.0`, { method: 'HEAD' })).status,
      404,
    );
    const real = await runCliInProcess(['sync', '-f', file, '--dest', `${target}/skopeo-style`, '--json']);
    assert.equal(real.code, 0, real.stderr);
    const summary = real.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((event) => event.event === 'summary')!;
    assert.equal(summary.copied, 1);
    assert.equal(
      (await fetch(`${pullsafe.url}/v2/skopeo-style/tool/manifests/2.0.0`, { method: 'HEAD' })).status,
      200,
    );
  });

  it('Ctrl-C says what an interruption leaves, ends --json with an interrupted event, exit 130', async () => {
    const file = await writeMirror('interrupted', [
      `target: ${target}/interrupted/{repository}`,
      'concurrency: { images: 1, blobs: 1 }',
      'images:',
      `  - source: ${upstream.host}/team/tool`,
      "    tags: [{ glob: '*' }]",
    ]);
    upstream.inject({ match: { kind: 'blob', method: 'GET' }, times: 100, action: { delayMs: 150 } });
    const child = spawn(process.execPath, [cliPath, 'sync', '-f', file, '--json'], {
      env: { ...process.env, XDG_CACHE_HOME: noCacheHome },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`no blob started in time: ${stdout}`));
      }, 30_000);
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.includes('"event":"blob-start"') && child.exitCode === null && !child.killed) {
          clearTimeout(timer);
          child.kill('SIGINT');
          resolve();
        }
      });
    });
    assert.equal(await closed, 130, stderr);
    const last = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    assert.equal(last.event, 'interrupted');
    assert.equal(last.signal, 'SIGINT');
    assert.ok(!Number.isNaN(Date.parse(String(last.time))), 'a time like every other event');
    assert.match(stderr, /interrupted \(SIGINT\); images copied so far stay and nothing partial is visible/);
    assert.doesNotMatch(stderr, /\n\s+at /);
  });

  it('reports a bad mirror file with its path, exit 2', async () => {
    const file = join(work, 'bad.yaml');
    await writeFile(
      file,
      `target: ${target}/m/{repository}\nimages:\n  - source: x\n    tags: [{ semver: '>=banana' }]\n`,
    );
    const result = await runCliInProcess(['sync', '-f', file]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /images\[0\]\.tags\[0\]/);
    const raw = await readFile(file, 'utf8');
    assert.ok(raw.length > 0);
  });
});

describe('bad input and honest reports', () => {
  const noStackTrace = (text: string) => assert.doesNotMatch(text, /\n\s+at /, 'no stack trace');
  let arm: TestImage['manifests'][number];
  before(async () => {
    await pushImage(pullsafe.url, 'audit/src', '1', image);
    arm = image.manifests.find((manifest) => manifest.platform.architecture === 'arm64')!;
  });

  it('a registry port or IP address out of range is a usage error, exit 2', async () => {
    for (const args of [
      ['copy', '127.0.0.1:70000/team/app:1', `${target}/x/y:1`],
      ['inspect', '127.0.0.1:99999999999/team/app:1'],
      ['inspect', '300.1.1.1:5000/team/app:1'],
    ]) {
      const result = await runCliInProcess(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, /not a valid registry host/);
      assert.match(result.stderr, /port is a number from 1 to 65535|four numbers from 0 to 255/);
      noStackTrace(result.stderr);
    }
    const file = await writeMirror('bad-port', [
      'target: 127.0.0.1:99999/m/{repository}',
      'images:',
      `  - source: ${target}/audit/src:1`,
    ]);
    const sync = await runCliInProcess(['sync', '-f', file]);
    assert.equal(sync.code, 2, sync.stderr);
    assert.match(sync.stderr, /"127\.0\.0\.1:99999" is not a valid registry host/);
  });

  it('an empty --platform is refused instead of meaning every platform', async () => {
    const result = await runCliInProcess([
      'copy',
      '--platform',
      '',
      `${target}/audit/src:1`,
      `${target}/audit/empty:1`,
    ]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--platform needs a value/);
    assert.equal((await fetch(`${pullsafe.url}/v2/audit/empty/manifests/1`, { method: 'HEAD' })).status, 404);
  });

  it('a layout named without a tag gives its only image', async () => {
    const layout = join(work, 'single-layout');
    assert.equal((await runCliInProcess(['copy', `${target}/audit/src:1`, `oci:${layout}:only`])).code, 0);
    const result = await runCliInProcess(['copy', `oci:${layout}`, `${target}/audit/from-untagged:1`]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await rawDigest(`docker://${target}/audit/from-untagged:1`), image.index.digest);
  });

  it('inspect shows a single image platform with its variant', async () => {
    const result = await runCliInProcess(['inspect', `${target}/audit/src@${arm.digest}`]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /platform\s+linux\/arm64\/v8/);
    const json = await runCliInProcess(['inspect', '--json', `${target}/audit/src@${arm.digest}`]);
    assert.equal((JSON.parse(json.stdout) as { variant?: string }).variant, 'v8');
  });

  it('ratelimit refuses an OCI layout, saying it is not a registry image', async () => {
    const result = await runCliInProcess(['ratelimit', `oci:${work}/some-layout:1`]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /OCI image layout .* is not a registry image/);
    noStackTrace(result.stderr);
  });

  it('ratelimit with credentials answers for an image anonymous users may not pull', async () => {
    const upstream = await startFakeUpstream({
      auth: 'token',
      users: { alice: 'wonderland' },
      anonymousPull: false,
      rateLimit: { limit: 100, windowSeconds: 3600 },
    });
    try {
      addImage(upstream, 'team/private', '1', image);
      const result = await runCliInProcess([
        'ratelimit',
        '--creds',
        'alice:wonderland',
        `${upstream.host}/team/private:1`,
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /anonymous\s+refused \(HTTP 401\): this image needs credentials/);
      assert.match(result.stdout, /with credentials\s+100\/100 left per 1h/);
      const anonymous = await runCliInProcess(['ratelimit', `${upstream.host}/team/private:1`]);
      assert.equal(anonymous.code, 3);
      assert.match(anonymous.stderr, /--creds user:password/);
      assert.doesNotMatch(anonymous.stderr, /--src-creds\/--dest-creds user:password/);
    } finally {
      await upstream.close();
    }
  });

  it('a Secrets Manager secret without any AWS identity says so, not "check the permissions"', async () => {
    const upstream = await startFakeUpstream({ auth: 'token', users: { alice: 'x' }, anonymousPull: false });
    const home = join(work, 'empty-home');
    try {
      addImage(upstream, 'team/private', '1', image);
      // The AWS SDK reads its credentials from the process's own environment.
      const result = await runCli(
        [
          'copy',
          '--region',
          'us-east-1',
          '--src-secret',
          'team/hub',
          `${upstream.host}/team/private:1`,
          `oci:${work}/never`,
        ],
        {
          env: {
            HOME: home,
            AWS_CONFIG_FILE: join(home, 'none'),
            AWS_SHARED_CREDENTIALS_FILE: join(home, 'none'),
            AWS_EC2_METADATA_DISABLED: 'true',
            AWS_ACCESS_KEY_ID: '',
            AWS_SECRET_ACCESS_KEY: '',
            AWS_SESSION_TOKEN: '',
            AWS_PROFILE: '',
            AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '',
            AWS_CONTAINER_CREDENTIALS_FULL_URI: '',
            AWS_WEB_IDENTITY_TOKEN_FILE: '',
          },
        },
      );
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /could not read secret team\/hub in us-east-1: no AWS credentials found/);
      assert.match(result.stderr, /AWS_PROFILE/);
      noStackTrace(result.stderr);
    } finally {
      await upstream.close();
    }
  });

  describe('sync', () => {
    const mirror = (name: string, images: string[]) =>
      writeMirror(name, [`target: ${target}/${name}/{repository}`, 'images:', ...images]);

    it('--dry-run reports a source tag that does not exist as failed, exit 3', async () => {
      const file = await mirror('dry-missing', [`  - source: ${target}/audit/src:nope`]);
      const result = await runCliInProcess(['sync', '-f', file, '--dry-run']);
      assert.equal(result.code, 3, result.stdout);
      assert.match(result.stdout, /failed\s+.*audit\/src:nope.*does not exist at the source/);
      assert.doesNotMatch(result.stdout, /would copy/);
    });

    it('a platform filter: the run says the digest changed, and a dry run does not claim a copy is due', async () => {
      const file = await mirror('dry-platform', [
        `  - source: ${target}/audit/src:1`,
        '    platforms: [linux/arm64]',
      ]);
      const real = await runCliInProcess(['sync', '-f', file]);
      assert.equal(real.code, 0, real.stderr);
      assert.match(real.stdout, /^1 image: 1 copied, 0 up to date; /m);
      assert.match(
        real.stdout,
        /note: the platform filter changed the digest: source sha256:\w+, target sha256:\w+/,
      );
      const dry = await runCliInProcess(['sync', '-f', file, '--dry-run']);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /would copy .*\(unless already up to date: the target holds this tag/);
    });

    it('--scoped with a pullsafe-format file is a warning, not silently nothing', async () => {
      const file = await mirror('scoped', [`  - source: ${target}/audit/src:1`]);
      const result = await runCliInProcess(['sync', '-f', file, '--scoped', '--dry-run']);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /warning: --scoped: applies to skopeo sync files only/);
    });

    it('a tag filter that matches nothing is a warning', async () => {
      const file = await mirror('no-match', [
        `  - source: ${target}/audit/src`,
        "    tags: [{ regex: 'zzz.*' }]",
      ]);
      const result = await runCliInProcess(['sync', '-f', file]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /audit\/src: no tag matches the filters \(1 tag looked at\)/);
    });
  });
});

describe('blobs a target registry holds in another repository are mounted, not sent again', () => {
  let upstream: FakeUpstream;
  let distribution: Distribution;
  let shared: TestImage;
  const blobs = 6; // two platforms, each a config and two layers
  before(async () => {
    upstream = await startFakeUpstream({ auth: 'token' });
    shared = await makeImage({
      format: 'oci',
      platforms: PLATFORMS,
      seed: 'prefixes',
      layers: 2,
      layerSize: 50_000,
    });
    addImage(upstream, 'team/shared', '1', shared);
    distribution = await startDistribution();
  });
  after(async () => {
    await upstream?.close();
    await distribution?.stop();
  });

  /** Blob upload requests (PUT or PATCH) distribution logged for repositories under `prefix/`. */
  const distributionUploads = (prefix: string): number =>
    distribution
      .logs()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter(
        (entry) =>
          (entry['http.request.method'] === 'PUT' || entry['http.request.method'] === 'PATCH') &&
          String(entry['http.request.uri']).startsWith(`/v2/${prefix}/shared/blobs/uploads/`),
      ).length;
  /** Blob upload requests pullsafe logged for repositories under `prefix/`, and the bytes they carried. */
  const pullsafeUploads = (prefix: string): { requests: number; bytes: number } => {
    const uploads = (pullsafe.logs as { method?: string; path?: string; bytesIn?: number }[]).filter(
      (entry) =>
        (entry.method === 'PUT' || entry.method === 'PATCH') &&
        entry.path?.startsWith(`/v2/${prefix}/shared/blobs/uploads/`),
    );
    return { requests: uploads.length, bytes: uploads.reduce((sum, entry) => sum + (entry.bytesIn ?? 0), 0) };
  };
  const blobBytes = () =>
    shared.manifests.reduce(
      (sum, manifest) =>
        sum +
        manifest.config.bytes.length +
        manifest.layers.reduce((all, layer) => all + layer.data.length, 0),
      0,
    );

  /** Syncs the image into `prefixes` of `host` in one run; returns each image's JSON event. */
  async function syncInto(host: string, prefixes: string[], env: Record<string, string>) {
    const file = await writeMirror(`prefixes-${prefixes.join('-')}`, [
      'images:',
      ...prefixes.flatMap((prefix) => [
        `  - source: ${upstream.host}/team/shared:1`,
        `    target: ${host}/${prefix}/shared`,
      ]),
    ]);
    const result = await runCliInProcess(['sync', '-f', file, '--json'], { env });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const events = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event: string; status?: string; result?: Record<string, number> });
    return events.filter((event) => event.event === 'image');
  }

  async function indexDigest(base: string, prefix: string): Promise<string | null> {
    const head = await fetch(`${base}/v2/${prefix}/shared/manifests/1`, {
      method: 'HEAD',
      headers: { accept: shared.index.mediaType },
    });
    return head.headers.get('docker-content-digest');
  }

  it('distribution: two prefixes in one run send each blob once, and a later run sends none', async () => {
    const env = { XDG_CACHE_HOME: join(work, 'cache-distribution') };
    const first = await syncInto(distribution.host, ['a', 'b'], env);
    assert.deepEqual(
      first.map((event) => event.status),
      ['copied', 'copied'],
    );
    assert.equal(distributionUploads('a') + distributionUploads('b'), blobs, 'each blob uploaded once');

    // A new process knows from the record of the first where the registry holds the blobs.
    const second = await syncInto(distribution.host, ['c'], env);
    assert.equal(distributionUploads('c'), 0, 'no blob bytes sent to c/');
    assert.equal(second[0]!.result!.blobsMounted, blobs);
    assert.equal(second[0]!.result!.bytesCopied, 0);
    assert.equal(await indexDigest(distribution.url, 'c'), shared.index.digest);
  });

  it('pullsafe serve: two prefixes in one run send each blob once, and a later run sends none', async () => {
    const env = { XDG_CACHE_HOME: join(work, 'cache-pullsafe') };
    await syncInto(target, ['pa', 'pb'], env);
    const firstRun = [pullsafeUploads('pa'), pullsafeUploads('pb')];
    assert.equal(firstRun[0]!.bytes + firstRun[1]!.bytes, blobBytes(), 'each blob sent once');

    const second = await syncInto(target, ['pc'], env);
    assert.deepEqual(pullsafeUploads('pc'), { requests: 0, bytes: 0 });
    assert.equal(second[0]!.result!.blobsMounted, blobs);
    assert.equal(await indexDigest(pullsafe.url, 'pc'), shared.index.digest);
  });

  it('a registry seen to ignore mounts (ECR without blob mounting) is not asked to mount recorded blobs', async () => {
    const ecrLike = await startFakeUpstream({ auth: 'none', ignoreMounts: true });
    try {
      const env = { XDG_CACHE_HOME: join(work, 'cache-ignores-mounts') };
      const mountsFromA = () =>
        ecrLike.count((request) => request.method === 'POST' && request.query.includes('from=a%2Fshared'));
      let before = 0;
      for (const prefix of ['a', 'b']) {
        before = mountsFromA();
        const result = await runCliInProcess(
          [
            'copy',
            '--concurrency',
            '1',
            `${upstream.host}/team/shared:1`,
            `${ecrLike.host}/${prefix}/shared:1`,
          ],
          { env },
        );
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /6 blobs copied/);
      }
      // Only the first blob into b/ asks, before the first upload shows that mounts are ignored.
      assert.equal(mountsFromA() - before, 1);
    } finally {
      await ecrLike.close();
    }
  });

  it('a record naming a repository that does not hold the blob costs a refused mount, then the blob is sent', async () => {
    const cache = join(work, 'cache-stale');
    const file = join(cache, 'pullsafe', 'blob-locations.json');
    const digests = shared.manifests.flatMap((manifest) => [
      manifest.config.digest,
      ...manifest.layers.map((layer) => layer.digest),
    ]);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(
      file,
      JSON.stringify({
        version: 1,
        entries: digests.map((digest) => [distribution.host, 'gone/shared', digest]),
      }),
    );
    const result = await runCliInProcess(
      ['copy', `${upstream.host}/team/shared:1`, `${distribution.host}/stale/shared:1`],
      { env: { XDG_CACHE_HOME: cache } },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /6 blobs copied/);
    const refusedMounts = distribution
      .logs()
      .split('\n')
      .filter((line) => line.includes('"POST"') && line.includes('from=gone%2Fshared')).length;
    assert.equal(refusedMounts, blobs, 'one mount attempt per blob');
    assert.equal(await indexDigest(distribution.url, 'stale'), shared.index.digest);
    const recorded = JSON.parse(await readFile(file, 'utf8')) as { entries: string[][] };
    assert.ok(
      recorded.entries.every((entry) => entry[1] !== 'gone/shared'),
      'refused records are forgotten',
    );
    assert.equal(recorded.entries.filter((entry) => entry[1] === 'stale/shared').length, blobs);
    assert.doesNotMatch(JSON.stringify(recorded), /authorization|password|token/i);
  });
});

describe('credentials for one registry on both sides', () => {
  before(async () => {
    await pushImage(pullsafe.url, 'audit/creds', '1', image);
  });

  it('different --src-creds and --dest-creds for the same host are refused instead of half ignored', async () => {
    const result = await runCliInProcess([
      'copy',
      '--src-creds',
      'reader:one',
      '--dest-creds',
      'writer:two',
      `${target}/audit/creds:1`,
      `${target}/audit/other:1`,
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(`both on ${target.replace(/\./g, '\\.')}: pullsafe uses one identity per registry`),
    );
    assert.match(result.stderr, /hint: give one account/);
    assert.equal((await fetch(`${pullsafe.url}/v2/audit/other/manifests/1`, { method: 'HEAD' })).status, 404);
    const same = await runCliInProcess([
      'copy',
      '--src-creds',
      'reader:one',
      '--dest-creds',
      'reader:one',
      `${target}/audit/creds:1`,
      `${target}/audit/other:1`,
    ]);
    assert.equal(same.code, 0, same.stderr);
  });
});

describe('conflicting flags and failures under --json', () => {
  it('refuses flags that contradict each other, before any request', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['copy', '--src-creds', 'a:b', '--src-secret', 's', `${target}/x/a:1`, `${target}/x/b:1`],
        /--src-creds and --src-secret both name credentials/,
      ],
      [
        ['copy', '--src-creds', 'a:b', `oci:${work}/nowhere:1`, `${target}/x/b:1`],
        /--src-creds applies to a registry image, not an OCI layout/,
      ],
      [
        ['copy', '--dest-creds', 'a:b', `${target}/x/a:1`, `oci:${work}/nowhere:1`],
        /--dest-creds applies to a registry image, not an OCI layout/,
      ],
      [['inspect', '--raw', '--json', `${target}/x/a:1`], /--raw and --json ask for two different outputs/],
    ];
    for (const [args, message] of cases) {
      const result = await runCliInProcess(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
  });

  it('a failed copy with --json ends stdout with an error event', async () => {
    const result = await runCliInProcess([
      'copy',
      '--json',
      `${target}/audit/missing:nope`,
      `${target}/audit/never:1`,
    ]);
    assert.equal(result.code, 3, result.stderr);
    const events = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const last = events.at(-1)!;
    assert.equal(last.event, 'error');
    assert.equal(last.code, 'REGISTRY_NOT_FOUND');
    assert.match(String(last.message), /audit\/missing/);
    assert.equal(typeof last.hint, 'string');
    assert.match(result.stderr, /HTTP 404/);
  });
});

describe('second audit: layouts named by digest, per-host settings, honest notes', () => {
  before(async () => {
    await pushImage(pullsafe.url, 'audit2/src', '1', image);
  });

  it('oci:DIR@DIGEST names a digest in the layout, never a folder called DIR@sha256', async () => {
    const wrong = await runCliInProcess([
      'copy',
      `${target}/audit2/src:1`,
      `oci:${work}/pinned@sha256:${'0'.repeat(64)}`,
    ]);
    assert.equal(wrong.code, 2, wrong.stderr);
    assert.match(wrong.stderr, /not the digest the target names/);
    const right = await runCliInProcess([
      'copy',
      `${target}/audit2/src:1`,
      `oci:${work}/pinned@${image.index.digest}`,
    ]);
    assert.equal(right.code, 0, right.stderr);
    const index = JSON.parse(await readFile(join(work, 'pinned', 'index.json'), 'utf8')) as {
      manifests: { digest: string; annotations?: Record<string, string> }[];
    };
    assert.deepEqual(
      index.manifests.map((entry) => [
        entry.digest,
        entry.annotations?.['org.opencontainers.image.ref.name'],
      ]),
      [[image.index.digest, undefined]],
    );
    assert.doesNotMatch(
      right.stdout,
      new RegExp(`\\(${image.index.digest}\\)`),
      'the digest is not printed twice',
    );
    const back = await runCliInProcess(['inspect', `oci:${work}/pinned@${image.index.digest}`]);
    assert.equal(back.code, 0, back.stderr);
    const bad = await runCliInProcess(['inspect', `oci:${work}/pinned@sha256`]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /a digest after "@" is ALGORITHM:HEX/);
  });

  it('a tagless layout source whose only image is untagged lands by digest, never on latest', async () => {
    const layout = join(work, 'untagged-only');
    assert.equal(
      (await runCliInProcess(['copy', `${target}/audit2/src:1`, `oci:${layout}@${image.index.digest}`])).code,
      0,
    );
    const result = await runCliInProcess(['copy', `oci:${layout}`, `${target}/audit2/untagged-only`]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      (await fetch(`${pullsafe.url}/v2/audit2/untagged-only/manifests/latest`, { method: 'HEAD' })).status,
      404,
    );
    assert.equal(
      (
        await fetch(`${pullsafe.url}/v2/audit2/untagged-only/manifests/${image.index.digest}`, {
          method: 'HEAD',
        })
      ).status,
      200,
    );
    const empty = await runCliInProcess(['ratelimit', '']);
    assert.equal(empty.code, 2, empty.stderr);
  });

  it('a tagless layout source whose only image is tagged keeps that tag at the target', async () => {
    const layout = join(work, 'tag-kept');
    assert.equal((await runCliInProcess(['copy', `${target}/audit2/src:1`, `oci:${layout}:2.0.0`])).code, 0);
    const result = await runCliInProcess(['copy', `oci:${layout}`, `${target}/audit2/tag-kept`]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      (await fetch(`${pullsafe.url}/v2/audit2/tag-kept/manifests/2.0.0`, { method: 'HEAD' })).status,
      200,
    );
  });

  it('TLS flags and credentials for an OCI layout, or disagreeing for one host, are usage errors', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['copy', '--src-tls-verify=false', `oci:${work}/x:1`, `${target}/a/b:1`],
        /--src-tls-verify applies to a registry image/,
      ],
      [['inspect', '--tls-verify=false', `oci:${work}/x:1`], /--tls-verify applies to a registry image/],
      [['inspect', '--creds', 'a:b', `oci:${work}/x:1`], /--creds applies to a registry image/],
      [
        ['copy', '--src-tls-verify=false', '--dest-tls-verify=true', `${target}/a/b:1`, `${target}/a/c:1`],
        /--src-tls-verify and --dest-tls-verify must agree/,
      ],
      [
        ['inspect', '--tls-verify=false', '--plain-http', 'registry.test:5000', 'registry.test:5000/a/b:1'],
        /--plain-http registry\.test:5000 and a tls-verify=false flag name the same registry/,
      ],
    ];
    for (const [args, message] of cases) {
      const result = await runCliInProcess(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
  });

  it('--referrers with --platform says the index referrers were left behind', async () => {
    const result = await runCliInProcess([
      'copy',
      '--referrers',
      '--platform',
      'linux/arm64',
      `${target}/audit2/src:1`,
      `${target}/audit2/arm-only:1`,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /note: referrers of the source index were not copied: --platform wrote a new manifest/,
    );
  });

  it('ratelimit says when the image does not exist and the registry announces no quota', async () => {
    const result = await runCliInProcess(['ratelimit', `${target}/audit2/none:1`]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /the image does not exist \(HTTP 404\)/);
  });
});

describe('a copy that fails stops everything of it first', () => {
  it('--json: the error event is the last line; no blob or manifest of the image is written after it', async () => {
    const upstream = await startFakeUpstream({ auth: 'none' });
    try {
      addImage(upstream, 'team/broken', 'v1', image);
      const first = image.manifests[0]!.layers[0]!.data;
      upstream.inject({
        match: { kind: 'blob', pathIncludes: sha256(first) },
        times: 50,
        action: 'wrong-digest',
      });
      const result = await runCliInProcess([
        'copy',
        '--json',
        '--concurrency',
        '1',
        `${upstream.host}/team/broken:v1`,
        `${target}/broken/app:v1`,
      ]);
      assert.equal(result.code, 3, result.stderr);
      const events = result.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.equal(events.at(-1)!.event, 'error', JSON.stringify(events.map((event) => event.event)));
      const uploads = pullsafe.metrics.uploadsStarted;
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(pullsafe.metrics.uploadsStarted, uploads, 'nothing more uploaded after the failure');
      assert.equal(
        (await fetch(`${pullsafe.url}/v2/broken/app/manifests/v1`, { method: 'HEAD' })).status,
        404,
      );
    } finally {
      await upstream.close();
    }
  });
});

describe('inspect of manifests pullsafe cannot read', () => {
  it('says what is wrong with exit 3, never an internal error', async () => {
    const upstream = await startFakeUpstream({ auth: 'none' });
    try {
      const schema1 = Buffer.from(
        JSON.stringify({ schemaVersion: 1, name: 'team/old', tag: 'v1', fsLayers: [] }),
      );
      upstream.addManifest(
        'team/old',
        'v1',
        'application/vnd.docker.distribution.manifest.v1+prettyjws',
        schema1,
      );
      upstream.addManifest(
        'team/old',
        'null',
        'application/vnd.oci.image.manifest.v1+json',
        Buffer.from('null'),
      );
      for (const tag of ['v1', 'null']) {
        const result = await runCliInProcess(['inspect', `${upstream.host}/team/old:${tag}`]);
        assert.equal(result.code, 3, `${tag}: ${result.stderr}`);
        assert.match(result.stderr, new RegExp(`team/old`));
        assert.doesNotMatch(result.stderr, /internal error|\n\s+at /);
      }
      const raw = await runCliInProcess(['inspect', '--raw', `${upstream.host}/team/old:v1`]);
      assert.equal(raw.code, 0, raw.stderr);
      assert.equal(raw.stdout, schema1.toString());
    } finally {
      await upstream.close();
    }
  });
});

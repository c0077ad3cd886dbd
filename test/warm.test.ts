/**
 * `pullsafe warm` (the CLI as a user runs it, in this process) against the real pull-through cache in
 * front of the project's Docker-Hub-like fake upstream. What warm made the cache fetch is read from the
 * upstream's own request log; skopeo is the independent client that pulls afterwards.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addImage, startCache, upstreamOptions, type TestCache } from './helpers/cache.ts';
import { runCliInProcess, type CliResult } from './helpers/cli.ts';
import { startFakeUpstream, type FakeUpstream } from './helpers/fake-upstream.ts';
import { makeImage, type TestImage } from './helpers/fixtures.ts';
import { OCI_INDEX, OCI_MANIFEST, request, sha256 } from './helpers/http.ts';
import { skopeoOk } from './helpers/peers.ts';

function blobsOf(manifest: TestImage['manifests'][number]): string[] {
  return [manifest.config.digest, ...manifest.layers.map((layer) => layer.digest)];
}

/** Successful upstream GETs of manifests and blobs, by path: what the cache fetched. */
function fetches(upstream: FakeUpstream, from = 0): Map<string, number> {
  const counts = new Map<string, number>();
  for (const entry of upstream.requests.slice(from)) {
    if (entry.method !== 'GET' || entry.status !== 200) continue;
    if (entry.kind !== 'manifest' && entry.kind !== 'blob') continue;
    counts.set(entry.path, (counts.get(entry.path) ?? 0) + 1);
  }
  return counts;
}

/** Every upstream path a warm of `image` (all platforms, or those given) must fetch, once each. */
function expectedFetches(repository: string, tag: string, image: TestImage, only?: string): string[] {
  const paths = [`/v2/${repository}/manifests/${tag}`];
  for (const manifest of image.manifests) {
    if (only && `${manifest.platform.os}/${manifest.platform.architecture}` !== only) continue;
    paths.push(`/v2/${repository}/manifests/${manifest.digest}`);
    for (const digest of blobsOf(manifest)) paths.push(`/v2/${repository}/blobs/${digest}`);
  }
  return paths;
}

interface Events {
  images: { image: string; status: string; error?: { code: string; message: string; hint?: string } }[];
  summary: Record<string, unknown>;
}

function events(result: CliResult): Events {
  const lines = result.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { event: string } & Record<string, unknown>);
  const summary = lines.find((line) => line.event === 'summary');
  assert.ok(summary, `a summary event:\n${result.stdout}\n${result.stderr}`);
  return { images: lines.filter((line) => line.event === 'image') as unknown as Events['images'], summary };
}

async function warm(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCliInProcess(['warm', ...args], { timeoutMs: 60_000, env });
}

describe('pullsafe warm: filling the cache ahead of a deploy', () => {
  let upstream: FakeUpstream;
  let cache: TestCache;
  let folder: string;
  let demo: TestImage;
  let tool: TestImage;
  let file: string;

  before(async () => {
    upstream = await startFakeUpstream({ auth: 'token', rateLimit: { limit: 1000, windowSeconds: 3600 } });
    demo = await makeImage({
      format: 'oci',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
      seed: 'warm-demo',
      layers: 2,
    });
    tool = await makeImage({
      format: 'docker',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
      seed: 'warm-tool',
    });
    addImage(upstream, 'library/demo', '1.0', demo);
    addImage(upstream, 'team/tool', 'v2.1', tool);
    addImage(upstream, 'team/tool', 'v2.0', tool);
    upstream.addManifest('team/tool', 'v3.0-rc1', tool.index.mediaType, tool.index.bytes);
    cache = await startCache([upstreamOptions(upstream)]);
    folder = await mkdtemp(join(tmpdir(), 'pullsafe-warm-'));
    file = join(folder, 'images.yaml');
    // The same file sync reads: its targets mean nothing to warm and are left alone.
    await writeFile(
      file,
      [
        'target: registry.example.com/mirror/{repository}',
        'images:',
        '  - source: demo:1.0',
        '  - source: team/tool',
        "    tags: [{ semver: '>=2.1' }]",
        '    target: registry.example.com/apps/tool',
        '',
      ].join('\n'),
    );
  });
  after(async () => {
    await cache.stop();
    await upstream.close();
    await rm(folder, { recursive: true, force: true });
  });

  it('pulls every manifest and blob of every image through the cache, each fetched upstream exactly once', async () => {
    const result = await warm(['-f', file, '--endpoint', cache.url, '--json']);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    const { images, summary } = events(result);
    assert.deepEqual(
      images.map((image) => [image.image, image.status]).sort(),
      [
        ['docker.io/library/demo:1.0', 'warmed'],
        ['docker.io/team/tool:v2.1', 'warmed'],
      ],
      'tag filters are expanded as sync expands them (v2.0 and the prerelease are left out)',
    );
    assert.equal(summary.warmed, 2);
    const expected = [
      ...expectedFetches('library/demo', '1.0', demo),
      ...expectedFetches('team/tool', 'v2.1', tool),
    ];
    const counts = fetches(upstream);
    assert.deepEqual(
      [...counts.keys()].sort(),
      [...expected].sort(),
      'every manifest and blob, nothing else',
    );
    for (const [path, count] of counts) assert.equal(count, 1, `${path} fetched once`);
    const bytes = [...demo.manifests, ...tool.manifests]
      .flatMap((manifest) => [manifest.config.bytes, ...manifest.layers.map((layer) => layer.data)])
      .reduce((sum, blob) => sum + blob.length, 0);
    assert.equal(summary.bytesPulled, bytes);
    assert.equal(summary.bytesFetched, bytes);
  });

  it('fetches nothing upstream on a second run: every image is already cached', async () => {
    const before = upstream.requests.length;
    const result = await warm(['-f', file, '--endpoint', cache.url]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, /^cached {5}docker\.io\/library\/demo:1\.0 \(2 platforms, 6 blobs/m);
    assert.match(result.stdout, /2 images: 0 warmed, 2 already cached; .* \(0 B fetched by the cache\)/);
    const asked = upstream.requests.slice(before);
    // Listing tags for the filter is the only request: tags lists are not pulls, and nothing was fetched.
    assert.deepEqual(
      asked.map((entry) => entry.kind).filter((kind) => kind !== 'token'),
      ['tags'],
    );
  });

  it('serves a pull after warm without any upstream request (skopeo, by every route)', async () => {
    const before = upstream.requests.length;
    const out = await mkdtemp(join(tmpdir(), 'pullsafe-warm-skopeo-'));
    try {
      const host = new URL(cache.url).host;
      await skopeoOk([
        'copy',
        '--all',
        '--src-tls-verify=false',
        `docker://${host}/demo:1.0`,
        `oci:${out}:1.0`,
      ]);
      await skopeoOk([
        'copy',
        '--all',
        '--src-tls-verify=false',
        `docker://${host}/docker.io/team/tool:v2.1`,
        `oci:${out}:tool`,
      ]);
      const byNs = await request(`${cache.url}/v2/library/demo/manifests/1.0?ns=docker.io`, {
        headers: { Accept: [OCI_INDEX, OCI_MANIFEST].join(', ') },
      });
      assert.equal(sha256(byNs.body), demo.index.digest);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
    assert.deepEqual(upstream.requests.slice(before), [], 'the pulls were served from the cache alone');
  });
});

describe('pullsafe warm: platforms, quota and failures', () => {
  let demo: TestImage;
  let others: TestImage[];
  let folder: string;

  before(async () => {
    demo = await makeImage({
      format: 'oci',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
      seed: 'warm-platforms',
      layers: 2,
    });
    others = await Promise.all(
      ['a', 'b'].map((seed) =>
        makeImage({
          format: 'oci',
          platforms: [
            { os: 'linux', architecture: 'amd64' },
            { os: 'linux', architecture: 'arm64' },
          ],
          seed: `warm-quota-${seed}`,
        }),
      ),
    );
    folder = await mkdtemp(join(tmpdir(), 'pullsafe-warm-'));
  });
  after(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  async function fixture(): Promise<{ upstream: FakeUpstream; cache: TestCache }> {
    const upstream = await startFakeUpstream({
      auth: 'token',
      rateLimit: { limit: 100, windowSeconds: 3600 },
    });
    addImage(upstream, 'library/demo', '1.0', demo);
    addImage(upstream, 'library/first', '1', others[0]!);
    addImage(upstream, 'library/second', '1', others[1]!);
    return { upstream, cache: await startCache([upstreamOptions(upstream)]) };
  }

  async function writeFileOf(name: string, lines: string[]): Promise<string> {
    const path = join(folder, name);
    await writeFile(path, `${lines.join('\n')}\n`);
    return path;
  }

  it('--platform linux/amd64 fetches only that platform: its manifest and blobs, none of arm64', async () => {
    const { upstream, cache } = await fixture();
    try {
      // skopeo's sync format works as it is, without --dest.
      const file = await writeFileOf('skopeo.yaml', ['docker.io:', '  images:', '    library/demo: ["1.0"]']);
      const result = await warm(['-f', file, '--endpoint', cache.url, '--platform', 'linux/amd64']);
      assert.equal(result.code, 0, result.stderr + result.stdout);
      assert.match(result.stdout, /^warmed {5}docker\.io\/library\/demo:1\.0 \(1 platform, 3 blobs/m);
      assert.deepEqual(
        [...fetches(upstream).keys()].sort(),
        expectedFetches('library/demo', '1.0', demo, 'linux/amd64').sort(),
      );
    } finally {
      await cache.stop();
      await upstream.close();
    }
  });

  it('stops before the quota reserve: an image starts only when all of its manifests fit, nothing is half-warmed', async () => {
    const { upstream, cache } = await fixture();
    try {
      // The cache learns the quota (100) from a first pull, then the upstream has only 5 left.
      await request(`${cache.url}/v2/docker.io/library/demo/manifests/1.0`, {
        headers: { Accept: OCI_INDEX },
      });
      upstream.setRateLimitRemaining('127.0.0.1', 5);
      const before = upstream.requests.length;
      const file = await writeFileOf('quota.yaml', [
        'images:',
        '  - source: first:1',
        '  - source: second:1',
        '  - source: demo:1.0',
      ]);
      const result = await warm(['-f', file, '--endpoint', cache.url, '--reserve', '2', '--json']);
      assert.equal(result.code, 3, result.stderr + result.stdout);
      const { images, summary } = events(result);
      const status = new Map(images.map((image) => [image.image, image.status]));
      assert.equal(status.get('docker.io/library/first:1'), 'warmed');
      assert.equal(status.get('docker.io/library/second:1'), 'deferred');
      assert.equal(summary.stoppedForQuota, true);
      assert.equal(summary.deferred, 2);
      const counts = fetches(upstream, before);
      assert.deepEqual(
        [...counts.keys()].sort(),
        expectedFetches('library/first', '1', others[0]!).sort(),
        'the first image whole (3 manifest GETs), nothing of the deferred ones',
      );
      const manifestGets = upstream.requests
        .slice(before)
        .filter((entry) => entry.kind === 'manifest' && entry.method === 'GET');
      assert.equal(manifestGets.length, 3, 'the upstream is left with the reserve of 2');
    } finally {
      await cache.stop();
      await upstream.close();
    }
  });

  it('counts manifests the cache answers from its storage as free: cached images pass a quota close to the reserve', async () => {
    const { upstream, cache } = await fixture();
    try {
      const file = await writeFileOf('cached.yaml', [
        'images:',
        '  - source: first:1',
        '  - source: second:1',
      ]);
      const first = await warm(['-f', file, '--endpoint', cache.url]);
      assert.equal(first.code, 0, first.stderr + first.stdout);
      // The cache sees the upstream at 5 (then 4, after this index), two above the reserve of 2.
      upstream.setRateLimitRemaining('127.0.0.1', 5);
      await request(`${cache.url}/v2/docker.io/library/demo/manifests/1.0`, {
        headers: { Accept: OCI_INDEX },
      });
      const before = upstream.requests.length;
      // One image at a time: an image in flight holds its children's GETs until it has made them.
      const result = await warm([
        '-f',
        file,
        '--endpoint',
        cache.url,
        '--reserve',
        '2',
        '--image-concurrency',
        '1',
      ]);
      assert.equal(result.code, 0, result.stderr + result.stdout);
      assert.match(result.stdout, /2 images: 0 warmed, 2 already cached/);
      assert.match(result.stdout, /pull quota of docker\.io \(as the cache saw it\): 4\/100 left per 1h/);
      assert.deepEqual(upstream.requests.slice(before), []);
    } finally {
      await cache.stop();
      await upstream.close();
    }
  });

  it('defers the image and the rest from that upstream when the cache answers 429', async () => {
    const { upstream, cache } = await fixture();
    try {
      upstream.inject({
        match: { kind: 'manifest', method: 'GET' },
        action: { status: 429, retryAfter: 3600 },
      });
      const file = await writeFileOf('limited.yaml', [
        'images:',
        '  - source: first:1',
        '  - source: second:1',
      ]);
      const result = await warm(['-f', file, '--endpoint', cache.url, '--image-concurrency', '1']);
      assert.equal(result.code, 3, result.stderr + result.stdout);
      assert.match(result.stdout, /^deferred {3}docker\.io\/library\/first:1 \(the cache answered 429/m);
      assert.match(result.stdout, /^deferred {3}docker\.io\/library\/second:1 \(quota reserve\)/m);
      assert.match(result.stdout, /2 images: 0 warmed, 0 already cached, 2 deferred/);
      assert.equal(
        upstream.count((entry) => entry.kind === 'manifest' && entry.method === 'GET'),
        1,
      );
      assert.equal(
        upstream.count((entry) => entry.kind === 'blob'),
        0,
      );
    } finally {
      await cache.stop();
      await upstream.close();
    }
  });

  it('names a registry the cache does not proxy, warms the rest, and exits 3', async () => {
    const { upstream, cache } = await fixture();
    try {
      const file = await writeFileOf('mixed.yaml', [
        'images:',
        '  - source: quay.io/org/app:1',
        '  - source: first:1',
        '  - source: docker.io/library/missing:1',
      ]);
      const result = await warm(['-f', file, '--endpoint', cache.url]);
      assert.equal(result.code, 3, result.stderr + result.stdout);
      assert.match(
        result.stdout,
        /^failed {5}quay\.io\/org\/app:1: the cache at 127\.0\.0\.1:\d+ does not proxy quay\.io \(it proxies docker\.io\), so it would answer 404 for quay\.io\/org\/app\n {11}hint: start the cache with --proxy quay\.io/m,
      );
      assert.match(result.stdout, /^failed {5}docker\.io\/library\/missing:1: .*HTTP 404/m);
      assert.match(result.stdout, /^warmed {5}docker\.io\/library\/first:1/m);
      assert.equal(
        upstream.count((entry) => entry.path.includes('quay.io')),
        0,
        'nothing asked for quay.io',
      );
    } finally {
      await cache.stop();
      await upstream.close();
    }
  });

  it('fails the one image whose platform in the file does not parse, and warms the rest', async () => {
    const { upstream, cache } = await fixture();
    try {
      const file = await writeFileOf('bad-platform.yaml', [
        'images:',
        '  - source: first:1',
        '    platforms: [foo/amd64]',
        '  - source: docker.io/library/first:1',
      ]);
      const result = await warm(['-f', file, '--endpoint', cache.url]);
      assert.equal(result.code, 3, result.stderr + result.stdout);
      assert.match(result.stdout, /^failed {5}docker\.io\/library\/first:1: .*foo/m);
      assert.match(result.stdout, /^(warmed|cached) {5}docker\.io\/library\/first:1/m);
    } finally {
      await cache.stop();
      await upstream.close();
    }
  });

  it('refuses bad flags with exit 2 before any request', async () => {
    const file = await writeFileOf('one.yaml', ['images:', '  - source: first:1']);
    for (const [args, message] of [
      [['--endpoint', '127.0.0.1:5000'], /"127\.0\.0\.1:5000" is not a URL/],
      [['--endpoint', 'cache:5000'], /the scheme must be http or https/],
      [['--endpoint', 'http://u:secret@127.0.0.1:5000'], /the URL carries credentials/],
      [['--endpoint', 'http://127.0.0.1:5000/v2/'], /named by its origin alone/],
      [['--endpoint', 'http://127.0.0.1:5000', '--platform', 'linux'], /invalid platform "linux"/],
      [['--endpoint', 'http://127.0.0.1:5000', '--reserve', '-1'], /--reserve "-1": give a whole number/],
      [['--endpoint', 'http://127.0.0.1:5000', '--blob-concurrency', '0'], /--blob-concurrency "0"/],
      [['--endpoint', 'http://127.0.0.1:5000', '--tls-verify=false'], /plain HTTP, which has no certificate/],
    ] as const) {
      const result = await warm(['-f', file, ...args]);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /secret/);
    }
    const missing = await warm(['-f', join(folder, 'absent.yaml'), '--endpoint', 'http://127.0.0.1:1']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read sync file/);
  });

  it('says at once when the cache cannot be reached', async () => {
    const file = await writeFileOf('unreachable.yaml', ['images:', '  - source: first:1']);
    const result = await warm(['-f', file, '--endpoint', 'http://127.0.0.1:1']);
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, /cannot reach the cache at 127\.0\.0\.1:1/);
  });

  it('pulls from a cache with users with --creds, and says what a refusal needs', async () => {
    const upstream = await startFakeUpstream({ auth: 'token' });
    addImage(upstream, 'library/first', '1', others[0]!);
    const bcrypt = (await import('bcryptjs')).default;
    const htpasswd = join(folder, 'htpasswd');
    await writeFile(htpasswd, `alice:${bcrypt.hashSync('alice-pw', 4)}\n`);
    const cache = await startCache([upstreamOptions(upstream, { anonymousPull: false })], {
      htpasswd: htpasswd,
    });
    try {
      const file = await writeFileOf('private.yaml', ['images:', '  - source: first:1']);
      const refused = await warm(['-f', file, '--endpoint', cache.url]);
      assert.equal(refused.code, 3, refused.stderr + refused.stdout);
      assert.match(refused.stderr, /warning: GET http:\/\/127\.0\.0\.1:\d+\/status answered HTTP 401/);
      assert.match(refused.stdout, /^failed .*HTTP 401.*\n {11}hint: log in/m);
      const result = await warm(['-f', file, '--endpoint', cache.url, '--creds', 'alice:alice-pw']);
      assert.equal(result.code, 0, result.stderr + result.stdout);
      assert.equal(result.stderr, '', 'the status was read with the credentials: no warning');
      assert.match(result.stdout, /^warmed {5}docker\.io\/library\/first:1/m);
      assert.doesNotMatch(result.stdout + result.stderr, /alice-pw/);
    } finally {
      await cache.stop();
      await upstream.close();
    }
  });
});

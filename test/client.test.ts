/**
 * The registry client against real servers on 127.0.0.1: CNCF distribution (open, and with htpasswd),
 * pullsafe itself, and the Docker-Hub-like fake upstream (token flow, quota headers, faults, CDN redirects).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { digestOf, type Digest } from '../src/oci/digest.ts';
import { PullsafeError } from '../src/errors/index.ts';
import {
  explicitCredentials,
  RegistryClient,
  RegistryError,
  type RegistryClientOptions,
  type RepositoryRef,
} from '../src/client/index.ts';
import { startDistribution, requirePeer, type Distribution } from './helpers/peers.ts';
import { startPullsafe, type TestRegistry } from './helpers/pullsafe.ts';
import { startFakeUpstream, type FakeUpstream, type FakeUpstreamOptions } from './helpers/fake-upstream.ts';
import { makeImage, type TestImage } from './helpers/fixtures.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';
import { request as httpRequest } from './helpers/http.ts';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** Fast retries: recorded, not slept through. */
function clientFor(options: RegistryClientOptions & { delays?: number[] } = {}): RegistryClient {
  const delays = options.delays ?? [];
  return new RegistryClient({
    ...options,
    transport: {
      sleep: async (ms) => {
        delays.push(ms);
      },
      retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 },
      ...options.transport,
    },
  });
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Pushes every blob and manifest of `image` with the client, the index under `tag`. */
async function pushWithClient(client: RegistryClient, repo: RepositoryRef, tag: string, image: TestImage) {
  for (const manifest of image.manifests) {
    for (const blob of [manifest.config.bytes, ...manifest.layers.map((layer) => layer.data)]) {
      const digest = digestOf(blob);
      if ((await client.checkBlob(repo, digest)) === undefined) {
        await client.pushBlob(repo, digest, blob.length, () => Readable.from([blob]));
      }
    }
    await client.putManifest(repo, manifest.digest, manifest.bytes, manifest.mediaType);
  }
  return client.putManifest(repo, tag, image.index.bytes, image.index.mediaType);
}

/** What every registry must do the same way: push, resolve, fetch, mount, list, referrers, errors. */
async function conformance(client: RegistryClient, registry: string, name: string): Promise<void> {
  const repo: RepositoryRef = { registry, repository: `client/${name}` };
  const other: RepositoryRef = { registry, repository: `client/${name}-other` };
  const image = await makeImage({
    format: 'oci',
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ],
    seed: `client-${name}`,
    layerSize: 50_000,
  });
  const pushed = await pushWithClient(client, repo, 'v1', image);
  assert.equal(pushed.digest, image.index.digest);

  const head = await client.checkManifest(repo, 'v1');
  assert.ok(head);
  assert.equal(head.digest, image.index.digest);
  assert.equal(head.mediaType, OCI_INDEX);
  assert.equal(head.size, image.index.bytes.length);

  const byTag = await client.getManifest(repo, 'v1');
  assert.deepEqual(byTag.bytes, image.index.bytes);
  assert.equal(byTag.digest, image.index.digest);
  assert.equal(byTag.mediaType, OCI_INDEX);
  const platform = image.manifests[0]!;
  const byDigest = await client.getManifest(repo, platform.digest);
  assert.deepEqual(byDigest.bytes, platform.bytes);
  assert.equal(byDigest.mediaType, OCI_MANIFEST);

  const layer = platform.layers[0]!;
  assert.equal(await client.checkBlob(repo, layer.digest as Digest), layer.data.length);
  const download = await client.getBlob(repo, layer.digest as Digest, { expectedSize: layer.data.length });
  assert.equal(download.size, layer.data.length);
  assert.deepEqual(await collect(download.stream), layer.data);

  // Mount into another repository; an unknown blob opens an upload, which is cancelled.
  assert.equal(await client.mountBlob(other, layer.digest as Digest, repo.repository), true);
  assert.equal(await client.checkBlob(other, layer.digest as Digest), layer.data.length);
  const absent = digestOf(`absent-${name}`);
  assert.equal(await client.mountBlob(other, absent, repo.repository), false);
  assert.equal(await client.checkBlob(other, absent), undefined);

  // A probing push finds a blob the repository holds without sending it, and uploads one it lacks.
  const neverRead = (): Readable => assert.fail('a present blob is not read');
  assert.equal(
    await client.pushBlob(repo, layer.digest as Digest, layer.data.length, neverRead, { probe: true }),
    'present',
  );
  const fresh = Buffer.from(`fresh-${name}`);
  assert.equal(
    await client.pushBlob(repo, digestOf(fresh), fresh.length, () => Readable.from([fresh]), { probe: true }),
    'uploaded',
  );
  assert.equal(await client.checkBlob(repo, digestOf(fresh)), fresh.length);
  const learned = Buffer.from(`learned-${name}`);
  await client.pushBlob(repo, digestOf(learned), learned.length, () => Readable.from([learned]), {
    probe: 'auto',
  });
  assert.equal(
    client.probesBlobs(registry),
    true,
    'this registry honours a mount from the repository itself',
  );

  // Tags over several pages.
  for (const tag of ['v2', 'v3', 'v4', 'v5'])
    await client.putManifest(repo, tag, image.index.bytes, OCI_INDEX);
  assert.deepEqual((await client.listTags(repo, { pageSize: 2 })).sort(), ['v1', 'v2', 'v3', 'v4', 'v5']);
  assert.deepEqual((await client.listTags(repo)).sort(), ['v1', 'v2', 'v3', 'v4', 'v5']);

  // A referrer (an artifact whose subject is the platform manifest).
  const emptyConfig = Buffer.from('{}');
  await client.pushBlob(repo, digestOf(emptyConfig), emptyConfig.length, () => Readable.from([emptyConfig]));
  const referrerBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.example.sbom',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(emptyConfig), size: 2 },
      layers: [],
      subject: { mediaType: OCI_MANIFEST, digest: platform.digest, size: platform.bytes.length },
    }),
  );
  const referrer = await client.putManifest(repo, digestOf(referrerBytes), referrerBytes, OCI_MANIFEST);
  let referrers = await client.listReferrers(repo, platform.digest as Digest);
  if (referrers.length === 0) {
    // No referrers API and no tag yet: maintain the fallback tag as OCI 1.1 asks of clients.
    const fallback = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          {
            mediaType: OCI_MANIFEST,
            digest: referrer.digest,
            size: referrerBytes.length,
            artifactType: 'application/vnd.example.sbom',
          },
        ],
      }),
    );
    await client.putManifest(repo, `sha256-${platform.digest.slice('sha256:'.length)}`, fallback, OCI_INDEX);
    referrers = await client.listReferrers(repo, platform.digest as Digest);
  }
  assert.deepEqual(
    referrers.map((entry) => [entry.digest, entry.artifactType]),
    [[referrer.digest, 'application/vnd.example.sbom']],
  );
  assert.deepEqual(await client.listReferrers(repo, platform.digest as Digest, 'application/other'), []);
  assert.deepEqual(await client.listReferrers(repo, image.manifests[1]!.digest as Digest), []);

  // Absent things.
  assert.equal(await client.checkManifest(repo, 'nope'), undefined);
  await assert.rejects(client.getManifest(repo, 'nope'), (error: unknown) => {
    assert.ok(error instanceof RegistryError);
    assert.equal(error.code, 'REGISTRY_NOT_FOUND');
    assert.equal(error.status, 404);
    const host = client.apiHost(registry);
    assert.ok(error.message.includes(`${registry}/${repo.repository}:nope`), error.message);
    assert.ok(error.message.includes(host), error.message);
    assert.ok(error.message.includes('404'), error.message);
    assert.ok(error.hint);
    return true;
  });
  await assert.rejects(client.getBlob(repo, absent), (error: unknown) => {
    assert.ok(error instanceof RegistryError);
    return error.code === 'REGISTRY_NOT_FOUND';
  });

  const quota = await client.rateLimitStatus(repo, 'v1');
  assert.equal(quota.status, 200);
  assert.equal(quota.rateLimit, undefined);
}

/** CNCF distribution with htpasswd Basic auth, on 127.0.0.1 with a kernel-chosen port. */
async function startDistributionWithHtpasswd(users: Record<string, string>): Promise<Distribution> {
  const binary = requirePeer('docker-registry', 'docker-registry');
  const dir = await makeTempDir('pullsafe-client-distribution-');
  const htpasswd = join(dir, 'htpasswd');
  await writeFile(
    htpasswd,
    Object.entries(users)
      .map(([user, password]) => `${user}:${bcrypt.hashSync(password, 4)}`)
      .join('\n') + '\n',
  );
  const config = {
    version: '0.1',
    log: { level: 'info', formatter: 'json', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: join(dir, 'storage') },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: '127.0.0.1:0', secret: randomBytes(16).toString('hex') },
    auth: { htpasswd: { realm: 'pullsafe-test', path: htpasswd } },
  };
  const configPath = join(dir, 'config.yml');
  await writeFile(configPath, JSON.stringify(config));
  const child = spawn(binary, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  let output = '';
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await removeTempDir(dir);
  };
  try {
    const host = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`docker-registry did not start:\n${output}`)), 15_000);
      const onData = (chunk: Buffer) => {
        output = (output + chunk.toString('utf8')).slice(-65536);
        const match = /listening on (127\.0\.0\.1:\d+)/.exec(output);
        if (match?.[1]) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`docker-registry exited ${code}:\n${output}`));
      });
    });
    for (let attempt = 0; attempt < 100; attempt++) {
      const response = await httpRequest(`http://${host}/v2/`, { timeoutMs: 2_000 }).catch(() => undefined);
      if (response?.status === 401) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const port = Number(host.slice(host.lastIndexOf(':') + 1));
    return { url: `http://${host}`, host, port, storageDir: join(dir, 'storage'), logs: () => output, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

describe('against CNCF distribution (docker-registry)', () => {
  let open: Distribution;
  let secured: Distribution;
  before(async () => {
    [open, secured] = await Promise.all([
      startDistribution(),
      startDistributionWithHtpasswd({ alice: 'wonderland-pw' }),
    ]);
  });
  after(async () => {
    await Promise.all([open?.stop(), secured?.stop()]);
  });

  test('open registry: push, resolve, fetch, mount, tags, referrers (tag fallback), errors', async () => {
    const client = clientFor();
    try {
      await conformance(client, open.host, 'open');
    } finally {
      await client.close();
    }
  });

  test('copyBlob between two registries streams over the wire: Basic auth on the target, bytes exact', async () => {
    const client = clientFor({
      credentials: explicitCredentials('alice:wonderland-pw', { registry: secured.host }),
    });
    try {
      const source: RepositoryRef = { registry: open.host, repository: 'wire/source' };
      const target: RepositoryRef = { registry: secured.host, repository: 'wire/target' };
      const blob = randomBytes(3 * 1024 * 1024 + 17);
      const digest = digestOf(blob);
      await client.pushBlob(source, digest, blob.length, () => Readable.from([blob]));
      const seen: number[] = [];
      assert.equal(
        await client.copyBlob(source, target, digest, blob.length, { onBytes: (bytes) => seen.push(bytes) }),
        'uploaded',
      );
      const { pumped, declined, unanswered } = client.transport.wire!.stats;
      assert.deepEqual({ pumped, declined, unanswered }, { pumped: 1, declined: 0, unanswered: 0 });
      assert.equal(seen[0], 0);
      assert.equal(seen.at(-1), blob.length);
      assert.deepEqual(await collect((await client.getBlob(target, digest)).stream), blob);
    } finally {
      await client.close();
    }
  });

  test('htpasswd registry: Basic credentials from a source; the same conformance', async () => {
    const client = clientFor({
      credentials: explicitCredentials('alice:wonderland-pw', { registry: secured.host }),
    });
    try {
      await conformance(client, secured.host, 'secured');
    } finally {
      await client.close();
    }
  });

  test('htpasswd registry: no credentials and wrong credentials are REGISTRY_UNAUTHORIZED with a hint', async () => {
    const repo = { registry: secured.host, repository: 'client/secured' };
    const anonymous = clientFor();
    const wrong = clientFor({ credentials: explicitCredentials('alice:not-the-password') });
    try {
      await assert.rejects(anonymous.getManifest(repo, 'v1'), (error: unknown) => {
        assert.ok(error instanceof RegistryError);
        assert.equal(error.code, 'REGISTRY_UNAUTHORIZED');
        assert.equal(error.status, 401);
        assert.match(error.message, new RegExp(`${secured.host}.*HTTP 401`));
        assert.match(error.hint ?? '', /log in/);
        return true;
      });
      await assert.rejects(wrong.checkManifest(repo, 'v1'), (error: unknown) => {
        assert.ok(error instanceof RegistryError);
        assert.equal(error.code, 'REGISTRY_UNAUTHORIZED');
        assert.match(error.hint ?? '', /refused/);
        assert.doesNotMatch(`${error.message} ${error.hint}`, /not-the-password/);
        return true;
      });
    } finally {
      await anonymous.close();
      await wrong.close();
    }
  });

  test('a registry that is not there: REGISTRY_UNAVAILABLE after retries, naming the host', async () => {
    const probe = await startDistribution();
    const host = probe.host;
    await probe.stop();
    const delays: number[] = [];
    const client = clientFor({ delays });
    try {
      await assert.rejects(
        client.checkManifest({ registry: host, repository: 'x/y' }, 'latest'),
        (error: unknown) => {
          assert.ok(error instanceof RegistryError);
          assert.equal(error.code, 'REGISTRY_UNAVAILABLE');
          assert.ok(error.message.includes(host));
          assert.match(error.message, /connection refused \(after 3 attempts\)/);
          return true;
        },
      );
      assert.equal(delays.length, 2);
    } finally {
      await client.close();
    }
  });
});

describe('against pullsafe', () => {
  let open: TestRegistry;
  let secured: TestRegistry;
  let dir: string;
  before(async () => {
    dir = await makeTempDir('pullsafe-client-htpasswd-');
    const htpasswd = join(dir, 'htpasswd');
    await writeFile(
      htpasswd,
      `writer:${bcrypt.hashSync('writer-pw', 4)}\nreader:${bcrypt.hashSync('reader-pw', 4)}\n`,
    );
    open = await startPullsafe();
    secured = await startPullsafe({
      auth: {
        htpasswd,
        anonymousPull: false,
        anonymousPush: false,
        rules: [
          { repositories: '**', users: ['writer'], actions: ['pull', 'push', 'delete'] },
          { repositories: '**', users: ['reader'], actions: ['pull'] },
        ],
      },
    });
  });
  after(async () => {
    await Promise.all([open?.stop(), secured?.stop()]);
    await removeTempDir(dir);
  });

  test('open pullsafe: the same conformance (referrers through the API)', async () => {
    const client = clientFor();
    try {
      await conformance(client, new URL(open.url).host, 'pullsafe');
    } finally {
      await client.close();
    }
  });

  test('secured pullsafe: Basic auth; a pull-only user pushing gets REGISTRY_DENIED', async () => {
    const host = new URL(secured.url).host;
    const writer = clientFor({ credentials: explicitCredentials('writer:writer-pw') });
    const reader = clientFor({ credentials: explicitCredentials('reader:reader-pw') });
    try {
      await conformance(writer, host, 'secured');
      const repo = { registry: host, repository: 'client/secured' };
      assert.ok(await reader.checkManifest(repo, 'v1'));
      const data = Buffer.from('reader may not push this');
      await assert.rejects(
        reader.pushBlob(repo, digestOf(data), data.length, () => Readable.from([data])),
        (error: unknown) => {
          assert.ok(error instanceof RegistryError);
          assert.equal(error.code, 'REGISTRY_DENIED');
          assert.equal(error.status, 403);
          assert.match(error.message, /push blob sha256:[a-f0-9]{64} .*client\/secured.*HTTP 403/);
          assert.match(error.hint ?? '', /may not push/);
          return true;
        },
      );
      for (const entry of [...open.logs, ...secured.logs]) {
        assert.doesNotMatch(JSON.stringify(entry), /writer-pw|reader-pw/);
      }
    } finally {
      await writer.close();
      await reader.close();
    }
  });

  test('a pushed blob whose bytes do not match the digest is refused by the registry', async () => {
    const client = clientFor();
    const repo = { registry: new URL(open.url).host, repository: 'client/bad-push' };
    try {
      const data = Buffer.from('actual bytes');
      await assert.rejects(
        client.pushBlob(repo, digestOf('other bytes'), data.length, () => Readable.from([data])),
        (error: unknown) =>
          error instanceof RegistryError && ['DIGEST_MISMATCH', 'REGISTRY_REJECTED'].includes(error.code),
      );
      assert.equal(await client.checkBlob(repo, digestOf('other bytes')), undefined);
    } finally {
      await client.close();
    }
  });
});

describe('against the Docker-Hub-like fake upstream', () => {
  const started: (FakeUpstream | RegistryClient)[] = [];
  after(async () => {
    for (const item of started) await item.close();
  });

  async function setup(
    options: FakeUpstreamOptions = {},
    clientOptions: RegistryClientOptions & { delays?: number[] } = {},
  ) {
    const upstream = await startFakeUpstream(options);
    const client = clientFor(clientOptions);
    started.push(upstream, client);
    const repo: RepositoryRef = { registry: upstream.host, repository: 'library/app' };
    const layer = randomBytes(200_000);
    const layerDigest = upstream.addBlob('library/app', layer) as Digest;
    const manifestBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: layerDigest,
          size: layer.length,
        },
        layers: [],
      }),
    );
    const manifestDigest = upstream.addManifest(
      'library/app',
      'latest',
      OCI_MANIFEST,
      manifestBytes,
    ) as Digest;
    return { upstream, client, repo, layer, layerDigest, manifestBytes, manifestDigest };
  }

  test('token flow: one token per scope set, reused across requests; credentials go to the token service', async () => {
    const { upstream, client, repo, layer, layerDigest, manifestDigest } = await setup();
    assert.equal((await client.checkManifest(repo, 'latest'))?.digest, manifestDigest);
    assert.equal((await client.getManifest(repo, 'latest')).digest, manifestDigest);
    assert.equal(await client.checkBlob(repo, layerDigest), layer.length);
    assert.deepEqual(await collect((await client.getBlob(repo, layerDigest)).stream), layer);
    assert.deepEqual(await client.listTags(repo), ['latest']);
    assert.equal(upstream.tokensIssued.length, 1);
    assert.equal(upstream.tokensIssued[0]!.scope, 'repository:library/app:pull');
    assert.equal(
      upstream.count((r) => r.status === 401),
      1,
    );
    assert.equal(client.authStats.tokensFetched, 1);
  });

  test('push and mount: pull,push scope, and one token for target pull,push + source pull', async () => {
    const { upstream, client: _unused, repo, layerDigest } = await setup({ users: { alice: 'alice-pw' } });
    const client = clientFor({ credentials: explicitCredentials('alice:alice-pw') });
    started.push(client);
    const target = { registry: repo.registry, repository: 'team/app' };
    const data = randomBytes(70_000);
    await client.pushBlob(target, digestOf(data), data.length, () =>
      Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
    );
    assert.deepEqual(upstream.getBlob('team/app', digestOf(data)), data);
    assert.equal(await client.mountBlob(target, layerDigest, repo.repository), true);
    const scopes = upstream.tokensIssued.map((t) => t.scope);
    assert.deepEqual(scopes, [
      'repository:team/app:pull,push',
      'repository:library/app:pull repository:team/app:pull,push',
    ]);
    assert.ok(upstream.tokensIssued.every((t) => t.user === 'alice'));
    assert.ok(upstream.tokensIssued[1]!.granted.includes('repository:library/app:pull'));
    // Mount again: the token is cached, no new token, no 401.
    const before401 = upstream.count((r) => r.status === 401);
    assert.equal(await client.mountBlob(target, layerDigest, repo.repository), true);
    assert.equal(upstream.tokensIssued.length, 2);
    assert.equal(
      upstream.count((r) => r.status === 401),
      before401,
    );
    for (const request of upstream.requests) {
      if (request.kind !== 'token') assert.doesNotMatch(request.headers.authorization ?? '', /^Basic/);
    }
  });

  test('anonymous push is refused with REGISTRY_UNAUTHORIZED after one retry with a fresh token', async () => {
    const { upstream, client, repo } = await setup();
    const data = Buffer.from('anonymous data');
    await assert.rejects(
      client.pushBlob(repo, digestOf(data), data.length, () => Readable.from([data])),
      (error: unknown) => {
        assert.ok(error instanceof RegistryError);
        assert.equal(error.code, 'REGISTRY_UNAUTHORIZED');
        assert.match(error.hint ?? '', /log in/);
        return true;
      },
    );
    assert.ok(upstream.count((r) => r.kind === 'upload') <= 3);
  });

  test('expired tokens are replaced before use', async () => {
    const { upstream, client, repo } = await setup({ tokenTtlSeconds: 1 });
    await client.checkManifest(repo, 'latest');
    assert.equal(upstream.tokensIssued.length, 1);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await client.checkManifest(repo, 'latest');
    assert.equal(upstream.tokensIssued.length, 2);
    // The cache let the token go 10% early, so the registry never saw an expired one.
    assert.equal(
      upstream.count((r) => r.status === 401),
      1,
    );
  });

  test('rate-limit headers on every manifest answer; both spellings; window from w=', async () => {
    const { upstream, client, repo } = await setup({ rateLimit: { limit: 100, windowSeconds: 21600 } });
    const head = await client.checkManifest(repo, 'latest');
    assert.deepEqual(head?.rateLimit, {
      limit: 100,
      remaining: 100,
      windowSeconds: 21600,
      source: '127.0.0.1',
    });
    const fetched = await client.getManifest(repo, 'latest');
    assert.deepEqual(fetched.rateLimit, {
      limit: 100,
      remaining: 99,
      windowSeconds: 21600,
      source: '127.0.0.1',
    });
    const status = await client.rateLimitStatus(repo, 'latest');
    assert.equal(status.status, 200);
    assert.equal(status.rateLimit?.remaining, 99);
    assert.equal(
      upstream.count((r) => r.kind === 'manifest' && r.method === 'GET'),
      1,
    );

    const x = await setup({ rateLimit: { limit: 7, windowSeconds: 60, headerStyle: 'x' } });
    assert.deepEqual((await x.client.getManifest(x.repo, 'latest')).rateLimit, {
      limit: 7,
      remaining: 6,
      windowSeconds: 60,
      source: '127.0.0.1',
    });
  });

  test('429 with Retry-After is retried after the wait', async () => {
    const delays: number[] = [];
    const { upstream, client, repo, manifestDigest } = await setup({}, { delays });
    upstream.inject({ match: { kind: 'manifest', method: 'GET' }, action: { status: 429, retryAfter: 2 } });
    assert.equal((await client.getManifest(repo, 'latest')).digest, manifestDigest);
    assert.ok(delays.includes(2000), String(delays));
    assert.equal(
      upstream.count((r) => r.fault === 'status'),
      1,
    );
  });

  test('quota spent: RATE_LIMITED with retryAfter and quota; docker.io names the public ECR mirror', async () => {
    const { upstream, repo } = await setup({ rateLimit: { limit: 1, windowSeconds: 3600 } });
    const client = clientFor({ apiHosts: { 'docker.io': upstream.host } });
    started.push(client);
    const hub = { registry: 'docker.io', repository: repo.repository };
    await client.getManifest(hub, 'latest');
    await assert.rejects(client.getManifest(hub, 'latest'), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.code, 'RATE_LIMITED');
      assert.equal(error.status, 429);
      assert.equal(error.registryCode, 'TOOMANYREQUESTS');
      assert.ok(error.retryAfterSeconds !== undefined && error.retryAfterSeconds > 3000);
      assert.deepEqual(error.rateLimit, { limit: 1, remaining: 0, windowSeconds: 3600, source: '127.0.0.1' });
      assert.ok(error.message.includes('docker.io/library/app:latest'));
      assert.ok(error.message.includes(upstream.host));
      assert.ok(error.message.includes('HTTP 429'));
      assert.match(error.hint ?? '', /log in/);
      assert.match(error.hint ?? '', /public\.ecr\.aws\/docker\/library\/app/);
      return true;
    });
    // The wait asked for is beyond the cap: no retries were spent on it.
    assert.equal(
      upstream.count((r) => r.status === 429),
      1,
    );
    const quota = await client.rateLimitStatus(hub, 'latest');
    assert.equal(quota.status, 200);
    assert.equal(quota.rateLimit?.remaining, 0);
  });

  test('5xx and connection resets are retried; a persistent 5xx is REGISTRY_UNAVAILABLE', async () => {
    const delays: number[] = [];
    const { upstream, client, repo, layer, layerDigest } = await setup({}, { delays });
    upstream.inject({ match: { kind: 'blob', method: 'GET' }, action: { status: 503 }, times: 2 });
    assert.deepEqual(await collect((await client.getBlob(repo, layerDigest)).stream), layer);
    upstream.inject({ match: { kind: 'manifest' }, action: 'reset' });
    assert.ok(await client.getManifest(repo, 'latest'));
    assert.equal(
      upstream.count((r) => r.fault === 'reset'),
      1,
    );
    upstream.inject({ match: { kind: 'tags' }, action: { status: 502 }, times: 5 });
    await assert.rejects(client.listTags(repo), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.code, 'REGISTRY_UNAVAILABLE');
      assert.match(error.message, /HTTP 502.*after 3 attempts/);
      return true;
    });
    // Two waits for the blob's 503s and two for the tags' 502s. The reset costs a wait only on a new
    // connection: on a kept-alive one it looks like a connection the server closed while idle, and the
    // wire sends the request again at once, as HTTP allows for idempotent requests.
    assert.ok(delays.length >= 4, `${delays.length} waits`);
  });

  test('a truncated blob body makes the stream fail; nothing ends cleanly', async () => {
    const { upstream, client, repo, layerDigest } = await setup();
    upstream.inject({ match: { kind: 'blob' }, action: 'truncate' });
    const { stream } = await client.getBlob(repo, layerDigest);
    let ended = false;
    stream.on('end', () => (ended = true));
    await assert.rejects(
      pipeline(stream, new Writable({ write: (_chunk, _encoding, callback) => callback() })),
      (error: unknown) => {
        assert.ok(error instanceof PullsafeError);
        assert.ok(['REGISTRY_UNAVAILABLE', 'DIGEST_MISMATCH'].includes(error.code), error.code);
        assert.match(error.message, new RegExp(layerDigest));
        return true;
      },
    );
    assert.equal(ended, false);
  });

  test('copying a blob: a source cut off mid-stream fails the push, and the target never has the blob', async () => {
    const { upstream, client, repo, layer, layerDigest } = await setup();
    const target = await startPullsafe();
    try {
      const targetRepo = { registry: new URL(target.url).host, repository: 'copy/app' };
      upstream.inject({ match: { kind: 'blob' }, action: 'truncate' });
      await assert.rejects(
        client.pushBlob(
          targetRepo,
          layerDigest,
          layer.length,
          async () => (await client.getBlob(repo, layerDigest)).stream,
        ),
        (error: unknown) => {
          assert.ok(error instanceof PullsafeError);
          assert.ok(['REGISTRY_UNAVAILABLE', 'DIGEST_MISMATCH'].includes(error.code), error.code);
          assert.ok(error.message.includes(upstream.host), error.message);
          return true;
        },
      );
      assert.equal(await client.checkBlob(targetRepo, layerDigest), undefined);
      // Without the fault the same copy goes through.
      await client.pushBlob(
        targetRepo,
        layerDigest,
        layer.length,
        async () => (await client.getBlob(repo, layerDigest)).stream,
      );
      assert.equal(await client.checkBlob(targetRepo, layerDigest), layer.length);
    } finally {
      await target.stop();
    }
  });

  test('copyBlob over the wire: bearer token to the registry, none to the CDN, the blob arrives', async () => {
    const { upstream, client, repo, layer, layerDigest } = await setup({ blobRedirect: true });
    const target = await startPullsafe();
    try {
      const targetRepo = { registry: new URL(target.url).host, repository: 'wire/app' };
      assert.equal(await client.copyBlob(repo, targetRepo, layerDigest, layer.length), 'uploaded');
      // The first GET met the token challenge (the client had not talked to the source yet).
      const { pumped, declined, lastReason } = client.transport.wire!.stats;
      assert.deepEqual(
        { pumped, declined, lastReason },
        { pumped: 1, declined: 1, lastReason: 'the source answered 401' },
      );
      const cdn = upstream.requests.filter((r) => r.server === 'cdn');
      assert.equal(cdn.length, 1);
      assert.equal(cdn[0]!.headers.authorization, undefined);
      const redirected = upstream.requests.filter((r) => r.server === 'registry' && r.status === 307);
      assert.match(redirected[0]?.headers.authorization ?? '', /^Bearer /);
      assert.equal(await client.checkBlob(targetRepo, layerDigest), layer.length);
    } finally {
      await target.stop();
    }
  });

  test('copyBlob: wrong bytes from the source are never stored, on the wire or off it', async () => {
    const { upstream, client, repo, layer, layerDigest } = await setup();
    const target = await startPullsafe();
    try {
      const targetRepo = { registry: new URL(target.url).host, repository: 'wire/wrong' };
      await client.checkManifest(repo, 'latest');
      upstream.inject({ match: { kind: 'blob' }, action: 'wrong-digest', times: 100 });
      await assert.rejects(client.copyBlob(repo, targetRepo, layerDigest, layer.length), (error: unknown) => {
        assert.ok(error instanceof PullsafeError);
        assert.equal(error.code, 'DIGEST_MISMATCH');
        return true;
      });
      assert.equal(await client.checkBlob(targetRepo, layerDigest), undefined);
      assert.equal(client.transport.wire?.stats.pumped, 0);
      assert.match(client.transport.wire?.stats.lastReason ?? '', /hash to sha256:/);
    } finally {
      await target.stop();
    }
  });

  for (const action of ['wrong-digest', 'truncate'] as const) {
    test(`copyBlob: a ${action} fault on the wire is left to the general path, which completes the copy`, async () => {
      const { upstream, client, repo, layer, layerDigest } = await setup();
      const target = await startPullsafe();
      try {
        const targetRepo = { registry: new URL(target.url).host, repository: `wire/${action}` };
        await client.checkManifest(repo, 'latest');
        upstream.inject({ match: { kind: 'blob' }, action, times: 1 });
        const reasons: string[] = [];
        const onFallback = (reason: string): number => reasons.push(reason);
        assert.equal(
          await client.copyBlob(repo, targetRepo, layerDigest, layer.length, { onFallback }),
          'uploaded',
        );
        assert.equal(reasons.length, 1);
        assert.match(reasons[0]!, action === 'truncate' ? /closed the connection/ : /hash to sha256:/);
        assert.equal(await client.checkBlob(targetRepo, layerDigest), layer.length);
        assert.equal(
          upstream.count((r) => r.fault === action),
          1,
        );
        assert.deepEqual(
          [client.transport.wire?.stats.pumped, client.transport.wire?.stats.declined],
          [0, 1],
        );
      } finally {
        await target.stop();
      }
    });
  }

  test('a blob with the wrong bytes fails with DIGEST_MISMATCH at the end of the stream', async () => {
    const { upstream, client, repo, layerDigest } = await setup();
    upstream.inject({ match: { kind: 'blob' }, action: 'wrong-digest' });
    const { stream } = await client.getBlob(repo, layerDigest);
    await assert.rejects(collect(stream), (error: unknown) => {
      assert.ok(error instanceof PullsafeError);
      assert.equal(error.code, 'DIGEST_MISMATCH');
      assert.match(error.message, /hashes to sha256:/);
      return true;
    });
  });

  test('a manifest with the wrong bytes is DIGEST_MISMATCH', async () => {
    const { upstream, client, repo, manifestDigest } = await setup();
    upstream.inject({ match: { kind: 'manifest' }, action: 'wrong-digest', times: 2 });
    await assert.rejects(client.getManifest(repo, 'latest'), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.code, 'DIGEST_MISMATCH');
      assert.match(error.message, /Docker-Content-Digest says/);
      return true;
    });
    await assert.rejects(client.getManifest(repo, manifestDigest), /DIGEST_MISMATCH|hashes to/);
  });

  test('blob redirects to a CDN are followed without Authorization', async () => {
    const { upstream, client, repo, layer, layerDigest } = await setup({ blobRedirect: true });
    const download = await client.getBlob(repo, layerDigest, { expectedSize: layer.length });
    assert.deepEqual(await collect(download.stream), layer);
    const cdn = upstream.requests.filter((r) => r.server === 'cdn');
    assert.equal(cdn.length, 1);
    assert.equal(cdn[0]!.headers.authorization, undefined);
    assert.equal(cdn[0]!.status, 200);
    const redirected = upstream.requests.filter((r) => r.server === 'registry' && r.status === 307);
    assert.match(redirected[0]?.headers.authorization ?? '', /^Bearer /);
  });

  test('Basic-auth upstream; tags pagination; referrers with artifactType filter', async () => {
    const { upstream, repo, manifestDigest } = await setup({ auth: 'basic', users: { bob: 'bob-pw' } });
    const client = clientFor({ credentials: explicitCredentials('bob:bob-pw') });
    started.push(client);
    for (let i = 0; i < 7; i++)
      upstream.addManifest(
        'library/app',
        `t${i}`,
        OCI_MANIFEST,
        upstream.getManifest('library/app', 'latest')!.bytes,
      );
    assert.deepEqual((await client.listTags(repo, { pageSize: 3 })).sort(), [
      ...upstream.listTags('library/app'),
    ]);
    upstream.addReferrer('library/app', manifestDigest, {
      mediaType: OCI_MANIFEST,
      digest: digestOf('sig'),
      size: 3,
      artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
    });
    upstream.addReferrer('library/app', manifestDigest, {
      mediaType: OCI_MANIFEST,
      digest: digestOf('sbom'),
      size: 4,
      artifactType: 'application/spdx+json',
    });
    assert.equal((await client.listReferrers(repo, manifestDigest)).length, 2);
    const sboms = await client.listReferrers(repo, manifestDigest, 'application/spdx+json');
    assert.deepEqual(
      sboms.map((d) => d.digest),
      [digestOf('sbom')],
    );
    assert.equal(
      upstream.count((r) => r.status === 401),
      1,
    );
  });
});

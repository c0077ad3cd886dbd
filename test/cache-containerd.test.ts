/**
 * containerd pulls through the cache as an EKS or ECS-on-EC2 node would: Debian's containerd and ctr, run
 * by this test as root on a private socket, root and state folder (a config.toml of its own; the system's
 * containerd is never touched), with the hosts.toml files `pullsafe client-config` wrote. containerd adds
 * `?ns=REGISTRY` to what it asks the cache, and the cache routes by it. What went upstream is judged from
 * the fake upstreams' own request records.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli, startServeProcess, type ServeProcess } from './helpers/cli.ts';
import { startFakeUpstream, type FakeUpstream, type RecordedRequest } from './helpers/fake-upstream.ts';
import { makeImage, type TestImage } from './helpers/fixtures.ts';
import { requirePeer } from './helpers/peers.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';

const PLATFORM = { os: 'linux', architecture: 'amd64' };
const NAMESPACE = 'pullsafe-test';

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end, killed after `timeoutMs`; never blocks this process's event loop. */
function run(binary: string, args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

interface Containerd {
  socket: string;
  ctr(args: string[], timeoutMs?: number): Promise<RunResult>;
  stop(): Promise<void>;
}

/** containerd's and ctr's paths; throws naming what is missing: the package, or root. */
function requireContainerd(): { containerd: string; ctr: string } {
  const binaries = {
    containerd: requirePeer('containerd', 'containerd'),
    ctr: requirePeer('ctr', 'containerd'),
  };
  if (process.getuid?.() !== 0) {
    throw new Error(
      'containerd needs root: run this test as root (it starts its own containerd on a private socket)',
    );
  }
  return binaries;
}

/**
 * containerd on a private socket, root and state under `dir`, with the plugins a pull does not need (CRI,
 * snapshotters other than native and overlayfs) off. Resolves once `ctr version` answers (bounded).
 */
async function startContainerd(dir: string): Promise<Containerd> {
  const { containerd, ctr } = requireContainerd();
  const socket = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  await writeFile(
    config,
    [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]',
      '[grpc]',
      `  address = "${socket}"`,
      '[ttrpc]',
      `  address = "${socket}.ttrpc"`,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${dir}/opt"`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(containerd, ['--config', config, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let logs = '';
  const keep = (chunk: Buffer) => (logs = (logs + chunk.toString()).slice(-16_384));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const ctrRun = (args: string[], timeoutMs = 120_000) => run(ctr, ['--address', socket, ...args], timeoutMs);
  const deadline = Date.now() + 20_000;
  for (let attempt = 0; attempt < 200 && Date.now() < deadline; attempt++) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    if (existsSync(socket) && (await ctrRun(['version'], 5_000)).code === 0) {
      return { socket, ctr: ctrRun, stop };
    }
    await sleep(100);
  }
  await stop();
  throw new Error(`containerd did not answer on ${socket} within 20 s:\n${logs}`);
}

/** Adds every blob and manifest of `image` to the fake upstream, the index under `tag`. */
function seed(upstream: FakeUpstream, repository: string, tag: string, image: TestImage): void {
  for (const manifest of image.manifests) {
    upstream.addBlob(repository, manifest.config.bytes);
    for (const layer of manifest.layers) upstream.addBlob(repository, layer.data);
    upstream.addManifest(repository, manifest.digest, manifest.mediaType, manifest.bytes);
  }
  upstream.addManifest(repository, tag, image.index.mediaType, image.index.bytes);
}

/** The digest `ctr images ls` lists for `ref` in the test namespace. */
async function imageDigest(containerd: Containerd, ref: string): Promise<string | undefined> {
  const listed = await containerd.ctr(['-n', NAMESPACE, 'images', 'ls']);
  assert.equal(listed.code, 0, listed.stderr);
  for (const line of listed.stdout.split('\n')) {
    const [name, , digest] = line.trim().split(/\s+/);
    if (name === ref) return digest;
  }
  return undefined;
}

function pull(containerd: Containerd, hostsDir: string, ref: string): Promise<RunResult> {
  return containerd.ctr([
    '-n',
    NAMESPACE,
    'images',
    'pull',
    '--snapshotter',
    'native',
    '--platform',
    `${PLATFORM.os}/${PLATFORM.architecture}`,
    '--hosts-dir',
    hostsDir,
    ref,
  ]);
}

/** The content GETs of the amd64 image: index by tag, platform manifest, config and layers by digest. */
function expectedGets(repository: string, tag: string, image: TestImage): string[] {
  const amd64 = image.manifests.find((manifest) => manifest.platform.architecture === PLATFORM.architecture)!;
  return [
    `/v2/${repository}/manifests/${tag}`,
    `/v2/${repository}/manifests/${amd64.digest}`,
    `/v2/${repository}/blobs/${amd64.config.digest}`,
    ...amd64.layers.map((layer) => `/v2/${repository}/blobs/${layer.digest}`),
  ];
}

const isContentGet = (request: RecordedRequest) =>
  request.method === 'GET' && (request.kind === 'manifest' || request.kind === 'blob');

describe('containerd through the cache, with the hosts.toml client-config writes', () => {
  let folder: string;
  let hub: FakeUpstream;
  let ghcr: FakeUpstream;
  let serve: ServeProcess | undefined;
  let containerd: Containerd | undefined;
  let hostsDir: string;
  let hubImage: TestImage;
  let ghcrImage: TestImage;
  let hubOnlyImage: TestImage;

  before(async () => {
    requireContainerd();
    folder = await makeTempDir('pullsafe-containerd-');
    const platforms = [PLATFORM, { os: 'linux', architecture: 'arm64' }];
    hubImage = await makeImage({ format: 'docker', platforms, seed: 'containerd-hub', layers: 2 });
    // The same repository name on the other registry holds other content: a cache that routed
    // ghcr.io's pull by the bare name (to docker.io, the default) would serve hubImage instead.
    ghcrImage = await makeImage({ format: 'oci', platforms, seed: 'containerd-ghcr' });
    hubOnlyImage = await makeImage({ format: 'oci', platforms, seed: 'containerd-hub-2' });
    hub = await startFakeUpstream({ auth: 'token', rateLimit: { limit: 100, windowSeconds: 3600 } });
    ghcr = await startFakeUpstream({ auth: 'token' });
    seed(hub, 'library/demo', '1.0', hubImage);
    seed(hub, 'library/demo', '2.0', hubOnlyImage);
    seed(ghcr, 'library/demo', '1.0', ghcrImage);
    const proxies = ['--proxy', `docker.io=${hub.url}`, '--proxy', `ghcr.io=${ghcr.url}`];
    serve = await startServeProcess(['--storage', join(folder, 'storage'), ...proxies]);

    const out = join(folder, 'client-config');
    const written = await runCli([
      'client-config',
      '--endpoint',
      serve.url,
      ...proxies,
      '--runtime',
      'containerd',
      '--out',
      out,
    ]);
    assert.equal(written.code, 0, written.stderr);
    hostsDir = join(out, 'certs.d');
    containerd = await startContainerd(folder);
  });

  after(async () => {
    await containerd?.stop();
    if (serve && serve.child.exitCode === null) {
      serve.child.kill('SIGTERM');
      await serve.exited;
    }
    await hub?.close();
    await ghcr?.close();
    if (folder) await removeTempDir(folder);
  });

  it('writes a hosts.toml per upstream: the upstream as server, the cache as a pull/resolve host', async () => {
    for (const [registry, upstream] of [
      ['docker.io', hub],
      ['ghcr.io', ghcr],
    ] as const) {
      const text = await readFile(join(hostsDir, registry, 'hosts.toml'), 'utf8');
      assert.match(text, new RegExp(`^server = "${upstream.url}"$`, 'm'));
      assert.match(
        text,
        new RegExp(`^\\[host\\."${serve!.url}"\\]\\n  capabilities = \\["pull", "resolve"\\]$`, 'm'),
      );
    }
  });

  it('pulls docker.io and ghcr.io images with the upstream digests, every upstream request made by the cache', async () => {
    const hubPull = await pull(containerd!, hostsDir, 'docker.io/library/demo:1.0');
    assert.equal(hubPull.code, 0, hubPull.stderr);
    assert.equal(await imageDigest(containerd!, 'docker.io/library/demo:1.0'), hubImage.index.digest);

    const ghcrPull = await pull(containerd!, hostsDir, 'ghcr.io/library/demo:1.0');
    assert.equal(ghcrPull.code, 0, ghcrPull.stderr);
    assert.equal(await imageDigest(containerd!, 'ghcr.io/library/demo:1.0'), ghcrImage.index.digest);

    // containerd never reached an upstream itself (it would have, falling back to `server`): the cache
    // made every request, and each registry's content came from that registry.
    for (const [upstream, image] of [
      [hub, hubImage],
      [ghcr, ghcrImage],
    ] as const) {
      const agents = new Set(upstream.requests.map((request) => request.headers['user-agent']));
      assert.deepEqual(
        [...agents].filter((agent) => !agent?.startsWith('pullsafe/')),
        [],
        'only the cache asked',
      );
      const served = upstream.requests.filter((request) => isContentGet(request) && request.status === 200);
      for (const path of expectedGets('library/demo', '1.0', image)) {
        assert.equal(
          served.filter((request) => request.path === path).length,
          1,
          `one upstream GET of ${path}`,
        );
      }
      // Only the token flow's challenges failed: nothing was asked of the wrong registry.
      const failed = upstream.requests.filter((request) => request.status >= 400 && request.status !== 401);
      assert.deepEqual(failed, []);
    }

    // The cache saw containerd's requests without a registry in the path: ?ns= alone routed them.
    const logged = serve!
      .logs()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { msg?: string; path?: string; upstream?: string; status?: number });
    const requests = logged.filter(
      (entry) => entry.msg === 'request' && entry.path?.startsWith('/v2/library/demo/'),
    );
    assert.ok(
      requests.some((entry) => entry.upstream === 'ghcr.io' && entry.status === 200),
      'ghcr.io by ?ns=',
    );
    assert.ok(
      requests.some((entry) => entry.upstream === 'docker.io' && entry.status === 200),
      'docker.io by ?ns=',
    );
    assert.ok(requests.every((entry) => !entry.path?.startsWith('/v2/ghcr.io/')));
  });

  it('falls back to the upstream named as server while the cache is down', async () => {
    serve!.child.kill('SIGTERM');
    await serve!.exited;
    const before = hub.requests.length;
    const fallback = await pull(containerd!, hostsDir, 'docker.io/library/demo:2.0');
    assert.equal(fallback.code, 0, fallback.stderr);
    assert.equal(await imageDigest(containerd!, 'docker.io/library/demo:2.0'), hubOnlyImage.index.digest);
    const direct = hub.requests.slice(before);
    assert.ok(direct.length > 0);
    assert.ok(
      direct.every((request) => request.headers['user-agent']?.startsWith('containerd/')),
      'containerd asked the upstream itself',
    );
  });
});

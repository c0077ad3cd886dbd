/**
 * `pullsafe client-config` as a user runs it (in this process): printed and written files agree, bad input
 * exits 2 with a hint, and the registries.conf it writes takes skopeo (containers/image, as podman and
 * CRI-O) through the cache. containerd's hosts.toml is checked by test/cache-containerd.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { createHash } from 'node:crypto';
import { runCliInProcess, startServeProcess, type CliResult } from './helpers/cli.ts';
import { startFakeUpstream } from './helpers/fake-upstream.ts';
import { makeImage } from './helpers/fixtures.ts';
import { skopeoOk } from './helpers/peers.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';

let folder: string;
before(async () => {
  folder = await makeTempDir('pullsafe-client-config-');
});
after(async () => {
  await removeTempDir(folder);
});

async function filesUnder(dir: string): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    found[relative(dir, path)] = await readFile(path, 'utf8');
  }
  return found;
}

function assertUsageError(result: CliResult, message: RegExp): void {
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, message);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(result.stdout, '');
}

describe('pullsafe client-config', () => {
  it('prints every runtime for the --proxy upstreams; --out writes the same files', async () => {
    const args = ['client-config', '--endpoint', 'https://cache.example.com', '--proxy', 'docker.io'];
    const printed = await runCliInProcess([...args, '--proxy', 'ghcr.io=https://ghcr.io']);
    assert.equal(printed.code, 0, printed.stderr);
    for (const title of ['== containerd', '== Docker', '== podman', '== ECS on Fargate']) {
      assert.ok(printed.stdout.includes(title), title);
    }

    const out = join(folder, 'out');
    const written = await runCliInProcess([...args, '--proxy', 'ghcr.io=https://ghcr.io', '--out', out]);
    assert.equal(written.code, 0, written.stderr);
    const files = await filesUnder(out);
    assert.deepEqual(Object.keys(files).sort(), [
      'certs.d/docker.io/hosts.toml',
      'certs.d/ghcr.io/hosts.toml',
      'daemon.json',
      'registries.conf',
    ]);
    const installPaths: Record<string, string> = {
      'certs.d/docker.io/hosts.toml': '/etc/containerd/certs.d/docker.io/hosts.toml',
      'certs.d/ghcr.io/hosts.toml': '/etc/containerd/certs.d/ghcr.io/hosts.toml',
      'daemon.json': '/etc/docker/daemon.json',
      'registries.conf': '/etc/containers/registries.conf.d/pullsafe.conf',
    };
    for (const [path, content] of Object.entries(files)) {
      assert.ok(printed.stdout.includes(`## ${installPaths[path]}\n${content}`), `${path} as printed`);
      assert.ok(written.stdout.includes(`wrote ${out}/${path}: install as ${installPaths[path]}`), path);
    }
    assert.deepEqual(JSON.parse(files['daemon.json']!), {
      'registry-mirrors': ['https://cache.example.com'],
    });
    // The notes and the rewritten references still go to the terminal.
    assert.match(
      written.stdout,
      /docker\.io\/REPOSITORY:TAG\s+->\s+cache\.example\.com\/docker\.io\/REPOSITORY:TAG/,
    );
  });

  it("reads the upstreams from serve's config file (--config or PULLSAFE_CONFIG), with --proxy added", async () => {
    const config = join(folder, 'serve.yaml');
    await writeFile(
      config,
      'proxy:\n  upstreams:\n    - name: quay.io\n      url: https://quay.example.net\n      prefixes: [quay]\n',
    );
    const fromFlag = await runCliInProcess([
      'client-config',
      '--endpoint',
      'http://10.0.0.5:5000',
      '--config',
      config,
      '--proxy',
      'docker.io',
      '--runtime',
      'containerd',
    ]);
    assert.equal(fromFlag.code, 0, fromFlag.stderr);
    assert.match(
      fromFlag.stdout,
      /## \/etc\/containerd\/certs\.d\/quay\.io\/hosts\.toml\n(#.*\n)*server = "https:\/\/quay\.example\.net"/,
    );
    assert.match(fromFlag.stdout, /## \/etc\/containerd\/certs\.d\/docker\.io\/hosts\.toml/);
    assert.doesNotMatch(fromFlag.stdout, /== Docker|== podman|== ECS/);

    // serve's other variables say nothing about clients: a bad one does not stop client-config.
    const fromEnv = await runCliInProcess(
      ['client-config', '--endpoint', 'http://10.0.0.5:5000', '--runtime', 'podman'],
      {
        env: {
          PULLSAFE_CONFIG: config,
          PULLSAFE_LISTEN: 'not an address',
          PULLSAFE_ALLOW_ANONYMOUS_PUSH: 'maybe',
        },
      },
    );
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.match(fromEnv.stdout, /location = "10\.0\.0\.5:5000\/quay\.io"/);
  });

  it('exits 2 with a message and a hint on bad input', async () => {
    const base = ['client-config', '--proxy', 'docker.io'];
    assertUsageError(await runCliInProcess(base), /required option '--endpoint <url>' not specified/);
    assertUsageError(
      await runCliInProcess([...base, '--endpoint', 'cache.example.com:5000']),
      /pullsafe: --endpoint cache\.example\.com:5000: give the scheme.*\nhint: for example --endpoint https:/,
    );
    assertUsageError(
      await runCliInProcess([...base, '--endpoint', 'https://cache/v2']),
      /no path, query or credentials/,
    );
    assertUsageError(
      await runCliInProcess(['client-config', '--endpoint', 'https://cache.example.com']),
      /the cache has no upstreams.*\nhint: give --proxy NAME\[=URL\]/,
    );
    assertUsageError(
      await runCliInProcess([...base, '--endpoint', 'https://cache', '--proxy', 'Docker.IO=x']),
      /--proxy Docker\.IO=x: expected NAME or NAME=URL/,
    );
    assertUsageError(
      await runCliInProcess([...base, '--endpoint', 'https://cache', '--proxy', 'ghcr.io=http://ghcr.io']),
      /only https:\/\/ \(http:\/\/ for a loopback address\)/,
    );
    assertUsageError(
      await runCliInProcess([...base, '--endpoint', 'https://cache', '--runtime', 'kubernetes']),
      /argument 'kubernetes' is invalid\. Allowed choices are containerd, docker, podman, ecs, all/,
    );
    assertUsageError(
      await runCliInProcess([
        ...base,
        '--endpoint',
        'https://cache',
        '--config',
        join(folder, 'missing.yaml'),
      ]),
      /cannot read config file .*missing\.yaml.*\nhint: /,
    );
    const blocker = join(folder, 'a-file');
    await writeFile(blocker, 'not a folder');
    assertUsageError(
      await runCliInProcess([...base, '--endpoint', 'https://cache', '--out', join(blocker, 'out')]),
      /--out .*a-file\/out: cannot write .*\(ENOTDIR\)\nhint: give a folder/,
    );
  });

  it('writes a registries.conf that takes skopeo through the cache to the right upstream', async () => {
    const hub = await startFakeUpstream({ auth: 'token' });
    const storage = join(folder, 'podman-storage');
    const proxy = `docker.io=${hub.url}`;
    const serve = await startServeProcess(['--storage', storage, '--proxy', proxy]);
    try {
      const image = await makeImage({
        format: 'oci',
        platforms: [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64' },
        ],
        seed: 'client-config-podman',
      });
      for (const manifest of image.manifests) {
        hub.addBlob('library/demo', manifest.config.bytes);
        for (const layer of manifest.layers) hub.addBlob('library/demo', layer.data);
        hub.addManifest('library/demo', manifest.digest, manifest.mediaType, manifest.bytes);
      }
      hub.addManifest('library/demo', '1.0', image.index.mediaType, image.index.bytes);

      const out = join(folder, 'podman-config');
      const written = await runCliInProcess([
        'client-config',
        '--endpoint',
        serve.url,
        '--proxy',
        proxy,
        '--runtime',
        'podman',
        '--out',
        out,
      ]);
      assert.equal(written.code, 0, written.stderr);
      const conf = ['--registries-conf', join(out, 'registries.conf')];
      // docker.io's [[registry]] entry sends the pull to its mirror: the cache's docker.io namespace.
      const raw = await skopeoOk([...conf, 'inspect', '--raw', 'docker://docker.io/library/demo:1.0']);
      assert.equal(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`, image.index.digest);
      await skopeoOk([
        ...conf,
        'copy',
        '--all',
        'docker://docker.io/library/demo:1.0',
        `oci:${join(folder, 'podman-oci')}:1.0`,
      ]);
      const agents = new Set(hub.requests.map((request) => request.headers['user-agent'] ?? ''));
      assert.deepEqual(
        [...agents].filter((agent) => !agent.startsWith('pullsafe/')),
        [],
        'skopeo never went to the upstream itself',
      );
      const logged = serve.logs();
      assert.match(logged, /"path":"\/v2\/docker\.io\/library\/demo\/manifests\/1\.0"/);
    } finally {
      serve.child.kill('SIGTERM');
      await serve.exited;
      await hub.close();
    }
  });
});

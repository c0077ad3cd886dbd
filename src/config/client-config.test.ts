import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PullsafeError } from '../errors/index.ts';
import {
  clientConfig,
  clientRuntimes,
  defaultUpstream,
  parseCacheEndpoint,
  renderClientConfig,
  type ClientConfigSection,
  type ClientRuntime,
  type ClientUpstream,
} from './client-config.ts';
import { validateServeConfig } from './serve.ts';

const https = parseCacheEndpoint('https://cache.example.com');
const plain = parseCacheEndpoint('http://10.0.0.5:5000');
const hubAndGhcr: ClientUpstream[] = [{ name: 'docker.io' }, { name: 'ghcr.io' }];

function section(sections: ClientConfigSection[], runtime: ClientRuntime): ClientConfigSection {
  const found = sections.find((candidate) => candidate.runtime === runtime);
  assert.ok(found, `no ${runtime} section`);
  return found;
}

function usageError(pattern: RegExp) {
  return (error: unknown) =>
    error instanceof PullsafeError &&
    error.code === 'USAGE' &&
    pattern.test(error.message) &&
    error.hint !== undefined;
}

describe('parseCacheEndpoint', () => {
  it('keeps scheme, host and port; a default port disappears', () => {
    assert.deepEqual(parseCacheEndpoint('https://cache.example.com'), {
      origin: 'https://cache.example.com',
      host: 'cache.example.com',
      plainHttp: false,
    });
    assert.deepEqual(parseCacheEndpoint('HTTP://Cache.Internal:5000/'), {
      origin: 'http://cache.internal:5000',
      host: 'cache.internal:5000',
      plainHttp: true,
    });
    assert.equal(parseCacheEndpoint('https://cache.example.com:443').host, 'cache.example.com');
    assert.equal(parseCacheEndpoint('http://[::1]:5000').host, '[::1]:5000');
  });

  it('refuses what is not scheme, host and port, with a hint', () => {
    assert.throws(() => parseCacheEndpoint('cache.example.com:5000'), usageError(/give the scheme/));
    assert.throws(() => parseCacheEndpoint('cache.example.com'), usageError(/give the scheme/));
    assert.throws(() => parseCacheEndpoint('ftp://cache.example.com'), usageError(/only https/));
    assert.throws(() => parseCacheEndpoint('https://'), usageError(/not a URL/));
    assert.throws(() => parseCacheEndpoint('https://cache/v2/'), usageError(/no path/));
    assert.throws(() => parseCacheEndpoint('https://cache/?ns=docker.io'), usageError(/no path/));
    assert.throws(() => parseCacheEndpoint('https://user:pw@cache'), usageError(/credentials/));
    assert.throws(() => parseCacheEndpoint(''), usageError(/give the scheme/));
  });
});

describe('defaultUpstream', () => {
  it('is the one marked default, else docker.io, else none', () => {
    assert.equal(defaultUpstream(hubAndGhcr)?.name, 'docker.io');
    assert.equal(
      defaultUpstream([{ name: 'docker.io' }, { name: 'ghcr.io', default: true }])?.name,
      'ghcr.io',
    );
    assert.equal(defaultUpstream([{ name: 'ghcr.io' }]), undefined);
  });
});

describe('clientConfig', () => {
  it('writes one containerd hosts.toml per upstream: server is the upstream, the cache a pull/resolve host', () => {
    const upstreams: ClientUpstream[] = [
      { name: 'docker.io' },
      { name: 'ghcr.io', url: 'https://ghcr.example.net' },
      { name: 'localhost:5000', url: 'http://127.0.0.1:5000' },
    ];
    const containerd = section(
      clientConfig({ endpoint: https, upstreams, runtimes: ['containerd'] }),
      'containerd',
    );
    assert.deepEqual(
      containerd.files.map((file) => [file.outPath, file.installPath]),
      [
        ['certs.d/docker.io/hosts.toml', '/etc/containerd/certs.d/docker.io/hosts.toml'],
        ['certs.d/ghcr.io/hosts.toml', '/etc/containerd/certs.d/ghcr.io/hosts.toml'],
        ['certs.d/localhost:5000/hosts.toml', '/etc/containerd/certs.d/localhost:5000/hosts.toml'],
      ],
    );
    const [hub, ghcr, local] = containerd.files.map((file) => file.content);
    const settings = (text: string | undefined) =>
      text
        ?.split('\n')
        .filter((line) => line.trim() !== '' && !line.startsWith('#'))
        .join('\n');
    assert.equal(
      settings(hub),
      'server = "https://registry-1.docker.io"\n[host."https://cache.example.com"]\n  capabilities = ["pull", "resolve"]',
    );
    assert.match(ghcr!, /^server = "https:\/\/ghcr\.example\.net"$/m);
    assert.match(local!, /^server = "http:\/\/127\.0\.0\.1:5000"$/m);
    // Nothing that weakens TLS is written, for either scheme.
    const all = [
      ...containerd.files,
      ...section(clientConfig({ endpoint: plain, upstreams, runtimes: ['containerd'] }), 'containerd').files,
    ];
    for (const file of all) assert.doesNotMatch(file.content, /skip_verify|insecure|^ca\b/m);
    assert.match(
      containerd.notes.join('\n'),
      /loopback address for localhost:5000 \(http:\/\/127\.0\.0\.1:5000\)/,
    );
  });

  it('explains skip_verify and ca for containerd without writing them', () => {
    const forHttps = section(
      clientConfig({ endpoint: https, upstreams: hubAndGhcr, runtimes: ['containerd'] }),
      'containerd',
    );
    assert.match(
      forHttps.notes.join('\n'),
      /private CA.*ca = .*skip_verify = true would turn certificate checks off/s,
    );
    const forHttp = section(
      clientConfig({ endpoint: plain, upstreams: hubAndGhcr, runtimes: ['containerd'] }),
      'containerd',
    );
    assert.match(forHttp.files[0]!.content, /^\[host\."http:\/\/10\.0\.0\.5:5000"\]$/m);
    assert.match(
      forHttp.notes.join('\n'),
      /plain HTTP: the http:\/\/ in \[host\."http:\/\/10\.0\.0\.5:5000"\] is all containerd needs/,
    );
    assert.doesNotMatch(forHttp.notes.join('\n'), /loopback/);
  });

  it('gives Docker registry-mirrors only when bare names reach docker.io', () => {
    const docker = section(
      clientConfig({ endpoint: plain, upstreams: hubAndGhcr, runtimes: ['docker'] }),
      'docker',
    );
    assert.deepEqual(
      docker.files.map((file) => [file.outPath, file.installPath, JSON.parse(file.content) as unknown]),
      [['daemon.json', '/etc/docker/daemon.json', { 'registry-mirrors': ['http://10.0.0.5:5000'] }]],
    );
    const notes = docker.notes.join('\n');
    assert.match(notes, /Docker Hub only: images of ghcr\.io/);
    assert.match(notes, /"insecure-registries": \["10\.0\.0\.5:5000"\].*not written here/s);
    assert.doesNotMatch(docker.files[0]!.content, /insecure/);

    const noHub = section(
      clientConfig({ endpoint: https, upstreams: [{ name: 'ghcr.io' }], runtimes: ['docker'] }),
      'docker',
    );
    assert.deepEqual(noHub.files, []);
    assert.match(noHub.notes.join('\n'), /no docker\.io upstream/);

    const otherDefault = section(
      clientConfig({
        endpoint: https,
        upstreams: [{ name: 'docker.io' }, { name: 'quay.io', default: true }],
        runtimes: ['docker'],
      }),
      'docker',
    );
    assert.deepEqual(otherDefault.files, []);
    assert.match(
      otherDefault.notes.join('\n'),
      /bare names to quay\.io \(default: true\), not to docker\.io/,
    );
  });

  it('gives podman and CRI-O a registry per upstream, mirrored at HOST/NAMESPACE', () => {
    const upstreams: ClientUpstream[] = [
      { name: 'docker.io' },
      { name: 'localhost:5000', url: 'http://127.0.0.1:5000' },
    ];
    const podman = section(clientConfig({ endpoint: https, upstreams, runtimes: ['podman'] }), 'podman');
    assert.equal(podman.files.length, 1);
    const file = podman.files[0]!;
    assert.deepEqual(
      [file.outPath, file.installPath],
      ['registries.conf', '/etc/containers/registries.conf.d/pullsafe.conf'],
    );
    const blocks = file.content.split(/\n(?=\[\[registry\]\])/).slice(1);
    assert.equal(blocks.length, 2);
    assert.match(
      blocks[0]!,
      /^prefix = "docker\.io"\nlocation = "docker\.io"\n\n\[\[registry\.mirror\]\]\nlocation = "cache\.example\.com\/docker\.io"$/m,
    );
    assert.doesNotMatch(blocks[0]!, /insecure/);
    // The namespace of a registry with a port has '-' for ':'; the loopback upstream needs insecure itself.
    assert.match(
      blocks[1]!,
      /prefix = "localhost:5000"\nlocation = "127\.0\.0\.1:5000"\n(#[^\n]*\n)+insecure = true\n/,
    );
    assert.match(blocks[1]!, /location = "cache\.example\.com\/localhost-5000"\n$/);

    const overHttp = section(
      clientConfig({ endpoint: plain, upstreams: [{ name: 'docker.io' }], runtimes: ['podman'] }),
      'podman',
    );
    // insecure = true is written for a plain-HTTP mirror (podman would skip the mirror without it), under a comment saying why.
    assert.match(
      overHttp.files[0]!.content,
      /location = "10\.0\.0\.5:5000\/docker\.io"\n# The cache is plain HTTP[^\n]*\n#[^\n]*\ninsecure = true\n$/,
    );
    assert.match(
      overHttp.notes.join('\n'),
      /insecure = true, without which podman and CRI-O would skip the mirror/,
    );
  });

  it('gives ECS and CodeBuild rewritten references, with no fallback said', () => {
    const ecs = section(
      clientConfig({
        endpoint: plain,
        upstreams: [{ name: 'docker.io' }, { name: 'localhost:5000', url: 'http://127.0.0.1:5000' }],
        runtimes: ['ecs'],
      }),
      'ecs',
    );
    assert.deepEqual(ecs.files, []);
    assert.deepEqual(ecs.references, [
      {
        registry: 'docker.io',
        from: 'docker.io/REPOSITORY:TAG',
        to: '10.0.0.5:5000/docker.io/REPOSITORY:TAG',
        example: { from: 'nginx:1.27', to: '10.0.0.5:5000/docker.io/library/nginx:1.27' },
      },
      {
        registry: 'localhost:5000',
        from: 'localhost:5000/REPOSITORY:TAG',
        to: '10.0.0.5:5000/localhost-5000/REPOSITORY:TAG',
      },
    ]);
    const notes = ecs.notes.join('\n');
    assert.match(notes, /pullsafe rewrite --to-cache http:\/\/10\.0\.0\.5:5000/);
    assert.match(notes, /no fallback/);
    assert.match(notes, /Fargate cannot pull from it/);
  });

  it('makes the runtimes asked for, in a fixed order, and refuses a cache without upstreams', () => {
    const all = clientConfig({
      endpoint: https,
      upstreams: hubAndGhcr,
      runtimes: ['ecs', 'containerd', 'podman', 'docker'],
    });
    assert.deepEqual(
      all.map((s) => s.runtime),
      [...clientRuntimes],
    );
    assert.deepEqual(
      clientConfig({ endpoint: https, upstreams: hubAndGhcr, runtimes: ['podman'] }).map((s) => s.runtime),
      ['podman'],
    );
    assert.throws(
      () => clientConfig({ endpoint: https, upstreams: [], runtimes: ['containerd'] }),
      usageError(/no upstreams/),
    );
  });

  it("takes the serve config's upstreams as they are", () => {
    const config = validateServeConfig(
      {
        proxy: {
          upstreams: [
            { name: 'docker.io', prefixes: ['hub'], tagTtl: '10m' },
            { name: 'ghcr.io', url: 'https://ghcr.io', credentials: 'docker-config' },
          ],
        },
      },
      'test',
    );
    const sections = clientConfig({
      endpoint: https,
      upstreams: config.proxy.upstreams,
      runtimes: clientRuntimes,
    });
    assert.equal(section(sections, 'containerd').files.length, 2);
    assert.equal(section(sections, 'docker').files.length, 1);
  });
});

describe('renderClientConfig', () => {
  const sections = clientConfig({ endpoint: https, upstreams: hubAndGhcr, runtimes: clientRuntimes });

  it('prints every file whole under its install path, and every note', () => {
    const text = renderClientConfig(https, sections);
    for (const file of sections.flatMap((s) => s.files)) {
      assert.ok(text.includes(`## ${file.installPath}\n${file.content.trimEnd()}\n`), file.installPath);
    }
    // The arrows line up.
    const lines = text.split('\n');
    assert.ok(lines.includes('docker.io/REPOSITORY:TAG  ->  cache.example.com/docker.io/REPOSITORY:TAG'));
    assert.ok(lines.includes('ghcr.io/REPOSITORY:TAG    ->  cache.example.com/ghcr.io/REPOSITORY:TAG'));
    // Every word of every note is printed, wrapped at 100 columns.
    const printed = text.split(/\s+/).join(' ');
    for (const note of sections.flatMap((s) => s.notes))
      assert.ok(printed.includes(note.split(/\s+/).join(' ')), note);
    for (const line of text.split('\n').filter((l) => l.startsWith('- ') || l.startsWith('  '))) {
      assert.ok(line.length <= 100 || !line.trim().includes(' '), line);
    }
  });

  it('names the written files instead of printing them', () => {
    const text = renderClientConfig(https, sections, { outDir: 'out' });
    assert.match(
      text,
      /^wrote out\/certs\.d\/docker\.io\/hosts\.toml: install as \/etc\/containerd\/certs\.d\/docker\.io\/hosts\.toml$/m,
    );
    assert.match(text, /^wrote out\/daemon\.json: install as \/etc\/docker\/daemon\.json$/m);
    assert.match(
      text,
      /^wrote out\/registries\.conf: install as \/etc\/containers\/registries\.conf\.d\/pullsafe\.conf$/m,
    );
    assert.doesNotMatch(text, /capabilities/);
  });
});

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PullsafeError } from '../errors/index.ts';
import { formatReference, parseReference } from '../reference/index.ts';
import {
  DEFAULT_BLOB_CONCURRENCY,
  DEFAULT_IMAGE_CONCURRENCY,
  DEFAULT_QUOTA_RESERVE,
  formatPath,
  type SyncLoadOptions,
  type SyncPlanEntry,
} from './sync-model.ts';
import { targetFor } from './sync-target.ts';
import { detectSyncFormat, loadSyncConfig, parseSyncConfig } from './sync.ts';

const digest = `sha256:${'a'.repeat(64)}`;
const ecr = '123456789012.dkr.ecr.us-east-1.amazonaws.com';

let folder = '';
let counter = 0;
before(async () => {
  folder = await mkdtemp(join(tmpdir(), 'pullsafe-sync-'));
});
after(async () => {
  await rm(folder, { recursive: true, force: true });
});

async function load(content: string, options: SyncLoadOptions = {}, extension = 'yaml') {
  const path = join(folder, `sync-${counter++}.${extension}`);
  await writeFile(path, content);
  return loadSyncConfig(path, options);
}

/** Asserts that loading fails with CONFIG_INVALID and every pattern appears in the message. */
async function rejects(content: string, patterns: (RegExp | string)[], options: SyncLoadOptions = {}) {
  let caught: unknown;
  try {
    await load(content, options);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof PullsafeError, `expected a PullsafeError, got ${String(caught)}`);
  assert.equal(caught.code, 'CONFIG_INVALID', caught.message);
  for (const pattern of patterns) {
    if (typeof pattern === 'string')
      assert.ok(caught.message.includes(pattern), `${pattern}\nin\n${caught.message}`);
    else assert.match(caught.message, pattern);
  }
  return caught;
}

function target(entry: SyncPlanEntry | undefined, tagOrDigest: { tag?: string; digest?: string }): string {
  assert.ok(entry);
  return formatReference(targetFor(entry, tagOrDigest));
}

describe('pullsafe format', () => {
  const example = `
target: ${ecr}/mirror/{repository}   # default for every image
defaults: { platforms: [linux/amd64, linux/arm64], referrers: false }
registries:
  localhost:5000: { tlsVerify: false, credentials: { username: me, password: secret } }
images:
  - source: nginx
    tags: [{ semver: '>=1.25 <2' }, { latest: 3 }]
  - source: ghcr.io/org/app
    tags: [{ glob: 'v1.*' }]
    target: ${ecr}/apps/app
    referrers: true
  - source: redis:7.2
    platforms: all
  - source: alpine@${digest}
    platforms: [linux/arm/v7]
  - source: localhost:5000/team/tool
  - source: index.docker.io/library/busybox:1.36@${digest}
quota: { reserve: 25 }
concurrency: { images: 3, blobs: 8 }
`;

  it('reads every field of the documented example', async () => {
    const config = await load(example);
    assert.equal(config.format, 'pullsafe');
    assert.equal(config.quotaReserve, 25);
    assert.deepEqual(config.concurrency, { images: 3, blobs: 8 });
    assert.equal(config.entries.length, 6);
    const [nginx, app, redis, alpine, tool, busybox] = config.entries;

    assert.deepEqual(nginx?.source, {
      registry: 'docker.io',
      repository: 'library/nginx',
      original: 'nginx',
    });
    assert.deepEqual(nginx?.selection, {
      kind: 'filters',
      filters: [{ semver: '>=1.25 <2' }, { latest: 3 }],
    });
    assert.equal(nginx?.targetTemplate, `${ecr}/mirror/{repository}`);
    assert.deepEqual(nginx?.platforms, ['linux/amd64', 'linux/arm64']);
    assert.equal(nginx?.referrers, false);
    assert.equal(nginx?.tlsVerify, true);
    assert.equal(nginx?.credentials, undefined);

    assert.deepEqual(app?.selection, { kind: 'filters', filters: [{ glob: 'v1.*' }] });
    assert.equal(app?.targetTemplate, `${ecr}/apps/app`);
    assert.equal(app?.referrers, true);

    assert.deepEqual(redis?.selection, { kind: 'tag', tag: '7.2' });
    assert.equal(redis?.source.tag, '7.2');
    assert.equal(redis?.platforms, undefined, '"all" overrides the default platforms');

    assert.deepEqual(alpine?.selection, { kind: 'digest', digest });
    assert.equal(alpine?.source.digest, digest);
    assert.deepEqual(alpine?.platforms, ['linux/arm/v7']);

    assert.deepEqual(
      tool?.selection,
      { kind: 'tag', tag: 'latest' },
      'no tag, no digest: latest, as docker pull',
    );
    assert.equal(tool?.tlsVerify, false);
    assert.deepEqual(tool?.credentials, { username: 'me', password: 'secret' });

    assert.deepEqual(busybox?.selection, { kind: 'digest', digest });
    assert.equal(busybox?.source.tag, undefined);
    assert.equal(busybox?.source.registry, 'docker.io');
    assert.equal(config.warnings.length, 1);
    assert.match(
      config.warnings[0] ?? '',
      /images\[5\]\.source: .* has a tag and a digest; the digest is copied/,
    );
  });

  it('fills targets: {repository} keeps library/, the tag or digest follows the source', async () => {
    const config = await load(example);
    const [nginx, app, redis, alpine, tool] = config.entries;
    assert.equal(target(nginx, { tag: '1.25.3' }), `${ecr}/mirror/library/nginx:1.25.3`);
    assert.equal(target(app, { tag: 'v1.2' }), `${ecr}/apps/app:v1.2`);
    assert.equal(target(redis, { tag: '7.2' }), `${ecr}/mirror/library/redis:7.2`);
    assert.equal(target(alpine, { digest }), `${ecr}/mirror/library/alpine@${digest}`);
    assert.equal(target(tool, { tag: 'latest' }), `${ecr}/mirror/team/tool:latest`);
    assert.equal(
      target(nginx, { tag: '1.25.3', digest }),
      `${ecr}/mirror/library/nginx:1.25.3`,
      'a tag wins',
    );
  });

  it('has defaults for quota, concurrency, referrers and platforms', async () => {
    const config = await load(`target: mirror.example.com/{repository}\nimages:\n  - source: nginx:1.25\n`);
    assert.equal(config.quotaReserve, DEFAULT_QUOTA_RESERVE);
    assert.deepEqual(config.concurrency, {
      images: DEFAULT_IMAGE_CONCURRENCY,
      blobs: DEFAULT_BLOB_CONCURRENCY,
    });
    assert.equal(config.entries[0]?.referrers, false);
    assert.equal(config.entries[0]?.platforms, undefined);
    assert.deepEqual(config.warnings, []);
  });

  it('reads JSON', async () => {
    const json = JSON.stringify({
      target: 'mirror.example.com/{registry}/{repository}',
      images: [{ source: 'quay.io/prometheus/node-exporter', tags: [{ regex: 'v1\\.[0-9]+\\.[0-9]+' }] }],
    });
    const config = await load(json, {}, 'json');
    assert.deepEqual(config.entries[0]?.selection, {
      kind: 'filters',
      filters: [{ regex: 'v1\\.[0-9]+\\.[0-9]+' }],
    });
    assert.equal(
      target(config.entries[0], { tag: 'v1.8.0' }),
      'mirror.example.com/quay.io/prometheus/node-exporter:v1.8.0',
    );
  });

  it('reads numbers written where text is expected as the text written', async () => {
    const config = await load(
      'target: m.example.com/{repository}\nimages:\n  - source: nginx\n    tags: [{ exact: [1.10, 1.20] }, { semver: 1.25 }, { latest: 2 }]\n',
    );
    assert.deepEqual(config.entries[0]?.selection, {
      kind: 'filters',
      filters: [{ exact: ['1.10', '1.20'] }, { semver: '1.25' }, { latest: 2 }],
    });
  });

  it('--dest replaces the top-level target: a prefix, or a template', async () => {
    const file = `target: old.example.com/{repository}\nimages:\n  - source: nginx:1.25\n  - source: ghcr.io/org/app:1\n    target: own.example.com/app\n`;
    const prefixed = await load(file, { dest: 'new.example.com/mirror/' });
    assert.equal(target(prefixed.entries[0], { tag: '1.25' }), 'new.example.com/mirror/library/nginx:1.25');
    assert.equal(
      target(prefixed.entries[1], { tag: '1' }),
      'own.example.com/app:1',
      'per-image targets still win',
    );
    const templated = await load(file, { dest: 'new.example.com/{name}' });
    assert.equal(target(templated.entries[0], { tag: '1.25' }), 'new.example.com/nginx:1.25');
    const noTarget = await load('images:\n  - source: nginx:1.25\n', { dest: 'localhost:5000' });
    assert.equal(target(noTarget.entries[0], { tag: '1.25' }), 'localhost:5000/library/nginx:1.25');
  });

  it('templates: {name}, {registry}, {tag} in the tag part, a fixed tag for one image', async () => {
    const config = await load(`
images:
  - source: nginx
    tags: [{ glob: '1.*' }]
    target: m.example.com/{registry}/{name}:{tag}-mirror
  - source: redis:7.2
    target: m.example.com/cache/redis:pinned
  - source: alpine@${digest}
    target: m.example.com/base/alpine:pinned
  - source: ghcr.io/a/b/c:1
    target: m.example.com/{name}
`);
    const [nginx, redis, alpine, deep] = config.entries;
    assert.equal(target(nginx, { tag: '1.25' }), 'm.example.com/docker.io/nginx:1.25-mirror');
    assert.equal(target(redis, { tag: '7.2' }), 'm.example.com/cache/redis:pinned');
    assert.equal(target(alpine, { digest }), 'm.example.com/base/alpine:pinned');
    assert.equal(target(deep, { tag: '1' }), 'm.example.com/c:1');
  });
});

describe('skopeo format', () => {
  const skopeoFile = `
docker.io:
  images:
    nginx: ['1.25', '${digest}']
    bitnami/redis: []
    library/busybox:
  images-by-tag-regex:
    library/alpine: ^3\\.1[89]
  images-by-semver:
    nginx: '>= 1.25, < 2'
  credentials: { username: me, password: hunter2 }
quay.io:
  images:
    prometheus/node-exporter: [v1.8.0]
  tls-verify: false
  cert-dir: /etc/certs
localhost:5000/team:
  images:
    tool: [latest]
`;

  it('reads every section, in file order, with skopeo destination names', async () => {
    const config = await load(skopeoFile, { dest: 'registry.example.com/mirror' });
    assert.equal(config.format, 'skopeo');
    assert.equal(config.quotaReserve, DEFAULT_QUOTA_RESERVE);
    const names = config.entries.map((entry) => {
      const selection = entry.selection;
      const what =
        selection.kind === 'tag'
          ? selection.tag
          : selection.kind === 'digest'
            ? 'digest'
            : JSON.stringify(selection.filters);
      return `${entry.source.registry}/${entry.source.repository} ${what}`;
    });
    assert.deepEqual(names, [
      'docker.io/library/nginx 1.25',
      'docker.io/library/nginx digest',
      'docker.io/bitnami/redis []',
      'docker.io/library/busybox []',
      'docker.io/library/alpine [{"regex":".*(?:^3\\\\.1[89]).*"}]',
      'docker.io/library/nginx [{"semver":">= 1.25 < 2"}]',
      'quay.io/prometheus/node-exporter v1.8.0',
      'localhost:5000/team/tool latest',
    ]);
    const [nginx, nginxDigest, redis, , alpine, , exporter, tool] = config.entries;
    // skopeo sync --dest docker: DESTINATION/<last path component>:<tag> (or @digest)
    assert.equal(target(nginx, { tag: '1.25' }), 'registry.example.com/mirror/nginx:1.25');
    assert.equal(target(nginxDigest, { digest }), `registry.example.com/mirror/nginx@${digest}`);
    assert.equal(target(redis, { tag: '7.4' }), 'registry.example.com/mirror/redis:7.4');
    assert.equal(target(alpine, { tag: '3.19' }), 'registry.example.com/mirror/alpine:3.19');
    assert.equal(target(exporter, { tag: 'v1.8.0' }), 'registry.example.com/mirror/node-exporter:v1.8.0');
    assert.equal(target(tool, { tag: 'latest' }), 'registry.example.com/mirror/tool:latest');

    assert.deepEqual(nginx?.credentials, { username: 'me', password: 'hunter2' });
    assert.equal(nginx?.tlsVerify, true);
    assert.equal(exporter?.tlsVerify, false);
    assert.equal(exporter?.credentials, undefined);
    assert.equal(nginx?.referrers, false);
    assert.equal(nginx?.platforms, undefined);
    assert.ok(
      config.warnings.some((line) => /\["quay\.io"\]\.cert-dir: not supported and ignored/.test(line)),
    );
  });

  it('--scoped keeps the whole source name under the prefix', async () => {
    const withoutPort = skopeoFile.slice(0, skopeoFile.indexOf('localhost:5000/team:'));
    const config = await load(withoutPort, { dest: 'registry.example.com/mirror', scoped: true });
    assert.equal(
      target(config.entries[0], { tag: '1.25' }),
      'registry.example.com/mirror/docker.io/library/nginx:1.25',
    );
    assert.equal(
      target(config.entries[6], { tag: 'v1.8.0' }),
      'registry.example.com/mirror/quay.io/prometheus/node-exporter:v1.8.0',
    );
    assert.ok(config.warnings.every((line) => !line.includes('both go to')));
  });

  it('--scoped with a registry port gives an invalid name, as with skopeo', async () => {
    await rejects(
      'localhost:5000:\n  images:\n    app: ["1"]\n',
      [
        '["localhost:5000"].images.app[0]: target "m.example.com/{registry}/{repository}"',
        'not a valid repository path component',
      ],
      { dest: 'm.example.com', scoped: true },
    );
  });

  it('one anchor reused for many images is read; an alias bomb is a config error, not a crash', async () => {
    const many = Array.from({ length: 150 }, (_, index) => `    team/r${index}: *tags`).join('\n');
    const config = await load(`quay.io:\n  images:\n    team/first: &tags [v1]\n${many}\n`, {
      dest: 'registry.example.com/mirror',
    });
    assert.equal(config.entries.length, 151);
    const levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let level = 1; level < 9; level++) {
      const previous = String.fromCharCode(96 + level);
      const name = String.fromCharCode(97 + level);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${previous}`).join(',')}]`);
    }
    await assert.rejects(
      load(`${levels.join('\n')}\n`, { dest: 'registry.example.com/m' }),
      (error: unknown) => {
        assert.ok(error instanceof PullsafeError, String(error));
        assert.equal(error.code, 'CONFIG_INVALID');
        return true;
      },
    );
  });

  it('tls-verify takes YAML 1.1 booleans, as skopeo reads them (no, off, yes, on)', async () => {
    for (const [word, expected] of [
      ['no', false],
      ['Off', false],
      ['yes', true],
      ['on', true],
    ] as const) {
      const config = await load(`quay.io:\n  images:\n    a/b: [v1]\n  tls-verify: ${word}\n`, {
        dest: 'registry.example.com/mirror',
      });
      assert.equal(config.entries[0]!.tlsVerify, expected, word);
    }
    await assert.rejects(
      load(`quay.io:\n  images:\n    a/b: [v1]\n  tls-verify: maybe\n`, { dest: 'registry.example.com/m' }),
      /tls-verify/,
    );
  });

  it("a skopeo regex's leading Go flag group (?i) applies, as in Go", async () => {
    const config = await load(`quay.io:\n  images-by-tag-regex:\n    a/b: '(?i)^V1\\.'\n`, {
      dest: 'registry.example.com/mirror',
    });
    const selection = config.entries[0]!.selection;
    assert.equal(selection.kind, 'filters');
    const filter = selection.kind === 'filters' ? selection.filters[0] : undefined;
    assert.ok(filter && 'regex' in filter);
    // A TagFilter regex matches the whole tag.
    const whole = new RegExp(`^(?:${filter.regex})$`);
    assert.deepEqual(
      ['v1.2', 'V1.3', 'v2.0', 'xv1.0'].filter((tag) => whole.test(tag)),
      ['v1.2', 'V1.3'],
    );
  });

  it('a skopeo regex matches anywhere in the tag, as Go MatchString', async () => {
    const config = await load('docker.io:\n  images-by-tag-regex:\n    alpine: "3\\\\.19"\n', {
      dest: 'm.example.com',
    });
    const selection = config.entries[0]?.selection;
    assert.ok(selection?.kind === 'filters');
    const filter = selection.filters[0];
    assert.ok(filter && 'regex' in filter);
    const regex = new RegExp(`^(?:${filter.regex})$`);
    assert.equal(regex.test('3.19'), true);
    assert.equal(regex.test('3.19.1-slim'), true);
    assert.equal(regex.test('3.18'), false);
  });

  it('warns about registries with nothing listed and targets two sources share', async () => {
    const config = await load(
      'docker.io:\n  images:\n    nginx: [latest]\nquay.io:\n  images:\n    other/nginx: [latest]\nghcr.io: {}\nregistry.k8s.io:\n',
      { dest: 'm.example.com' },
    );
    assert.equal(config.entries.length, 2);
    assert.ok(config.warnings.some((line) => line.includes('["ghcr.io"]: no images listed')));
    assert.ok(config.warnings.some((line) => line.includes('["registry.k8s.io"]: no images listed')));
    assert.ok(
      config.warnings.some((line) =>
        /quay\.io\/other\/nginx and docker\.io\/library\/nginx .* both go to m\.example\.com\/nginx \(--scoped keeps them apart\)/.test(
          line,
        ),
      ),
    );
  });

  it('without --dest is an error', async () => {
    await rejects(skopeoFile, ["--dest: skopeo's format names no target; pass --dest PREFIX"]);
  });

  it('rejects a bad --dest', async () => {
    await rejects(skopeoFile, ['--dest: "m.example.com/{name}" must be a plain prefix'], {
      dest: 'm.example.com/{name}',
    });
    await rejects(skopeoFile, ['--dest: "m.example.com/Mirror" is not a registry[:port][/path] prefix'], {
      dest: 'm.example.com/Mirror',
    });
  });

  it('rejects bad keys, names, references, regexes and ranges, with their paths', async () => {
    const error = await rejects(
      `
docker.io:
  image:
    nginx: [latest]
  tls_verify: false
quay.io:
  images:
    Org/App: [latest]
    org/app:1.0: [latest]
    org/tool: ['bad tag', 'sha256:abc']
  images-by-tag-regex:
    org/x: '(unclosed'
  images-by-semver:
    org/y: '>=x'
    org/z: 'banana, >=1'
`,
      [
        '["docker.io"].image: unknown key (did you mean "images"?)',
        '["docker.io"].tls_verify: unknown key (did you mean "tls-verify"?)',
      ],
      { dest: 'm.example.com' },
    );
    assert.doesNotMatch(error.message, /Org\/App/, 'schema errors are reported before names are checked');

    await rejects(
      `
quay.io:
  images:
    Org/App: [latest]
    org/app:1.0: [latest]
    org/tool: ['bad tag', 'sha256:abc']
  images-by-tag-regex:
    org/x: '(unclosed'
  images-by-semver:
    org/y: '>=x'
    org/z: 'banana, >=1'
`,
      [
        '["quay.io"].images["Org/App"]: invalid image reference "quay.io/Org/App": repository name must be lowercase',
        '["quay.io"].images["org/app:1.0"]: name a repository; list tags or digests under it',
        '["quay.io"].images["org/tool"][0]: invalid image reference "quay.io/org/tool:bad tag"',
        '["quay.io"].images["org/tool"][1]: invalid image reference "quay.io/org/tool@sha256:abc"',
        '["quay.io"].images-by-tag-regex["org/x"]: invalid regular expression "(unclosed"',
        '["quay.io"].images-by-semver["org/y"]: invalid range ">=x"',
        '["quay.io"].images-by-semver["org/z"]: invalid range "banana, >=1"',
      ],
      { dest: 'm.example.com' },
    );
  });

  it('rejects top-level keys that are not registries', async () => {
    await rejects(
      'docker.io:\n  images:\n    nginx: []\nmirror:\n  images:\n    x: []\n',
      ['mirror: not a registry'],
      { dest: 'm.example.com' },
    );
  });

  it('never echoes credentials', async () => {
    const error = await rejects(
      'docker.io:\n  images:\n    nginx: []\n  credentials: { username: me, pasword: hunter2 }\n',
      ['["docker.io"].credentials.pasword: unknown key (did you mean "password"?)'],
      { dest: 'm.example.com' },
    );
    assert.doesNotMatch(error.message, /hunter2/);
    const wrongType = await rejects(
      'docker.io:\n  images:\n    nginx: []\n  credentials: { username: me, password: [hunter2] }\n',
      ['["docker.io"].credentials.password: Invalid input'],
      { dest: 'm.example.com' },
    );
    assert.doesNotMatch(wrongType.message, /hunter2/);
    const syntax = await rejects('docker.io:\n  credentials: { username: me, password: "hunter2 }\n', [
      'not valid YAML or JSON',
    ]);
    assert.doesNotMatch(syntax.message, /hunter2/);
  });
});

describe('format detection', () => {
  const cases: [string, unknown, 'pullsafe' | 'skopeo'][] = [
    ['images as a list', { images: [] }, 'pullsafe'],
    ['a target', { target: 'x', images: {} }, 'pullsafe'],
    ['host keys holding mappings', { 'docker.io': { images: {} } }, 'skopeo'],
    ['host:port', { 'localhost:5000': {} }, 'skopeo'],
    ['localhost with a namespace', { 'localhost/team': null }, 'skopeo'],
    ['a host next to other keys', { 'quay.io': {}, other: {} }, 'skopeo'],
    ['host keys holding lists are not registries', { 'docker.io': ['nginx'] }, 'pullsafe'],
    ['plain keys', { imgaes: [] }, 'pullsafe'],
    ['images as a mapping without hosts', { images: { nginx: [] } }, 'pullsafe'],
  ];
  for (const [name, value, expected] of cases) {
    it(`${name}: ${expected}`, () => {
      assert.equal(detectSyncFormat(value), expected);
    });
  }

  it('rejects a top level that is not a mapping, and an empty file', async () => {
    assert.throws(() => detectSyncFormat(['nginx']), /the top level must be a mapping/);
    assert.throws(() => detectSyncFormat('nginx'), /the top level must be a mapping/);
    await rejects('- nginx\n', ['the top level must be a mapping']);
    await rejects('# nothing\n', ['the file is empty']);
  });
});

describe('pullsafe format errors', () => {
  const cases: [string, string, (RegExp | string)[]][] = [
    [
      'unknown keys, with suggestions at every depth',
      `target: m.example.com/{repository}
imgaes: []
images:
  - source: nginx
    tag: [{ latest: 1 }]
  - source: redis
    tags: [{ semvr: '^7' }]
defaults: { platform: [linux/amd64] }
registries:
  docker.io: { tlsverify: false }
`,
      [
        'imgaes: unknown key (did you mean "images"?)',
        'images[0].tag: unknown key (did you mean "tags"?)',
        'images[1].tags[0].semvr: unknown key (did you mean "semver"?)',
        'defaults.platform: unknown key (did you mean "platforms"?)',
        'registries["docker.io"].tlsverify: unknown key (did you mean "tlsVerify"?)',
      ],
    ],
    ['no images', 'target: m.example.com/{repository}\nimages: []\n', ['images: Too small']],
    [
      'wrong types',
      'target: [x]\nimages:\n  - source: nginx\n    referrers: maybe\nconcurrency: { images: 0 }\n',
      [
        'target: Invalid input: expected string',
        'images[0].referrers: Invalid input: expected boolean',
        'concurrency.images: Too small',
      ],
    ],
    [
      'bad references',
      'target: m.example.com/{repository}\nimages:\n  - source: Nginx\n  - source: "nginx:"\n  - source: https://ghcr.io/x\n',
      [
        'images[0].source: invalid image reference "Nginx": repository name must be lowercase (write "nginx"',
        'images[1].source: invalid image reference "nginx:": the tag after ":" is empty',
        'images[2].source: invalid image reference "https://ghcr.io/x": a URL scheme',
      ],
    ],
    [
      'bad filters, each with its path',
      `target: m.example.com/{repository}
images:
  - source: nginx
    tags: [{ glob: 'v[12]' }]
  - source: redis
    tags: [{ regex: '(' }, { regex: '${'a'.repeat(257)}' }]
  - source: alpine
    tags: [{ exact: [1.25] }, { semver: '>=x' }]
  - source: busybox
    tags: [{ latest: 0 }, { glob: '*', latest: 2 }, {}]
  - source: debian
    tags: [{ latest: 2 }, { latest: 3 }]
  - source: ubuntu
    tags: [{ exact: ['ok', 'not ok'] }, { exact: [] }]
`,
      [
        'images[0].tags[0].glob: "v[12]" may contain only tag characters',
        'images[1].tags[0].regex: invalid regular expression "(": Unterminated group',
        'images[1].tags[1].regex: the pattern is 257 characters; at most 256 are allowed',
        'images[2].tags[1].semver: invalid range ">=x"',
        'images[3].tags[0].latest: must be a whole number from 1 to 1000',
        'images[3].tags[1]: one kind per filter (got glob, latest)',
        'images[3].tags[2]: a tag filter needs one of exact, glob, regex, semver, latest',
        'images[4].tags[1].latest: one latest filter per image',
        'images[5].tags[0].exact[1]: "not ok" is not a valid tag',
      ],
    ],
    [
      'a tag glob outside the shared glob rules',
      "target: m.example.com/{repository}\nimages:\n  - source: fedora\n    tags: [{ glob: 'v1.***' }]\n",
      ['images[0].tags[0].glob: a pattern may not contain "***"'],
    ],
    [
      'tags next to a tag or digest in the source, and an empty tags list',
      `target: m.example.com/{repository}\nimages:\n  - source: redis:7.2\n    tags: [{ latest: 1 }]\n  - source: alpine@${digest}\n    tags: [{ latest: 1 }]\n  - source: nginx\n    tags: []\n`,
      [
        'images[0].tags: the source "redis:7.2" names a tag; remove it to select tags with filters, or remove tags',
        'images[1].tags: the source "alpine@sha256:',
        "images[2].tags: list at least one filter; for every tag write [{ glob: '*' }]",
      ],
    ],
    [
      'a missing target',
      'images:\n  - source: nginx:1\n  - source: redis:7\n    target: m.example.com/redis\n',
      ['target: missing; give a top-level target (or --dest), or a target for every image'],
    ],
    [
      'bad templates',
      `target: m.example.com/{repo}
images:
  - source: nginx:1
  - source: a:1
    target: m.example.com/{tag}/x
  - source: b:1
    target: m.example.com/b@${digest}
  - source: c:1
    target: m.example.com/{name
  - source: d:1
    target: 'm.example.com/{name}:'
  - source: e:1
    target: m.example.com/{foo}
`,
      [
        'target: "m.example.com/{repo}": unknown placeholder {repo} (did you mean {repository}?)',
        'images[1].target: {tag} may appear only in the tag part, after ":"',
        'images[2].target: a target cannot name a digest',
        'images[3].target: unbalanced "{" or "}"',
        'images[4].target: the tag after ":" is empty',
        'images[5].target: unknown placeholder {foo}; known: {registry} {repository} {name} {tag}',
      ],
    ],
    [
      'templates that do not give a valid reference',
      `images:
  - source: localhost:5000/app:1
    target: m.example.com/{registry}/{repository}
  - source: nginx:1
    target: M_Example/{name}
  - source: nginx
    tags: [{ latest: 1 }]
    target: m.example.com/nginx:fixed
  - source: alpine@${digest}
    target: m.example.com/alpine:{tag}
  - source: ghcr.io/org/app:1
    target: ghcr.io/org/{name}
`,
      [
        'images[0].target: target "m.example.com/{registry}/{repository}" for localhost:5000/app:1 gives "m.example.com/localhost:5000/app:1": "localhost:5000" is not a valid repository path component',
        'images[1].target: target "M_Example/{name}" for docker.io/library/nginx:1 gives "M_Example/nginx:1"',
        'images[2].target: the fixed tag ":fixed" would give every selected tag the same name; use {tag}',
        'images[3].target: {tag} needs a tag, but the source is a digest',
        'images[4].target: the target ghcr.io/org/app is the source itself',
      ],
    ],
    [
      'two sources sent to one repository',
      'target: m.example.com/{name}\nimages:\n  - source: nginx:1\n  - source: ghcr.io/x/nginx:2\n  - source: nginx:2\n',
      ['images[1]: ghcr.io/x/nginx and docker.io/library/nginx (images[0]) both go to m.example.com/nginx'],
    ],
    [
      'bad platforms',
      'target: m.example.com/{repository}\ndefaults: { platforms: [linux] }\nimages:\n  - source: nginx:1\n    platforms: [linux/amd64, "linux amd64"]\n',
      [
        'defaults.platforms[0]: "linux" is not os/arch[/variant]',
        'images[0].platforms[1]: "linux amd64" is not os/arch[/variant]',
      ],
    ],
    [
      'an empty platforms list',
      'target: m.example.com/{repository}\nimages:\n  - source: redis:1\n    platforms: []\n',
      ['images[0].platforms: Too small'],
    ],
    [
      'bad registries keys',
      'target: m.example.com/{repository}\nregistries:\n  nothost: {}\nimages:\n  - source: nginx:1\n',
      ['registries.nothost: not a registry host[:port]'],
    ],
    [
      'a bad --dest template',
      'images:\n  - source: nginx:1\n',
      ['--dest: "m.example.com/{nam}": unknown placeholder {nam} (did you mean {name}?)'],
    ],
  ];
  for (const [name, content, patterns] of cases) {
    it(name, async () => {
      await rejects(
        content,
        patterns,
        name === 'a bad --dest template' ? { dest: 'm.example.com/{nam}' } : {},
      );
    });
  }

  it('warns about registries no image uses', async () => {
    const config = await load(
      'target: m.example.com/{repository}\nregistries:\n  ghcr.io: { tlsVerify: false }\nimages:\n  - source: nginx:1\n',
    );
    assert.deepEqual(config.warnings, ['registries["ghcr.io"]: no image comes from this registry']);
  });

  it('reports YAML syntax errors with a position, and unreadable files', async () => {
    await rejects('images:\n  - source: nginx\n    tags: [\n', [
      /not valid YAML or JSON: .* at line \d+, column \d+/,
    ]);
    await rejects('a: 1\na: 2\n', [/not valid YAML or JSON: Map keys must be unique/]);
    await assert.rejects(
      loadSyncConfig(join(folder, 'missing.yaml')),
      (error: unknown) => error instanceof PullsafeError && error.code === 'CONFIG_UNREADABLE',
    );
  });

  it('shows at most ten problems', async () => {
    const images = Array.from({ length: 12 }, (_, i) => `  - source: Bad${i}\n`).join('');
    const error = await rejects(`target: m.example.com/{repository}\nimages:\n${images}`, ['... and 2 more']);
    assert.equal(error.message.split('\n').length, 12);
  });
});

describe('targetFor', () => {
  const entry = (source: string, targetTemplate: string): SyncPlanEntry => ({
    source: parseReference(source),
    selection: { kind: 'filters', filters: [] },
    targetTemplate,
    referrers: false,
    tlsVerify: true,
  });

  it('fills every placeholder', () => {
    const cases: [string, string, { tag?: string; digest?: string }, string][] = [
      [
        'nginx',
        'm.example.com/mirror/{repository}',
        { tag: '1.25' },
        'm.example.com/mirror/library/nginx:1.25',
      ],
      ['nginx', 'm.example.com/{name}', { tag: '1.25' }, 'm.example.com/nginx:1.25'],
      [
        'nginx',
        'm.example.com/{registry}/{repository}',
        { tag: '1' },
        'm.example.com/docker.io/library/nginx:1',
      ],
      ['user/app', 'm.example.com/{repository}', { tag: '1' }, 'm.example.com/user/app:1'],
      ['ghcr.io/a/b/c', 'm.example.com/x/{name}:{tag}-{name}', { tag: 'v1' }, 'm.example.com/x/c:v1-c'],
      ['nginx', 'localhost:5000/{repository}', { digest }, `localhost:5000/library/nginx@${digest}`],
      ['nginx', 'mirror/{name}', { tag: '1' }, 'docker.io/mirror/nginx:1'],
    ];
    for (const [source, template, tagOrDigest, expected] of cases) {
      assert.equal(formatReference(targetFor(entry(source, template), tagOrDigest)), expected);
    }
  });

  it('returns a parsed reference', () => {
    const result = targetFor(entry('nginx', 'm.example.com/{repository}'), { tag: '1.25' });
    assert.deepEqual(result, {
      registry: 'm.example.com',
      repository: 'library/nginx',
      tag: '1.25',
      original: 'm.example.com/library/nginx:1.25',
    });
  });

  it('rejects results that are not references, and calls without a tag or digest', () => {
    const isConfigError = (pattern: RegExp) => (error: unknown) =>
      error instanceof PullsafeError && error.code === 'CONFIG_INVALID' && pattern.test(error.message);
    assert.throws(
      () => targetFor(entry('nginx', 'm.example.com/{name}:{tag}-suffix'), { tag: 'x'.repeat(125) }),
      isConfigError(/gives .*at most 128/),
    );
    assert.throws(
      () => targetFor(entry('nginx', 'm.example.com/{name}:{tag}'), { digest }),
      isConfigError(/uses \{tag\}/),
    );
    assert.throws(
      () => targetFor(entry('nginx', 'm.example.com/{nme}'), { tag: '1' }),
      isConfigError(/unknown placeholder/),
    );
    assert.throws(
      () => targetFor(entry('nginx', 'm.example.com/{name}'), {}),
      (error: unknown) => error instanceof PullsafeError && error.code === 'INTERNAL',
    );
  });
});

describe('formatPath', () => {
  it('writes indexes in brackets and quotes keys that are not identifiers', () => {
    assert.equal(formatPath(['images', 2, 'tags', 0, 'semver']), 'images[2].tags[0].semver');
    assert.equal(
      formatPath(['docker.io', 'images', 'library/nginx', 0]),
      '["docker.io"].images["library/nginx"][0]',
    );
    assert.equal(formatPath([]), '(top level)');
  });
});

describe('parseSyncConfig', () => {
  it('takes an already-parsed value', () => {
    const config = parseSyncConfig(
      { target: 'm.example.com/{repository}', images: [{ source: 'nginx:1' }] },
      'inline',
    );
    assert.equal(config.entries.length, 1);
    assert.throws(
      () => parseSyncConfig({ images: [{ source: 'Nginx' }] }, 'inline'),
      /^PullsafeError|inline: invalid sync file/,
    );
  });
});

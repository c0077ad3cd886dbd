import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { allExtractors } from './extractors.ts';
import { globRows } from '../shared/glob.test-support.ts';
import { mayBeRead, needlesFor, scanPaths, type ScannedReference, type ScanResult } from './scan.ts';

let root: string;

/** A tree with enough folders to be split into many units, ignore rules, nesting and files no reader wants. */
async function writeTree(dir: string): Promise<void> {
  const files: Record<string, string> = {
    '.gitignore': 'build/\n*.tmp.yaml\n!compose.keep.tmp.yaml\n',
    Dockerfile: 'FROM alpine:3.20\n',
    'compose.keep.tmp.yaml': 'services:\n  a:\n    image: redis\n',
    'compose.drop.tmp.yaml': 'services:\n  a:\n    image: dropped\n',
    'build/Dockerfile': 'FROM ignored\n',
    'binary.json': '{"containerDefinitions": [{"image": "x"}]}\u0000',
  };
  for (let i = 0; i < 120; i++) {
    const service = `svc${String(i).padStart(3, '0')}`;
    files[`${service}/Dockerfile`] = `ARG BASE=python:3.${i % 12}\nFROM \${BASE}-slim AS build\nFROM build\n`;
    files[`${service}/docker-compose.yml`] =
      `services:\n  app:\n    image: "redis:7.${i % 4}"\n  db:\n    image: \${DB:-postgres}:16\n`;
    files[`${service}/k8s/deploy.yaml`] =
      `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: s${i}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: nginx:1.${i % 27}\n`;
    files[`${service}/k8s/anchors.yaml`] =
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p${i}\nspec:\n  containers:\n    - &c {name: a, image: "busybox:${i}"}\n`;
    files[`${service}/ecs/taskdef.json`] =
      `{\n  "family": "s${i}",\n  "containerDefinitions": [{ "name": "app", "image": "node:${18 + (i % 4)}" }]\n}\n`;
    files[`${service}/src/main.py`] = 'print("FROM nginx")\n';
    files[`${service}/config/settings.yaml`] = `name: s${i}\nimage: not-a-claimed-file\n`;
    if (i % 3 === 0) {
      files[`${service}/infra/stack.ts`] =
        `export class S${i} extends Stack {\n  image = ContainerImage.fromRegistry('acme/s${i}:1');\n}\n`;
      files[`${service}/infra/pod`] =
        `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p${i}\nspec:\n  containers:\n    - name: c\n      image: acme/pod:${i}\n`;
      files[`${service}/LICENSE`] = 'Licensed under the Apache License, Version 2.0\n';
    }
    if (i % 10 === 0) {
      files[`${service}/.gitignore`] = 'k8s/\n';
      files[`${service}/deep/er/values.yaml`] = `image:\n  repository: bitnami/redis\n  tag: "7.${i}"\n`;
    }
  }
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
  }
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'pullsafe-scan-'));
  await writeTree(root);
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A single walk on this thread (a custom `wanted` filter keeps the scan out of units and workers). */
function walkedOnce(options: { maxFiles?: number } = {}): Promise<ScanResult> {
  return scanPaths([root], allExtractors, { ...options, wanted: mayBeRead });
}

describe('scanPaths', () => {
  it('gives the same references in the same order whether split into units or walked once', async () => {
    const once = await walkedOnce();
    const units = await scanPaths([root], allExtractors);
    assert.equal(units.workersUsed, 0);
    assert.deepEqual(units, once);
    assert.ok(once.references.length > 500, `${once.references.length} references`);
    assert.ok(!once.references.some((reference) => reference.file.startsWith('build/')));
    assert.ok(!once.references.some((reference) => reference.file === 'binary.json'));
    assert.ok(once.references.some((reference) => reference.file === 'compose.keep.tmp.yaml'));
    assert.ok(!once.references.some((reference) => reference.file === 'compose.drop.tmp.yaml'));
    assert.ok(!once.references.some((reference) => reference.file === 'svc010/k8s/deploy.yaml'));
  });

  it('gives the same result with worker threads', async () => {
    const once = await walkedOnce();
    const threaded = await scanPaths([root], allExtractors, { workers: 2, workersAfterMs: 0 });
    assert.equal(threaded.workersUsed, 2);
    assert.deepEqual({ ...threaded, workersUsed: 0 }, once);
  });

  it('stops each root after maxFiles visited files, as a single walk does', async () => {
    for (const maxFiles of [0, 1, 5, 37, 400]) {
      const once = await scanPaths([root, join(root, 'svc001')], allExtractors, {
        maxFiles,
        wanted: mayBeRead,
      });
      const threaded = await scanPaths([root, join(root, 'svc001')], allExtractors, {
        maxFiles,
        workers: 1,
        workersAfterMs: 0,
      });
      assert.deepEqual({ ...threaded, workersUsed: 0 }, once, `maxFiles ${maxFiles}`);
      assert.ok(once.filesScanned <= 2 * maxFiles);
    }
  });

  it('keeps custom extractors on the calling thread', async () => {
    const dockerfileOnly = allExtractors.filter((extractor) => extractor.kind === 'dockerfile');
    const custom = { ...dockerfileOnly[0]! };
    const result = await scanPaths([root], [custom], { workers: 2, workersAfterMs: 0 });
    assert.equal(result.workersUsed, 0);
    assert.deepEqual(
      result.references,
      (await scanPaths([root], dockerfileOnly, { wanted: mayBeRead })).references,
    );
  });

  it('scans a single file given as a root, and rejects a missing one', async () => {
    const result = await scanPaths([join(root, 'Dockerfile')], allExtractors, { workers: 2 });
    assert.deepEqual(
      result.references.map((reference) => [reference.file, reference.text]),
      [['Dockerfile', 'alpine:3.20']],
    );
    await assert.rejects(scanPaths([join(root, 'missing')], allExtractors));
  });
});

it('decodes source files only when they name a CDK image API, files without an extension when they say apiVersion', async () => {
  const tree = await mkdtemp(join(tmpdir(), 'pullsafe-classify-'));
  try {
    const files: Record<string, string> = {
      'lib/stack.ts': "const image = ecs.ContainerImage.fromRegistry('nginx:1.27');\n",
      'lib/util.ts': 'export const add = (a: number, b: number) => a + b;\n',
      'lib/types.d.ts': "declare const x: 'ContainerImage.fromRegistry(\\'no\\')';\n",
      'deploy/web':
        'apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: web, image: redis:7}]\n',
      'deploy/notes': 'kind words, no manifest here\n',
      LICENSE: 'MIT\n',
      Makefile: 'build:\n\tdocker build .\n',
      Dockerfile: 'FROM alpine:3.20\n',
    };
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(tree, path)), { recursive: true });
      await writeFile(join(tree, path), content);
    }
    await writeFile(
      join(tree, 'deploy', 'tool'),
      Buffer.concat([Buffer.from('apiVersion'), Buffer.from([0, 1, 2])]),
    );
    const result = await scanPaths([tree], allExtractors);
    assert.deepEqual(
      result.references.map((reference) => [reference.file, reference.text, reference.kind]),
      [
        ['Dockerfile', 'alpine:3.20', 'dockerfile'],
        ['deploy/web', 'redis:7', 'kubernetes'],
        ['lib/stack.ts', 'nginx:1.27', 'cdk'],
      ],
    );
    assert.equal(result.filesRead, 3, 'the other files were not decoded, or claimed by nobody');
    for (const [path, needles] of [
      ['lib/util.ts', ['romRegistry', 'rom_registry', 'BuildImage']],
      ['deploy/web', ['apiVersion']],
      ['Dockerfile', undefined],
      ['k8s/web.yaml', undefined],
    ] as const) {
      assert.deepEqual(
        needlesFor(path)?.map((needle) => needle.toString()),
        needles,
        path,
      );
    }
  } finally {
    await rm(tree, { recursive: true, force: true });
  }
});

it('package manifests, lock files and tool settings are not opened; other JSON and YAML are', () => {
  for (const skipped of [
    'package.json',
    'svc/package-lock.json',
    'web/tsconfig.build.json',
    'a/.eslintrc.json',
  ]) {
    assert.equal(mayBeRead(skipped), false, skipped);
  }
  for (const read of [
    'ecs/taskdef.json',
    'svc/packages.json',
    'my-package.json.template',
    'k8s/deploy.yaml',
    'Dockerfile',
    'deploy/web',
    'infra/stack.py',
  ]) {
    assert.equal(mayBeRead(read), true, read);
  }
  for (const skipped of ['README.md', 'lib/types.d.ts', 'run.sh', 'image.png'])
    assert.equal(mayBeRead(skipped), false, skipped);
});

describe('rewrite rules', () => {
  it('match repositories as the shared glob table says (docs/configuration.md#patterns)', async () => {
    const { planRewrites } = await import('./rewrite.ts');
    for (const [glob, repository, matches] of globRows) {
      const reference = {
        text: repository,
        classification: { registry: 'docker.io', repository, registryKind: 'docker-hub' },
      } as unknown as ScannedReference;
      const { edits } = planRewrites([reference], {
        kind: 'rules',
        rules: [{ match: glob, target: { kind: 'mirror', host: 'mirror.example.com' } }],
      });
      assert.deepEqual(
        edits.map((edit) => edit.replacement),
        matches ? [`mirror.example.com/${repository}`] : [],
        `${glob} against ${repository}`,
      );
    }
  });
});

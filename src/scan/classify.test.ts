import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classify, registryKind } from './classify.ts';
import { applyEdits, planRewrites, unifiedDiff } from './rewrite.ts';
import type { ScannedReference } from './scan.ts';
import { walkFiles } from './walk.ts';

const digest = `sha256:${'a'.repeat(64)}`;

describe('classification', () => {
  it('tells Docker Hub (implied or explicit), official images and pinning apart', () => {
    assert.deepEqual(classify('nginx'), {
      registry: 'docker.io',
      repository: 'library/nginx',
      registryKind: 'docker-hub',
      implicitRegistry: true,
      official: true,
      pinned: false,
      floating: true,
      ecrPublicEquivalent: 'public.ecr.aws/docker/library/nginx',
    });
    const explicit = classify('docker.io/library/python:3.12-slim')!;
    assert.equal(explicit.implicitRegistry, false);
    assert.equal(explicit.floating, false);
    assert.equal(explicit.ecrPublicEquivalent, 'public.ecr.aws/docker/library/python:3.12-slim');
    const pinned = classify(`redis@${digest}`)!;
    assert.equal(pinned.pinned, true);
    assert.equal(pinned.ecrPublicEquivalent, `public.ecr.aws/docker/library/redis@${digest}`);
    const user = classify('bitnami/redis:7')!;
    assert.equal(user.official, false);
    assert.equal(user.ecrPublicEquivalent, undefined);
    assert.equal(classify('not-an-official-name-xyz')!.official, false);
    assert.equal(classify('Not A Reference'), undefined);
  });

  it("gives CodeBuild's curated images their own registry when CodeBuild runs them, never Docker Hub", () => {
    assert.deepEqual(classify('aws/codebuild/amazonlinux2-x86_64-standard:5.0', { codebuild: true }), {
      registry: 'codebuild',
      repository: 'aws/codebuild/amazonlinux2-x86_64-standard',
      tag: '5.0',
      registryKind: 'codebuild',
      implicitRegistry: false,
      official: false,
      pinned: false,
      floating: false,
    });
    assert.equal(classify('aws/codebuild/standard:7.0', { codebuild: true })?.registryKind, 'codebuild');
    assert.equal(
      classify('node:20', { codebuild: true })?.registryKind,
      'docker-hub',
      'CodeBuild pulls other images',
    );
    assert.equal(
      classify('public.ecr.aws/codebuild/amazonlinux2-x86_64-standard:5.0', { codebuild: true })
        ?.registryKind,
      'ecr-public',
    );
    assert.equal(
      classify('aws/codebuild/standard:7.0')?.registryKind,
      'docker-hub',
      'outside CodeBuild, a name is a name',
    );
  });

  it('knows the registries that matter on AWS', () => {
    assert.equal(registryKind('123456789012.dkr.ecr.us-east-1.amazonaws.com'), 'ecr-private');
    assert.equal(registryKind('123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn'), 'ecr-private');
    assert.equal(registryKind('123456789012.dkr-ecr.eu-west-1.on.aws'), 'ecr-private');
    assert.equal(registryKind('public.ecr.aws'), 'ecr-public');
    assert.equal(registryKind('ghcr.io'), 'ghcr');
    assert.equal(registryKind('quay.io'), 'quay');
    assert.equal(registryKind('localhost:5000'), 'other');
  });
});

function found(text: string, offset: number, extra: Partial<ScannedReference> = {}): ScannedReference {
  const classification = classify(text);
  return {
    file: 'Dockerfile',
    path: '/x/Dockerfile',
    root: '/x',
    line: 1,
    column: offset + 1,
    offset,
    text,
    kind: 'dockerfile',
    ...(classification ? { classification } : {}),
    ...extra,
  };
}

describe('rewriting', () => {
  const content = 'FROM nginx:1.25 AS web\nFROM bitnami/redis:7\nFROM ghcr.io/org/app:1\n';
  const references = [found('nginx:1.25', 5), found('bitnami/redis:7', 28), found('ghcr.io/org/app:1', 49)];

  it('moves official images to ECR Public and refuses the rest with a reason', () => {
    const { edits, skipped } = planRewrites(references, { kind: 'ecr-public' });
    assert.equal(
      applyEdits(content, edits),
      'FROM public.ecr.aws/docker/library/nginx:1.25 AS web\nFROM bitnami/redis:7\nFROM ghcr.io/org/app:1\n',
    );
    assert.deepEqual(
      skipped.map((skip) => skip.reference.text),
      ['bitnami/redis:7'],
    );
  });

  it('points everything on Docker Hub at a pull-through cache, library/ kept', () => {
    const { edits } = planRewrites(references, {
      kind: 'pull-through',
      host: '123456789012.dkr.ecr.us-east-1.amazonaws.com',
      prefix: 'docker-hub',
    });
    assert.equal(
      applyEdits(content, edits),
      'FROM 123456789012.dkr.ecr.us-east-1.amazonaws.com/docker-hub/library/nginx:1.25 AS web\nFROM 123456789012.dkr.ecr.us-east-1.amazonaws.com/docker-hub/bitnami/redis:7\nFROM ghcr.io/org/app:1\n',
    );
  });

  it('refuses references built from variables', () => {
    const variable = found('nginx:${TAG}', 5, { resolved: 'nginx:1.25' });
    variable.classification = classify('nginx:1.25')!;
    const { edits, skipped } = planRewrites([variable], { kind: 'mirror', host: 'mirror.internal:5000' });
    assert.equal(edits.length, 0);
    assert.match(skipped[0]!.reason, /variables/);
  });

  it('refuses to edit a file that changed since the scan', () => {
    const { edits } = planRewrites([found('nginx:1.25', 5)], { kind: 'ecr-public' });
    assert.throws(() => applyEdits('FROM nginx:1.26\n', edits), /changed since it was scanned/);
  });

  it('prints a unified diff of the changed lines', () => {
    const { edits } = planRewrites([found('nginx', 7)], { kind: 'mirror', host: 'mirror' });
    const diff = unifiedDiff('Dockerfile', 'a\nFROM nginx\nb\n', edits);
    assert.equal(
      diff,
      '--- a/Dockerfile\n+++ b/Dockerfile\n@@ -1,3 +1,3 @@\n a\n-FROM nginx\n+FROM mirror/library/nginx\n b\n',
    );
    assert.equal(unifiedDiff('x', 'same', []), '');
  });
});

describe('walking a tree', () => {
  it('respects .gitignore, skips binary, huge and vendored files', async () => {
    const root = await mkdtemp(join(tmpdir(), 'pullsafe-walk-'));
    try {
      await mkdir(join(root, 'build'), { recursive: true });
      await mkdir(join(root, 'node_modules', 'x'), { recursive: true });
      await mkdir(join(root, 'sub'), { recursive: true });
      await writeFile(join(root, '.gitignore'), 'build/\n*.log\n!keep.log\n');
      await writeFile(join(root, 'sub', '.gitignore'), '/local.txt\n');
      await writeFile(join(root, 'Dockerfile'), 'FROM nginx\n');
      await writeFile(join(root, 'build', 'Dockerfile'), 'FROM ignored\n');
      await writeFile(join(root, 'node_modules', 'x', 'Dockerfile'), 'FROM vendored\n');
      await writeFile(join(root, 'a.log'), 'x');
      await writeFile(join(root, 'keep.log'), 'x');
      await writeFile(join(root, 'sub', 'local.txt'), 'x');
      await writeFile(join(root, 'sub', 'other.txt'), 'x');
      await writeFile(join(root, 'image.bin'), Buffer.from([1, 0, 2]));
      await writeFile(join(root, 'huge.yaml'), 'x'.repeat(3 * 1024 * 1024));
      const seen: string[] = [];
      for await (const file of walkFiles(root)) seen.push(file.relative);
      assert.deepEqual(seen.sort(), [
        '.gitignore',
        'Dockerfile',
        'keep.log',
        'sub/.gitignore',
        'sub/other.txt',
      ]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

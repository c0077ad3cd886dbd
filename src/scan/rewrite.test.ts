import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { classify } from './classify.ts';
import { composeExtractor } from './compose.ts';
import { terraformExtractor } from './terraform.ts';
import { helmValuesExtractor } from './helm.ts';
import { chartReadsRegistry, type RegistryUse } from './helm-chart.ts';
import { applyEdits, planRewrites, unifiedDiff, type RewriteRule } from './rewrite.ts';
import type { ScannedReference } from './scan.ts';
import type { FoundReference } from './types.ts';

/** What the scanner adds to an extractor's references. */
function scanned(found: FoundReference[], path = '/repo/charts/cache/values.yaml'): ScannedReference[] {
  return found.map((reference) => {
    const result = { ...reference, root: '/repo', path } as ScannedReference;
    const classification = reference.unresolved
      ? undefined
      : classify(reference.resolved ?? reference.text, { codebuild: reference.codebuild === true });
    if (classification) result.classification = classification;
    return result;
  });
}

const mirror: RewriteRule = { kind: 'mirror', host: 'mirror.example.com:5000', prefix: 'hub' };

function rewrite(
  content: string,
  rule: RewriteRule,
  use: RegistryUse,
): { after: string; skipped: string[]; diff: string } {
  const references = scanned(helmValuesExtractor.extract('values.yaml', content));
  const { edits, skipped } = planRewrites(references, rule, { chartReadsRegistry: () => use });
  return {
    after: applyEdits(content, edits),
    skipped: skipped.map((skip) => skip.reason),
    diff: unifiedDiff('values.yaml', content, edits),
  };
}

const values = `global:
  imageRegistry: ""
image:
  registry: docker.io
  repository: acme/cache   # the server
  tag: 7.4.1
  digest: ""
metrics:
  image:
    repository: "acme/cache-exporter"
    tag: "1.66"
    pullPolicy: IfNotPresent
flow:
  image: {repository: nginx, tag: "1.27"}
own:
  image:
    registry: ghcr.io
    repository: acme/own
    tag: "2"
`;

describe('rewrite: Helm image maps', () => {
  it('edits the registry and repository values in place, keeping tag, digest and every other byte', () => {
    const { after, skipped } = rewrite(values, mirror, 'no');
    assert.deepEqual(skipped, []);
    assert.equal(
      after,
      values
        .replace('registry: docker.io', 'registry: mirror.example.com:5000')
        .replace('repository: acme/cache ', 'repository: hub/acme/cache ')
        .replace('"acme/cache-exporter"', '"mirror.example.com:5000/hub/acme/cache-exporter"')
        .replace('{repository: nginx,', '{repository: mirror.example.com:5000/hub/library/nginx,'),
    );
    assert.equal(
      parseAllDocuments(after).every((document) => document.errors.length === 0),
      true,
    );
    const again = rewrite(after, mirror, 'no');
    assert.equal(again.after, after, 'a second run changes nothing');
  });

  it('adds registry: where the chart reads one and the map has none', () => {
    const { after, diff } = rewrite(values, { kind: 'ecr-public' }, 'yes');
    assert.equal(diff, '', 'nothing here is an official image in a map that can take a line');
    assert.match(
      after,
      /\nmetrics:\n {2}image:\n {4}repository: "acme\/cache-exporter"\n/,
      'not official: left',
    );
    assert.match(
      after,
      /flow:\n {2}image: \{repository: nginx, tag: "1.27"\}\n/,
      'a flow map gets no new line',
    );
    const official = 'web:\n  image:\n    repository: nginx # upstream\n    tag: "1.27"\n';
    const result = rewrite(official, { kind: 'ecr-public' }, 'yes');
    assert.equal(
      result.after,
      'web:\n  image:\n    repository: docker/library/nginx # upstream\n    registry: public.ecr.aws\n    tag: "1.27"\n',
    );
    assert.equal(
      result.diff,
      [
        '--- a/values.yaml',
        '+++ b/values.yaml',
        '@@ -1,4 +1,5 @@',
        ' web:',
        '   image:',
        '-    repository: nginx # upstream',
        '+    repository: docker/library/nginx # upstream',
        '+    registry: public.ecr.aws',
        '     tag: "1.27"',
        '',
      ].join('\n'),
    );
    assert.deepEqual(rewrite(result.after, { kind: 'ecr-public' }, 'yes').skipped, []);
  });

  it('says which values to set when it cannot tell or cannot edit', () => {
    const { after, skipped } = rewrite(values, mirror, 'unknown');
    assert.equal(after.includes('mirror.example.com:5000/hub/acme/cache-exporter'), false);
    assert.ok(
      skipped.includes(
        'no chart next to this file says whether it reads metrics.image.registry: set metrics.image.registry to mirror.example.com:5000 and metrics.image.repository to hub/acme/cache-exporter if it does, else metrics.image.repository to mirror.example.com:5000/hub/acme/cache-exporter',
      ),
      skipped.join('\n'),
    );
    const flow = rewrite(values, mirror, 'yes').skipped;
    assert.ok(
      flow.some((reason) => reason.startsWith('the chart reads flow.image.registry, which this map has not')),
    );
    const global = rewrite(values.replace('imageRegistry: ""', 'imageRegistry: docker.io'), mirror, 'yes');
    assert.match(
      global.skipped[0] ?? '',
      /^global\.imageRegistry \(line 2\) sets the registry of every image here/,
    );
    assert.equal(
      rewrite('image:\n  registry:\n  repository: acme/a\n', mirror, 'yes').skipped[0],
      'image.registry cannot be edited in place: set image.registry to mirror.example.com:5000 and image.repository to hub/acme/a',
    );
  });

  it('edits helm_release set values in place, and names the set to add when there is none', () => {
    const tf = [
      'resource "helm_release" "cache" {',
      '  set {',
      '    name  = "image.registry"',
      '    value = "docker.io"',
      '  }',
      '  set {',
      '    name  = "image.repository"',
      '    value = "acme/cache"',
      '  }',
      '  set {',
      '    name  = "metrics.image.repository"',
      '    value = "acme/cache-exporter"',
      '  }',
      '}',
      '',
    ].join('\n');
    const references = scanned(terraformExtractor.extract('main.tf', tf), '/repo/main.tf');
    const { edits, skipped } = planRewrites(references, mirror, {
      chartReadsRegistry: () => assert.fail('the chart of a helm_release is never read'),
    });
    assert.equal(
      applyEdits(tf, edits),
      tf.replace('"docker.io"', '"mirror.example.com:5000"').replace('"acme/cache"', '"hub/acme/cache"'),
    );
    assert.deepEqual(
      skipped.map((skip) => skip.reason),
      [
        'the chart is not here to say whether it reads metrics.image.registry: set metrics.image.registry to mirror.example.com:5000 and metrics.image.repository to hub/acme/cache-exporter if it does, else metrics.image.repository to mirror.example.com:5000/hub/acme/cache-exporter',
      ],
    );
  });

  it('never rewrites what a build produces, nor CodeBuild images', () => {
    const compose = 'services:\n  etl:\n    build: .\n    image: etl-kafka\n  cache:\n    image: redis:7\n';
    const references = scanned(composeExtractor.extract('compose.yaml', compose), '/repo/compose.yaml');
    const { edits, skipped } = planRewrites(references, mirror);
    assert.equal(
      applyEdits(compose, edits),
      compose.replace('redis:7', 'mirror.example.com:5000/hub/library/redis:7'),
    );
    assert.deepEqual(skipped, []);
    const codebuild = scanned(
      terraformExtractor.extract(
        'main.tf',
        'resource "aws_codebuild_project" "b" {\n  environment {\n    image = "aws/codebuild/standard:7.0"\n  }\n}\n',
      ),
    );
    assert.equal(codebuild[0]?.classification?.registryKind, 'codebuild');
    assert.deepEqual(planRewrites(codebuild, mirror), { edits: [], skipped: [] });
  });
});

describe("rewrite: what a chart's templates read", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'pullsafe-chart-'));
    const files: Record<string, string> = {
      'created/Chart.yaml': 'apiVersion: v2\nname: created\nversion: 0.1.0\n',
      'created/values.yaml': 'image:\n  repository: nginx\n',
      'created/templates/deployment.yaml':
        'spec:\n  containers:\n    - image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"\n',
      'library/Chart.yaml':
        'apiVersion: v2\nname: library\ndependencies:\n  - name: common\n    repository: oci://registry-1.docker.io/examplecharts\n    version: 2.x.x\n',
      'library/values.yaml': 'image:\n  repository: acme/app\n',
      'library/templates/_helpers.tpl':
        '{{- define "library.image" -}}\n{{ include "common.images.image" (dict "imageRoot" .Values.image "global" .Values.global) }}\n{{- end -}}\n',
      'direct/Chart.yaml': 'apiVersion: v2\nname: direct\n',
      'direct/ci/values-ha.yaml': 'image:\n  repository: acme/app\n',
      'direct/templates/pod.yaml': 'image: {{ .Values.image.registry }}/{{ .Values.image.repository }}\n',
      'loose/values.yaml': 'image:\n  repository: acme/app\n',
    };
    for (const [name, text] of Object.entries(files)) {
      await mkdir(join(root, name, '..'), { recursive: true });
      await writeFile(join(root, name), text);
    }
  });
  after(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('tells the helm create layout from charts that read a registry, and says when there is no chart', () => {
    assert.equal(chartReadsRegistry(join(root, 'created/values.yaml'), 'image'), 'no');
    assert.equal(chartReadsRegistry(join(root, 'library/values.yaml'), 'image'), 'yes');
    assert.equal(chartReadsRegistry(join(root, 'direct/ci/values-ha.yaml'), 'image'), 'yes');
    assert.equal(chartReadsRegistry(join(root, 'created/values.yaml'), 'sidecar.image'), 'unknown');
    assert.equal(chartReadsRegistry(join(root, 'loose/values.yaml'), 'image'), 'unknown');
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hasImageLikeKey, helmValuesExtractor, isValuesFile, topLevelBlocks } from './helm.ts';
import type { FoundReference } from './types.ts';

const digest = `sha256:${'e'.repeat(64)}`;

/** Every reference's text stands where it says; returns them by repository text. */
function extract(content: string, path = 'charts/cache/values.yaml'): Map<string, FoundReference> {
  const found = helmValuesExtractor.extract(path, content);
  for (const reference of found) {
    assert.equal(content.slice(reference.offset, reference.offset + reference.text.length), reference.text);
    const before = content.slice(0, reference.offset).split('\n');
    assert.equal(reference.line, before.length);
    assert.equal(reference.column, before[before.length - 1]!.length + 1);
    const parts = reference.parts;
    if (parts) {
      assert.equal(parts.repository.offset, reference.offset);
      if (parts.registry) {
        const { offset, text } = parts.registry;
        assert.equal(content.slice(offset, offset + text.length), text);
      }
    }
  }
  return new Map(found.map((reference) => [reference.text, reference]));
}

/** A values file in the shape large chart collections write: every key documented, maps under many keys. */
const collectionValues = `## @section Global parameters
## @param global.imageRegistry Global Docker image registry
## @param global.imagePullSecrets Global Docker registry secret names as an array
##
global:
  imageRegistry: ""
  ## E.g.
  ## imagePullSecrets:
  ##   - myRegistryKeySecretName
  ##
  imagePullSecrets: []
  defaultStorageClass: ""

## @section Cache image
## @param image.registry [default: REGISTRY_NAME] image registry
## @param image.repository [default: REPOSITORY_NAME/cache] image repository
##
image:
  registry: docker.io
  repository: acme/cache
  tag: 7.4.1-debian-12-r3
  digest: ""
  ## Specify a imagePullPolicy
  ##
  pullPolicy: IfNotPresent
  pullSecrets: []
  debug: false

primary:
  configuration: |-
    # the sidecar below is text, not a value:
    image: not-an-image
  ## @param primary.sidecars Add additional sidecar containers
  ## e.g:
  ## sidecars:
  ##   - name: your-image-name
  ##     image: your-image
  ##
  sidecars: []
  resources: {}
  podSecurityContext:
    enabled: true
    fsGroup: 1001

sentinel:
  enabled: false
  image:
    registry: docker.io
    repository: acme/cache-sentinel
    tag: "7.4"
    digest: ${digest}

metrics:
  enabled: false
  image:
    registry: docker.io
    repository: acme/cache-exporter
    tag: 1.66.0-debian-12-r2
    digest: ""
    pullPolicy: IfNotPresent

defaultInitContainers:
  volumePermissions:
    enabled: false
    image:
      registry: docker.io
      repository: acme/os-shell
      tag: 12-debian-12-r33

sysctlImage:
  enabled: false
  registry: docker.io
  repository: acme/os-shell
  tag: 12-debian-12-r33
  command: []

gitImage:
  repository: alpine/git # the git client
  tag: 2.45.2

kubectl:
  repository: bitnami/kubectl
  tag: 1.31.1
`;

describe('Helm values: image maps', () => {
  it('reports each map once, at its repository, under any key', () => {
    extract(collectionValues);
    const found = helmValuesExtractor.extract('values.yaml', collectionValues);
    /** The line of the n-th `repository: <text>` in the file. */
    const lineOf = (text: string, nth = 0): number => {
      let at = -1;
      for (let n = 0; n <= nth; n++) at = collectionValues.indexOf(`repository: ${text}`, at + 1);
      return collectionValues.slice(0, at).split('\n').length;
    };
    assert.deepEqual(
      found.map((reference) => [
        reference.line,
        reference.text,
        reference.resolved,
        reference.context?.split('.repository')[0],
      ]),
      [
        [lineOf('acme/cache'), 'acme/cache', 'docker.io/acme/cache:7.4.1-debian-12-r3', 'image'],
        [
          lineOf('acme/cache-sentinel'),
          'acme/cache-sentinel',
          `docker.io/acme/cache-sentinel:7.4@${digest}`,
          'sentinel.image',
        ],
        [
          lineOf('acme/cache-exporter'),
          'acme/cache-exporter',
          'docker.io/acme/cache-exporter:1.66.0-debian-12-r2',
          'metrics.image',
        ],
        [
          lineOf('acme/os-shell'),
          'acme/os-shell',
          'docker.io/acme/os-shell:12-debian-12-r33',
          'defaultInitContainers.volumePermissions.image',
        ],
        [
          lineOf('acme/os-shell', 1),
          'acme/os-shell',
          'docker.io/acme/os-shell:12-debian-12-r33',
          'sysctlImage',
        ],
        [lineOf('alpine/git'), 'alpine/git', 'alpine/git:2.45.2', 'gitImage'],
        [lineOf('bitnami/kubectl'), 'bitnami/kubectl', 'bitnami/kubectl:1.31.1', 'kubectl'],
      ],
    );
    for (const reference of found) assert.equal(reference.kind, 'helm-values');
  });

  it('says where each part is written, for rewrite', () => {
    const byText = extract(collectionValues);
    const main = byText.get('acme/cache')!;
    assert.equal(
      main.context,
      'image.repository: composed reference (image.registry + image.repository + image.tag)',
    );
    assert.deepEqual(main.parts, {
      path: 'image',
      chart: 'local',
      repository: { offset: main.offset, text: 'acme/cache' },
      registry: { offset: collectionValues.indexOf('docker.io'), text: 'docker.io' },
    });
    const git = byText.get('alpine/git')!;
    const gitLine = collectionValues.indexOf('  repository: alpine/git');
    assert.deepEqual(git.parts?.registryLine, {
      offset: collectionValues.indexOf('\n', gitLine),
      indent: '  ',
    });
    assert.equal(git.parts?.registry, undefined);
  });

  it('reads the {registry, image, tag} shape, flow maps, numeric tags, image: {name}', () => {
    const values = [
      'controller:',
      '  image:',
      '    registry: registry.k8s.io',
      '    image: ingress-nginx/controller',
      '    tag: "v1.11.2"',
      `    digest: ${digest}`,
      'web:',
      '  image: {repository: nginx, tag: 1.27}',
      'db:',
      '  image:',
      '    repository: postgres',
      '    tag: 16.10',
      'proxy:',
      '  image:',
      '    name: envoyproxy/envoy',
      '    tag: v1.31.0',
      '',
    ].join('\n');
    const byText = extract(values);
    assert.equal(
      byText.get('ingress-nginx/controller')?.resolved,
      `registry.k8s.io/ingress-nginx/controller:v1.11.2@${digest}`,
    );
    assert.equal(byText.get('ingress-nginx/controller')?.parts?.registry?.text, 'registry.k8s.io');
    assert.equal(byText.get('nginx')?.resolved, 'nginx:1.27');
    assert.equal(byText.get('nginx')?.parts?.registryLine, undefined, 'no line can be added to a flow map');
    assert.equal(
      byText.get('postgres')?.resolved,
      'postgres:16.10',
      'the tag as written, not the number 16.1',
    );
    assert.equal(byText.get('envoyproxy/envoy')?.resolved, 'envoyproxy/envoy:v1.31.0');
  });

  it('lets a non-empty global.imageRegistry decide the registry', () => {
    const values =
      'global:\n  imageRegistry: mirror.example.com\nimage:\n  registry: docker.io\n  repository: acme/app\n  tag: "1"\n';
    const reference = extract(values).get('acme/app')!;
    assert.equal(reference.resolved, 'mirror.example.com/acme/app:1');
    assert.deepEqual(reference.parts?.globalRegistry, { line: 2, value: 'mirror.example.com' });
    assert.match(reference.context ?? '', /global\.imageRegistry \(line 2\)/);
  });

  it('reports templated and unset parts as unresolved', () => {
    const values =
      'image:\n  repository: acme/app\n  tag: "{{ .Chart.AppVersion }}"\nother:\n  image:\n    repository: acme/other\n';
    const byText = extract(values);
    assert.match(byText.get('acme/app')?.unresolved ?? '', /template expression/);
    assert.match(byText.get('acme/other')?.context ?? '', /no tag set/);
    assert.equal(byText.get('acme/other')?.unresolved, undefined);
  });

  it('never takes a chart repository, a bucket or a flag for an image', () => {
    const values = [
      'dependencies:',
      '  - name: postgresql',
      '    repository: https://charts.example.com/stable',
      '    version: 15.x.x',
      '  - name: common',
      '    repository: oci://registry-1.docker.io/examplecharts',
      '    tags: [common]',
      '  - name: local',
      '    repository: "@examples"',
      '    tag: x',
      'backup:',
      '  repository: nightly-bucket',
      '  schedule: "0 3 * * *"',
      'features:',
      '  image: true',
      '  defaultImage: ubuntu',
      '  emptyImage: ""',
      'jobs:',
      '  cleanupImage: acme/cleanup:2.1',
      '',
    ].join('\n');
    assert.deepEqual([...extract(values).keys()], ['acme/cleanup:2.1']);
  });

  it('reads a values file block by block, as it reads it whole', () => {
    const blocks = topLevelBlocks(collectionValues)!;
    assert.deepEqual(
      blocks.map((block) => block.key),
      [
        'global',
        'image',
        'primary',
        'sentinel',
        'metrics',
        'defaultInitContainers',
        'sysctlImage',
        'gitImage',
        'kubectl',
      ],
    );
    assert.equal(blocks.map((block) => block.text).join(''), collectionValues);
    assert.equal(blocks[0]!.start, 0, 'leading comments belong to the first entry');
    assert.deepEqual(
      topLevelBlocks('list:\n- a\n-\n- b: c\nnext: 1\n')?.map((block) => block.key),
      ['list', 'next'],
      'a sequence at column 0 belongs to the key above it',
    );
    for (const whole of [
      'a: &x 1\nb: *x\n',
      'a: 1\n---\nb: 2\n',
      '{"image": "x"}',
      '? complex\n: key\n',
      'a: 1\n...\n',
    ]) {
      assert.equal(topLevelBlocks(whole), undefined, whole);
    }
    // An alias makes the file be read whole: the same references, at the same places.
    const withAlias = `${collectionValues}anchors:\n  shared: &shared 1\n  again: *shared\n`;
    assert.deepEqual(
      helmValuesExtractor.extract('values.yaml', withAlias),
      helmValuesExtractor.extract('values.yaml', collectionValues),
    );
    // A section the fast reader leaves to the full parser, without an image key, is not read at all.
    const odd = `${collectionValues}notes: "a quoted\n  scalar on two lines"\n`;
    assert.deepEqual(
      helmValuesExtractor.extract('values.yaml', odd),
      helmValuesExtractor.extract('values.yaml', collectionValues),
    );
    // A block that cannot be read alone is not YAML read whole either: nothing, as before.
    assert.deepEqual(
      helmValuesExtractor.extract('values.yaml', 'image:\n  repository: acme/a\n  tag: "1\nnext: 2"\n'),
      [],
    );
  });

  it('finds image-like keys without parsing, and not in comments', () => {
    for (const text of [
      'image: nginx',
      '  repository: acme/a',
      '  - image: x',
      '"image": "x"',
      "  'repository' : x",
      'sysctlImage:\n',
      'defaultRepository: x',
      'web: {name: w, image: nginx}',
      '# a comment\n  image:\n',
    ]) {
      assert.equal(hasImageLikeKey(text), true, text);
    }
    for (const text of [
      '## sidecars:\n##   - name: your-image-name\n##     image: your-image',
      'imagePullPolicy: Always',
      'imageRegistry: ""',
      'description: the image: is here',
      'replicas: 3',
    ]) {
      assert.equal(hasImageLikeKey(text), false, text);
    }
  });

  it('reads values files by name, and skips files with no image-like key unparsed', () => {
    for (const path of [
      'values.yaml',
      'charts/a/values-prod.yml',
      'env/prod-values.yaml',
      'values/prod.yaml',
      'ci/values.ha.yaml',
    ]) {
      assert.equal(isValuesFile(path), true, path);
      assert.equal(helmValuesExtractor.matches(path, ''), true, path);
    }
    for (const path of [
      'Chart.yaml',
      'charts/a/templates/deployment.yaml',
      'values.schema.json',
      'my-values.json',
    ]) {
      assert.equal(isValuesFile(path), false, path);
    }
    assert.deepEqual(helmValuesExtractor.extract('values.yaml', 'replicas: 3\nresources: {}\n'), []);
    assert.deepEqual(helmValuesExtractor.extract('values.yaml', 'image: [\n'), []);
  });
});

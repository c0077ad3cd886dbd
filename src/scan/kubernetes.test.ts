import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { helmValuesExtractor } from './helm.ts';
import { kubernetesExtractor } from './kubernetes.ts';
import type { FoundReference } from './types.ts';

const digest = `sha256:${'a'.repeat(64)}`;

type Expected = Pick<FoundReference, 'line' | 'column' | 'offset' | 'text'> & Partial<FoundReference>;

/** Checks every reference against the file (offset, line, column computed independently) and the expectations. */
function check(content: string, found: FoundReference[], expected: Expected[]): void {
  for (const reference of found) {
    assert.equal(content.slice(reference.offset, reference.offset + reference.text.length), reference.text);
    const before = content.slice(0, reference.offset).split('\n');
    assert.equal(reference.line, before.length, `line of ${reference.text}`);
    assert.equal(
      reference.column,
      (before[before.length - 1] ?? '').length + 1,
      `column of ${reference.text}`,
    );
  }
  assert.equal(found.length, expected.length, JSON.stringify(found, null, 2));
  expected.forEach((want, index) => {
    const got = found[index]!;
    for (const [key, value] of Object.entries(want)) {
      assert.deepEqual(got[key as keyof FoundReference], value, `${key} of reference ${index}`);
    }
  });
}

const multiDocument = `# web tier
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: &tools "busybox:1.36"
      containers:
        - name: web
          image: registry.example.com:5000/team/web@${digest}
        - name: tools
          image: *tools
        - name: proxy
          image: 'nginx'
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: report
              image: python:3.12-slim
          restartPolicy: OnFailure
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports: [{ port: 80 }]
`;

describe('kubernetes manifests', () => {
  it('matches manifests by extension and content', () => {
    assert.equal(kubernetesExtractor.matches('k8s/web.yaml', multiDocument), true);
    assert.equal(kubernetesExtractor.matches('k8s/web.yml', 'apiVersion: v1\nkind: Pod\n'), true);
    assert.equal(
      kubernetesExtractor.matches('docker-compose.yml', 'services:\n  web:\n    image: nginx\n'),
      false,
    );
    assert.equal(kubernetesExtractor.matches('k8s/web.json', 'apiVersion: v1\nkind: Pod\n'), false);
  });

  it('finds containers and init containers across documents, once per anchored scalar', () => {
    const found = kubernetesExtractor.extract('k8s/web.yaml', multiDocument);
    check(multiDocument, found, [
      {
        line: 11,
        column: 26,
        offset: 169,
        text: 'busybox:1.36',
        kind: 'kubernetes',
        file: 'k8s/web.yaml',
        context: 'Deployment/web spec.template.spec.initContainers[0].image',
      },
      {
        line: 14,
        column: 18,
        offset: 238,
        text: `registry.example.com:5000/team/web@${digest}`,
        context: 'Deployment/web spec.template.spec.containers[0].image',
      },
      {
        line: 18,
        column: 19,
        offset: 431,
        text: 'nginx',
        context: 'Deployment/web spec.template.spec.containers[2].image',
      },
      {
        line: 31,
        column: 22,
        offset: 634,
        text: 'python:3.12-slim',
        context: 'CronJob/nightly spec.jobTemplate.spec.template.spec.containers[0].image',
      },
    ]);
    assert.equal(found[0]!.resolved, undefined);
    assert.equal(found[0]!.unresolved, undefined);
  });

  it('keeps exact offsets with CRLF line endings', () => {
    const crlf = multiDocument.replace(/\n/g, '\r\n');
    const found = kubernetesExtractor.extract('k8s/web.yaml', crlf);
    check(crlf, found, [
      { line: 11, column: 26, offset: 179, text: 'busybox:1.36' },
      { line: 14, column: 18, offset: 251, text: `registry.example.com:5000/team/web@${digest}` },
      { line: 18, column: 19, offset: 448, text: 'nginx' },
      { line: 31, column: 22, offset: 664, text: 'python:3.12-slim' },
    ]);
  });

  it('reads List items, pods, ephemeral containers, flow style and merge keys', () => {
    const list = `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: { name: debug }
    spec:
      containers: [{ name: a, image: "alpine:3.20" }]
      ephemeralContainers:
        - name: shell
          image: docker.io/library/busybox
  - apiVersion: apps/v1
    kind: StatefulSet
    metadata:
      name: db
    spec:
      template:
        spec:
          containers:
            - &base
              name: db
              image: postgres:16
            - <<: *base
              name: replica
            - <<: *base
              name: exporter
              image: quay.io/prometheuscommunity/postgres-exporter:v0.15.0
`;
    const found = kubernetesExtractor.extract('list.yaml', list);
    check(list, found, [
      {
        line: 8,
        column: 39,
        offset: 144,
        text: 'alpine:3.20',
        context: 'List.items[0] Pod/debug spec.containers[0].image',
      },
      {
        line: 11,
        column: 18,
        offset: 226,
        text: 'docker.io/library/busybox',
        context: 'List.items[0] Pod/debug spec.ephemeralContainers[0].image',
      },
      {
        line: 22,
        column: 22,
        offset: 453,
        text: 'postgres:16',
        context: 'List.items[1] StatefulSet/db spec.template.spec.containers[0].image',
      },
      {
        line: 27,
        column: 22,
        offset: 591,
        text: 'quay.io/prometheuscommunity/postgres-exporter:v0.15.0',
        context: 'List.items[1] StatefulSet/db spec.template.spec.containers[2].image',
      },
    ]);
  });

  it('covers every workload kind and custom resources with pod templates', () => {
    const kinds = `apiVersion: batch/v1
kind: Job
metadata: { name: migrate }
spec:
  template:
    spec:
      containers: [{ name: m, image: flyway/flyway:10 }]
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: { name: rs }
spec:
  template: { spec: { containers: [{ name: c, image: "httpd:2.4" }] } }
---
apiVersion: v1
kind: ReplicationController
metadata: { name: rc }
spec:
  template:
    spec:
      containers:
      - name: legacy
        image: memcached
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: { name: canary }
spec:
  template:
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/app:2.0
`;
    const found = kubernetesExtractor.extract('workloads.yml', kinds);
    check(kinds, found, [
      {
        line: 7,
        column: 38,
        offset: 124,
        text: 'flyway/flyway:10',
        context: 'Job/migrate spec.template.spec.containers[0].image',
      },
      {
        line: 13,
        column: 55,
        offset: 268,
        text: 'httpd:2.4',
        context: 'ReplicaSet/rs spec.template.spec.containers[0].image',
      },
      {
        line: 23,
        column: 16,
        offset: 438,
        text: 'memcached',
        context: 'ReplicationController/rc spec.template.spec.containers[0].image',
      },
      {
        line: 33,
        column: 18,
        offset: 609,
        text: 'ghcr.io/acme/app:2.0',
        context: 'Rollout/canary spec.template.spec.containers[0].image',
      },
    ]);
  });

  it('marks Helm template expressions unresolved and skips documents that do not parse', () => {
    const template = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  template:
    spec:
      containers:
        - name: agent
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
---
apiVersion: v1
kind: Pod
metadata: [unclosed
`;
    const found = kubernetesExtractor.extract('deploy/ds.yaml', template);
    check(template, found, [
      {
        line: 10,
        column: 19,
        offset: 146,
        text: '{{ .Values.image.repository }}:{{ .Values.image.tag }}',
        unresolved:
          'uses a Helm/Go template expression ({{ .Values.image.repository }}:{{ .Values.image.tag }})',
      },
    ]);
  });

  it('reads JSON manifests and files without an extension, recognised by content', () => {
    const json = JSON.stringify(
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'api' },
        spec: {
          template: {
            spec: {
              initContainers: [{ name: 'wait', image: 'busybox:1.36' }],
              containers: [{ name: 'api', image: 'ghcr.io/acme/api:2.3.1' }],
            },
          },
        },
      },
      null,
      2,
    );
    assert.equal(kubernetesExtractor.matches('deploy/api.json', json.slice(0, 4096)), true);
    assert.equal(kubernetesExtractor.matches('deploy/api', json.slice(0, 4096)), true);
    assert.equal(kubernetesExtractor.matches('deploy/web', 'apiVersion: v1\nkind: Pod\n'), true);
    assert.equal(kubernetesExtractor.matches('deploy/README', '# notes\nkind words\n'), false);
    assert.equal(kubernetesExtractor.matches('deploy/run.sh', 'apiVersion: v1\nkind: Pod\n'), false);
    assert.equal(kubernetesExtractor.matches('package.json', '{"name": "x", "kind": "y"}'), false);
    const found = kubernetesExtractor.extract('deploy/api.json', json);
    check(json, found, [
      {
        line: 13,
        column: 23,
        offset: json.indexOf('busybox'),
        text: 'busybox:1.36',
        context: 'Deployment/api spec.template.spec.initContainers[0].image',
      },
      {
        line: 19,
        column: 23,
        offset: json.indexOf('ghcr.io'),
        text: 'ghcr.io/acme/api:2.3.1',
        context: 'Deployment/api spec.template.spec.containers[0].image',
      },
    ]);
    const list =
      '{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "redis:7"}]}}]}';
    assert.deepEqual(
      kubernetesExtractor.extract('pods', list).map((reference) => [reference.text, reference.context]),
      [['redis:7', 'List.items[0] Pod/p spec.containers[0].image']],
    );
  });

  it('skips CustomResourceDefinitions and documents with nothing to pull, without parsing them', () => {
    const stream = [
      '---',
      'apiVersion: apiextensions.k8s.io/v1',
      'kind: CustomResourceDefinition',
      'metadata:',
      '  name: widgets.example.com',
      'spec:',
      '  versions:',
      '    - name: v1',
      '      schema:',
      '        openAPIV3Schema:',
      '          properties:',
      '            template:',
      '              description: The pod template; its default is an example.',
      '              type: object',
      '              default:',
      '                containers:',
      '                  - name: not-pulled',
      '                    image: example/schema-default:1',
      '            image:',
      '              description: Image to run.',
      '              type: string',
      '---',
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata: {name: settings}',
      'data:',
      '  containers: "image: example/not-an-image"',
      '  broken: [unclosed',
      '---',
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata: {name: operator}',
      'spec:',
      '  template:',
      '    spec:',
      '      containers:',
      '        - name: operator',
      '          image: quay.io/example/widget-operator:v0.9.0',
      '',
    ].join('\n');
    assert.deepEqual(
      kubernetesExtractor
        .extract('deploy/bundle.yaml', stream)
        .map((reference) => [reference.line, reference.text]),
      [[38, 'quay.io/example/widget-operator:v0.9.0']],
    );
  });

  it("reads a chart's Go templates line by line: literal images, not values expressions", () => {
    const template = [
      '{{- if .Values.tests.enabled }}',
      'apiVersion: v1',
      'kind: Pod',
      'metadata:',
      '  name: "{{ include "web.fullname" . }}-test-connection"',
      '  labels: {{- include "web.labels" . | nindent 4 }}',
      'spec:',
      '  initContainers:',
      '    - name: wait',
      '      image: {{ .Values.wait.image | quote }}',
      '  containers:',
      '    - name: wget',
      '      image: busybox:1.36 # pinned for the test',
      "      command: ['wget']",
      '      args:',
      '        - |',
      '          image: not-an-image-this-is-an-argument',
      '{{ include "web.extraArgs" . | indent 10 }}',
      '          image: still-text',
      '    - name: curl',
      '      image: "curlimages/curl:8.10.1"',
      '    - name: app',
      '      image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"',
      '{{- end }}',
      '',
    ].join('\n');
    const found = kubernetesExtractor.extract('charts/web/templates/tests/test-connection.yaml', template);
    check(template, found, [
      { line: 13, column: 14, offset: template.indexOf('busybox'), text: 'busybox:1.36', kind: 'kubernetes' },
      { line: 21, column: 15, offset: template.indexOf('curlimages'), text: 'curlimages/curl:8.10.1' },
    ]);
    const outside = kubernetesExtractor.extract('deploy/test-connection.yaml', template);
    assert.deepEqual(
      outside.map((reference) => [reference.line, reference.unresolved !== undefined]),
      [
        [10, true],
        [13, false],
        [21, false],
        [23, true],
      ],
      'outside a chart, template expressions are reported, unresolved',
    );
  });

  it('reads image maps in Flux HelmRelease values and Argo CD valuesObject', () => {
    const manifests = [
      'apiVersion: helm.toolkit.fluxcd.io/v2',
      'kind: HelmRelease',
      'metadata:',
      '  name: cache',
      'spec:',
      '  chart:',
      '    spec:',
      '      chart: cache',
      '      sourceRef: {kind: HelmRepository, name: examples}',
      '  values:',
      '    image:',
      '      registry: docker.io',
      '      repository: acme/cache',
      '      tag: "7.4"',
      '---',
      'apiVersion: argoproj.io/v1alpha1',
      'kind: Application',
      'metadata:',
      '  name: web',
      'spec:',
      '  source:',
      '    repoURL: https://charts.example.com',
      '    chart: web',
      '    helm:',
      '      valuesObject:',
      '        image:',
      '          repository: nginx',
      '          tag: "1.27"',
      '',
    ].join('\n');
    const found = kubernetesExtractor.extract('clusters/prod/apps.yaml', manifests);
    check(manifests, found, [
      {
        line: 13,
        column: 19,
        offset: manifests.indexOf('acme/cache'),
        text: 'acme/cache',
        kind: 'helm-values',
        resolved: 'docker.io/acme/cache:7.4',
        context:
          'HelmRelease/cache spec.values.image.repository: composed reference (spec.values.image.registry + spec.values.image.repository + spec.values.image.tag)',
      },
      {
        line: 27,
        column: 23,
        offset: manifests.indexOf('nginx'),
        text: 'nginx',
        kind: 'helm-values',
        resolved: 'nginx:1.27',
      },
    ]);
    assert.equal(found[0]!.parts?.chart, 'remote');
    assert.equal(found[0]!.parts?.registry?.text, 'docker.io');
  });

  it('never throws on malformed input', () => {
    for (const bad of [
      '',
      ':',
      'apiVersion: v1\nkind: Pod\nspec: {containers: [',
      '\t- ][',
      'a: *missing\n',
      '- - -',
    ]) {
      assert.deepEqual(kubernetesExtractor.extract('bad.yaml', bad), []);
    }
  });
});

describe('helm values', () => {
  it('matches values files only', () => {
    assert.equal(helmValuesExtractor.matches('charts/web/values.yaml', ''), true);
    assert.equal(helmValuesExtractor.matches('values-production.yml', ''), true);
    assert.equal(helmValuesExtractor.matches('charts/web/Chart.yaml', ''), false);
    assert.equal(helmValuesExtractor.matches('charts/web/templates/deployment.yaml', ''), false);
  });

  it('reports composed images at the repository scalar and plain image strings', () => {
    const values = `global:
  imageRegistry: ""
image:
  registry: registry.example.com:5000
  repository: bitnami/redis
  tag: "7.2.4"
  pullPolicy: IfNotPresent
metrics:
  enabled: true
  image:
    repository: 'oliver006/redis_exporter'
    digest: ${digest}
controller:
  image:
    repository: ingress-nginx/controller
    tag: ""
sidecars:
  - name: log
    image: "fluent/fluent-bit:3.0"
`;
    const found = helmValuesExtractor.extract('charts/redis/values.yaml', values);
    check(values, found, [
      {
        line: 5,
        column: 15,
        offset: 87,
        text: 'bitnami/redis',
        kind: 'helm-values',
        resolved: 'registry.example.com:5000/bitnami/redis:7.2.4',
        context: 'image.repository: composed reference (image.registry + image.repository + image.tag)',
      },
      {
        line: 11,
        column: 18,
        offset: 194,
        text: 'oliver006/redis_exporter',
        resolved: `oliver006/redis_exporter@${digest}`,
        context:
          'metrics.image.repository: composed reference (metrics.image.repository + metrics.image.digest)',
      },
      {
        line: 15,
        column: 17,
        offset: 341,
        text: 'ingress-nginx/controller',
        resolved: undefined,
        context:
          'controller.image.repository: composed reference (controller.image.repository); no tag set, the chart usually defaults it to its appVersion',
      },
      {
        line: 19,
        column: 13,
        offset: 414,
        text: 'fluent/fluent-bit:3.0',
        context: 'sidecars[0].image',
        resolved: undefined,
      },
    ]);
  });

  it('follows anchors once and never throws', () => {
    const values =
      'base: &img\n  repository: nginx\n  tag: "1.25"\nweb:\n  image: *img\nworker:\n  image: *img\n';
    const found = helmValuesExtractor.extract('values.yaml', values);
    check(values, found, [
      {
        line: 2,
        column: 15,
        offset: 25,
        text: 'nginx',
        resolved: 'nginx:1.25',
        context: 'base.repository: composed reference (base.repository + base.tag)',
      },
    ]);
    assert.deepEqual(helmValuesExtractor.extract('values.yaml', 'image: [\n'), []);
  });
});

/**
 * The charts tree of the scan benchmark: a Helm charts repository of about 3,400 files and 74 MB, shaped like
 * the large public ones: per chart a Chart.yaml with dependencies, a heavily commented values.yaml of about
 * 100 KB with image maps under several keys (`image`, `metrics.image`, `volumePermissions.image`,
 * `sysctlImage`, ...), a values schema, a README and a CHANGELOG, twenty Go-templated manifests and helpers;
 * some charts carry CRDs of 0.4 to 5 MB whose schemas name `image` and `containers` properties but pull
 * nothing. Every file is written from the index alone, so two runs generate the same bytes.
 */
import {
  CONFIGURATION_HEAD,
  CRD_COMPONENT,
  CRD_HEAD,
  GLOBAL_LINES,
  METRICS_LINES,
  RESOURCE_LINES,
  SECURITY_LINES,
  SETTINGS_LINES,
  TAIL_LINES,
  WORKLOAD_TEMPLATE,
} from './scan-charts-text.ts';
import { TreeWriter, type TreeSummary } from './scan-trees.ts';

const words = [
  'the',
  'container',
  'value',
  'configure',
  'resources',
  'enable',
  'pod',
  'when',
  'deployment',
  'service',
  'secret',
  'existing',
  'name',
  'for',
  'use',
  'of',
  'to',
  'persistence',
  'metrics',
  'security',
];

function sentence(seed: number, length: number): string {
  const out: string[] = [];
  for (let n = 0; n < length; n++) out.push(words[(seed * 7 + n * 13 + n * n) % words.length]!);
  return out.join(' ');
}

/** An image map as charts write it (the reference a scan reports is its repository line). */
function imageMap(indent: string, repository: string, tag: string, withRegistry: boolean): string {
  const lines = [
    `${indent}## @param ${repository} image registry, repository, tag and digest`,
    `${indent}## ref: https://hub.docker.com/r/${repository}/tags/`,
  ];
  if (withRegistry) lines.push(`${indent}registry: docker.io`);
  lines.push(
    `${indent}repository: ${repository}`,
    `${indent}tag: ${tag}`,
    `${indent}digest: ""`,
    `${indent}## Specify an imagePullPolicy`,
    `${indent}pullPolicy: IfNotPresent`,
    `${indent}pullSecrets: []`,
  );
  return lines.join('\n');
}

/** One component's settings (primary, replicas, workers...): the bulk of a values file. */
function componentBlock(name: string, seed: number): string {
  const lines: string[] = [];
  const param = (path: string, words: number): void => {
    lines.push(`## @param ${name}.${path} ${sentence(seed + path.length, words)}`);
  };
  lines.push(`## @section ${name} parameters`, '', `${name}:`);
  param('replicaCount', 8);
  lines.push('  replicaCount: 1');
  param('containerPorts.http', 6);
  lines.push('  containerPorts:', '    http: 8080', '    https: 8443');
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
    param(`${probe}.enabled`, 5);
    lines.push(
      `  ${probe}:`,
      `    enabled: ${probe !== 'startupProbe'}`,
      '    initialDelaySeconds: 30',
      '    periodSeconds: 10',
      '    timeoutSeconds: 5',
      '    failureThreshold: 6',
      '    successThreshold: 1',
    );
  }
  for (const custom of ['customLivenessProbe', 'customReadinessProbe', 'customStartupProbe']) {
    param(custom, 4);
    lines.push(`  ${custom}: {}`);
  }
  param('resourcesPreset', 20);
  lines.push(...RESOURCE_LINES);
  param('podSecurityContext.enabled', 6);
  lines.push(...SECURITY_LINES);
  param('existingConfigmap', 10);
  lines.push(...CONFIGURATION_HEAD, `    # ${sentence(seed, 9)}`, ...SETTINGS_LINES);
  // Charts document every key where it stands, with a ref: line for many; that is most of their bytes.
  const documented: string[] = [];
  for (const [index, line] of lines.entries()) {
    const key = /^( {2,4})([A-Za-z]+):/.exec(line);
    if (key) {
      documented.push(`${key[1]!}## @param ${name}.${key[2]!} ${sentence(seed + index, 12 + (index % 9))}`);
      if (index % 3 === 0) documented.push(`${key[1]!}## ref: https://example.invalid/docs/${key[2]!}`);
    }
    documented.push(line);
  }
  return documented.join('\n');
}

interface ChartImages {
  /** The values text of every image map, and how many references it holds. */
  text: string;
  count: number;
}

function chartImages(name: string, i: number): ChartImages {
  const tag = `${1 + (i % 9)}.${i % 13}.${i % 7}-debian-12-r${i % 30}`;
  const parts: string[] = [
    '## @section Image parameters',
    'image:',
    imageMap('  ', `bitnami/${name}`, tag, true),
    '  ## Enable debug mode',
    '  debug: false',
    '',
  ];
  let count = 1;
  if (i % 3 === 0) {
    parts.push(
      'sysctlImage:',
      '  enabled: false',
      imageMap('  ', 'bitnami/os-shell', `12-debian-12-r${i % 40}`, true),
      '',
    );
    count++;
  }
  if (i % 5 === 0) {
    // An image map whose chart reads no registry (the `helm create` layout).
    parts.push('gitImage:', imageMap('  ', 'alpine/git', `2.4${i % 10}.1`, false), '');
    count++;
  }
  return { text: parts.join('\n'), count };
}

function valuesYaml(name: string, i: number): { text: string; count: number } {
  const images = chartImages(name, i);
  let count = images.count;
  const parts: string[] = [`# Copyright Example Authors ${2020 + (i % 5)}`, ...GLOBAL_LINES, images.text];
  const components = ['primary', 'readReplicas', 'worker', 'scheduler', 'backup', 'gateway', 'agent'];
  for (let c = 0; c < 4 + (i % 3); c++) parts.push(componentBlock(components[c]!, i + c));
  parts.push(
    '## @section Metrics parameters',
    'metrics:',
    '  enabled: false',
    '  image:',
    imageMap('    ', `bitnami/${name}-exporter`, `0.${15 + (i % 5)}.0-debian-12-r${i % 20}`, true),
    ...METRICS_LINES,
    imageMap('    ', 'bitnami/os-shell', `12-debian-12-r${i % 40}`, true),
    ...TAIL_LINES,
  );
  count += 2;
  return { text: parts.join('\n'), count };
}

function chartYaml(name: string, i: number): string {
  const lines = [
    '# Copyright Example Authors',
    'annotations:',
    '  category: Database',
    '  licenses: Apache-2.0',
    '  images: |',
    `    - name: ${name}`,
    `      image: docker.io/bitnami/${name}:1.${i}.0-debian-12-r0`,
    'apiVersion: v2',
    `appVersion: 1.${i}.0`,
    'dependencies:',
    '- condition: postgresql.enabled',
    '  name: postgresql',
    '  repository: oci://registry-1.docker.io/bitnamicharts',
    '  version: 16.x.x',
    '- name: common',
    '  repository: oci://registry-1.docker.io/bitnamicharts',
    '  tags:',
    '  - bitnami-common',
    '  version: 2.x.x',
    `description: ${sentence(i, 14)}`,
    `home: https://example.invalid/charts/${name}`,
    'keywords:',
    `- ${name}`,
    '- database',
    'maintainers:',
    '- name: Example Maintainers',
    '  url: https://example.invalid/charts',
    `name: ${name}`,
    'sources:',
    `- https://example.invalid/charts/tree/main/${name}`,
    `version: ${i % 20}.${i % 7}.${i % 11}`,
    '',
  ];
  return lines.join('\n');
}

const templateKinds = [
  'statefulset',
  'deployment',
  'service',
  'svc-headless',
  'configmap',
  'secrets',
  'serviceaccount',
  'role',
  'rolebinding',
  'networkpolicy',
  'pdb',
  'hpa',
  'ingress',
  'servicemonitor',
  'prometheusrule',
  'extra-list',
  'tls-secret',
  'metrics-svc',
  'pvc',
  'backup-cronjob',
];

/** A Go-templated manifest: images come from the values file, through the chart's helpers. */
function template(name: string, kind: string, i: number): string {
  const header = [
    '{{- /*',
    'Copyright Example Authors',
    'SPDX-License-Identifier: APACHE-2.0',
    '*/}}',
    '',
    `{{- if .Values.${kind.replace(/-/g, '')}.enabled }}`,
  ];
  if (kind === 'statefulset' || kind === 'deployment') {
    const object = kind === 'statefulset' ? 'StatefulSet' : 'Deployment';
    const body = WORKLOAD_TEMPLATE.map((line) =>
      line.replaceAll('@NAME@', name).replaceAll('@KIND@', kind).replaceAll('@OBJECT@', object),
    );
    return [...header, ...body].join('\n');
  }
  const lines = [
    ...header,
    `apiVersion: ${kind === 'ingress' ? '{{ include "common.capabilities.ingress.apiVersion" . }}' : 'v1'}`,
    `kind: ${kind.replace(/(^|-)([a-z])/g, (_, _dash: string, letter: string) => letter.toUpperCase())}`,
    'metadata:',
    `  name: {{ printf "%s-${kind}" (include "common.names.fullname" .) | trunc 63 | trimSuffix "-" }}`,
    '  namespace: {{ include "common.names.namespace" . | quote }}',
    '  labels: {{- include "common.labels.standard" ( dict "customLabels" .Values.commonLabels "context" $ ) | nindent 4 }}',
    'spec:',
  ];
  for (let n = 0; n < 6 + (i % 5); n++) {
    lines.push(
      `  {{- if .Values.${kind}.setting${n} }}`,
      `  setting${n}: {{ .Values.${kind}.setting${n} | quote }}`,
      `  {{- end }}`,
      `  # ${sentence(i + n, 10)}`,
    );
  }
  lines.push('{{- end }}', '');
  return lines.join('\n');
}

function helpersTpl(name: string): string {
  return [
    '{{/* Return the proper image name */}}',
    `{{- define "${name}.image" -}}`,
    '{{ include "common.images.image" (dict "imageRoot" .Values.image "global" .Values.global) }}',
    '{{- end -}}',
    `{{- define "${name}.metrics.image" -}}`,
    '{{ include "common.images.image" (dict "imageRoot" .Values.metrics.image "global" .Values.global) }}',
    '{{- end -}}',
    `{{- define "${name}.volumePermissions.image" -}}`,
    '{{ include "common.images.image" (dict "imageRoot" .Values.volumePermissions.image "global" .Values.global) }}',
    '{{- end -}}',
    `{{- define "${name}.imagePullSecrets" -}}`,
    '{{- include "common.images.renderPullSecrets" (dict "images" (list .Values.image .Values.metrics.image) "context" $) -}}',
    '{{- end -}}',
    '',
  ]
    .join('\n')
    .repeat(4);
}

function markdown(name: string, i: number, kilobytes: number): string {
  const lines = [
    `# ${name}`,
    '',
    sentence(i, 30),
    '',
    '| Name | Description | Value |',
    '| --- | --- | --- |',
  ];
  let size = 0;
  for (let n = 0; size < kilobytes * 1024; n++) {
    const line = `| \`primary.setting${n}\` | ${sentence(i + n, 16)} | \`""\` |`;
    lines.push(line);
    size += line.length + 1;
  }
  return `${lines.join('\n')}\n`;
}

function valuesSchema(name: string): string {
  const properties: string[] = [];
  for (let n = 0; n < 120; n++) {
    properties.push(
      `    "setting${n}": {\n      "type": "string",\n      "description": "${sentence(n, 12)}",\n      "default": ""\n    }`,
    );
  }
  return `{\n  "title": "${name}",\n  "type": "object",\n  "properties": {\n    "image": {\n      "type": "object",\n      "properties": {\n        "registry": { "type": "string" },\n        "repository": { "type": "string" }\n      }\n    },\n${properties.join(',\n')}\n  }\n}\n`;
}

/**
 * A CustomResourceDefinition of about `megabytes` MB, written as controller-gen writes them: an OpenAPI
 * schema with `containers`, `image` and `initContainers` properties (descriptions, types), no image anywhere.
 */
function crd(group: string, kind: string, megabytes: number): string {
  const out = CRD_HEAD.map((line) =>
    line.replaceAll('@LOWER@', kind.toLowerCase()).replaceAll('@KIND@', kind).replaceAll('@GROUP@', group),
  );
  let size = out.join('\n').length;
  for (let n = 0; size < megabytes * 1024 * 1024; n++) {
    const block = [
      `              component${n}:`,
      `                description: ${sentence(n, 18)}`,
      ...CRD_COMPONENT,
    ];
    out.push(...block);
    size += block.join('\n').length + 1;
  }
  out.push(
    '            type: object',
    '        type: object',
    '    served: true',
    '    storage: true',
    '    subresources:',
    '      status: {}',
    '',
  );
  return out.join('\n');
}

const chartNames = [
  'postgres',
  'redis',
  'mysql',
  'kafka',
  'nginx',
  'mongodb',
  'rabbitmq',
  'etcd',
  'minio',
  'grafana',
  'keycloak',
  'wordpress',
];

/** CRD sizes in MB: several charts carry some, from under a megabyte to past the 2 MiB read limit. */
const crdSizes = [
  [0.4, 1.3],
  [1.8],
  [0.6, 0.9, 1.1],
  [3.2],
  [4.5, 1.2],
  [2.5],
  [0.8, 1.6],
  [4, 1.9],
  [1.4, 0.7],
  [3.8],
  [1.5, 1.0],
  [2.2, 0.5],
];

export async function generateCharts(root: string, chartCount = 118): Promise<TreeSummary> {
  const tree = new TreeWriter(root);
  for (let i = 0; i < chartCount; i++) {
    const name = `${chartNames[i % chartNames.length]!}${i >= chartNames.length ? String(i) : ''}`;
    const dir = `bitnami/${name}`;
    await tree.write(`${dir}/Chart.yaml`, chartYaml(name, i));
    await tree.write(
      `${dir}/Chart.lock`,
      `dependencies:\n- name: common\n  repository: oci://registry-1.docker.io/bitnamicharts\n  version: 2.${i}.0\ndigest: sha256:${(i * 7919).toString(16).padStart(64, '0')}\ngenerated: "2025-01-0${1 + (i % 9)}T10:00:00Z"\n`,
    );
    await tree.write(`${dir}/.helmignore`, '.DS_Store\n.git/\n.gitignore\n*.swp\n*.tmp\n.idea/\n');
    await tree.write(`${dir}/README.md`, markdown(name, i, 50 + (i % 30)));
    await tree.write(`${dir}/CHANGELOG.md`, markdown(`${name} changes`, i, 20 + (i % 20)));
    const values = valuesYaml(name, i);
    await tree.write(`${dir}/values.yaml`, values.text, values.count);
    if (i % 2 === 0) await tree.write(`${dir}/values.schema.json`, valuesSchema(name));
    await tree.write(`${dir}/templates/_helpers.tpl`, helpersTpl(name));
    await tree.write(
      `${dir}/templates/NOTES.txt`,
      `CHART NAME: {{ .Chart.Name }}\n${sentence(i, 40)}\n`.repeat(12),
    );
    for (const kind of templateKinds)
      await tree.write(`${dir}/templates/${kind}.yaml`, template(name, kind, i));
    if (i % 8 === 0) {
      const sizes = crdSizes[(i / 8) % crdSizes.length]!;
      for (const [n, megabytes] of sizes.entries()) {
        await tree.write(
          `${dir}/crds/example.com_widget${n}s.yaml`,
          crd('example.com', `Widget${n}`, megabytes),
        );
      }
    }
  }
  await tree.write('README.md', markdown('charts', 0, 20));
  for (let n = 0; n < 12; n++) {
    await tree.write(
      `.github/workflows/ci-${n}.yml`,
      `name: ci-${n}\non:\n  pull_request:\n    branches: [main]\njobs:\n  lint:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: ./scripts/lint.sh ${n}\n`,
    );
  }
  return tree.summary();
}

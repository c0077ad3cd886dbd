/**
 * Trees for the scan benchmark, generated (the benchmark cannot fetch real repositories):
 *
 * - `monorepo`: tens of thousands of small files, per service a Dockerfile, a compose file, a Kubernetes
 *   manifest, an ECS task definition, settings YAML, package.json, Python, Go and TypeScript sources and a
 *   README;
 * - `charts`: a Helm charts repository of about 3,400 files and 74 MB, shaped like the large public ones:
 *   per chart a Chart.yaml with dependencies, a heavily commented values.yaml of about 100 KB with image maps
 *   under several keys (`image`, `metrics.image`, `volumePermissions.image`, `sysctlImage`, ...), a values
 *   schema, a README and a CHANGELOG, twenty Go-templated manifests and helpers; some charts carry CRDs of
 *   0.4 to 5 MB whose schemas name `image` and `containers` properties but pull nothing.
 *
 * Every file is written from the index alone, so two runs generate the same bytes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface TreeSummary {
  files: number;
  bytes: number;
  /** Image references a correct scan reports (Helm image maps once each, at their repository line). */
  expectedReferences: number;
}

class TreeWriter {
  readonly root: string;
  files = 0;
  bytes = 0;
  expected = 0;
  private readonly folders = new Set<string>();

  constructor(root: string) {
    this.root = root;
  }

  async write(relative: string, content: string, references = 0): Promise<void> {
    const path = join(this.root, relative);
    const folder = join(path, '..');
    if (!this.folders.has(folder)) {
      await mkdir(folder, { recursive: true });
      this.folders.add(folder);
    }
    await writeFile(path, content);
    this.files++;
    this.bytes += Buffer.byteLength(content);
    this.expected += references;
  }

  summary(): TreeSummary {
    return { files: this.files, bytes: this.bytes, expectedReferences: this.expected };
  }
}

// ---------------------------------------------------------------------------------------------------------
// Monorepo

const monorepoTemplates: [string, (i: number) => string, number][] = [
  [
    'service{i}/Dockerfile',
    (i) =>
      `ARG BASE=python:3.${i % 12}\nFROM \${BASE}-slim AS build\nRUN pip install -r requirements.txt\nFROM build\nCOPY . /app\n`,
    1,
  ],
  [
    'service{i}/docker-compose.yml',
    (i) => `services:\n  app:\n    image: "redis:7.${i % 4}"\n  db:\n    image: postgres:16\n`,
    2,
  ],
  [
    'service{i}/k8s/deploy.yaml',
    (i) =>
      `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: s${i}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: nginx:1.${i % 27}\n`,
    1,
  ],
  [
    'service{i}/ecs/taskdef.json',
    (i) =>
      `{\n  "family": "s${i}",\n  "containerDefinitions": [{ "name": "app", "image": "node:${18 + (i % 4)}" }]\n}\n`,
    1,
  ],
  ['service{i}/config/settings.yaml', (i) => `name: s${i}\nreplicas: 3\nfeatures:\n  - a\n  - b\n`, 0],
  [
    'service{i}/src/main.py',
    (i) =>
      `import os\n\ndef handler(event):\n    return {"id": ${i}, "env": os.environ.get("STAGE")}\n`.repeat(
        20,
      ),
    0,
  ],
  [
    'service{i}/src/util.go',
    (i) => `package util\n\nfunc Add(a, b int) int { return a + b + ${i} }\n`.repeat(30),
    0,
  ],
  [
    'service{i}/src/index.ts',
    (i) => `export const value = ${i};\nexport function f(x: number) { return x * value; }\n`.repeat(25),
    0,
  ],
  ['service{i}/README.md', (i) => `# Service ${i}\n\nRun it with docker compose up.\n`.repeat(10), 0],
  [
    'service{i}/package.json',
    (i) => `{ "name": "s${i}", "version": "1.0.${i}", "dependencies": { "x": "^1" } }\n`,
    0,
  ],
];

export async function generateMonorepo(root: string, fileCount: number): Promise<TreeSummary> {
  const tree = new TreeWriter(root);
  for (let i = 0; tree.files < fileCount; i++) {
    for (const [pattern, content, references] of monorepoTemplates) {
      if (tree.files >= fileCount) break;
      await tree.write(pattern.replace('{i}', String(i)), content(i), references);
    }
  }
  return tree.summary();
}

// ---------------------------------------------------------------------------------------------------------
// Helm charts

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
  lines.push(
    '  ## More information: https://example.invalid/resources-presets',
    '  ##',
    '  resourcesPreset: "nano"',
    '  ## @param resources Set container requests and limits',
    '  ## Example:',
    '  ## resources:',
    '  ##   requests:',
    '  ##     cpu: 2',
    '  ##     memory: 512Mi',
    '  resources: {}',
  );
  param('podSecurityContext.enabled', 6);
  lines.push(
    '  podSecurityContext:',
    '    enabled: true',
    '    fsGroupChangePolicy: Always',
    '    sysctls: []',
    '    supplementalGroups: []',
    '    fsGroup: 1001',
    '  containerSecurityContext:',
    '    enabled: true',
    '    seLinuxOptions: {}',
    '    runAsUser: 1001',
    '    runAsGroup: 1001',
    '    runAsNonRoot: true',
    '    privileged: false',
    '    readOnlyRootFilesystem: true',
    '    allowPrivilegeEscalation: false',
    '    capabilities:',
    '      drop: ["ALL"]',
    '    seccompProfile:',
    '      type: "RuntimeDefault"',
  );
  param('existingConfigmap', 10);
  lines.push(
    '  existingConfigmap: ""',
    '  ## @param configuration Configuration for the component',
    '  configuration: |-',
    `    # ${sentence(seed, 9)}`,
    "    listen_addresses = '*'",
    '    max_connections = 100',
    '    # image: not-an-image-this-is-text',
    `    log_line_prefix = '%t [%p]: [%l-1] user=%u,db=%d'`,
    '  command: []',
    '  args: []',
    '  automountServiceAccountToken: false',
    '  hostAliases: []',
    '  podLabels: {}',
    '  podAnnotations: {}',
    '  podAffinityPreset: ""',
    '  podAntiAffinityPreset: soft',
    '  nodeAffinityPreset:',
    '    type: ""',
    '    key: ""',
    '    values: []',
    '  affinity: {}',
    '  nodeSelector: {}',
    '  tolerations: []',
    '  topologySpreadConstraints: []',
    '  priorityClassName: ""',
    '  schedulerName: ""',
    '  terminationGracePeriodSeconds: ""',
    '  updateStrategy:',
    '    type: RollingUpdate',
    '  extraEnvVars: []',
    '  extraEnvVarsCM: ""',
    '  extraEnvVarsSecret: ""',
    '  extraVolumes: []',
    '  extraVolumeMounts: []',
    '  ## @param sidecars Add additional sidecar containers',
    '  ## e.g:',
    '  ## sidecars:',
    '  ##   - name: your-image-name',
    '  ##     image: your-image',
    '  ##     imagePullPolicy: Always',
    '  sidecars: []',
    '  initContainers: []',
    '  pdb:',
    '    create: true',
    '    minAvailable: ""',
    '    maxUnavailable: ""',
    '  service:',
    '    type: ClusterIP',
    '    ports:',
    '      http: 80',
    '    nodePorts:',
    '      http: ""',
    '    clusterIP: ""',
    '    loadBalancerIP: ""',
    '    loadBalancerSourceRanges: []',
    '    externalTrafficPolicy: Cluster',
    '    annotations: {}',
    '    extraPorts: []',
    '    sessionAffinity: None',
    '    sessionAffinityConfig: {}',
    '  persistence:',
    '    enabled: true',
    '    existingClaim: ""',
    '    mountPath: /bitnami/data',
    '    storageClass: ""',
    '    accessModes:',
    '      - ReadWriteOnce',
    '    size: 8Gi',
    '    annotations: {}',
    '    labels: {}',
    '    selector: {}',
    '    dataSource: {}',
    '  networkPolicy:',
    '    enabled: true',
    '    allowExternal: true',
    '    allowExternalEgress: true',
    '    extraIngress: []',
    '    extraEgress: []',
    '    ingressNSMatchLabels: {}',
    '    ingressNSPodMatchLabels: {}',
    '',
  );
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
  const parts: string[] = [
    `# Copyright Example Authors ${2020 + (i % 5)}`,
    '# SPDX-License-Identifier: APACHE-2.0',
    '',
    '## @section Global parameters',
    '## Global Docker image parameters',
    '## Please, note that this will override the image parameters, including dependencies, configured to use the global value',
    '## @param global.imageRegistry Global Docker image registry',
    '## @param global.imagePullSecrets Global Docker registry secret names as an array',
    '##',
    'global:',
    '  imageRegistry: ""',
    '  ## E.g.',
    '  ## imagePullSecrets:',
    '  ##   - myRegistryKeySecretName',
    '  ##',
    '  imagePullSecrets: []',
    '  defaultStorageClass: ""',
    '  security:',
    '    allowInsecureImages: false',
    '  compatibility:',
    '    openshift:',
    '      adaptSecurityContext: auto',
    '',
    '## @section Common parameters',
    'kubeVersion: ""',
    'nameOverride: ""',
    'fullnameOverride: ""',
    'namespaceOverride: ""',
    'commonLabels: {}',
    'commonAnnotations: {}',
    'clusterDomain: cluster.local',
    'extraDeploy: []',
    'diagnosticMode:',
    '  enabled: false',
    '  command:',
    '    - sleep',
    '  args:',
    '    - infinity',
    '',
    images.text,
  ];
  const components = ['primary', 'readReplicas', 'worker', 'scheduler', 'backup', 'gateway', 'agent'];
  for (let c = 0; c < 4 + (i % 3); c++) parts.push(componentBlock(components[c]!, i + c));
  parts.push(
    '## @section Metrics parameters',
    'metrics:',
    '  enabled: false',
    '  image:',
    imageMap('    ', `bitnami/${name}-exporter`, `0.${15 + (i % 5)}.0-debian-12-r${i % 20}`, true),
    '  containerPorts:',
    '    metrics: 9187',
    '  serviceMonitor:',
    '    enabled: false',
    '    namespace: ""',
    '    interval: ""',
    '    scrapeTimeout: ""',
    '    selector: {}',
    '    relabelings: []',
    '    metricRelabelings: []',
    '    honorLabels: false',
    '    jobLabel: ""',
    '  prometheusRule:',
    '    enabled: false',
    '    rules: []',
    '',
    '## @section Init container parameters',
    'volumePermissions:',
    '  enabled: false',
    '  image:',
    imageMap('    ', 'bitnami/os-shell', `12-debian-12-r${i % 40}`, true),
    '  resourcesPreset: "nano"',
    '  resources: {}',
    '',
    'serviceAccount:',
    '  create: true',
    '  name: ""',
    '  automountServiceAccountToken: false',
    '  annotations: {}',
    'rbac:',
    '  create: false',
    '  rules: []',
    '',
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
    return [
      ...header,
      `apiVersion: {{ include "common.capabilities.${kind}.apiVersion" . }}`,
      `kind: ${kind === 'statefulset' ? 'StatefulSet' : 'Deployment'}`,
      'metadata:',
      '  name: {{ include "common.names.fullname" . }}',
      '  namespace: {{ include "common.names.namespace" . | quote }}',
      '  labels: {{- include "common.labels.standard" ( dict "customLabels" .Values.commonLabels "context" $ ) | nindent 4 }}',
      '  {{- if .Values.commonAnnotations }}',
      '  annotations: {{- include "common.tplvalues.render" ( dict "value" .Values.commonAnnotations "context" $ ) | nindent 4 }}',
      '  {{- end }}',
      'spec:',
      '  replicas: {{ .Values.primary.replicaCount }}',
      '  template:',
      '    metadata:',
      '      labels: {{- include "common.labels.standard" ( dict "customLabels" $podLabels "context" $ ) | nindent 8 }}',
      '    spec:',
      `      {{- include "${name}.imagePullSecrets" . | nindent 6 }}`,
      '      automountServiceAccountToken: {{ .Values.primary.automountServiceAccountToken }}',
      '      initContainers:',
      '        {{- if and .Values.volumePermissions.enabled .Values.primary.persistence.enabled }}',
      '        - name: volume-permissions',
      `          image: {{ include "${name}.volumePermissions.image" . }}`,
      '          imagePullPolicy: {{ .Values.volumePermissions.image.pullPolicy | quote }}',
      '          command:',
      '            - /bin/bash',
      '            - -ec',
      '            - |',
      '              chown -R {{ .Values.primary.containerSecurityContext.runAsUser }} {{ .Values.primary.persistence.mountPath }}',
      '        {{- end }}',
      '      containers:',
      `        - name: ${name}`,
      `          image: {{ template "${name}.image" . }}`,
      '          imagePullPolicy: {{ .Values.image.pullPolicy | quote }}',
      '          {{- if .Values.primary.containerSecurityContext.enabled }}',
      '          securityContext: {{- include "common.compatibility.renderSecurityContext" (dict "secContext" .Values.primary.containerSecurityContext "context" $) | nindent 12 }}',
      '          {{- end }}',
      '          env:',
      '            - name: BITNAMI_DEBUG',
      '              value: {{ ternary "true" "false" (or .Values.image.debug .Values.diagnosticMode.enabled) | quote }}',
      '          ports:',
      '            - name: http',
      '              containerPort: {{ .Values.primary.containerPorts.http }}',
      '          {{- if .Values.primary.resources }}',
      '          resources: {{- toYaml .Values.primary.resources | nindent 12 }}',
      '          {{- end }}',
      '        {{- if .Values.metrics.enabled }}',
      '        - name: metrics',
      `          image: {{ include "${name}.metrics.image" . }}`,
      '        {{- end }}',
      `      {{- if .Values.primary.sidecars }}`,
      '      {{- include "common.tplvalues.render" ( dict "value" .Values.primary.sidecars "context" $ ) | nindent 8 }}',
      '      {{- end }}',
      '{{- end }}',
      '',
    ].join('\n');
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
  const out: string[] = [
    '---',
    'apiVersion: apiextensions.k8s.io/v1',
    'kind: CustomResourceDefinition',
    'metadata:',
    '  annotations:',
    '    controller-gen.kubebuilder.io/version: v0.16.1',
    `  name: ${kind.toLowerCase()}s.${group}`,
    'spec:',
    `  group: ${group}`,
    '  names:',
    '    categories:',
    '    - all',
    `    kind: ${kind}`,
    `    listKind: ${kind}List`,
    `    plural: ${kind.toLowerCase()}s`,
    `    singular: ${kind.toLowerCase()}`,
    '  scope: Namespaced',
    '  versions:',
    '  - name: v1',
    '    schema:',
    '      openAPIV3Schema:',
    `        description: ${kind} defines a deployment of the component.`,
    '        properties:',
    '          apiVersion:',
    '            description: |-',
    '              APIVersion defines the versioned schema of this representation of an object.',
    '              Servers should convert recognized schemas to the latest internal value.',
    '            type: string',
    '          spec:',
    '            properties:',
  ];
  let size = out.join('\n').length;
  for (let n = 0; size < megabytes * 1024 * 1024; n++) {
    const block = [
      `              component${n}:`,
      `                description: ${sentence(n, 18)}`,
      '                properties:',
      '                  containers:',
      '                    description: |-',
      '                      Containers allows injecting additional containers or modifying operator',
      '                      generated containers. This can be used to allow adding an authentication',
      '                      proxy to the pods or to change the behavior of an operator generated container.',
      '                    items:',
      '                      description: A single application container that you want to run within a pod.',
      '                      properties:',
      '                        args:',
      '                          description: Arguments to the entrypoint.',
      '                          items:',
      '                            type: string',
      '                          type: array',
      '                          x-kubernetes-list-type: atomic',
      '                        image:',
      '                          description: |-',
      '                            Container image name.',
      '                            More info: https://kubernetes.io/docs/concepts/containers/images',
      '                          type: string',
      '                        imagePullPolicy:',
      '                          description: Image pull policy. One of Always, Never, IfNotPresent.',
      '                          type: string',
      '                        name:',
      '                          description: Name of the container specified as a DNS_LABEL.',
      '                          type: string',
      '                      required:',
      '                      - name',
      '                      type: object',
      '                    type: array',
      '                  image:',
      '                    description: Image if specified has precedence over baseImage, tag and sha.',
      '                    type: string',
      '                  replicas:',
      '                    format: int32',
      '                    type: integer',
      '                type: object',
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

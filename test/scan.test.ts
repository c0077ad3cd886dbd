/** `pullsafe scan` and `rewrite` as users run them (in process), over a tree shaped like a real project. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { runCliInProcess } from './helpers/cli.ts';
import { requirePeer } from './helpers/peers.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';

const files: Record<string, string> = {
  Dockerfile:
    'ARG PY=3.12\nFROM python:${PY}-slim AS build\nRUN pip install x\nFROM build\nCOPY --from=nginx:1.25 /a /b\nFROM gcr.io/distroless/base@sha256:' +
    'b'.repeat(64) +
    '\n',
  'docker-compose.yml':
    '# services\nservices:\n  cache:\n    image: "redis:7.2"   # keep quotes\n  db:\n    image: ${DB_IMAGE:-postgres:16}\n  app:\n    build: .\n',
  'k8s/deploy.yaml':
    'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      initContainers:\n        - name: init\n          image: busybox\n      containers:\n        - name: web\n          image: bitnami/nginx:1.25\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: c\n      image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1\n',
  'ecs/taskdef.json':
    '{\n  "family": "web",\n  "containerDefinitions": [\n    { "name": "web", "image": "nginx:latest" }\n  ]\n}\n',
  '.github/workflows/ci.yml':
    'jobs:\n  test:\n    runs-on: ubuntu-latest\n    container: node:20\n    services:\n      db:\n        image: mysql:8\n',
  '.gitlab-ci.yml': 'image: alpine:3.20\ntest:\n  script: [echo]\n',
  'vendor/.gitignore': '*\n',
  'vendor/Dockerfile': 'FROM should-not-be-seen\n',
};

let root: string;

before(async () => {
  root = await makeTempDir('pullsafe-scan-');
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, name)), { recursive: true });
    await writeFile(join(root, name), content);
  }
});
after(async () => {
  if (root) await removeTempDir(root);
});

interface JsonReference {
  file: string;
  line: number;
  column: number;
  text: string;
  kind: string;
  registry: string | null;
  repository: string | null;
  tag: string | null;
  digest: string | null;
  registryKind: string | null;
  official: boolean | null;
  unresolved?: string;
}

async function scanJson(): Promise<JsonReference[]> {
  const result = await runCliInProcess(['scan', '--json', root]);
  assert.equal(result.code, 0, result.stderr);
  return (JSON.parse(result.stdout) as { references: JsonReference[] }).references;
}

describe('pullsafe scan', () => {
  it('finds every reference with its place, text and classification', async () => {
    const references = await scanJson();
    const byText = new Map(references.map((reference) => [reference.text, reference]));
    assert.deepEqual([...byText.keys()].sort(), [
      '${DB_IMAGE:-postgres:16}',
      '123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1',
      'alpine:3.20',
      'bitnami/nginx:1.25',
      'busybox',
      `gcr.io/distroless/base@sha256:${'b'.repeat(64)}`,
      'mysql:8',
      'nginx:1.25',
      'nginx:latest',
      'node:20',
      'python:${PY}-slim',
      'redis:7.2',
    ]);
    assert.deepEqual(byText.get('redis:7.2'), {
      ...byText.get('redis:7.2'),
      file: 'docker-compose.yml',
      line: 4,
      column: 13,
      kind: 'compose',
      registry: 'docker.io',
      repository: 'library/redis',
      tag: '7.2',
      digest: null,
      registryKind: 'docker-hub',
      official: true,
    });
    assert.equal(byText.get('busybox')!.file, 'k8s/deploy.yaml');
    assert.equal(byText.get('nginx:latest')!.kind, 'ecs-task-definition');
    assert.equal(
      byText.get('123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1')!.registryKind,
      'ecr-private',
    );
    assert.equal(byText.get('bitnami/nginx:1.25')!.official, false);
    assert.ok(!references.some((reference) => reference.file.startsWith('vendor/')), '.gitignore respected');
  });

  it('says why every reference it could not classify is unresolved, invalid references included', async () => {
    const folder = await makeTempDir('pullsafe-scan-invalid-');
    try {
      await writeFile(
        join(folder, 'Dockerfile'),
        'FROM Nginx:Latest\nFROM node:${NODE_TAG}\nFROM alpine:3.20\n',
      );
      const result = await runCliInProcess(['scan', '--json', folder]);
      assert.equal(result.code, 0, result.stderr);
      const references = (JSON.parse(result.stdout) as { references: JsonReference[] }).references;
      const byText = new Map(references.map((reference) => [reference.text, reference]));
      assert.equal(
        byText.get('Nginx:Latest')?.unresolved,
        'is not a valid image reference: repository name must be lowercase',
      );
      assert.match(byText.get('node:${NODE_TAG}')?.unresolved ?? '', /NODE_TAG/);
      assert.equal(byText.get('alpine:3.20')?.unresolved, undefined);
      for (const reference of references) {
        assert.ok(reference.registry !== null || reference.unresolved, `${reference.text} says why`);
      }
    } finally {
      await removeTempDir(folder);
    }
  });

  it('gates CI with --fail-on, and writes SARIF', async () => {
    const gate = await runCliInProcess(['scan', '--fail-on', 'docker-hub', root]);
    assert.equal(gate.code, 1);
    assert.match(gate.stdout, /Docker Hub: .* \(\d+\)/);
    const sarif = await runCliInProcess(['scan', '--sarif', root]);
    const document = JSON.parse(sarif.stdout) as {
      version: string;
      runs: { results: { ruleId: string }[] }[];
    };
    assert.equal(document.version, '2.1.0');
    assert.ok(document.runs[0]!.results.some((result) => result.ruleId === 'docker-hub'));
    assert.equal((await runCliInProcess(['scan', '--fail-on', 'nonsense', root])).code, 2);
    assert.equal((await runCliInProcess(['scan', join(root, 'missing')])).code, 2);
  });
});

describe('pullsafe rewrite', () => {
  it('--dry-run prints a diff and changes nothing', async () => {
    const before = await readFile(join(root, 'docker-compose.yml'), 'utf8');
    const result = await runCliInProcess(['rewrite', '--to-ecr-public', '--dry-run', root]);
    assert.match(result.stdout, /^- {4}image: "redis:7\.2" {3}# keep quotes$/m);
    assert.match(
      result.stdout,
      /^\+ {4}image: "public\.ecr\.aws\/docker\/library\/redis:7\.2" {3}# keep quotes$/m,
    );
    assert.equal(await readFile(join(root, 'docker-compose.yml'), 'utf8'), before);
  });

  it("--to-cache points Docker Hub and the named registries at pullsafe's cache, by its host-named route", async () => {
    const folder = await makeTempDir('pullsafe-rewrite-cache-');
    try {
      const dockerfile = join(folder, 'Dockerfile');
      await writeFile(
        dockerfile,
        'FROM nginx:1.27\nFROM ghcr.io/acme/tool:2@sha256:' + 'c'.repeat(64) + ' AS t\nFROM quay.io/x/y:1\n',
      );
      const result = await runCliInProcess([
        'rewrite',
        '--to-cache',
        'http://cache.internal:5000',
        '--cache-registry',
        'ghcr.io',
        folder,
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(
        await readFile(dockerfile, 'utf8'),
        'FROM cache.internal:5000/docker.io/library/nginx:1.27\n' +
          `FROM cache.internal:5000/ghcr.io/acme/tool:2@sha256:${'c'.repeat(64)} AS t\n` +
          'FROM quay.io/x/y:1\n',
      );
      const again = await runCliInProcess([
        'rewrite',
        '--to-cache',
        'http://cache.internal:5000',
        '--dry-run',
        folder,
      ]);
      assert.doesNotMatch(again.stdout, /^\+FROM/m, 'a second run changes nothing');
      for (const bad of [
        ['--to-cache', 'http://cache.internal:5000/v2'],
        ['--cache-registry', 'ghcr.io', '--to-mirror', 'x'],
      ]) {
        const refused = await runCliInProcess(['rewrite', ...bad, folder]);
        assert.equal(refused.code, 2, `${bad.join(' ')}: ${refused.stderr}`);
      }
    } finally {
      await removeTempDir(folder);
    }
  });

  it('rewrites to a pull-through cache, touching nothing but the references; a second run changes nothing', async () => {
    const originals = new Map<string, string>();
    for (const name of Object.keys(files)) originals.set(name, await readFile(join(root, name), 'utf8'));
    const host = '123456789012.dkr.ecr.us-east-1.amazonaws.com';
    const result = await runCliInProcess([
      'rewrite',
      '--to-pull-through',
      host,
      '--prefix',
      'docker-hub',
      root,
    ]);
    assert.equal(result.code, 1, 'references built from variables are left, with the reason');
    assert.match(result.stdout, /left .*python:\$\{PY\}-slim: built from variables/);

    const after = await scanJson();
    const leftOnHub = after.filter((reference) => reference.registryKind === 'docker-hub');
    assert.deepEqual(leftOnHub.map((reference) => reference.text).sort(), [
      '${DB_IMAGE:-postgres:16}',
      'python:${PY}-slim',
    ]);
    assert.equal(
      after.find((reference) => reference.repository === 'docker-hub/library/busybox')?.text,
      `${host}/docker-hub/library/busybox`,
    );

    // Undo each rewritten reference by position: every other byte must be what it was.
    const before = await scanJson();
    for (const [name, original] of originals) {
      let content = await readFile(join(root, name), 'utf8');
      const rewritten = before
        .filter((reference) => reference.file === name && reference.text.startsWith(`${host}/docker-hub/`))
        .sort((a, b) => b.line - a.line || b.column - a.column);
      for (const reference of rewritten) {
        const lines = content.split('\n');
        const line = lines[reference.line - 1]!;
        const originalLine = original.split('\n')[reference.line - 1]!;
        const start = reference.column - 1;
        const restored =
          line.slice(0, start) +
          originalLine.slice(start, originalLine.length - (line.length - start - reference.text.length)) +
          line.slice(start + reference.text.length);
        lines[reference.line - 1] = restored;
        content = lines.join('\n');
      }
      assert.equal(content, original, name);
    }

    const snapshot = new Map<string, string>();
    for (const name of Object.keys(files)) snapshot.set(name, await readFile(join(root, name), 'utf8'));
    const again = await runCliInProcess([
      'rewrite',
      '--to-pull-through',
      host,
      '--prefix',
      'docker-hub',
      root,
    ]);
    assert.match(again.stdout, /rewrote 0 references/);
    for (const [name, content] of snapshot)
      assert.equal(await readFile(join(root, name), 'utf8'), content, name);
  });

  it('--rules sends each repository where its first matching rule says', async () => {
    const tree = await makeTempDir('pullsafe-rules-');
    try {
      await writeFile(
        join(tree, 'compose.yaml'),
        'services:\n  web:\n    image: nginx:1.27\n  cache:\n    image: bitnami/redis:7.4 # pinned later\n  app:\n    image: acme/app@sha256:' +
          'c'.repeat(64) +
          '\n  own:\n    image: ghcr.io/acme/tool:2\n',
      );
      const rules = join(tree, 'rules.yaml');
      await writeFile(
        rules,
        [
          'rules:',
          '  - match: library/*',
          '    to-ecr-public: true',
          '  - match: bitnami/*',
          '    to-mirror: mirror.example.com:5000/hub',
          '  - match: "**"',
          '    to-pull-through: 123456789012.dkr.ecr.us-east-1.amazonaws.com',
          '    prefix: docker-hub',
          '',
        ].join('\n'),
      );
      const result = await runCliInProcess(['rewrite', '--rules', rules, tree]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.equal(
        await readFile(join(tree, 'compose.yaml'), 'utf8'),
        'services:\n  web:\n    image: public.ecr.aws/docker/library/nginx:1.27\n  cache:\n    image: mirror.example.com:5000/hub/bitnami/redis:7.4 # pinned later\n  app:\n    image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/docker-hub/acme/app@sha256:' +
          'c'.repeat(64) +
          '\n  own:\n    image: ghcr.io/acme/tool:2\n',
      );

      await writeFile(
        rules,
        'rules:\n  - match: "**"\n    to-ecr-public: true\n    to-mirror: x:5000\n    prefx: a\n',
      );
      const bad = await runCliInProcess(['rewrite', '--rules', rules, tree]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /rules\.0\.prefx: unknown key \(did you mean "prefix"\?\)/);
      assert.equal((await runCliInProcess(['rewrite', '--rules', join(tree, 'missing.yaml'), tree])).code, 2);
      assert.equal((await runCliInProcess(['rewrite', '--rules', rules, '--to-ecr-public', tree])).code, 2);
    } finally {
      await removeTempDir(tree);
    }
  });

  it('needs exactly one target', async () => {
    assert.equal((await runCliInProcess(['rewrite', root])).code, 2);
    assert.equal(
      (await runCliInProcess(['rewrite', '--to-ecr-public', '--to-mirror', 'x:5000', root])).code,
      2,
    );
  });
});

/** A platform repository as teams keep them: charts, an environment's values, compose, Terraform, CDK, raw manifests. */
const platform: Record<string, string> = {
  'charts/cache/Chart.yaml': [
    'apiVersion: v2',
    'name: cache',
    'version: 19.6.4',
    'dependencies:',
    '  - name: common',
    '    repository: oci://registry-1.docker.io/examplecharts',
    '    version: 2.x.x',
    '',
  ].join('\n'),
  'charts/cache/values.yaml': [
    '## @param global.imageRegistry Global Docker image registry',
    'global:',
    '  imageRegistry: ""',
    '  imagePullSecrets: []',
    '## Cache image',
    '## ref: https://hub.docker.com/r/acme/cache/tags/',
    'image:',
    '  registry: docker.io',
    '  repository: acme/cache',
    '  tag: 7.4.1-debian-12-r3 # immutable tags are recommended',
    '  digest: ""',
    '  pullPolicy: IfNotPresent',
    'metrics:',
    '  enabled: false',
    '  image:',
    '    registry: docker.io',
    '    repository: acme/cache-exporter',
    '    tag: 1.66.0',
    'gitImage:',
    '  repository: alpine/git',
    '  tag: 2.45.2',
    'configuration: |-',
    '  image: text-not-an-image',
    '',
  ].join('\n'),
  'charts/cache/templates/_helpers.tpl': [
    '{{- define "cache.image" -}}',
    '{{ include "common.images.image" (dict "imageRoot" .Values.image "global" .Values.global) }}',
    '{{- end -}}',
    '{{- define "cache.git.image" -}}',
    '{{ include "common.images.image" (dict "imageRoot" .Values.gitImage "global" .Values.global) }}',
    '{{- end -}}',
    '',
  ].join('\n'),
  'charts/cache/templates/statefulset.yaml': [
    '{{- if not .Values.standalone }}',
    'apiVersion: {{ include "common.capabilities.statefulset.apiVersion" . }}',
    'kind: StatefulSet',
    'metadata:',
    '  name: {{ include "common.names.fullname" . }}',
    'spec:',
    '  template:',
    '    spec:',
    '      containers:',
    '        - name: cache',
    '          image: {{ template "cache.image" . }}',
    '{{- end }}',
    '',
  ].join('\n'),
  'charts/cache/crds/widgets.yaml': [
    'apiVersion: apiextensions.k8s.io/v1',
    'kind: CustomResourceDefinition',
    'metadata: {name: widgets.example.com}',
    'spec:',
    '  versions:',
    '    - name: v1',
    '      schema:',
    '        openAPIV3Schema:',
    '          properties:',
    '            containers: {type: array, default: [{name: x, image: example/default:1}]}',
    '',
  ].join('\n'),
  'charts/web/Chart.yaml': 'apiVersion: v2\nname: web\nversion: 0.1.0\nappVersion: "1.27.0"\n',
  'charts/web/values.yaml': [
    'replicaCount: 1',
    'image:',
    '  repository: nginx',
    '  pullPolicy: IfNotPresent',
    '  # Overrides the image tag whose default is the chart appVersion.',
    '  tag: "1.27.0"',
    '',
  ].join('\n'),
  'charts/web/templates/deployment.yaml': [
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata:',
    '  name: {{ include "web.fullname" . }}',
    'spec:',
    '  template:',
    '    spec:',
    '      containers:',
    '        - name: {{ .Chart.Name }}',
    '          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"',
    '',
  ].join('\n'),
  'charts/web/templates/tests/test-connection.yaml': [
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    '  name: "{{ include "web.fullname" . }}-test-connection"',
    'spec:',
    '  containers:',
    '    - name: wget',
    '      image: busybox:1.36',
    "      command: ['wget']",
    '',
  ].join('\n'),
  'environments/prod/values.yaml': 'image:\n  repository: acme/app\n  tag: "3.1.0"\n',
  'compose.yaml': [
    'services:',
    '  etl:',
    '    build: ./etl',
    '    image: etl-kafka',
    '  kafka:',
    '    image: apache/kafka:3.8.0',
    '',
  ].join('\n'),
  'infra/build.tf': [
    'resource "aws_codebuild_project" "build" {',
    '  environment {',
    '    compute_type = "BUILD_GENERAL1_SMALL"',
    '    image        = "aws/codebuild/amazonlinux2-x86_64-standard:5.0"',
    '    type         = "LINUX_CONTAINER"',
    '  }',
    '}',
    '',
  ].join('\n'),
  'cdk/lib/service-stack.ts': [
    "import * as ecs from 'aws-cdk-lib/aws-ecs';",
    'export class ServiceStack extends Stack {',
    "  readonly image = ecs.ContainerImage.fromRegistry('amazon/amazon-ecs-sample');",
    '}',
    '',
  ].join('\n'),
  'deploy/debug-pod':
    'apiVersion: v1\nkind: Pod\nmetadata:\n  name: debug\nspec:\n  containers:\n    - name: shell\n      image: alpine:3.20\n',
  'deploy/api.json':
    '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "api"}, "spec": {"containers": [{"name": "api", "image": "python:3.12-slim"}]}}\n',
};

describe('a platform repository: every form, one scan, one rewrite', () => {
  let tree: string;
  before(async () => {
    tree = await makeTempDir('pullsafe-platform-');
    for (const [name, content] of Object.entries(platform)) {
      await mkdir(dirname(join(tree, name)), { recursive: true });
      await writeFile(join(tree, name), content);
    }
  });
  after(async () => {
    if (tree) await removeTempDir(tree);
  });

  async function scanTree(): Promise<{
    references: (JsonReference & { resolved?: string })[];
    summary: Record<string, number>;
  }> {
    const result = await runCliInProcess(['scan', '--json', tree]);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as {
      references: (JsonReference & { resolved?: string })[];
      summary: Record<string, number>;
    };
  }

  it('reports each image once, where it is written, with what pulls it', async () => {
    const { references, summary } = await scanTree();
    assert.deepEqual(
      references.map((reference) => [
        reference.file,
        reference.line,
        reference.text,
        reference.kind,
        reference.registryKind,
      ]),
      [
        ['compose.yaml', 4, 'etl-kafka', 'built', 'docker-hub'],
        ['compose.yaml', 6, 'apache/kafka:3.8.0', 'compose', 'docker-hub'],
        ['cdk/lib/service-stack.ts', 3, 'amazon/amazon-ecs-sample', 'cdk', 'docker-hub'],
        ['charts/cache/values.yaml', 9, 'acme/cache', 'helm-values', 'docker-hub'],
        ['charts/cache/values.yaml', 17, 'acme/cache-exporter', 'helm-values', 'docker-hub'],
        ['charts/cache/values.yaml', 20, 'alpine/git', 'helm-values', 'docker-hub'],
        ['charts/web/values.yaml', 3, 'nginx', 'helm-values', 'docker-hub'],
        ['charts/web/templates/tests/test-connection.yaml', 8, 'busybox:1.36', 'kubernetes', 'docker-hub'],
        ['deploy/debug-pod', 8, 'alpine:3.20', 'kubernetes', 'docker-hub'],
        ['deploy/api.json', 1, 'python:3.12-slim', 'kubernetes', 'docker-hub'],
        ['environments/prod/values.yaml', 2, 'acme/app', 'helm-values', 'docker-hub'],
        ['infra/build.tf', 4, 'aws/codebuild/amazonlinux2-x86_64-standard:5.0', 'terraform', 'codebuild'],
      ],
    );
    const byText = new Map(references.map((reference) => [reference.text, reference]));
    assert.equal(byText.get('acme/cache')?.resolved, 'docker.io/acme/cache:7.4.1-debian-12-r3');
    assert.equal(byText.get('acme/cache')?.tag, '7.4.1-debian-12-r3');
    assert.equal(byText.get('aws/codebuild/amazonlinux2-x86_64-standard:5.0')?.registry, 'codebuild');
    assert.equal(summary.references, 12);
    assert.equal(summary.dockerHub, 10, 'the build target and the CodeBuild image are not Docker Hub pulls');
    assert.equal(summary.built, 1);
    const text = await runCliInProcess(['scan', tree]);
    assert.match(
      text.stdout,
      /^Built here: names that compose builds \(not pulled, never rewritten\) \(1\)\n {2}compose\.yaml:4:12 {2}etl-kafka {2}\[built\]\n/m,
    );
    assert.match(
      text.stdout,
      /infra\/build\.tf:4:21 {2}aws\/codebuild\/amazonlinux2-x86_64-standard:5\.0 {2}\[terraform\] {2}\(provided by CodeBuild\)/,
    );
  });

  it('rewrites image maps in place, adds registry: where the chart reads one, and says what to set where it cannot', async () => {
    const mirror = 'mirror.example.com:5000/hub';
    const dry = await runCliInProcess(['rewrite', '--to-mirror', mirror, '--dry-run', tree]);
    assert.equal(dry.code, 1, 'the environment values are left');
    assert.match(
      dry.stdout,
      /^- {2}repository: alpine\/git\n\+ {2}repository: hub\/alpine\/git\n\+ {2}registry: mirror\.example\.com:5000$/m,
    );
    assert.match(dry.stdout, /^@@ -5,19 \+5,20 @@$/m, 'the added line counts');
    assert.match(
      dry.stdout,
      /^- {2}registry: docker\.io\n- {2}repository: acme\/cache\n\+ {2}registry: mirror\.example\.com:5000\n\+ {2}repository: hub\/acme\/cache$/m,
    );
    assert.equal(
      await readFile(join(tree, 'charts/cache/values.yaml'), 'utf8'),
      platform['charts/cache/values.yaml'],
    );

    const result = await runCliInProcess(['rewrite', '--to-mirror', mirror, tree]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^rewrote 9 references in 7 files$/m);
    assert.match(
      result.stdout,
      /^left environments\/prod\/values\.yaml:2:15 {2}acme\/app: no chart next to this file says whether it reads image\.registry: set image\.registry to mirror\.example\.com:5000 and image\.repository to hub\/acme\/app if it does, else image\.repository to mirror\.example\.com:5000\/hub\/acme\/app$/m,
    );
    assert.equal(
      await readFile(join(tree, 'charts/cache/values.yaml'), 'utf8'),
      platform['charts/cache/values.yaml']!.replace(
        '  registry: docker.io\n  repository: acme/cache\n',
        '  registry: mirror.example.com:5000\n  repository: hub/acme/cache\n',
      )
        .replace(
          '    registry: docker.io\n    repository: acme/cache-exporter',
          '    registry: mirror.example.com:5000\n    repository: hub/acme/cache-exporter',
        )
        .replace(
          '  repository: alpine/git\n',
          '  repository: hub/alpine/git\n  registry: mirror.example.com:5000\n',
        ),
    );
    assert.equal(
      await readFile(join(tree, 'charts/web/values.yaml'), 'utf8'),
      platform['charts/web/values.yaml']!.replace(
        'repository: nginx',
        'repository: mirror.example.com:5000/hub/library/nginx',
      ),
      'the helm create layout reads no registry: the repository takes the whole name',
    );
    for (const unchanged of [
      'compose.yaml',
      'infra/build.tf',
      'environments/prod/values.yaml',
      'charts/cache/crds/widgets.yaml',
    ]) {
      const expected =
        unchanged === 'compose.yaml'
          ? platform[unchanged]!.replace(
              'apache/kafka:3.8.0',
              'mirror.example.com:5000/hub/apache/kafka:3.8.0',
            )
          : platform[unchanged];
      assert.equal(await readFile(join(tree, unchanged), 'utf8'), expected, unchanged);
    }
    for (const name of Object.keys(platform).filter(
      (name) => /\.ya?ml$/.test(name) && !name.includes('/templates/'),
    )) {
      const documents = parseAllDocuments(await readFile(join(tree, name), 'utf8'));
      assert.ok(
        documents.every((document) => document.errors.length === 0),
        `${name} still parses`,
      );
    }
    const after = await scanTree();
    assert.equal(after.summary.dockerHub, 1, 'only the environment values are left on Docker Hub');
    assert.equal(
      after.references.find((reference) => reference.text === 'hub/alpine/git')?.resolved,
      'mirror.example.com:5000/hub/alpine/git:2.45.2',
    );
    const again = await runCliInProcess(['rewrite', '--to-mirror', mirror, tree]);
    assert.match(again.stdout, /^rewrote 0 references in 0 files$/m);
  });
});

describe('.gitignore, read as git reads it', () => {
  /** Each folder's `.gitignore`: nesting, negations, character classes, folder-only and anchored patterns. */
  const ignoreFiles: Record<string, string> = {
    '': [
      '# a comment',
      'Dockerfile.[ab]',
      '*.log',
      '!keep.log',
      'build/',
      '/docs/*.md',
      '!/docs/index.md',
      'logs/**',
      '!logs/**/',
      '!logs/**/x.keep',
      '**/generated/',
      'dir-only/',
      'src/**/tmp',
      '\\#hash',
      '\\!bang',
      'trailing\\ ',
      '*.[oa]',
      '[!x]y.txt',
      'a?c.txt',
      'vendor',
      'weird*/',
      'Build',
      '',
    ].join('\n'),
    tools: '!build/\n!weird*/\nsub/\n',
    src: '/local.txt\n!*.log\ndeep/**/skip.me\n',
    'src/deep': '*\n!*/\n!Dockerfile*\n',
    pkg: 'README.md   \n/a/\nc/Dockerfile\n!c/Dockerfile.c\n**/d\n',
    x: 'y/z/\r\n*.txt\r\n!keep.txt\r\n',
  };
  const folders = [
    '',
    'build',
    'Build',
    'tools',
    'tools/build',
    'tools/build/sub',
    'tools/weird[1] ?*',
    'tools/sub',
    'src',
    'src/build',
    'src/deep',
    'src/deep/nested',
    'src/generated',
    'src/x/tmp',
    'docs',
    'docs/sub',
    'logs',
    'logs/2024',
    'vendor',
    'dir-only',
    'pkg',
    'pkg/a',
    'pkg/b',
    'pkg/b/a',
    'pkg/c',
    'pkg/e/d',
    'x',
    'x/y',
    'x/y/z',
  ];
  const names = [
    'Dockerfile',
    'Dockerfile.a',
    'Dockerfile.b',
    'Dockerfile.c',
    'Dockerfile.log',
    'dockerfile.a',
    'app.log',
    'keep.log',
    'x.keep',
    'index.md',
    'README.md',
    'local.txt',
    'keep.txt',
    'skip.me',
    'tmp',
    'a.o',
    'b.a',
    'xy.txt',
    'yy.txt',
    'abc.txt',
    '#hash',
    '!bang',
    'trailing ',
    'sp ace',
    'vendor',
    'dir-only',
    'weird[1].txt',
  ];

  let tree: string;
  let files: string[];

  before(async () => {
    tree = await makeTempDir('pullsafe-gitignore-');
    files = [];
    for (const folder of folders) await mkdir(join(tree, folder), { recursive: true });
    const folderSet = new Set(folders);
    for (const folder of folders) {
      for (const name of names) {
        const relative = folder === '' ? name : `${folder}/${name}`;
        if (folderSet.has(relative)) continue;
        await writeFile(join(tree, relative), `FROM image${files.length}:1\n`);
        files.push(relative);
      }
    }
    for (const [folder, text] of Object.entries(ignoreFiles)) {
      const relative = folder === '' ? '.gitignore' : `${folder}/.gitignore`;
      await writeFile(join(tree, relative), text);
      files.push(relative);
    }
  });
  after(async () => {
    if (tree) await removeTempDir(tree);
  });

  /** git in the tree, without the user's or the system's configuration (no global excludes file). */
  async function git(args: string[], input?: string): Promise<string> {
    const binary = requirePeer('git', 'git');
    const { spawnSync } = await import('node:child_process');
    const result = spawnSync(binary, args, {
      cwd: tree,
      input,
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' },
    });
    assert.ok(result.status === 0 || (args[0] === 'check-ignore' && result.status === 1), result.stderr);
    return result.stdout;
  }

  it('walks exactly the files git check-ignore does not ignore', async () => {
    await git(['init', '-q']);
    const ignoredByGit = new Set(
      (await git(['check-ignore', '--stdin', '-z', '--no-index'], files.join('\0') + '\0'))
        .split('\0')
        .filter((path) => path !== ''),
    );
    const expected = files.filter((path) => !ignoredByGit.has(path)).sort();
    const untracked = (await git(['ls-files', '-z', '--others', '--exclude-standard']))
      .split('\0')
      .filter((path) => path !== '')
      .sort();
    assert.deepEqual(untracked, expected, 'git check-ignore and git ls-files agree');
    assert.ok(ignoredByGit.has('Dockerfile.a') && !ignoredByGit.has('Dockerfile.c'), 'character classes');
    assert.ok(!ignoredByGit.has('tools/build/Dockerfile'), 'a folder re-included by a deeper .gitignore');

    const { walkFiles } = await import('../src/scan/walk.ts');
    const walked: string[] = [];
    for await (const file of walkFiles(tree)) walked.push(file.relative);
    assert.deepEqual(walked.sort(), expected);
  });

  it('sends the same rules to scan workers', async () => {
    const { scanPaths } = await import('../src/scan/scan.ts');
    const { allExtractors } = await import('../src/scan/extractors.ts');
    const result = await scanPaths([tree], allExtractors, { workers: 2, workersAfterMs: 0 });
    assert.ok(result.workersUsed > 0, 'workers took part');
    const scanned = [...new Set(result.references.map((reference) => reference.file))].sort();
    const ignoredByGit = new Set(
      (await git(['check-ignore', '--stdin', '-z', '--no-index'], files.join('\0') + '\0')).split('\0'),
    );
    const expected = files
      .filter((path) => /(?:^|\/)[Dd]ockerfile(?:\.[^/]*)?$/.test(path) && !ignoredByGit.has(path))
      .sort();
    assert.deepEqual(scanned, expected);
  });

  it('scan reports a Dockerfile git ignores with a character class no more', async () => {
    const result = await runCliInProcess(['scan', '--json', tree]);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stdout, /"Dockerfile\.a"/);
    assert.match(result.stdout, /"Dockerfile\.c"/);
  });
});

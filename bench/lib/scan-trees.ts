/**
 * Trees for the scan benchmark, generated (the benchmark cannot fetch real repositories): the writer they
 * share, and `monorepo`, tens of thousands of small files, per service a Dockerfile, a compose file, a
 * Kubernetes manifest, an ECS task definition, settings YAML, package.json, Python, Go and TypeScript
 * sources and a README. The Helm charts tree is in scan-charts.ts.
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

/** Writes a tree's files and counts them, their bytes and the references they hold. */
export class TreeWriter {
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

/**
 * `pullsafe scan` against `grep -rE` over the same generated tree: tens of thousands of files shaped like a
 * monorepo (source files, Dockerfiles, compose files, Kubernetes manifests, task definitions, CI files).
 * Prints the wall time of each (median of runs) and the ratio. Target: pullsafe within 3x of grep.
 *
 *   node bench/scan.ts [--files N] [--runs N]
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const index = args.indexOf(name);
  return index === -1 ? fallback : Number(args[index + 1]);
};
const fileCount = option('--files', 30_000);
const runs = option('--runs', 5);
const root = fileURLToPath(new URL('..', import.meta.url));

const templates: [string, (i: number) => string][] = [
  [
    'service{i}/Dockerfile',
    (i) =>
      `ARG BASE=python:3.${i % 12}\nFROM \${BASE}-slim AS build\nRUN pip install -r requirements.txt\nFROM build\nCOPY . /app\n`,
  ],
  [
    'service{i}/docker-compose.yml',
    (i) => `services:\n  app:\n    image: "redis:7.${i % 4}"\n  db:\n    image: postgres:16\n`,
  ],
  [
    'service{i}/k8s/deploy.yaml',
    (i) =>
      `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: s${i}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: nginx:1.${i % 27}\n`,
  ],
  [
    'service{i}/ecs/taskdef.json',
    (i) =>
      `{\n  "family": "s${i}",\n  "containerDefinitions": [{ "name": "app", "image": "node:${18 + (i % 4)}" }]\n}\n`,
  ],
  ['service{i}/config/settings.yaml', (i) => `name: s${i}\nreplicas: 3\nfeatures:\n  - a\n  - b\n`],
  [
    'service{i}/src/main.py',
    (i) =>
      `import os\n\ndef handler(event):\n    return {"id": ${i}, "env": os.environ.get("STAGE")}\n`.repeat(
        20,
      ),
  ],
  [
    'service{i}/src/util.go',
    (i) => `package util\n\nfunc Add(a, b int) int { return a + b + ${i} }\n`.repeat(30),
  ],
  [
    'service{i}/src/index.ts',
    (i) => `export const value = ${i};\nexport function f(x: number) { return x * value; }\n`.repeat(25),
  ],
  ['service{i}/README.md', (i) => `# Service ${i}\n\nRun it with docker compose up.\n`.repeat(10)],
  [
    'service{i}/package.json',
    (i) => `{ "name": "s${i}", "version": "1.0.${i}", "dependencies": { "x": "^1" } }\n`,
  ],
];

async function generate(dir: string): Promise<void> {
  let written = 0;
  for (let i = 0; written < fileCount; i++) {
    for (const [pattern, content] of templates) {
      if (written >= fileCount) break;
      const path = join(dir, pattern.replace('{i}', String(i)));
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(path, content(i));
      written++;
    }
  }
}

function timeIt(command: string, commandArgs: string[]): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, commandArgs, { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 30 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0 && !(command === 'grep' && result.status === 1)) {
    throw new Error(`${command} failed (${result.status}): ${result.stderr?.toString()}`);
  }
  return seconds;
}

const median = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const dir = await mkdtemp(join(tmpdir(), 'pullsafe-scan-bench-'));
try {
  console.error(`generating ${fileCount} files in ${dir}`);
  await generate(dir);
  const grepArgs = ['-rnE', '(^|[[:space:]])(FROM|image:|"image"|container:)', dir];
  const pullsafeArgs = [join(root, 'dist/cli/main.js'), 'scan', '--json', dir];
  const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('build failed');
  // Warm the page cache for both.
  timeIt('grep', grepArgs);
  timeIt(process.execPath, pullsafeArgs);
  const grepTimes: number[] = [];
  const pullsafeTimes: number[] = [];
  for (let run = 0; run < runs; run++) {
    grepTimes.push(timeIt('grep', grepArgs));
    pullsafeTimes.push(timeIt(process.execPath, pullsafeArgs));
  }
  const grepSeconds = median(grepTimes);
  const pullsafeSeconds = median(pullsafeTimes);
  const ratio = pullsafeSeconds / grepSeconds;
  console.log(
    `# scan: pullsafe vs grep -rE (${fileCount} files, median of ${runs}, ${new Date().toISOString()})\n`,
  );
  console.log('| tool | seconds | runs |');
  console.log('| --- | ---: | --- |');
  console.log(
    `| grep -rnE (keywords only, no parsing) | ${grepSeconds.toFixed(3)} | ${grepTimes.map((t) => t.toFixed(3)).join(' / ')} |`,
  );
  console.log(
    `| pullsafe scan --json (parsed, classified) | ${pullsafeSeconds.toFixed(3)} | ${pullsafeTimes.map((t) => t.toFixed(3)).join(' / ')} |`,
  );
  console.log(`\npullsafe/grep: ${ratio.toFixed(2)}x (target within 3x): ${ratio <= 3 ? 'PASS' : 'FAIL'}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}

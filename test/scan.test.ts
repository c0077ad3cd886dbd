/** `pullsafe scan` and `rewrite` as users run them, over a tree shaped like a real project. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { runCli } from './helpers/cli.ts';
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
  const result = await runCli(['scan', '--json', root]);
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
      const result = await runCli(['scan', '--json', folder]);
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
    const gate = await runCli(['scan', '--fail-on', 'docker-hub', root]);
    assert.equal(gate.code, 1);
    assert.match(gate.stdout, /Docker Hub: .* \(\d+\)/);
    const sarif = await runCli(['scan', '--sarif', root]);
    const document = JSON.parse(sarif.stdout) as {
      version: string;
      runs: { results: { ruleId: string }[] }[];
    };
    assert.equal(document.version, '2.1.0');
    assert.ok(document.runs[0]!.results.some((result) => result.ruleId === 'docker-hub'));
    assert.equal((await runCli(['scan', '--fail-on', 'nonsense', root])).code, 2);
    assert.equal((await runCli(['scan', join(root, 'missing')])).code, 2);
  });
});

describe('pullsafe rewrite', () => {
  it('--dry-run prints a diff and changes nothing', async () => {
    const before = await readFile(join(root, 'docker-compose.yml'), 'utf8');
    const result = await runCli(['rewrite', '--to-ecr-public', '--dry-run', root]);
    assert.match(result.stdout, /^- {4}image: "redis:7\.2" {3}# keep quotes$/m);
    assert.match(
      result.stdout,
      /^\+ {4}image: "public\.ecr\.aws\/docker\/library\/redis:7\.2" {3}# keep quotes$/m,
    );
    assert.equal(await readFile(join(root, 'docker-compose.yml'), 'utf8'), before);
  });

  it('rewrites to a pull-through cache, touching nothing but the references; a second run changes nothing', async () => {
    const originals = new Map<string, string>();
    for (const name of Object.keys(files)) originals.set(name, await readFile(join(root, name), 'utf8'));
    const host = '123456789012.dkr.ecr.us-east-1.amazonaws.com';
    const result = await runCli(['rewrite', '--to-pull-through', host, '--prefix', 'docker-hub', root]);
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
    const again = await runCli(['rewrite', '--to-pull-through', host, '--prefix', 'docker-hub', root]);
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
      const result = await runCli(['rewrite', '--rules', rules, tree]);
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
      const bad = await runCli(['rewrite', '--rules', rules, tree]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /rules\.0\.prefx: unknown key \(did you mean "prefix"\?\)/);
      assert.equal((await runCli(['rewrite', '--rules', join(tree, 'missing.yaml'), tree])).code, 2);
      assert.equal((await runCli(['rewrite', '--rules', rules, '--to-ecr-public', tree])).code, 2);
    } finally {
      await removeTempDir(tree);
    }
  });

  it('needs exactly one target', async () => {
    assert.equal((await runCli(['rewrite', root])).code, 2);
    assert.equal((await runCli(['rewrite', '--to-ecr-public', '--to-mirror', 'x:5000', root])).code, 2);
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
    const result = await runCli(['scan', '--json', tree]);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stdout, /"Dockerfile\.a"/);
    assert.match(result.stdout, /"Dockerfile\.c"/);
  });
});

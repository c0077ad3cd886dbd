import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { isMap, isNode, isPair, isScalar, isSeq, Pair, Scalar, YAMLMap, YAMLSeq } from 'yaml';
import { parseSimpleYaml, resolvePlain } from './fast-yaml.ts';
import { parseDocumentsFully } from './json-util.ts';
import { parseYamlDocuments, yamlScalars } from './yaml-util.ts';

/** What extractors read from a tree: node kinds, keys, values, scalar styles and sources, tags, scalar ranges. */
function shape(node: unknown): unknown {
  if (isScalar(node)) {
    const value = node.value;
    return {
      scalar: typeof value === 'number' && Number.isNaN(value) ? 'NaN' : value,
      valueType: typeof value,
      type: node.type,
      source: node.source,
      tag: node.tag,
      range: node.range?.slice(0, 2),
    };
  }
  if (isMap(node)) {
    return {
      map: node.items.map((pair) => (isPair(pair) ? [shape(pair.key), shape(pair.value)] : 'not a pair')),
      tag: node.tag,
      start: node.range?.[0],
    };
  }
  if (isSeq(node)) return { seq: node.items.map(shape), tag: node.tag, start: node.range?.[0] };
  return { other: node === null ? null : typeof node };
}

/** Compares the fast reader with the `yaml` package; returns whether the fast reader took the input. */
function compare(content: string): boolean {
  const fast = parseSimpleYaml(content);
  if (!fast) return false;
  const label = JSON.stringify(content);
  const full = parseDocumentsFully(content);
  assert.deepEqual(
    fast.map(shape),
    full.map((document) => shape(document.root)),
    `parseDocuments: ${label}`,
  );
  // The extractors' other reader (no merge keys, errors kept) must agree too.
  const plain = parseYamlDocuments(content);
  assert.equal(plain.length, fast.length, label);
  for (const document of plain) assert.equal(document.errors.length, 0, label);
  assert.deepEqual(
    fast.map(shape),
    plain.map((document) => shape(document.contents)),
    `parseYamlDocuments: ${label}`,
  );
  assert.deepEqual([...yamlScalars(content)], [...yamlScalars(content, { fast: false })], label);
  return true;
}

/** Every string written in the scan tests (template parts joined with a digest-like filler). */
function testSuiteStrings(): string[] {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const files = [
    ...readdirSync(join(root, 'src/scan'))
      .filter((name) => name.endsWith('.test.ts') && name !== 'fast-yaml.test.ts')
      .map((name) => join(root, 'src/scan', name)),
    join(root, 'test/scan.test.ts'),
  ];
  const strings: string[] = [];
  for (const file of files) {
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) strings.push(node.text);
      else if (ts.isTemplateExpression(node)) {
        strings.push(
          node.head.text +
            node.templateSpans.map((span) => `sha256:${'a'.repeat(64)}${span.literal.text}`).join(''),
        );
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return strings.filter((text) => text.includes(':') || text.includes('-') || /^\s*[[{]/.test(text));
}

const edgeCases = [
  // Scalars the core schema resolves.
  'a: 1\nb: -2\nc: +3\nd: 0o17\ne: 0x1F\nf: 1.50\ng: .5\nh: 1e3\ni: -.inf\nj: .NaN\nk: ~\nl: null\nm: True\n',
  'n: FALSE\no: 12345678901234567890\np: 0.0\nq: 1_000\nr: 0b101\ns: 1.2.3\nt: -0\nu: .\nv: "1"\nw: \'true\'\n',
  'yes: no\non: off\n1: one\ntrue: t\n~: n\n1.5: f\n',
  // Quoting and comments.
  "image: 'it''s'\nother: \"double\" # note\nplain: a#b # c\nurl: http://x:80/y\nempty: ''\nq: \"\"\n",
  'key: value   \n# comment\n\n   # indented comment\nnext:   spaced   out   \n',
  // Nesting styles.
  'spec:\n  containers:\n  - name: a\n    image: nginx\n  - name: b\n    image: redis:7\n',
  'list:\n  - - a\n    - b\n  - - c\n- x\n',
  'list:\n  - - a\n    - b\n  -   - c\n',
  'root:\n    deep:\n        deeper: x\n    back: y\ntop: z\n',
  '- a\n- b: c\n  d: e\n-\n  - f\n- # comment\n  g: h\n',
  'key:\n  value on next line\nother: x\n',
  '"quoted key": 1\n\'single key\': 2\nkey with spaces: 3\n-dash: 4\n:colon: 5\n?q: 6\n',
  // Documents.
  '---\na: 1\n',
  'a: 1\n---\nb: 2\n---\n- c\n',
  'a: 1\n---\n',
  '---\n---\na: 1\n',
  'just a scalar\n',
  '"a quoted root"\n',
  'a: 1\n...\n',
  // Things the fast path must refuse or read exactly as the full parser does.
  'a: &x 1\nb: *x\n',
  'base: &b {image: nginx}\nsvc:\n  <<: *b\n',
  'a: !Ref x\n',
  'a: |\n  text\n',
  'a: >-\n  folded\n',
  'a: [1, 2]\nb: {c: d}\n',
  'a:\nb: 1\n',
  'a: b: c\n',
  'a: "multi\n  line"\n',
  'a: plain\n  continued\n',
  'a: "esc\\"aped"\n',
  'a:\tb\n',
  'a: b\r\nc: d\r\n',
  '%YAML 1.2\n---\na: 1\n',
  'a: 1\n  b: 2\n',
  'a:\n    b: 1\n  c: 2\n',
  '- a\n  - b\n',
  'a: - b\n',
  'a : b\n',
  'a: @x\n',
  'a: `x`\n',
  'a: -\n',
  'a: "x" y\n',
  '\ufeffa: 1\n',
  'a: 1\nb\n',
  '',
  '# only a comment\n',
  `${'k'.repeat(1100)}: v\n`,
  'a: "x"# not a comment\n',
  "a: 'x''\n",
  '- "a": 1\n  b: 2\n',
  'a:\n- b\n- c\nd: e\n',
  'a: 1 # c\n# c\nb: 2\n\n\n',
  'a: 1',
  'a:  \n  b: 1\n',
  '---\n# comment\n- a\n',
  '----\na: 1\n',
  '--- a\n',
  // JSON.
  '{"a": 1, "b": [true, false, null, -0.5e3, 0], "c": {"d": "e"}}',
  '{\n  "family": "s1",\n  "containerDefinitions": [{ "name": "app", "image": "node:20" }]\n}\n',
  '[]',
  '{}',
  '[1, [2, [3]], {"x": []}]\n',
  '{"esc": "a\\u002Fb\\n\\"q\\"", "slash": "\\/"}',
  '{"a":1,"b":"c"}',
  '{"a": 1,}',
  '{"a": 01}',
  '{"a" : 1}',
  '{"a"\n: 1}',
  '{"a": 1} x',
  '{"a": tru}',
  '{"a": 1}\n{"b": 2}',
  '[1, 2,]',
  '{"a": "\t"}',
  '{"a": 1e400, "b": -0, "c": 1E+2}',
  '  \n  {"indented": true}\n',
  '{"a": 1}\n# trailing comment\n',
  // Empty values, one-line flow collections and block scalars, as Helm values files write them.
  'a:\nb: 1\n',
  'a: # c\nb: 1',
  'a:   \nb: 1',
  'a:\n  - x\n  -\n  - y\n',
  '- \n- x',
  '-   # c\n- x',
  'a:',
  'a:\n---\nb:\n',
  'a: []\nb: {}\nc: [ ]\nd: { }\n',
  'a: [x, "y", 1, \'z\']\nb: {c: d, "e": 1}\n',
  'a: [x,y] # c\nb: [[1], {c: [d]}]\n',
  'drop: ["ALL"]\nk: [a b, -1]\n',
  'a: [x,]\n',
  'a: [x: y]\n',
  'a: {x}\n',
  'a: {x:y}\n',
  'a: [#]\n',
  'a: [x] y\n',
  'a: [-]\n',
  'a: [x\n  , y]\n',
  'a: [nginx:1.25]\n',
  'a: {"x" : y}\n',
  '- [a]\n- {b: c}\n',
  'a: |\n  l1\n  l2\nb: 1',
  'a: |-\n  l1\n\n  l2\n\nb: 1',
  'a: >\n  f1\n  f2\n\n  f3\n  f4\nb: 1',
  'a: >\n  f1\n  f2\n\n  f3\n   more\n  f4\nb: 1',
  'a: |+\n  x\n\n\nb: 1',
  'k:\n  a: |\n    x\n  b: >-\n    y # not comment\n    z\n',
  'a: | # c\n  x\n',
  'a: |\n\n  x\n',
  'a: >\n\n  x\n',
  'a: |\nb: 1',
  'a: |',
  'a: |2\n   x\n',
  'a: |\n  x\n  \n',
  'a: |\n  x\n    \nb: 1\n',
  'a: |\n    \n  x\n',
  'a: |\n\nb: 1\n',
  '- |\n  x\n- y',
  '- a: |\n    x\n  b: 1\n',
  'a: >\n  x\n\n\n  y\n',
  'a: |\n  x',
  'a: |\n  x\n # c\n',
  'a: |\n  # not a comment\n  x: y\nb: 2\n',
  'a: |\n    x\n  b: 1\n',
  'a: |x\n',
  'a: >-\n  one\n  two\n',
  '|\n  root\n',
  '---\na: |\n  x\n---\nb: 1\n',
];

/** Block YAML assembled from random pieces, reproducibly. */
function generated(count: number): string[] {
  let seed = 7;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const pick = <T>(items: readonly T[]): T => items[random(items.length)]!;
  const scalars = [
    'nginx:1.25',
    '"redis:7"',
    "'postgres:16'",
    '3',
    'true',
    'null',
    '~',
    '1.0',
    'a b c',
    'x # comment',
    'http://h:1/p',
    '"a # b"',
    "'a: b'",
    '-1',
    '.inf',
    '0x10',
    'v1.2',
    '${VAR:-x}',
    '{{ .Values.x }}',
    'a:b',
    '',
    '&a x',
    '[x]',
    '[]',
    '{}',
    '[a, "b"]',
    '{k: v, "q": 1}',
    '|',
    '>-',
  ];
  const keys = ['image', 'name', 'tag', '"quoted"', "'single'", 'services', 'a b', '1', 'true', 'x-y'];
  const out: string[] = [];
  for (let n = 0; n < count; n++) {
    const lines: string[] = [];
    const emit = (indent: number, depth: number): void => {
      const entries = 1 + random(3);
      const asSeq = random(3) === 0;
      for (let entry = 0; entry < entries; entry++) {
        const pad = ' '.repeat(indent);
        const prefix = asSeq ? `${pad}- ` : pad;
        if (random(6) === 0) lines.push(`${pad}${pick(['# c', '', '  # x'])}`);
        if (depth < 3 && random(3) === 0) {
          if (asSeq) {
            lines.push(`${pad}-`);
            emit(indent + 2, depth + 1);
          } else {
            lines.push(`${prefix}${pick(keys)}:`);
            emit(indent + pick([2, 4, 0]), depth + 1);
          }
        } else if (asSeq)
          lines.push(`${prefix}${random(2) ? pick(scalars) : `${pick(keys)}: ${pick(scalars)}`}`);
        else lines.push(`${prefix}${pick(keys)}: ${pick(scalars)}`);
        const last = lines[lines.length - 1]!;
        if (/[|>]-?$/.test(last)) {
          // A block scalar's body: lines at one indentation, blank lines, now and then a deeper one.
          const body = indent + 2 + pick([0, 2]);
          for (let count = random(4); count > 0; count--) {
            lines.push(pick(['', `${' '.repeat(body)}text ${random(9)}`, `${' '.repeat(body + 1)}deeper`]));
          }
        }
      }
    };
    emit(0, 0);
    out.push(`${lines.join('\n')}${random(2) ? '\n' : ''}`);
  }
  return out;
}

describe('fast YAML/JSON reader', () => {
  it('reads every string of the scan test suite exactly as the yaml package does, or declines', () => {
    const strings = testSuiteStrings();
    const taken = strings.filter(compare).length;
    assert.ok(strings.length > 100, `found ${strings.length} strings`);
    assert.ok(taken > 20, `fast path took ${taken} of ${strings.length}`);
  });

  it('agrees with the yaml package on edge cases', () => {
    const taken = edgeCases.filter(compare).length;
    assert.ok(taken >= 30, `fast path took ${taken} of ${edgeCases.length}`);
  });

  it('agrees with the yaml package on generated block YAML', () => {
    const cases = generated(3000);
    const taken = cases.filter(compare).length;
    assert.ok(taken > 500, `fast path took ${taken} of ${cases.length}`);
  });

  it('takes the shapes of ordinary manifests, compose files and task definitions', () => {
    const ordinary = [
      'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: s1\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: nginx:1.1\n',
      'services:\n  app:\n    image: "redis:7.1"\n  db:\n    image: postgres:16\n',
      '{\n  "family": "s1",\n  "containerDefinitions": [{ "name": "app", "image": "node:19" }]\n}\n',
      'a: 1\n---\nb: [x]\n',
    ];
    assert.deepEqual(
      ordinary.map((content) => parseSimpleYaml(content) !== undefined),
      [true, true, true, true],
    );
    for (const content of ordinary) compare(content);
  });

  it("builds the yaml package's own node classes, with their methods", () => {
    const [root] =
      parseSimpleYaml('services:\n  app:\n    image: nginx:1.27\n    ports:\n      - 80\n') ?? [];
    assert.ok(root instanceof YAMLMap && isNode(root));
    const app = root.getIn(['services', 'app']);
    assert.ok(app instanceof YAMLMap);
    assert.ok(app.items[0] instanceof Pair && isPair(app.items[0]));
    const image = app.get('image', true);
    assert.ok(image instanceof Scalar && isScalar(image));
    assert.equal(image.value, 'nginx:1.27');
    assert.ok(app.get('ports') instanceof YAMLSeq);
    assert.deepEqual(root.toJSON(), { services: { app: { image: 'nginx:1.27', ports: [80] } } });
    const json = parseSimpleYaml('{"containerDefinitions": [{"image": "redis"}]}')?.[0];
    assert.ok(isMap(json) && json.flow === true);
    assert.deepEqual(json.toJSON(), { containerDefinitions: [{ image: 'redis' }] });
  });

  it('declines what it does not support instead of guessing', () => {
    for (const content of [
      'a: &x 1\nb: *x\n',
      'a: |+\n  x\n',
      'a: |2\n   x\n',
      'a: !Sub x\n',
      '{"a": 1,}',
      'a: [1,]',
      'a: [x\n  , y]\n',
    ]) {
      assert.equal(parseSimpleYaml(content), undefined, content);
    }
  });

  it('resolves plain scalars with the core schema', () => {
    assert.equal(resolvePlain('0x1F'), 31);
    assert.equal(resolvePlain('0o17'), 15);
    assert.equal(resolvePlain('-.inf'), -Infinity);
    assert.ok(Number.isNaN(resolvePlain('.nan')));
    assert.equal(resolvePlain('1.50'), 1.5);
    assert.equal(resolvePlain('NULL'), null);
    assert.equal(resolvePlain('yes'), 'yes');
    assert.equal(resolvePlain('1.2.3'), '1.2.3');
  });
});

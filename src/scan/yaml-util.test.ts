import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { collectReferences, formatYamlPath, interpolate, pathMatches, yamlScalars } from './yaml-util.ts';

describe('yamlScalars', () => {
  it('yields values with paths and the exact source text of plain and quoted scalars', () => {
    const content = [
      'a: plain value # comment', // 1
      'b: "double \\"quoted\\""', // 2
      "c: 'single ''quoted'''", // 3
      'd:', // 4
      '  - x', // 5
      '  - {e: &anchor "f"}', // 6
      'g: *anchor', // 7
      'h: !!str 12', // 8
      '---', // 9
      'second: doc', // 10
    ].join('\r\n');
    const scalars = [...yamlScalars(content)].map((scalar) => ({
      path: formatYamlPath(scalar.path),
      value: scalar.value,
      text: scalar.text,
      offset: scalar.offset,
      style: scalar.style,
      document: scalar.document,
    }));
    assert.deepEqual(scalars, [
      { path: 'a', value: 'plain value', text: 'plain value', offset: 3, style: 'PLAIN', document: 0 },
      {
        path: 'b',
        value: 'double "quoted"',
        text: 'double \\"quoted\\"',
        offset: 30,
        style: 'QUOTE_DOUBLE',
        document: 0,
      },
      {
        path: 'c',
        value: "single 'quoted'",
        text: "single ''quoted''",
        offset: 54,
        style: 'QUOTE_SINGLE',
        document: 0,
      },
      { path: 'd[0]', value: 'x', text: 'x', offset: 82, style: 'PLAIN', document: 0 },
      { path: 'd[1].e', value: 'f', text: 'f', offset: 102, style: 'QUOTE_DOUBLE', document: 0 },
      { path: 'g', value: 'f', text: 'f', offset: 102, style: 'QUOTE_DOUBLE', document: 0 },
      { path: 'h', value: '12', text: '12', offset: 128, style: 'PLAIN', document: 0 },
      { path: 'second', value: 'doc', text: 'doc', offset: 145, style: 'PLAIN', document: 1 },
    ]);
    for (const scalar of scalars) {
      assert.equal(content.slice(scalar.offset, scalar.offset + scalar.text.length), scalar.text);
    }
  });

  it('cuts alias cycles and survives malformed input', () => {
    assert.doesNotThrow(() => [...yamlScalars('a: &a [*a, x]')]);
    for (const content of ['', '{', 'a: [', '- *missing', ':\n:\n', '\u0000']) {
      assert.doesNotThrow(() => [...yamlScalars(content)]);
    }
  });
});

describe('pathMatches', () => {
  it('matches keys, * (any key), # (any index) and ** (any run)', () => {
    assert.equal(pathMatches(['services', 'web', 'image'], ['services', '*', 'image']), true);
    assert.equal(pathMatches(['services', 0, 'image'], ['services', '*', 'image']), false);
    assert.equal(
      pathMatches(['jobs', 'a', 'docker', 1, 'image'], ['jobs', '*', 'docker', '#', 'image']),
      true,
    );
    assert.equal(pathMatches(['p', 'a', 0, 'step', 'image'], ['p', '**', 'step', 'image']), true);
    assert.equal(pathMatches(['p', 'step', 'image'], ['p', '**', 'step', 'image']), true);
    assert.equal(pathMatches(['p', 'step', 'image', 'x'], ['p', '**', 'step', 'image']), false);
  });
});

describe('interpolate', () => {
  it('handles defaults, required, alternatives, $$ and missing variables', () => {
    const known = (name: string) => ({ SET: 'v', EMPTY: '' })[name];
    assert.deepEqual(interpolate('a:${X:-1}', known), { resolved: 'a:1' });
    assert.deepEqual(interpolate('a:${EMPTY-1}', known), { resolved: 'a:' });
    assert.deepEqual(interpolate('a:${EMPTY:-1}', known), { resolved: 'a:1' });
    assert.deepEqual(interpolate('$SET/${SET:+alt}/$$x', known), { resolved: 'v/alt/$x' });
    assert.deepEqual(interpolate('${X}', known), { unresolved: 'uses $X, which has no default' });
    assert.deepEqual(interpolate('${X:?need X}', known), { unresolved: 'requires $X (need X)' });
    assert.deepEqual(interpolate('${X:-${SET}}', known), { resolved: 'v' });
    assert.deepEqual(interpolate('${X', known), { unresolved: 'has an unterminated ${…}' });
  });
});

describe('collectReferences', () => {
  it('reports each source position once and computes line/column', () => {
    const content = 'a: &i nginx\nb: *i\nc: "  "\n';
    const found = collectReferences('f.yml', content, 'compose', () => ({}));
    assert.deepEqual(found, [
      { file: 'f.yml', line: 1, column: 7, offset: 6, text: 'nginx', kind: 'compose', context: 'a' },
    ]);
  });
});

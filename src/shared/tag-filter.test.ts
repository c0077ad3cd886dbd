import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MAX_LATEST,
  MAX_TAG_PATTERN_LENGTH,
  semverRangeProblem,
  tagFilterProblem,
  tagFilterProblems,
  tagRegexProblem,
  wholeTagRegex,
} from './tag-filter.ts';

describe('tagFilterProblem', () => {
  const long = 'a'.repeat(MAX_TAG_PATTERN_LENGTH + 1);
  const cases: [Record<string, unknown>, string | RegExp | undefined][] = [
    [{ exact: ['1.25'] }, undefined],
    [{ exact: [] }, 'exact: list at least one tag'],
    [{ exact: 'latest' }, 'exact: list at least one tag'],
    [{ exact: ['1.25', 'bad tag'] }, 'exact[1]: "bad tag" is not a valid tag'],
    [{ exact: [7] }, 'exact[0]: "7" is not a valid tag'],
    [{ exact: ['a'.repeat(129)] }, /^exact\[0\]: "a+" is not a valid tag$/],
    [{ glob: 'v1.*' }, undefined],
    [{ glob: '' }, 'glob: the pattern is empty'],
    [
      { glob: 'v[12]' },
      'glob: "v[12]" may contain only tag characters (letters, digits, _ . -) and the wildcards * and ?',
    ],
    [{ glob: 'v1.***' }, 'glob: a pattern may not contain "***"'],
    [{ glob: long }, 'glob: the pattern is 257 characters; at most 256 are allowed'],
    [{ glob: 3 }, 'glob: must be a pattern'],
    [{ regex: '^v\\d+$' }, undefined],
    [{ regex: '(' }, 'regex: invalid regular expression "(": Unterminated group'],
    [{ regex: long }, 'regex: the pattern is 257 characters; at most 256 are allowed'],
    [{ regex: 'a'.repeat(MAX_TAG_PATTERN_LENGTH) }, undefined],
    [{ regex: '' }, 'regex: the pattern is empty'],
    [{ semver: '>=1.25 <2' }, undefined],
    [{ semver: '^3.19' }, undefined],
    [{ semver: '*' }, undefined],
    [{ semver: '1.x' }, undefined],
    [{ semver: '>=x' }, 'semver: invalid range ">=x": a comparison needs a version'],
    [{ semver: '>= X' }, 'semver: invalid range ">= X": a comparison needs a version'],
    [{ semver: 'banana' }, 'semver: invalid range "banana"'],
    [{ semver: '' }, 'semver: invalid range ""'],
    [{ semver: 1 }, 'semver: must be a range'],
    [{ latest: 3 }, undefined],
    [{ latest: MAX_LATEST }, undefined],
    [{ latest: MAX_LATEST + 1 }, 'latest: must be a whole number from 1 to 1000'],
    [{ latest: 0 }, 'latest: must be a whole number from 1 to 1000'],
    [{ latest: 1.5 }, 'latest: must be a whole number from 1 to 1000'],
    [{ latest: '3' }, 'latest: must be a whole number from 1 to 1000'],
    [{ glob: '*', latest: 1 }, 'one kind per filter (got glob, latest); write each as its own list item'],
    [{}, 'a tag filter needs one of exact, glob, regex, semver, latest'],
    [{ prefix: 'v1' }, 'unknown tag filter "prefix" (known: exact, glob, regex, semver, latest)'],
  ];
  for (const [filter, expected] of cases) {
    it(`${JSON.stringify(filter).slice(0, 60)} → ${expected ?? 'ok'}`, () => {
      const problem = tagFilterProblem(filter);
      if (expected === undefined || typeof expected === 'string') assert.equal(problem, expected);
      else assert.match(problem ?? '', expected);
    });
  }
});

describe('tagFilterProblems', () => {
  it('names every bad tag of an exact list, each by its path', () => {
    assert.deepEqual(tagFilterProblems({ exact: ['ok', 'not ok', '-x'] }), [
      ['exact[1]', '"not ok" is not a valid tag'],
      ['exact[2]', '"-x" is not a valid tag'],
    ]);
  });

  it('has no problem for a usable filter', () => {
    assert.deepEqual(tagFilterProblems({ semver: '>=1.25 <2' }), []);
  });
});

describe('tag regexes', () => {
  it('match the whole tag', () => {
    assert.equal(wholeTagRegex('1\\.2').test('1.2'), true);
    assert.equal(wholeTagRegex('1\\.2').test('1.25'), false);
    assert.equal(wholeTagRegex('a|b').test('ab'), false);
  });

  it('are checked for syntax as written when they match anywhere (skopeo)', () => {
    assert.equal(tagRegexProblem('(?i:ALPINE)', false), undefined);
    assert.match(tagRegexProblem('[', false) ?? '', /^invalid regular expression "\[": /);
  });
});

describe('semverRangeProblem', () => {
  it('refuses a comparison without a number, which node-semver reads as any version', () => {
    for (const range of ['>=x', '<X', '~ *', '>=1 || <=v*']) {
      assert.match(semverRangeProblem(range) ?? '', /a comparison needs a version$/, range);
    }
    for (const range of ['*', 'x', '1.x', '>=1.25.0-0', '^3.19 || ~2']) {
      assert.equal(semverRangeProblem(range), undefined, range);
    }
  });
});

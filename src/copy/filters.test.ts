import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PullsafeError } from '../errors/index.ts';
import { tagRows } from '../shared/glob.test-support.ts';
import { MAX_TAG_PATTERN_LENGTH, type TagFilter } from '../shared/tag-filter.ts';
import {
  formatPlatform,
  missingExactTags,
  normalizePlatform,
  parsePlatform,
  parseTagVersion,
  platformMatches,
  selectTags,
} from './filters.ts';

const nginxTags = [
  'latest',
  'mainline',
  'stable',
  '1',
  '1.24',
  '1.24.0',
  '1.25',
  '1.25.3',
  '1.25.4',
  '1.25.4-alpine',
  '1.26.0-rc1',
  '1.26.0',
  'v1.26.1',
  '1.27.0',
  '2.0.0',
  '1.2.3.4',
  'alpine',
];

describe('parseTagVersion', () => {
  const cases: [string, string | undefined][] = [
    ['1', '1.0.0'],
    ['1.25', '1.25.0'],
    ['1.25.3', '1.25.3'],
    ['v1.25.3', '1.25.3'],
    ['V2', '2.0.0'],
    ['1.02', '1.2.0'],
    ['1.25.3-alpine', '1.25.3-alpine'],
    ['1.25-alpine3.19', '1.25.0-alpine3.19'],
    ['latest', undefined],
    ['1.2.3.4', undefined],
    ['vv1', undefined],
    ['1.2.3-', undefined],
    ['1.2.3-a..b', undefined],
    ['1.2_3', undefined],
    ['99999999999999999999', undefined],
  ];
  for (const [tag, version] of cases) {
    it(`${tag} → ${version ?? 'not a version'}`, () => {
      assert.equal(parseTagVersion(tag)?.version, version);
    });
  }
});

describe('selectTags', () => {
  const cases: [string, TagFilter[], string[]][] = [
    ['no filter selects every tag, once, in input order', [], nginxTags],
    [
      'exact keeps input order, not filter order',
      [{ exact: ['stable', 'latest', 'missing'] }],
      ['latest', 'stable'],
    ],
    [
      'glob * and ?',
      [{ glob: '1.2?.*' }],
      ['1.24.0', '1.25.3', '1.25.4', '1.25.4-alpine', '1.26.0-rc1', '1.26.0', '1.27.0'],
    ],
    ['glob is anchored and dots are literal', [{ glob: '1.2' }], []],
    ['glob *-alpine', [{ glob: '*-alpine' }], ['1.25.4-alpine']],
    ['regex is anchored to the whole tag', [{ regex: '1\\.25' }], ['1.25']],
    ['regex alternation stays inside the anchors', [{ regex: 'stable|mainline' }], ['mainline', 'stable']],
    [
      'semver with partial bounds',
      [{ semver: '>=1.25 <2' }],
      ['1.25', '1.25.3', '1.25.4', '1.26.0', 'v1.26.1', '1.27.0'],
    ],
    ['semver caret', [{ semver: '^1.26' }], ['1.26.0', 'v1.26.1', '1.27.0']],
    ['semver tilde reads v prefixes', [{ semver: '~1.26.0' }], ['1.26.0', 'v1.26.1']],
    [
      'semver: prereleases excluded by default',
      [{ semver: '>=1.25.4 <1.27' }],
      ['1.25.4', '1.26.0', 'v1.26.1'],
    ],
    [
      'semver: a range naming a prerelease includes prereleases',
      [{ semver: '>=1.25.4-0 <1.27' }],
      ['1.25.4', '1.25.4-alpine', '1.26.0-rc1', '1.26.0', 'v1.26.1'],
    ],
    [
      'semver: non-versions never match',
      [{ semver: '*' }],
      ['1', '1.24', '1.24.0', '1.25', '1.25.3', '1.25.4', '1.26.0', 'v1.26.1', '1.27.0', '2.0.0'],
    ],
    ['semver OR', [{ semver: '1.24.0 || >=2' }], ['1.24', '1.24.0', '2.0.0']],
    [
      'several filters: any of them, input order',
      [{ exact: ['stable'] }, { semver: '^2' }, { glob: 'main*' }],
      ['mainline', 'stable', '2.0.0'],
    ],
    ['latest alone: highest releases, highest first', [{ latest: 3 }], ['2.0.0', '1.27.0', 'v1.26.1']],
    ['latest after semver', [{ semver: '>=1.25 <2' }, { latest: 2 }], ['1.27.0', 'v1.26.1']],
    [
      'latest before semver: order of filters does not matter',
      [{ latest: 2 }, { semver: '<1.26' }],
      ['1.25.4', '1.25.3'],
    ],
    [
      'latest ranks prereleases another filter selected',
      [{ glob: '1.2*' }, { latest: 3 }],
      ['1.27.0', '1.26.0', '1.26.0-rc1'],
    ],
    [
      'latest drops non-versions another filter selected',
      [{ exact: ['stable', '1.24'] }, { latest: 5 }],
      ['1.24'],
    ],
    ['latest larger than the selection', [{ semver: '^1.24.0 <1.25' }, { latest: 10 }], ['1.24', '1.24.0']],
    [
      'latest: equal versions keep input order',
      [{ exact: ['1.24.0', '1.24'] }, { latest: 2 }],
      ['1.24', '1.24.0'],
    ],
    ['several latest: the smallest wins', [{ latest: 3 }, { latest: 1 }], ['2.0.0']],
  ];
  for (const [name, filters, expected] of cases) {
    it(name, () => {
      assert.deepEqual(selectTags(nginxTags, filters), expected);
    });
  }

  it('drops duplicates in the input', () => {
    assert.deepEqual(selectTags(['a', 'b', 'a'], []), ['a', 'b']);
    assert.deepEqual(selectTags(['1.0', '1.0', '2.0'], [{ latest: 5 }]), ['2.0', '1.0']);
  });

  it('is deterministic whatever the input order for latest', () => {
    const shuffled = [...nginxTags].reverse();
    assert.deepEqual(selectTags(shuffled, [{ latest: 4 }]), ['2.0.0', '1.27.0', 'v1.26.1', '1.26.0']);
  });

  it('throws CONFIG_INVALID for filters it cannot evaluate', () => {
    const bad: TagFilter[] = [
      { regex: '(' },
      { semver: '>=x' },
      { semver: 'banana' },
      { glob: '[a]' },
      { latest: 0 },
    ];
    for (const filter of bad) {
      assert.throws(
        () => selectTags(nginxTags, [filter]),
        (error: unknown) => error instanceof PullsafeError && error.code === 'CONFIG_INVALID',
        JSON.stringify(filter),
      );
    }
  });

  it('names the filter it cannot evaluate and why', () => {
    assert.throws(() => selectTags(nginxTags, [{ regex: '(' }]), {
      message: 'invalid tag filter: regex: invalid regular expression "(": Unterminated group',
    });
    assert.throws(() => selectTags(nginxTags, [{ semver: '>=x' }]), {
      message: 'invalid tag filter: semver: invalid range ">=x": a comparison needs a version',
    });
  });

  it('evaluates a regex longer than a file may hold (skopeo regexes are wrapped to match anywhere)', () => {
    const wrapped = `.*(?:${'a'.repeat(MAX_TAG_PATTERN_LENGTH)}|alpine).*`;
    assert.deepEqual(selectTags(nginxTags, [{ regex: wrapped }]), ['1.25.4-alpine', 'alpine']);
  });
});

describe('tag globs', () => {
  it('select tags as the shared glob table says (docs/configuration.md#patterns)', () => {
    for (const [glob, tag, matches] of tagRows) {
      assert.deepEqual(selectTags([tag], [{ glob }]), matches ? [tag] : [], `${glob} against ${tag}`);
    }
  });
});

describe('missingExactTags', () => {
  it('lists exact tags the repository lacks, once', () => {
    assert.deepEqual(
      missingExactTags(
        ['1.25', 'latest'],
        [{ exact: ['1.25', '9.9'] }, { glob: '*' }, { exact: ['9.9', 'x'] }],
      ),
      ['9.9', 'x'],
    );
  });
});

describe('platforms', () => {
  const parsed: [string, string][] = [
    ['linux/amd64', 'linux/amd64'],
    ['linux/arm64', 'linux/arm64'],
    ['linux/arm64/v8', 'linux/arm64'],
    ['linux/aarch64', 'linux/arm64'],
    ['linux/arm64/9', 'linux/arm64/v9'],
    ['linux/arm/v7', 'linux/arm/v7'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/arm/6', 'linux/arm/v6'],
    ['linux/armhf', 'linux/arm/v7'],
    ['linux/armel', 'linux/arm/v6'],
    ['linux/x86_64', 'linux/amd64'],
    ['linux/amd64/v1', 'linux/amd64'],
    ['linux/amd64/v3', 'linux/amd64/v3'],
    ['linux/i386', 'linux/386'],
    ['Linux/AMD64', 'linux/amd64'],
    ['windows/amd64', 'windows/amd64'],
    ['macos/arm64', 'darwin/arm64'],
    [' linux/s390x ', 'linux/s390x'],
  ];
  for (const [text, expected] of parsed) {
    it(`parsePlatform(${JSON.stringify(text)}) is ${expected}`, () => {
      assert.equal(formatPlatform(parsePlatform(text)), expected);
    });
  }

  const invalid: [string, RegExp][] = [
    ['linux', /expected os\/arch\[\/variant\]/],
    ['amd64', /expected os\/arch/],
    ['', /expected os\/arch/],
    ['linux/amd64/v2/x', /expected os\/arch/],
    ['linux//amd64', /expected os\/arch/],
    ['linux/amd 64', /expected os\/arch/],
    ['linx/amd64', /unknown os "linx"/],
    ['linux/amd46', /unknown architecture "amd46"/],
  ];
  for (const [text, pattern] of invalid) {
    it(`parsePlatform(${JSON.stringify(text)}) throws`, () => {
      assert.throws(
        () => parsePlatform(text),
        (error: unknown) =>
          error instanceof PullsafeError && error.code === 'CONFIG_INVALID' && pattern.test(error.message),
      );
    });
  }

  const matches: [string, { os: string; architecture: string; variant?: string }, boolean][] = [
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }, true],
    ['linux/amd64', { os: 'linux', architecture: 'x86_64' }, true],
    ['linux/amd64', { os: 'linux', architecture: 'amd64', variant: 'v3' }, true],
    ['linux/amd64/v3', { os: 'linux', architecture: 'amd64' }, false],
    ['linux/amd64', { os: 'windows', architecture: 'amd64' }, false],
    ['linux/arm64', { os: 'linux', architecture: 'arm64', variant: 'v8' }, true],
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64' }, true],
    ['linux/arm64/v8', { os: 'linux', architecture: 'aarch64' }, true],
    ['linux/arm64', { os: 'linux', architecture: 'arm', variant: 'v7' }, false],
    ['linux/arm/v7', { os: 'linux', architecture: 'arm', variant: 'v7' }, true],
    ['linux/arm/v7', { os: 'linux', architecture: 'arm' }, true],
    ['linux/arm/v7', { os: 'linux', architecture: 'armhf' }, true],
    ['linux/arm/v7', { os: 'linux', architecture: 'arm', variant: 'v6' }, false],
    ['linux/arm/v6', { os: 'linux', architecture: 'armel' }, true],
    ['linux/arm', { os: 'linux', architecture: 'arm', variant: 'v6' }, false],
    ['linux/386', { os: 'linux', architecture: 'i386' }, true],
  ];
  for (const [filter, platform, expected] of matches) {
    it(`${filter} ${expected ? 'keeps' : 'drops'} ${formatPlatform(platform)}`, () => {
      assert.equal(platformMatches(parsePlatform(filter), platform), expected);
    });
  }

  it('platformMatches normalises a filter built by hand, and ignores other index fields', () => {
    const entry = { os: 'linux', architecture: 'arm64', variant: 'v8', 'os.version': 'x' };
    assert.equal(platformMatches({ os: 'Linux', architecture: 'aarch64' }, entry), true);
    assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'arm64', variant: 'v8.0' }), {
      os: 'linux',
      architecture: 'arm64',
    });
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PullsafeError } from '../errors/index.ts';
import { parseRewriteRules } from './rewrite-rules.ts';

function rejects(value: unknown, pattern: RegExp): void {
  assert.throws(
    () => parseRewriteRules(value, 'rules.yaml'),
    (error: unknown) => {
      assert.ok(error instanceof PullsafeError);
      assert.equal(error.code, 'CONFIG_INVALID');
      assert.match(error.message, pattern);
      return true;
    },
  );
}

describe('rewrite rules file', () => {
  it('accepts one target per rule, in order', () => {
    const parsed = parseRewriteRules(
      {
        rules: [
          { match: 'library/*', 'to-ecr-public': true },
          { match: '**', 'to-pull-through': '123456789012.dkr.ecr.eu-west-1.amazonaws.com', prefix: 'hub' },
          { match: 'team/**', 'to-mirror': 'registry.internal:5000/mirror' },
        ],
      },
      'rules.yaml',
    );
    assert.deepEqual(
      parsed.rules.map((rule) => rule.match),
      ['library/*', '**', 'team/**'],
    );
  });

  it('refuses rules with no target, two targets, or a prefix without a pull-through cache', () => {
    rejects({ rules: [{ match: '**' }] }, /exactly one of to-ecr-public, to-pull-through, to-mirror/);
    rejects({ rules: [{ match: '**', 'to-ecr-public': true, 'to-mirror': 'x:5000' }] }, /exactly one of/);
    rejects(
      { rules: [{ match: '**', 'to-mirror': 'x:5000', prefix: 'hub' }] },
      /prefix goes with to-pull-through/,
    );
  });

  it('refuses bad shapes with the path of the problem', () => {
    rejects({ rules: [] }, /rules:/);
    rejects({}, /rules:/);
    rejects(
      { rules: [{ match: 'Upper/Case', 'to-ecr-public': true }] },
      /rules\.0\.match: a repository glob/,
    );
    rejects({ rules: [{ match: '**', 'to-mirror': 'https://host/x' }] }, /rules\.0\.to-mirror/);
    rejects({ rules: [{ match: '**', 'to-ecr-public': false }] }, /rules\.0\.to-ecr-public/);
    rejects({ rule: [] }, /rule: unknown key \(did you mean "rules"\?\)/);
  });

  it('refuses globs outside the shared rules, and one-component globs that match no Docker Hub repository', () => {
    for (const match of ['a//b', '/a', 'a/', 'a/***', 'a b/c', 'a:b/c', '']) {
      rejects(
        { rules: [{ match, 'to-ecr-public': true }] },
        /rules\.0\.match: a repository glob .*#patterns/,
      );
    }
    rejects(
      { rules: [{ match: '*', 'to-ecr-public': true }] },
      /rules\.0\.match: "\*" matches one path component.*"\*\*"/,
    );
    rejects({ rules: [{ match: 'nginx', 'to-ecr-public': true }] }, /"library\/nginx"/);
    for (const match of ['**', '*/nginx', '**/nginx', 'library/ng?nx', 'lib**']) {
      assert.equal(
        parseRewriteRules({ rules: [{ match, 'to-ecr-public': true }] }, 'r.yaml').rules[0]?.match,
        match,
      );
    }
  });
});

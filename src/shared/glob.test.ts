import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileGlob, compileRepositoryGlob, globProblem, repositoryGlobProblem } from './glob.ts';
import { flatGlobRows, globRows, tagRows } from './glob.test-support.ts';

describe('path globs', () => {
  it('match the table', () => {
    for (const [glob, name, matches] of globRows) {
      assert.equal(compileGlob(glob).test(name), matches, `${glob} against ${name}`);
    }
  });

  it('the tag rows are the table without /', () => {
    assert.ok(tagRows.length >= 20);
    assert.ok(tagRows.every(([glob, name]) => !glob.includes('/') && !name.includes('/')));
  });

  it('take regular-expression characters literally', () => {
    for (const text of ['a.b', 'a+b', 'a(b)', 'a[b]', 'a{1}', 'a|b', 'a^b', 'a$b', 'a\\b']) {
      assert.equal(compileGlob(text).test(text), true, text);
    }
    assert.equal(compileGlob('a.b').test('a-b'), false);
    assert.equal(compileGlob('a[b]').test('ab'), false, 'no character classes');
  });

  it('ignore case only when asked', () => {
    assert.equal(compileGlob('Team/*').test('team/app'), false);
    assert.equal(compileGlob('Team/*', { ignoreCase: true }).test('team/app'), true);
  });

  it('refuse ***, empty patterns and empty components, saying why', () => {
    for (const glob of ['', 'a/***', '***', '/a', 'a/', 'a//b', '/']) {
      const problem = globProblem(glob);
      assert.ok(problem, glob);
      assert.throws(() => compileGlob(glob), { message: problem }, glob);
    }
    for (const glob of ['a', '*', '**', 'a/**/b', 'v1.?']) assert.equal(globProblem(glob), undefined, glob);
  });
});

describe('repository globs', () => {
  it('take the characters of repository names and the wildcards', () => {
    for (const glob of ['library/nginx', 'team/**', 'a.b_c-d/e?', '**/x']) {
      assert.equal(repositoryGlobProblem(glob), undefined, glob);
    }
    for (const glob of ['Team/*', 'a b', 'a:b', 'a[b]', 'é']) {
      assert.match(repositoryGlobProblem(glob) ?? '', /may use only a-z, 0-9/, glob);
      assert.throws(() => compileRepositoryGlob(glob), /may use only/, glob);
    }
    assert.match(repositoryGlobProblem('a//b') ?? '', /"\/\/"/);
    assert.match(repositoryGlobProblem('') ?? '', /empty/);
  });

  it('match the table', () => {
    for (const [glob, name, matches] of globRows) {
      assert.equal(compileRepositoryGlob(glob).test(name), matches, `${glob} against ${name}`);
    }
  });
});

describe('flat globs (IAM)', () => {
  it('match the table', () => {
    for (const [glob, name, matches] of flatGlobRows) {
      assert.equal(compileGlob(glob, { kind: 'flat' }).test(name), matches, `${glob} against ${name}`);
    }
  });

  it('cross / and line breaks, and ignore case when asked', () => {
    assert.equal(compileGlob('a*b', { kind: 'flat' }).test('a/\n/b'), true);
    assert.equal(
      compileGlob('ECR:Get*', { kind: 'flat', ignoreCase: true }).test('ecr:GetAuthorizationToken'),
      true,
    );
    assert.equal(compileGlob('ECR:Get*', { kind: 'flat' }).test('ecr:GetAuthorizationToken'), false);
  });
});

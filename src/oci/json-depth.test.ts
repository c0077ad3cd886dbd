import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { jsonNestsDeeperThan } from './json-depth.ts';

const utf8 = (text: string) => Buffer.from(text, 'utf8');
const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('jsonNestsDeeperThan', () => {
  it('counts arrays and objects together, up to and past the limit', () => {
    assert.equal(jsonNestsDeeperThan(utf8(nested(3)), 3), false);
    assert.equal(jsonNestsDeeperThan(utf8(nested(4)), 3), true);
    assert.equal(jsonNestsDeeperThan(utf8('{"a":[{"b":[1]}]}'), 4), false);
    assert.equal(jsonNestsDeeperThan(utf8('{"a":[{"b":[1]}]}'), 3), true);
    assert.equal(jsonNestsDeeperThan(utf8('[[1],[2],[3],{"a":1}]'), 2), false, 'siblings do not add up');
    assert.equal(jsonNestsDeeperThan(utf8('7'), 0), false);
    assert.equal(jsonNestsDeeperThan(utf8('[]'), 0), true);
  });

  it('ignores brackets inside strings, with escaped quotes and backslashes', () => {
    assert.equal(jsonNestsDeeperThan(utf8(JSON.stringify({ a: '[[[[{{{{' })), 1), false);
    assert.equal(jsonNestsDeeperThan(utf8(JSON.stringify({ a: 'say "[[[["' })), 1), false);
    // The string ends after an escaped backslash: the brackets that follow are real.
    const afterBackslash = JSON.stringify({ a: 'x\\', b: [[[]]] });
    assert.equal(jsonNestsDeeperThan(utf8(afterBackslash), 3), true);
    assert.equal(jsonNestsDeeperThan(utf8(afterBackslash), 4), false);
    assert.equal(jsonNestsDeeperThan(utf8(JSON.stringify({ 'k[[[': '\u00e9[[[\u{1f600}{{' })), 1), false);
    assert.equal(jsonNestsDeeperThan(utf8(JSON.stringify({ a: '\\"' })), 1), false);
  });

  it('leaves text that is not JSON to the parser', () => {
    for (const text of ['', ']]]]', '"[[[[', '{"a":"unterminated', 'not json']) {
      assert.equal(jsonNestsDeeperThan(utf8(text), 1), false, text);
    }
  });

  it('stops at the first bracket past the limit', () => {
    const deep = utf8(nested(2_000_000));
    let reads = 0;
    const counting = new Proxy(deep, {
      get(target, property) {
        if (typeof property === 'string' && /^\d+$/.test(property)) reads++;
        return Reflect.get(target, property, target) as unknown;
      },
    });
    assert.equal(jsonNestsDeeperThan(counting, 64), true);
    assert.equal(reads, 65);
  });
});

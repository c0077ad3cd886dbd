import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BoundedMap, ExpiringMap } from './bounded.ts';

describe('BoundedMap', () => {
  test('holds at most maxEntries, forgetting the key added longest ago', () => {
    const map = new BoundedMap<string, number>(3);
    for (const [index, key] of ['a', 'b', 'c', 'd', 'e'].entries()) map.set(key, index);
    assert.equal(map.size, 3);
    assert.deepEqual(
      [...map.entries()],
      [
        ['c', 2],
        ['d', 3],
        ['e', 4],
      ],
    );
  });

  test('changing a present key keeps its place and forgets nothing', () => {
    const map = new BoundedMap<string, number>(2);
    map.set('a', 1).set('b', 2).set('a', 10);
    assert.deepEqual(
      [...map.entries()],
      [
        ['a', 10],
        ['b', 2],
      ],
    );
    map.set('c', 3);
    assert.deepEqual([...map.keys()], ['b', 'c']);
  });

  test('is a Map for every other use', () => {
    const map = new BoundedMap<string, null>(2);
    map.set('a', null);
    assert.ok(map instanceof Map);
    assert.equal(map.has('a'), true);
    assert.equal(map.get('a'), null);
    map.delete('a');
    assert.equal(map.size, 0);
  });
});

describe('ExpiringMap', () => {
  test('an entry is present until its deadline and absent from it on', () => {
    let now = 1_000;
    const map = new ExpiringMap<string, string>({ maxEntries: 10, now: () => now });
    map.set('k', 'v', 500);
    now = 1_499;
    assert.equal(map.get('k'), 'v');
    assert.equal(map.has('k'), true);
    now = 1_500;
    assert.equal(map.get('k'), undefined);
    assert.equal(map.has('k'), false);
  });

  test('an expired entry is dropped when read; size counts what was not read yet', () => {
    let now = 0;
    const map = new ExpiringMap<string, number>({ maxEntries: 10, now: () => now });
    map.set('a', 1, 10);
    map.set('b', 2, 10);
    now = 10;
    assert.equal(map.size, 2);
    assert.equal(map.has('a'), false);
    assert.equal(map.size, 1);
  });

  test('writing a key again restarts its time and makes it the newest', () => {
    let now = 0;
    const map = new ExpiringMap<string, number>({ maxEntries: 2, now: () => now });
    map.set('a', 1, 100);
    map.set('b', 2, 100);
    now = 50;
    map.set('a', 3, 100);
    map.set('c', 4, 100);
    assert.equal(map.get('b'), undefined, 'b was written longest ago');
    now = 120;
    assert.equal(map.get('a'), 3);
    assert.equal(map.get('c'), 4);
  });

  test('holds at most maxEntries, forgetting the key written longest ago', () => {
    const map = new ExpiringMap<number, number>({ maxEntries: 100 });
    for (let key = 0; key < 1_000; key++) map.set(key, key, 60_000);
    assert.equal(map.size, 100);
    assert.equal(map.get(899), undefined);
    assert.equal(map.get(900), 900);
    assert.equal(map.get(999), 999);
  });

  test('a present value that is falsy is still present', () => {
    const map = new ExpiringMap<string, number | undefined>({ maxEntries: 2 });
    map.set('zero', 0, 1_000);
    map.set('nothing', undefined, 1_000);
    assert.equal(map.get('zero'), 0);
    assert.equal(map.has('nothing'), true);
  });

  test('delete forgets a key at once', () => {
    const map = new ExpiringMap<string, boolean>({ maxEntries: 2 });
    map.set('a', true, 1_000);
    map.delete('a');
    assert.equal(map.has('a'), false);
    assert.equal(map.size, 0);
  });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay } from './backoff.ts';

const options = { baseDelayMs: 100, maxDelayMs: 1000 };
const highest = () => 0.999999;
const lowest = () => 0;

test('backoffDelay doubles from the base on each attempt, up to the cap', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 10, 60].map((attempt) => backoffDelay(attempt, options, highest)),
    [100, 200, 400, 800, 1000, 1000, 1000],
  );
});

test('backoffDelay jitters between half the wait and all of it', () => {
  assert.equal(backoffDelay(1, options, lowest), 50);
  assert.equal(backoffDelay(3, options, lowest), 200);
  assert.equal(
    backoffDelay(3, options, () => 0.5),
    300,
  );
  for (let attempt = 1; attempt < 8; attempt++) {
    const value = backoffDelay(attempt, options);
    const ceiling = Math.min(1000, 100 * 2 ** (attempt - 1));
    assert.ok(value >= ceiling / 2 && value <= ceiling, `attempt ${attempt}: ${value}`);
  }
});

test('backoffDelay without a cap keeps doubling', () => {
  assert.equal(backoffDelay(5, { baseDelayMs: 250 }, highest), 4000);
  assert.equal(backoffDelay(12, { baseDelayMs: 250 }, lowest), 256_000);
});

test('backoffDelay reads an attempt below 1 as the first', () => {
  assert.equal(backoffDelay(0, options, highest), 100);
  assert.equal(backoffDelay(-3, options, highest), 100);
});

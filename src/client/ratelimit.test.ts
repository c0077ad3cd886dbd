import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeRateLimit, parseQuotaValue, parseRateLimit } from './ratelimit.ts';

test('parseRateLimit: Docker Hub headers, window from w=', () => {
  assert.deepEqual(
    parseRateLimit({
      'ratelimit-limit': '100;w=21600',
      'ratelimit-remaining': '76;w=21600',
      'docker-ratelimit-source': '203.0.113.7',
    }),
    { limit: 100, remaining: 76, windowSeconds: 21600, source: '203.0.113.7' },
  );
  assert.deepEqual(parseRateLimit({ 'ratelimit-limit': '100;w=3600', 'ratelimit-remaining': '99;w=3600' }), {
    limit: 100,
    remaining: 99,
    windowSeconds: 3600,
  });
});

test('parseRateLimit: X- spelling, any header case, Headers objects', () => {
  assert.deepEqual(parseRateLimit({ 'X-RateLimit-Limit': '200;w=60', 'X-RateLimit-Remaining': '0;w=60' }), {
    limit: 200,
    remaining: 0,
    windowSeconds: 60,
  });
  const headers = new Headers({ 'RateLimit-Limit': '10;w=5', 'Docker-RateLimit-Source': 'acct-uuid' });
  assert.deepEqual(parseRateLimit(headers), { limit: 10, windowSeconds: 5, source: 'acct-uuid' });
});

test('parseRateLimit: no window is left out, never assumed; nothing gives undefined', () => {
  assert.deepEqual(parseRateLimit({ 'ratelimit-limit': '100', 'ratelimit-remaining': '5' }), {
    limit: 100,
    remaining: 5,
  });
  assert.deepEqual(parseRateLimit({ 'ratelimit-remaining': '5;w=600' }), {
    remaining: 5,
    windowSeconds: 600,
  });
  assert.equal(parseRateLimit({ 'content-type': 'application/json' }), undefined);
});

test('parseQuotaValue: policy lists and spacing', () => {
  assert.deepEqual(parseQuotaValue('100, 100;w=21600'), { value: 100, window: 21600 });
  assert.deepEqual(parseQuotaValue(' 7 ; w = 60'), { value: 7, window: 60 });
  assert.deepEqual(parseQuotaValue('garbage'), {});
  assert.deepEqual(parseQuotaValue(undefined), {});
});

test('describeRateLimit', () => {
  assert.equal(
    describeRateLimit({ limit: 100, remaining: 76, windowSeconds: 21600, source: '1.2.3.4' }),
    '76/100 left per 6h (counted against 1.2.3.4)',
  );
  assert.equal(describeRateLimit({ remaining: 3 }), '3 left');
});

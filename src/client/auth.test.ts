import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bearerChallenge,
  normaliseScopes,
  parseChallenges,
  parseTokenAnswer,
  repositoryScope,
  TokenCache,
  tokenRefreshMargin,
  type Challenge,
} from './auth.ts';

const challengeTable: { name: string; header: string; expected: Challenge[] }[] = [
  {
    name: 'Docker Hub bearer',
    header:
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"',
    expected: [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/nginx:pull',
        },
      },
    ],
  },
  {
    name: 'basic with realm',
    header: 'Basic realm="Registry Realm"',
    expected: [{ scheme: 'basic', params: { realm: 'Registry Realm' } }],
  },
  {
    name: 'scheme case and spaces around = and ,',
    header: 'BEARER Realm = "https://a/token" ,  Service="svc"',
    expected: [{ scheme: 'bearer', params: { realm: 'https://a/token', service: 'svc' } }],
  },
  {
    name: 'quoted string with escapes and commas',
    header: 'Bearer realm="https://a/t?x=1,y=2",error="say \\"hi\\", \\\\ok"',
    expected: [{ scheme: 'bearer', params: { realm: 'https://a/t?x=1,y=2', error: 'say "hi", \\ok' } }],
  },
  {
    name: 'two challenges in one header',
    header: 'Basic realm="r1", Bearer realm="https://a/token",service="s"',
    expected: [
      { scheme: 'basic', params: { realm: 'r1' } },
      { scheme: 'bearer', params: { realm: 'https://a/token', service: 's' } },
    ],
  },
  {
    name: 'unquoted token values',
    header: 'Bearer realm=https://a/token, service=svc, error=invalid_token',
    expected: [
      { scheme: 'bearer', params: { realm: 'https://a/token', service: 'svc', error: 'invalid_token' } },
    ],
  },
  {
    name: 'token68 then another challenge',
    header: 'Negotiate abc123==, Basic realm="x"',
    expected: [
      { scheme: 'negotiate', params: {}, token68: 'abc123==' },
      { scheme: 'basic', params: { realm: 'x' } },
    ],
  },
  {
    name: 'bare scheme',
    header: 'Basic',
    expected: [{ scheme: 'basic', params: {} }],
  },
  {
    name: 'empty',
    header: '',
    expected: [],
  },
  {
    name: 'ECR',
    header: 'Basic realm="https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/",service="ecr.amazonaws.com"',
    expected: [
      {
        scheme: 'basic',
        params: {
          realm: 'https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/',
          service: 'ecr.amazonaws.com',
        },
      },
    ],
  },
];

for (const row of challengeTable) {
  test(`parseChallenges: ${row.name}`, () => {
    assert.deepEqual(parseChallenges(row.header), row.expected);
  });
}

test('parseChallenges joins several header values', () => {
  const parsed = parseChallenges(['Basic realm="a"', 'Bearer realm="https://b/t"']);
  assert.deepEqual(
    parsed.map((c) => c.scheme),
    ['basic', 'bearer'],
  );
});

test('bearerChallenge splits space-separated scopes and keeps the error', () => {
  const challenge = bearerChallenge(
    parseChallenges(
      'Bearer realm="https://a/t",service="s",scope="repository:a:pull repository:b:pull,push",error="insufficient_scope"',
    ),
  );
  assert.deepEqual(challenge, {
    realm: 'https://a/t',
    service: 's',
    scopes: ['repository:a:pull', 'repository:b:pull,push'],
    error: 'insufficient_scope',
  });
  assert.equal(bearerChallenge(parseChallenges('Basic realm="x"')), undefined);
  assert.equal(bearerChallenge(parseChallenges('Bearer service="no realm"')), undefined);
});

test('normaliseScopes merges actions per resource and sorts', () => {
  assert.deepEqual(
    normaliseScopes(['repository:b:pull', 'repository:a:push', 'repository:a:pull', 'registry:catalog:*']),
    ['registry:catalog:*', 'repository:a:pull,push', 'repository:b:pull'],
  );
  assert.deepEqual(normaliseScopes(['repository:x:push,pull', 'repository:x:pull']), [
    'repository:x:pull,push',
  ]);
  assert.equal(repositoryScope('library/nginx', ['pull', 'push']), 'repository:library/nginx:pull,push');
  // Mount: target pull,push and source pull in one token.
  assert.deepEqual(
    normaliseScopes([repositoryScope('t/app', ['pull', 'push']), repositoryScope('s/app', ['pull'])]),
    ['repository:s/app:pull', 'repository:t/app:pull,push'],
  );
});

test('parseTokenAnswer accepts token or access_token; expires_in defaults to 60', () => {
  assert.deepEqual(parseTokenAnswer('{"token":"t1","expires_in":300}'), { token: 't1', expiresIn: 300 });
  assert.deepEqual(parseTokenAnswer('{"access_token":"t2"}'), { token: 't2', expiresIn: 60 });
  assert.deepEqual(parseTokenAnswer('{"token":"","access_token":"t3","expires_in":0}'), {
    token: 't3',
    expiresIn: 60,
  });
  assert.equal(parseTokenAnswer('{"expires_in":60}'), undefined);
  assert.equal(parseTokenAnswer('not json'), undefined);
});

test('TokenCache: usable until 30 s (or 10 %) before expiry, with an injected clock', () => {
  let now = 1_000_000;
  const cache = new TokenCache({ now: () => now });
  cache.set('k300', 'long', 300); // margin 30 s
  cache.set('k60', 'short', 60); // margin 6 s
  now += 269_999;
  assert.equal(cache.get('k300'), 'long');
  now += 1;
  assert.equal(cache.get('k300'), undefined);

  now = 2_000_000;
  cache.set('k60', 'short', 60);
  now += 53_999;
  assert.equal(cache.get('k60'), 'short');
  now += 1;
  assert.equal(cache.get('k60'), undefined);
  assert.equal(tokenRefreshMargin(300_000), 30_000);
  assert.equal(tokenRefreshMargin(60_000), 6_000);
});

test('TokenCache: delete only when it still holds the token; bounded', () => {
  const cache = new TokenCache({ maxEntries: 2 });
  cache.set('a', 't1', 300);
  cache.delete('a', 'other');
  assert.equal(cache.get('a'), 't1');
  cache.delete('a', 't1');
  assert.equal(cache.get('a'), undefined);
  cache.set('a', '1', 300);
  cache.set('b', '2', 300);
  cache.set('c', '3', 300);
  assert.equal(cache.size, 2);
  assert.equal(cache.get('a'), undefined);
  assert.equal(cache.get('c'), '3');
});

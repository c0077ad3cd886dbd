import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { errorFields, PullsafeError, redact } from './index.ts';

describe('redact', () => {
  it('removes a URL password that holds @ whole', () => {
    assert.equal(redact('https://user:p@ss@host'), 'https://[redacted]@host');
    assert.equal(
      redact('Get "https://user:p@ss@w0rd@registry.example.com/v2/": EOF'),
      'Get "https://[redacted]@registry.example.com/v2/": EOF',
    );
  });

  it('removes header values, secret fields and AWS key ids, and keeps the rest', () => {
    assert.equal(redact('Authorization: Bearer abc.def'), 'Authorization: Bearer [redacted]');
    assert.equal(redact('{"password":"x y","user":"bob"}'), '{"password":[redacted],"user":"bob"}');
    assert.equal(redact('key AKIAABCDEFGHIJKLMNOP used'), 'key [redacted-aws-key] used');
    assert.equal(redact('pull https://ghcr.io/org/app@sha256:ab'), 'pull https://ghcr.io/org/app@sha256:ab');
  });

  it('removes secret fields in key positions, and leaves prose that merely names them', () => {
    for (const [input, expected] of [
      ['{"token": "abc", "user": "bob"}', '{"token": [redacted], "user": "bob"}'],
      ['{"token":"a\\"b","n":1}', '{"token":[redacted],"n":1}'],
      ['password: hunter2\nuser: bob', 'password: [redacted]\nuser: bob'],
      ['user: bob, password: hunter2', 'user: bob, password: [redacted]'],
      [
        'GET /x?X-Amz-Security-Token=AbC%2F9&X-Amz-Date=1',
        'GET /x?X-Amz-Security-Token=[redacted]&X-Amz-Date=1',
      ],
      [
        '{"url":"https://b/x?X-Amz-Signature=deadbeef","n":1}',
        '{"url":"https://b/x?X-Amz-Signature=[redacted]","n":1}',
      ],
      ['secret=s3cr3t; next', 'secret=[redacted]; next'],
      [
        'failed to authorize: failed to fetch anonymous token: unexpected status: 401',
        'failed to authorize: failed to fetch anonymous token: unexpected status: 401',
      ],
      ['the token: expired after 300 s', 'the token: expired after 300 s'],
    ] as const) {
      assert.equal(redact(input), expected, input);
    }
  });

  it('errorFields redacts unexpected messages, not PullsafeErrors', () => {
    assert.deepEqual(errorFields(new Error('https://u:p@ss@h/')), {
      code: 'INTERNAL',
      message: 'https://[redacted]@h/',
    });
    assert.deepEqual(errorFields(new PullsafeError('USAGE', 'bad', { hint: 'try' })), {
      code: 'USAGE',
      message: 'bad',
      hint: 'try',
    });
  });
});

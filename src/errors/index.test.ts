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

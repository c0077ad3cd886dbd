import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { redactUrlCredentials } from './url-credentials.ts';

/** Every character RFC 3986 reserves, `%`, and a space. */
const reserved = [...":/?#[]@!$&'()*+,;=%", ' '];

const hosts = [
  'host',
  'registry.example.com:5000',
  '10.0.0.1',
  '[::1]:5000',
  '123456789012.dkr.ecr.us-east-1.amazonaws.com',
];

/** Messages a URL stands in, as tools write them; `URL` is replaced. */
const messages = [
  'URL',
  'Get "URL/v2/": dial tcp 10.0.0.2:443: i/o timeout',
  'failed to fetch URL/v2/library/nginx/manifests/latest: 401 Unauthorized',
  "error: 'URL' is not reachable",
  'see (URL) and retry',
  'mirror URL.',
  'parse "URL/v2/": invalid port',
  'first line\nGet URL/token?scope=x: EOF\nlast line',
  'level=error msg="pull failed" url=URL/v2/ attempt=2',
];

function cases(): { user: string; password: string }[] {
  const list = reserved.map((char) => ({ user: `us${char}er`, password: `p${char}ss${char}word` }));
  list.push({ user: 'alice', password: reserved.join('') });
  list.push({ user: reserved.join(''), password: 'secret' });
  list.push({ user: `a${reserved.join('')}b`, password: `@${reserved.join('')}@` });
  list.push({ user: 'token-only', password: '' });
  return list;
}

describe('redactUrlCredentials', () => {
  it('removes the whole userinfo, whatever characters user and password hold, wherever the URL stands', () => {
    let checked = 0;
    for (const { user, password } of cases()) {
      const userinfo = password === '' ? user : `${user}:${password}`;
      for (const host of hosts) {
        for (const scheme of ['https', 'http', 'docker']) {
          for (const message of messages) {
            const text = message.replace('URL', `${scheme}://${userinfo}@${host}`);
            const expected = message.replace('URL', `${scheme}://[redacted]@${host}`);
            assert.equal(redactUrlCredentials(text), expected, JSON.stringify(text));
            checked++;
          }
        }
      }
    }
    assert.ok(checked > 2000);
  });

  it('removes the userinfo of every URL in a text', () => {
    assert.equal(
      redactUrlCredentials('copy https://a:p@ss@src.example/x to https://b:q@ss@dst.example/y'),
      'copy https://[redacted]@src.example/x to https://[redacted]@dst.example/y',
    );
    assert.equal(
      redactUrlCredentials('"https://a:1@h1" "https://b:2@h2"\nhttps://c:3@h3'),
      '"https://[redacted]@h1" "https://[redacted]@h2"\nhttps://[redacted]@h3',
    );
    assert.equal(
      redactUrlCredentials('mirror https://mirror.local/ for https://u:p@hub.example/'),
      'mirror https://mirror.local/ for https://[redacted]@hub.example/',
    );
    assert.equal(
      redactUrlCredentials('https://u:a://b@host/'),
      'https://[redacted]@host/',
      'a scheme in a password',
    );
  });

  it('leaves URLs without credentials and @ that is not a userinfo alone', () => {
    for (const text of [
      'https://registry-1.docker.io/v2/library/node/manifests/sha256:abc',
      'pulling https://ghcr.io/org/app@sha256:0123456789abcdef',
      'Get "https://host:5000/v2/x/manifests/latest": unauthorized; contact admin@example.com',
      'docker.io/library/nginx@sha256:abc and alice@example.com',
      'https://host/ no at sign',
      'https://',
      '://@',
      '',
    ]) {
      assert.equal(redactUrlCredentials(text), text, text);
    }
  });

  it('over-redacts rather than leaks when an address follows a URL without a quote between', () => {
    assert.equal(
      redactUrlCredentials('https://host/x failed, mail bob@example.com'),
      'https://[redacted]@example.com',
    );
  });

  it('takes time linear in the text, on hostile input too', () => {
    const inputs = [
      'a://@'.repeat(400_000),
      `${'a'.repeat(2_000_000)}://${'@a'.repeat(500_000)}`,
      `https://u:p@h ${'x@y.z https://a/ '.repeat(100_000)}`,
      `${'@'.repeat(1_000_000)}https://${'b'.repeat(1_000_000)}@`,
    ];
    for (const input of inputs) {
      const started = performance.now();
      redactUrlCredentials(input);
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 3000, `${input.length} characters took ${Math.round(elapsed)} ms`);
    }
  });
});

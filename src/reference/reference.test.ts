import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  familiarName,
  formatReference,
  InvalidReferenceError,
  isDockerHub,
  isInvalidReferenceError,
  parseReference,
  registryApiHost,
  tryParseReference,
  withDefaultTag,
  type ImageReference,
  type ReferenceErrorCode,
} from './index.ts';

const H64 = '0123456789abcdef'.repeat(4);
const H128 = H64 + H64;
const H64_UPPER = H64.toUpperCase();

interface ValidCase {
  input: string;
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
  familiar: string;
}

const valid: ValidCase[] = [
  { input: 'nginx', registry: 'docker.io', repository: 'library/nginx', familiar: 'nginx' },
  {
    input: 'nginx:1.25',
    registry: 'docker.io',
    repository: 'library/nginx',
    tag: '1.25',
    familiar: 'nginx:1.25',
  },
  {
    input: 'nginx:latest',
    registry: 'docker.io',
    repository: 'library/nginx',
    tag: 'latest',
    familiar: 'nginx:latest',
  },
  {
    input: 'nginx:Latest_Build',
    registry: 'docker.io',
    repository: 'library/nginx',
    tag: 'Latest_Build',
    familiar: 'nginx:Latest_Build',
  },
  {
    input: 'nginx:1.25-alpine3.19',
    registry: 'docker.io',
    repository: 'library/nginx',
    tag: '1.25-alpine3.19',
    familiar: 'nginx:1.25-alpine3.19',
  },
  { input: 'nginx:_x', registry: 'docker.io', repository: 'library/nginx', tag: '_x', familiar: 'nginx:_x' },
  { input: 'library/nginx', registry: 'docker.io', repository: 'library/nginx', familiar: 'nginx' },
  { input: 'docker.io/nginx', registry: 'docker.io', repository: 'library/nginx', familiar: 'nginx' },
  { input: 'docker.io/library/nginx', registry: 'docker.io', repository: 'library/nginx', familiar: 'nginx' },
  { input: 'index.docker.io/nginx', registry: 'docker.io', repository: 'library/nginx', familiar: 'nginx' },
  {
    input: 'index.docker.io/user/app:v2',
    registry: 'docker.io',
    repository: 'user/app',
    tag: 'v2',
    familiar: 'user/app:v2',
  },
  { input: 'Docker.IO/nginx', registry: 'docker.io', repository: 'library/nginx', familiar: 'nginx' },
  { input: 'INDEX.docker.io/nginx', registry: 'docker.io', repository: 'library/nginx', familiar: 'nginx' },
  { input: 'user/app', registry: 'docker.io', repository: 'user/app', familiar: 'user/app' },
  { input: 'user/app/sub', registry: 'docker.io', repository: 'user/app/sub', familiar: 'user/app/sub' },
  {
    input: 'docker.io/library/a/b',
    registry: 'docker.io',
    repository: 'library/a/b',
    familiar: 'library/a/b',
  },
  { input: 'library/library', registry: 'docker.io', repository: 'library/library', familiar: 'library' },
  { input: 'docker.io/library', registry: 'docker.io', repository: 'library/library', familiar: 'library' },
  { input: 'host:5000/x', registry: 'host:5000', repository: 'x', familiar: 'host:5000/x' },
  { input: 'oci:1.0', registry: 'docker.io', repository: 'library/oci', tag: '1.0', familiar: 'oci:1.0' },
  {
    input: 'registry.example.com:80/x',
    registry: 'registry.example.com:80',
    repository: 'x',
    familiar: 'registry.example.com:80/x',
  },
  {
    input: 'REGISTRY.example.com/x',
    registry: 'registry.example.com',
    repository: 'x',
    familiar: 'registry.example.com/x',
  },
  { input: '10.0.0.5:5000/x', registry: '10.0.0.5:5000', repository: 'x', familiar: '10.0.0.5:5000/x' },
  { input: 'host:443/x', registry: 'host:443', repository: 'x', familiar: 'host:443/x' },
  {
    input: 'host:5000/x:5000',
    registry: 'host:5000',
    repository: 'x',
    tag: '5000',
    familiar: 'host:5000/x:5000',
  },
  {
    input: 'host:5000',
    registry: 'docker.io',
    repository: 'library/host',
    tag: '5000',
    familiar: 'host:5000',
  },
  { input: 'localhost', registry: 'docker.io', repository: 'library/localhost', familiar: 'localhost' },
  {
    input: 'localhost:5000',
    registry: 'docker.io',
    repository: 'library/localhost',
    tag: '5000',
    familiar: 'localhost:5000',
  },
  {
    input: `x@sha256:${H64}`,
    registry: 'docker.io',
    repository: 'library/x',
    digest: `sha256:${H64}`,
    familiar: `x@sha256:${H64}`,
  },
  {
    input: `x:tag@sha256:${H64}`,
    registry: 'docker.io',
    repository: 'library/x',
    tag: 'tag',
    digest: `sha256:${H64}`,
    familiar: `x:tag@sha256:${H64}`,
  },
  {
    input: `x@sha512:${H128}`,
    registry: 'docker.io',
    repository: 'library/x',
    digest: `sha512:${H128}`,
    familiar: `x@sha512:${H128}`,
  },
  {
    input: `x@blake3:${H64_UPPER}`,
    registry: 'docker.io',
    repository: 'library/x',
    digest: `blake3:${H64_UPPER}`,
    familiar: `x@blake3:${H64_UPPER}`,
  },
  {
    input: `x@sha256+b64.v2:${H64.slice(0, 32)}`,
    registry: 'docker.io',
    repository: 'library/x',
    digest: `sha256+b64.v2:${H64.slice(0, 32)}`,
    familiar: `x@sha256+b64.v2:${H64.slice(0, 32)}`,
  },
  {
    input: `gcr.io/project/image@sha256:${H64}`,
    registry: 'gcr.io',
    repository: 'project/image',
    digest: `sha256:${H64}`,
    familiar: `gcr.io/project/image@sha256:${H64}`,
  },
  { input: 'localhost/x', registry: 'localhost', repository: 'x', familiar: 'localhost/x' },
  {
    input: 'localhost:5000/a/b/c',
    registry: 'localhost:5000',
    repository: 'a/b/c',
    familiar: 'localhost:5000/a/b/c',
  },
  { input: '[::1]:5000/x', registry: '[::1]:5000', repository: 'x', familiar: '[::1]:5000/x' },
  { input: '[::1]/x:v1', registry: '[::1]', repository: 'x', tag: 'v1', familiar: '[::1]/x:v1' },
  { input: '[2001:db8::1]/x', registry: '[2001:db8::1]', repository: 'x', familiar: '[2001:db8::1]/x' },
  {
    input: '[2001:DB8::1]:443/x',
    registry: '[2001:db8::1]:443',
    repository: 'x',
    familiar: '[2001:db8::1]:443/x',
  },
  { input: '127.0.0.1:5000/x', registry: '127.0.0.1:5000', repository: 'x', familiar: '127.0.0.1:5000/x' },
  {
    input: '192.168.1.1/team/x',
    registry: '192.168.1.1',
    repository: 'team/x',
    familiar: '192.168.1.1/team/x',
  },
  { input: 'example.com/x', registry: 'example.com', repository: 'x', familiar: 'example.com/x' },
  {
    input: 'my-registry.example.com/x',
    registry: 'my-registry.example.com',
    repository: 'x',
    familiar: 'my-registry.example.com/x',
  },
  {
    input: 'registry.example.com/a/b:v1',
    registry: 'registry.example.com',
    repository: 'a/b',
    tag: 'v1',
    familiar: 'registry.example.com/a/b:v1',
  },
  {
    input: 'public.ecr.aws/docker/library/nginx:latest',
    registry: 'public.ecr.aws',
    repository: 'docker/library/nginx',
    tag: 'latest',
    familiar: 'public.ecr.aws/docker/library/nginx:latest',
  },
  {
    input: '123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1',
    registry: '123456789012.dkr.ecr.us-east-1.amazonaws.com',
    repository: 'app',
    tag: '1',
    familiar: '123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1',
  },
  {
    input: 'ghcr.io/owner/repo:sha-abc123',
    registry: 'ghcr.io',
    repository: 'owner/repo',
    tag: 'sha-abc123',
    familiar: 'ghcr.io/owner/repo:sha-abc123',
  },
  {
    input: 'UPPER.example.com/x',
    registry: 'upper.example.com',
    repository: 'x',
    familiar: 'upper.example.com/x',
  },
  {
    input: 'a-b/c__d/e.f_g---h:_tag',
    registry: 'docker.io',
    repository: 'a-b/c__d/e.f_g---h',
    tag: '_tag',
    familiar: 'a-b/c__d/e.f_g---h:_tag',
  },
  { input: '0/1', registry: 'docker.io', repository: '0/1', familiar: '0/1' },
  {
    input: 'sha256:1234',
    registry: 'docker.io',
    repository: 'library/sha256',
    tag: '1234',
    familiar: 'sha256:1234',
  },
  {
    input: `x:${'t'.repeat(128)}`,
    registry: 'docker.io',
    repository: 'library/x',
    tag: 't'.repeat(128),
    familiar: `x:${'t'.repeat(128)}`,
  },
  {
    input: `example.com/${'a'.repeat(243)}`,
    registry: 'example.com',
    repository: 'a'.repeat(243),
    familiar: `example.com/${'a'.repeat(243)}`,
  },
  {
    input: 'a'.repeat(237),
    registry: 'docker.io',
    repository: `library/${'a'.repeat(237)}`,
    familiar: 'a'.repeat(237),
  },
];

interface InvalidCase {
  input: string;
  code: ReferenceErrorCode;
  /** Part of the hint that tells the user what to do. */
  hint: RegExp;
}

const invalidCases: InvalidCase[] = [
  { input: '', code: 'REFERENCE_EMPTY', hint: /give an image name/ },
  { input: 'Nginx', code: 'REFERENCE_UPPERCASE', hint: /"nginx"/ },
  { input: 'Nginx:1.25', code: 'REFERENCE_UPPERCASE', hint: /"nginx"/ },
  { input: 'Foo/bar', code: 'REFERENCE_UPPERCASE', hint: /"foo\/bar"/ },
  { input: 'docker.io/Library/nginx', code: 'REFERENCE_UPPERCASE', hint: /"library\/nginx"/ },
  { input: 'example.com/App', code: 'REFERENCE_UPPERCASE', hint: /"app"/ },
  { input: `UPPER/x@sha256:${H64}`, code: 'REFERENCE_UPPERCASE', hint: /lowercase|"upper\/x"/ },
  { input: 'a//b', code: 'REFERENCE_INVALID', hint: /doubled, leading or trailing "\/"/ },
  { input: 'a/', code: 'REFERENCE_INVALID', hint: /doubled, leading or trailing "\/"/ },
  { input: '/a', code: 'REFERENCE_INVALID', hint: /doubled, leading or trailing "\/"/ },
  { input: 'example.com/', code: 'REFERENCE_INVALID', hint: /doubled, leading or trailing "\/"/ },
  { input: 'example.com//x', code: 'REFERENCE_INVALID', hint: /doubled, leading or trailing "\/"/ },
  { input: '/', code: 'REFERENCE_INVALID', hint: /doubled, leading or trailing "\/"/ },
  { input: ':tag', code: 'REFERENCE_INVALID', hint: /image name before ":"/ },
  { input: ':', code: 'REFERENCE_INVALID', hint: /image name before ":"/ },
  { input: `@sha256:${H64}`, code: 'REFERENCE_INVALID', hint: /image name before "@"/ },
  { input: 'x:', code: 'REFERENCE_INVALID', hint: /remove the trailing ":"/ },
  { input: 'example.com/x:', code: 'REFERENCE_INVALID', hint: /remove the trailing ":"/ },
  { input: 'x@', code: 'REFERENCE_INVALID', hint: /remove the "@"/ },
  { input: 'x:tag@', code: 'REFERENCE_INVALID', hint: /remove the "@"/ },
  { input: 'x@sha256:short', code: 'REFERENCE_INVALID', hint: /exactly 64 lowercase hex/ },
  { input: 'x@sha256:', code: 'REFERENCE_INVALID', hint: /exactly 64 lowercase hex/ },
  { input: `x@sha256:${H64.slice(1)}`, code: 'REFERENCE_INVALID', hint: /exactly 64 lowercase hex/ },
  { input: `x@sha256:${H64}0`, code: 'REFERENCE_INVALID', hint: /exactly 64 lowercase hex/ },
  { input: `x@sha256:${H64.slice(1)}g`, code: 'REFERENCE_INVALID', hint: /exactly 64 lowercase hex/ },
  { input: `x@sha256:${H64_UPPER}`, code: 'REFERENCE_INVALID', hint: /lowercase hex/ },
  { input: `x@SHA256:${H64}`, code: 'REFERENCE_INVALID', hint: /write "sha256:"/ },
  { input: `x@sha512:${H64}`, code: 'REFERENCE_INVALID', hint: /exactly 128 lowercase hex/ },
  { input: 'x@latest', code: 'REFERENCE_INVALID', hint: /use ":" instead of "@"/ },
  { input: `x@sha256:${H64}@sha256:${H64}`, code: 'REFERENCE_INVALID', hint: /exactly 64 lowercase hex/ },
  { input: `x@md5:${H64.slice(0, 31)}`, code: 'REFERENCE_INVALID', hint: /at least 32 hex/ },
  { input: `x@1abc:${H64}`, code: 'REFERENCE_INVALID', hint: /at least 32 hex/ },
  { input: `x@blake3:${H64.slice(1)}z`, code: 'REFERENCE_INVALID', hint: /at least 32 hex/ },
  { input: `x@sha256:${H64}:tag`, code: 'REFERENCE_INVALID', hint: /exactly 64 lowercase hex/ },
  { input: `example.com/${'a'.repeat(244)}`, code: 'REFERENCE_NAME_TOO_LONG', hint: /255 characters/ },
  { input: 'a'.repeat(238), code: 'REFERENCE_NAME_TOO_LONG', hint: /255 characters/ },
  { input: `user/${'a'.repeat(246)}`, code: 'REFERENCE_NAME_TOO_LONG', hint: /255 characters/ },
  { input: `${'a/'.repeat(200)}a:tag`, code: 'REFERENCE_NAME_TOO_LONG', hint: /255 characters/ },
  { input: `x:${'t'.repeat(129)}`, code: 'REFERENCE_INVALID', hint: /at most 128 characters/ },
  { input: 'x:.tag', code: 'REFERENCE_INVALID', hint: /a tag starts with/ },
  { input: 'x:-tag', code: 'REFERENCE_INVALID', hint: /a tag starts with/ },
  { input: 'x:tag:more', code: 'REFERENCE_INVALID', hint: /only one ":"/ },
  { input: 'x:t+g', code: 'REFERENCE_INVALID', hint: /a tag starts with/ },
  { input: '../x', code: 'REFERENCE_INVALID', hint: /"\.\." path segments/ },
  { input: 'a/../b', code: 'REFERENCE_INVALID', hint: /"\.\." path segments/ },
  { input: 'x/..', code: 'REFERENCE_INVALID', hint: /"\.\." path segments/ },
  { input: './x', code: 'REFERENCE_INVALID', hint: /"\.\." path segments/ },
  { input: 'example.com/./x', code: 'REFERENCE_INVALID', hint: /"\.\." path segments/ },
  { input: '..', code: 'REFERENCE_INVALID', hint: /"\.\." path segments/ },
  { input: '-x', code: 'REFERENCE_INVALID', hint: /never at the start or end/ },
  { input: 'x-', code: 'REFERENCE_INVALID', hint: /never at the start or end/ },
  { input: '_x', code: 'REFERENCE_INVALID', hint: /never at the start or end/ },
  { input: 'x_', code: 'REFERENCE_INVALID', hint: /never at the start or end/ },
  { input: '.x', code: 'REFERENCE_INVALID', hint: /never at the start or end/ },
  { input: '.x/y', code: 'REFERENCE_INVALID', hint: /registry is a host name/ },
  { input: 'x.', code: 'REFERENCE_INVALID', hint: /never at the start or end/ },
  { input: 'a___b', code: 'REFERENCE_INVALID', hint: /never at the start or end/ },
  { input: 'a._b', code: 'REFERENCE_INVALID', hint: /never at the start or end/ },
  { input: 'a..b', code: 'REFERENCE_INVALID', hint: /never at the start or end/ },
  { input: 'user/a..b', code: 'REFERENCE_INVALID', hint: /never at the start or end/ },
  { input: 'x/y:tag/z', code: 'REFERENCE_INVALID', hint: /never at the start or end/ },
  { input: 'a+b', code: 'REFERENCE_INVALID', hint: /never at the start or end/ },
  { input: 'host:abc/x', code: 'REFERENCE_INVALID', hint: /port after ":" must be digits/ },
  {
    input: '127.0.0.1:70000/team/app:1',
    code: 'REFERENCE_INVALID',
    hint: /port is a number from 1 to 65535/,
  },
  { input: 'host:0/x', code: 'REFERENCE_INVALID', hint: /port is a number from 1 to 65535/ },
  { input: '127.0.0.1:99999999999/x', code: 'REFERENCE_INVALID', hint: /port is a number from 1 to 65535/ },
  { input: '300.1.1.1:5000/x', code: 'REFERENCE_INVALID', hint: /four numbers from 0 to 255/ },
  {
    input: 'oci:./layout:1.0.0',
    code: 'REFERENCE_INVALID',
    hint: /OCI layouts work with pullsafe copy and inspect/,
  },
  {
    input: 'oci:/srv/layouts/app',
    code: 'REFERENCE_INVALID',
    hint: /OCI layouts work with pullsafe copy and inspect/,
  },
  { input: '10.0.0.256/x', code: 'REFERENCE_INVALID', hint: /four numbers from 0 to 255/ },
  { input: '127.1:5000/x', code: 'REFERENCE_INVALID', hint: /four numbers from 0 to 255/ },
  { input: '1.2.3:5000/x', code: 'REFERENCE_INVALID', hint: /four numbers from 0 to 255/ },
  { input: '2130706433:5000/x', code: 'REFERENCE_INVALID', hint: /four numbers from 0 to 255/ },
  { input: '0x7f.0.0.1:5000/x', code: 'REFERENCE_INVALID', hint: /four numbers from 0 to 255/ },
  { input: '[::1::2]:5000/x', code: 'REFERENCE_INVALID', hint: /IPv6 address goes in brackets/ },
  { input: 'host:/x', code: 'REFERENCE_INVALID', hint: /port after ":" must be digits/ },
  { input: '[::1]:/x', code: 'REFERENCE_INVALID', hint: /port after ":" must be digits/ },
  { input: '::1/x', code: 'REFERENCE_INVALID', hint: /IPv6 addresses in brackets/ },
  { input: '2001:db8::1/x', code: 'REFERENCE_INVALID', hint: /IPv6 addresses in brackets/ },
  { input: '[::1/x', code: 'REFERENCE_INVALID', hint: /IPv6 registry is "\[address\]"/ },
  { input: '[zz::1]/x', code: 'REFERENCE_INVALID', hint: /IPv6 registry is "\[address\]"/ },
  { input: '[]/x', code: 'REFERENCE_INVALID', hint: /IPv6 registry is "\[address\]"/ },
  { input: '[x]/y', code: 'REFERENCE_INVALID', hint: /IPv6 registry is "\[address\]"/ },
  {
    input: '[::1]x/y',
    code: 'REFERENCE_INVALID',
    hint: /IPv6 registry is "\[address\]" or "\[address\]:port"/,
  },
  { input: '[::1]:abc/y', code: 'REFERENCE_INVALID', hint: /port after ":" must be digits/ },
  { input: '[fe80::1%eth0]/x', code: 'REFERENCE_INVALID', hint: /IPv6 registry is "\[address\]"/ },
  { input: '[::1]', code: 'REFERENCE_INVALID', hint: /a tag starts with/ },
  { input: '-host.com/x', code: 'REFERENCE_INVALID', hint: /registry is a host name/ },
  { input: 'host-.com/x', code: 'REFERENCE_INVALID', hint: /registry is a host name/ },
  { input: 'a..b/x', code: 'REFERENCE_INVALID', hint: /registry is a host name/ },
  { input: 'host_name.com/x', code: 'REFERENCE_INVALID', hint: /registry is a host name/ },
  { input: 'https://registry.example.com/x', code: 'REFERENCE_INVALID', hint: /drop the scheme/ },
  { input: H64, code: 'REFERENCE_INVALID', hint: /name the repository too/ },
  { input: `sha256:${H64}`, code: 'REFERENCE_INVALID', hint: /name the repository the digest belongs to/ },
  { input: ' nginx', code: 'REFERENCE_INVALID', hint: /remove spaces, tabs and line breaks/ },
  { input: 'nginx ', code: 'REFERENCE_INVALID', hint: /remove spaces, tabs and line breaks/ },
  { input: 'nginx\n', code: 'REFERENCE_INVALID', hint: /trailing newline/ },
  { input: 'nginx\r\n', code: 'REFERENCE_INVALID', hint: /remove spaces, tabs and line breaks/ },
  { input: 'ng inx', code: 'REFERENCE_INVALID', hint: /remove spaces, tabs and line breaks/ },
  { input: 'nginx:1.25 ', code: 'REFERENCE_INVALID', hint: /remove spaces, tabs and line breaks/ },
  { input: '\t', code: 'REFERENCE_INVALID', hint: /remove spaces, tabs and line breaks/ },
  { input: ' ', code: 'REFERENCE_INVALID', hint: /remove spaces, tabs and line breaks/ },
  { input: 'nginx\u00a0', code: 'REFERENCE_INVALID', hint: /remove spaces, tabs and line breaks/ },
  { input: 'nginx\u0000', code: 'REFERENCE_INVALID', hint: /only ASCII/ },
  { input: 'nginx\u007f', code: 'REFERENCE_INVALID', hint: /only ASCII/ },
  { input: 'caf\u00e9', code: 'REFERENCE_INVALID', hint: /only ASCII/ },
  { input: 'x:\u{1f600}', code: 'REFERENCE_INVALID', hint: /only ASCII/ },
  { input: 'x\ud800', code: 'REFERENCE_INVALID', hint: /only ASCII/ },
];

function expectedFields(c: ValidCase): ImageReference {
  const expected: ImageReference = { registry: c.registry, repository: c.repository, original: c.input };
  if (c.tag !== undefined) expected.tag = c.tag;
  if (c.digest !== undefined) expected.digest = c.digest;
  return expected;
}

function withoutOriginal(ref: ImageReference): Omit<ImageReference, 'original'> {
  const { original: _original, ...rest } = ref;
  return rest;
}

function label(text: string): string {
  const shown = JSON.stringify(text);
  return shown.length > 70 ? `${shown.slice(0, 60)}… (${text.length} chars)` : shown;
}

describe('parseReference: valid references', () => {
  for (const c of valid) {
    test(label(c.input), () => {
      assert.deepStrictEqual(parseReference(c.input), expectedFields(c));
    });
  }
});

describe('parseReference: invalid references', () => {
  for (const c of invalidCases) {
    test(`${label(c.input)} → ${c.code}`, () => {
      assert.throws(
        () => parseReference(c.input),
        (error: unknown) => {
          assert.ok(error instanceof InvalidReferenceError, `not an InvalidReferenceError: ${String(error)}`);
          assert.ok(error instanceof Error);
          assert.equal(error.name, 'InvalidReferenceError');
          assert.equal(error.code, c.code, error.message);
          assert.match(error.hint, c.hint);
          assert.ok(error.message.startsWith('invalid image reference '), error.message);
          assert.ok(error.input.length <= 120);
          assert.ok(!/[\n\r]/.test(error.message), 'message must stay on one line');
          return true;
        },
      );
    });
  }
});

describe('formatting', () => {
  for (const c of valid) {
    test(`round trip ${label(c.input)}`, () => {
      const ref = parseReference(c.input);
      const formatted = formatReference(ref);
      assert.equal(
        formatted,
        `${c.registry}/${c.repository}${c.tag !== undefined ? `:${c.tag}` : ''}${c.digest !== undefined ? `@${c.digest}` : ''}`,
      );
      assert.deepStrictEqual(withoutOriginal(parseReference(formatted)), withoutOriginal(ref));
      assert.equal(familiarName(ref), c.familiar);
      assert.deepStrictEqual(withoutOriginal(parseReference(familiarName(ref))), withoutOriginal(ref));
      assert.equal(formatReference(parseReference(formatted)), formatted);
    });
  }

  test('formatReference gives the fully-qualified form', () => {
    assert.equal(formatReference(parseReference('nginx:latest')), 'docker.io/library/nginx:latest');
    assert.equal(formatReference(parseReference('nginx')), 'docker.io/library/nginx');
    assert.equal(formatReference(parseReference('index.docker.io/user/app')), 'docker.io/user/app');
    assert.equal(
      formatReference(parseReference(`localhost:5000/a:t@sha256:${H64}`)),
      `localhost:5000/a:t@sha256:${H64}`,
    );
  });

  test('familiarName keeps library/ when the official namespace is nested', () => {
    assert.equal(
      familiarName({ registry: 'docker.io', repository: 'library/a/b', original: '' }),
      'library/a/b',
    );
    assert.equal(
      familiarName({ registry: 'ghcr.io', repository: 'library/x', original: '' }),
      'ghcr.io/library/x',
    );
  });
});

describe('withDefaultTag', () => {
  test('adds latest when there is neither tag nor digest', () => {
    const ref = parseReference('nginx');
    const tagged = withDefaultTag(ref);
    assert.deepStrictEqual(tagged, {
      registry: 'docker.io',
      repository: 'library/nginx',
      tag: 'latest',
      original: 'nginx',
    });
    assert.equal(formatReference(tagged), 'docker.io/library/nginx:latest');
    assert.equal(familiarName(tagged), 'nginx:latest');
    assert.equal(ref.tag, undefined, 'the input is not modified');
  });

  test('keeps an existing tag', () => {
    assert.deepStrictEqual(withDefaultTag(parseReference('nginx:1.25')), parseReference('nginx:1.25'));
  });

  test('adds no tag to a digest reference', () => {
    const ref = parseReference(`x@sha256:${H64}`);
    const result = withDefaultTag(ref);
    assert.deepStrictEqual(result, ref);
    assert.equal(result.tag, undefined);
    assert.notEqual(result, ref, 'returns a copy');
  });

  test('keeps tag and digest together', () => {
    const ref = parseReference(`example.com/x:v1@sha256:${H64}`);
    assert.deepStrictEqual(withDefaultTag(ref), ref);
  });
});

describe('registry helpers', () => {
  test('registryApiHost maps Docker Hub to registry-1.docker.io', () => {
    assert.equal(registryApiHost('docker.io'), 'registry-1.docker.io');
    assert.equal(registryApiHost('index.docker.io'), 'registry-1.docker.io');
    assert.equal(registryApiHost(parseReference('nginx').registry), 'registry-1.docker.io');
  });

  test('registryApiHost leaves other registries unchanged', () => {
    for (const host of ['ghcr.io', 'localhost:5000', '[::1]:5000', 'registry-1.docker.io', 'docker.io:443']) {
      assert.equal(registryApiHost(host), host);
    }
  });

  test('isDockerHub is true only for docker.io', () => {
    assert.equal(isDockerHub(parseReference('nginx')), true);
    assert.equal(isDockerHub(parseReference('user/app')), true);
    assert.equal(isDockerHub(parseReference('index.docker.io/x')), true);
    assert.equal(isDockerHub(parseReference('docker.io/x')), true);
    assert.equal(isDockerHub(parseReference('ghcr.io/x/y')), false);
    assert.equal(isDockerHub(parseReference('localhost/x')), false);
    assert.equal(isDockerHub(parseReference('public.ecr.aws/docker/library/nginx')), false);
  });
});

describe('robustness', () => {
  test('tryParseReference returns undefined for invalid input', () => {
    assert.equal(tryParseReference('Nginx'), undefined);
    assert.equal(tryParseReference(''), undefined);
    assert.deepStrictEqual(tryParseReference('nginx'), parseReference('nginx'));
  });

  test('non-string input is rejected, not crashed on', () => {
    for (const value of [undefined, null, 42, {}, ['nginx']]) {
      assert.throws(
        () => parseReference(value as string),
        (error: unknown) => isInvalidReferenceError(error) && error.code === 'REFERENCE_INVALID',
      );
    }
  });

  test('isInvalidReferenceError distinguishes other errors', () => {
    assert.equal(isInvalidReferenceError(new Error('x')), false);
    assert.equal(isInvalidReferenceError('REFERENCE_INVALID'), false);
  });

  test('long error inputs are shortened', () => {
    const text = `Upper/${'a'.repeat(5000)}`;
    assert.throws(
      () => parseReference(text),
      (error: unknown) =>
        isInvalidReferenceError(error) && error.input.length <= 120 && error.message.length < 600,
    );
  });

  test('pathological inputs are rejected without catastrophic backtracking', { timeout: 30_000 }, () => {
    const inputs = [
      `${'a-'.repeat(50_000)}!`,
      `${'a'.repeat(100_000)}!`,
      `${'a.'.repeat(50_000)}/x`,
      `${'a-'.repeat(50_000)}a-.com/x`,
      `[${':'.repeat(100_000)}/x`,
      `x@${'a.'.repeat(50_000)}`,
      `x@a:${'0'.repeat(100_000)}g`,
      `x:${'a'.repeat(100_000)}`,
      `${'a__'.repeat(30_000)}_`,
      '/'.repeat(100_000),
      ':'.repeat(100_000),
      '@'.repeat(100_000),
    ];
    // Catastrophic backtracking would hang here; the test's timeout turns that into a failure.
    for (const input of inputs) {
      assert.throws(() => parseReference(input), InvalidReferenceError, label(input));
    }
  });

  test('random strings either parse to consistent references or throw InvalidReferenceError', () => {
    const alphabet = 'aAbz09.-_/:@[]+ \n\u00e9';
    let seed = 0x2545f491;
    const next = (): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 0x1_0000_0000;
    };
    const pieces = [
      'docker.io/',
      'localhost:5000/',
      '[::1]/',
      ':tag',
      `@sha256:${H64}`,
      'library/',
      '..',
      '//',
    ];
    let parsed = 0;
    for (let i = 0; i < 20_000; i++) {
      let text = '';
      const length = Math.floor(next() * 24);
      for (let j = 0; j < length; j++) {
        text +=
          next() < 0.1
            ? pieces[Math.floor(next() * pieces.length)]!
            : alphabet[Math.floor(next() * alphabet.length)]!;
      }
      let ref: ImageReference;
      try {
        ref = parseReference(text);
      } catch (error) {
        assert.ok(error instanceof InvalidReferenceError, `unexpected ${String(error)} for ${label(text)}`);
        continue;
      }
      parsed++;
      assert.equal(ref.original, text);
      assert.match(
        ref.repository,
        /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/,
      );
      assert.ok(`${ref.registry}/${ref.repository}`.length <= 255);
      assert.notEqual(ref.registry, 'index.docker.io');
      assert.equal(ref.registry, ref.registry.toLowerCase());
      assert.deepStrictEqual(withoutOriginal(parseReference(formatReference(ref))), withoutOriginal(ref));
      assert.deepStrictEqual(withoutOriginal(parseReference(familiarName(ref))), withoutOriginal(ref));
    }
    assert.ok(parsed > 100, `only ${parsed} random inputs parsed; the generator is too hostile`);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestingStream, digestOf, isDigest, parseDigest } from './digest.ts';
import { OciError } from './errors.ts';
import { defaultPlatformManifest, maxManifestDepth, parseManifest } from './manifest.ts';
import { checkRepositoryName, isRepositoryName, isTag } from './names.ts';

const hex64 = 'a'.repeat(64);
const isOci = (code: string) => (error: unknown) => error instanceof OciError && error.code === code;

describe('digests', () => {
  it('parses sha256 and sha512 with exact lengths, lowercase only', () => {
    assert.equal(parseDigest(`sha256:${hex64}`), `sha256:${hex64}`);
    assert.equal(parseDigest(`sha512:${'b'.repeat(128)}`), `sha512:${'b'.repeat(128)}`);
    for (const bad of [
      `sha256:${'a'.repeat(63)}`,
      `sha256:${'A'.repeat(64)}`,
      `sha512:${hex64}`,
      'sha256:',
      '',
      hex64,
      `sha256:${hex64}\n`,
    ]) {
      assert.throws(() => parseDigest(bad), isOci('DIGEST_INVALID'), JSON.stringify(bad));
      assert.equal(isDigest(bad), false);
    }
    assert.throws(() => parseDigest(`blake3:${hex64}`), isOci('UNSUPPORTED'));
  });

  it('hashes while streaming, and carries state across streams', async () => {
    const parts = [Buffer.from('hello '), Buffer.from('streaming '), Buffer.from('world')];
    const first = new DigestingStream();
    await pipeline(Readable.from(parts.slice(0, 2)), first, async (source) => {
      for await (const _chunk of source);
    });
    const second = new DigestingStream('sha256', { hash: first.state, size: first.size });
    await pipeline(Readable.from(parts.slice(2)), second, async (source) => {
      for await (const _chunk of source);
    });
    assert.equal(second.size, 'hello streaming world'.length);
    assert.equal(second.result(), digestOf('hello streaming world'));
    const sha512 = new DigestingStream('sha512');
    await pipeline(Readable.from([Buffer.from('x')]), sha512, async (source) => {
      for await (const _chunk of source);
    });
    assert.equal(sha512.result(), `sha512:${createHash('sha512').update('x').digest('hex')}`);
  });
});

describe('names and tags', () => {
  it('accepts the distribution grammar and nothing that could escape a folder', () => {
    for (const good of ['a', 'library/nginx', 'a.b_c__d-e---f/g', 'x/y/z/1/2/3'])
      assert.ok(isRepositoryName(good), good);
    for (const bad of [
      '',
      '..',
      '../a',
      'a/..',
      'a/./b',
      '.a',
      'a.',
      'a_',
      'A',
      'a//b',
      '/a',
      'a/',
      'a b',
      'a___b',
      'ä',
      'a'.repeat(256),
    ]) {
      assert.equal(isRepositoryName(bad), false, bad);
    }
    assert.throws(
      () => checkRepositoryName('Nginx'),
      (error: unknown) => error instanceof OciError && /lowercase/.test(error.message),
    );
    assert.ok(isTag('v1.2.3-rc_1'));
    for (const bad of ['', '.hidden', '-x', 'a/b', 'a:b', 't'.repeat(129), '..'])
      assert.equal(isTag(bad), false, bad);
  });
});

describe('manifest validation', () => {
  const descriptor = {
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    digest: `sha256:${hex64}`,
    size: 10,
  };
  const image = {
    schemaVersion: 2,
    config: { ...descriptor, mediaType: 'application/vnd.oci.image.config.v1+json' },
    layers: [descriptor],
  };
  const bytes = (value: unknown) => Buffer.from(JSON.stringify(value));

  it('infers the media type from Content-Type or the document', () => {
    assert.equal(
      parseManifest(bytes(image), 'application/vnd.oci.image.manifest.v1+json').mediaType,
      'application/vnd.oci.image.manifest.v1+json',
    );
    assert.equal(parseManifest(bytes(image), undefined).kind, 'image');
    assert.equal(parseManifest(bytes({ schemaVersion: 2, manifests: [] }), 'application/json').kind, 'index');
    const docker = parseManifest(
      bytes({ ...image, mediaType: 'application/vnd.docker.distribution.manifest.v2+json' }),
      'application/vnd.docker.distribution.manifest.v2+json; charset=utf-8',
    );
    assert.equal(docker.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  });

  it('reports artifactType (or the config media type) and subject for referrers', () => {
    const parsed = parseManifest(bytes({ ...image, subject: descriptor }), undefined);
    assert.equal(parsed.artifactType, 'application/vnd.oci.image.config.v1+json');
    assert.equal(parsed.subject?.digest, descriptor.digest);
    assert.equal(
      parseManifest(bytes({ ...image, artifactType: 'application/x.sig' }), undefined).artifactType,
      'application/x.sig',
    );
    assert.deepEqual(parseManifest(bytes(image), undefined).blobs.length, 2);
  });

  it('rejects what is not a valid manifest', () => {
    for (const [label, value, type] of [
      ['schema 1 by type', image, 'application/vnd.docker.distribution.manifest.v1+prettyjws'],
      ['schema 1 by version', { schemaVersion: 1 }, undefined],
      ['image with manifests', { ...image, manifests: [] }, 'application/vnd.oci.image.manifest.v1+json'],
      ['missing layers', { schemaVersion: 2, config: image.config }, undefined],
      ['string size', { ...image, layers: [{ ...descriptor, size: '10' }] }, undefined],
      ['fractional size', { ...image, layers: [{ ...descriptor, size: 1.5 }] }, undefined],
      ['annotation not a string', { ...image, annotations: { a: 1 } }, undefined],
    ] as const) {
      assert.throws(() => parseManifest(bytes(value), type), isOci('MANIFEST_INVALID'), label);
    }
    assert.throws(() => parseManifest(Buffer.from([0xff, 0xfe]), undefined), isOci('MANIFEST_INVALID'));
  });

  it('refuses JSON nested deeper than maxManifestDepth before parsing it', () => {
    // An extension field nested so that the whole document reaches exactly the limit passes.
    const atLimit = {
      ...image,
      extension: JSON.parse(
        `${'['.repeat(maxManifestDepth - 1)}${']'.repeat(maxManifestDepth - 1)}`,
      ) as unknown,
    };
    assert.equal(parseManifest(bytes(atLimit), undefined).kind, 'image');
    const pastLimit = { ...image, extension: [atLimit.extension] };
    assert.throws(
      () => parseManifest(bytes(pastLimit), undefined),
      (error: unknown) => {
        assert.ok(isOci('MANIFEST_INVALID')(error));
        assert.match((error as OciError).message, /deeper than 64 levels/);
        return true;
      },
    );
    // Brackets inside annotation values are text, not nesting.
    const annotated = { ...image, annotations: { 'org.example.brackets': `"${'[{'.repeat(500)}\\` } };
    assert.deepEqual(parseManifest(bytes(annotated), undefined).annotations, annotated.annotations);

    const levels = 1_900_000;
    const deep = Buffer.from(`${'['.repeat(levels)}${']'.repeat(levels)}`);
    const started = performance.now();
    assert.throws(() => parseManifest(deep, undefined), isOci('MANIFEST_INVALID'));
    assert.ok(performance.now() - started < 100, 'refused without parsing');
  });

  it('picks linux/amd64 from an index', () => {
    const index = {
      schemaVersion: 2,
      manifests: [
        {
          ...descriptor,
          digest: `sha256:${'1'.repeat(64)}`,
          platform: { os: 'linux', architecture: 'arm64' },
        },
        {
          ...descriptor,
          digest: `sha256:${'2'.repeat(64)}`,
          platform: { os: 'linux', architecture: 'amd64' },
        },
      ],
    };
    assert.equal(defaultPlatformManifest(bytes(index))?.digest, `sha256:${'2'.repeat(64)}`);
    assert.equal(defaultPlatformManifest(Buffer.from('nope')), undefined);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { composeExtractor } from './compose.ts';
import type { Extractor, FoundReference } from './types.ts';

type Expected = Pick<FoundReference, 'line' | 'column' | 'offset' | 'text'> & Partial<FoundReference>;

/** Extracts, checks every reference's position against the content, and compares all fields. */
function check(extractor: Extractor, path: string, content: string, expected: Expected[]): void {
  const found = extractor.extract(path, content);
  for (const reference of found) {
    assert.equal(content.slice(reference.offset, reference.offset + reference.text.length), reference.text);
  }
  assert.deepEqual(
    found,
    expected.map((entry) => ({ file: path, kind: extractor.kind, ...entry })),
  );
}

describe('composeExtractor.matches', () => {
  it('accepts compose file names', () => {
    for (const path of [
      'docker-compose.yml',
      'docker-compose.override.yaml',
      'deploy/compose.yaml',
      'compose.prod.yml',
    ]) {
      assert.equal(composeExtractor.matches(path, ''), true, path);
    }
    for (const path of ['composer.json', 'k8s/deployment.yml', 'docker-compose.md', 'compose/']) {
      assert.equal(composeExtractor.matches(path, ''), false, path);
    }
  });
});

describe('composeExtractor.extract', () => {
  it('reads services.*.image, skips build-only services, interpolates ${VAR:-default}', () => {
    const content = [
      "version: '3.8'", // 1
      'services:', // 2
      '  web:', // 3
      '    build: .', // 4
      '  db:', // 5
      '    image: "postgres:16-alpine"  # pinned major', // 6
      '  cache:', // 7
      "    image: 'redis'", // 8
      '  registry:', // 9
      '    image: localhost:5000/team/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', // 10
      '  app:', // 11
      '    build:', // 12
      '      context: .', // 13
      '    image: ${REGISTRY:-ghcr.io}/acme/app:${TAG:-latest}', // 14
      '  worker:', // 15
      '    image: acme/worker:${TAG}', // 16
      '  priced:', // 17
      '    image: ${IMAGE:?set IMAGE}', // 18
      '    environment:', // 19
      '      image: not-an-image', // 20
    ].join('\n');
    check(composeExtractor, 'docker-compose.yml', content, [
      { line: 6, column: 13, offset: 63, text: 'postgres:16-alpine', context: 'services.db.image' },
      { line: 8, column: 13, offset: 120, text: 'redis', context: 'services.cache.image' },
      {
        line: 10,
        column: 12,
        offset: 150,
        text: 'localhost:5000/team/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
        context: 'services.registry.image',
      },
      {
        line: 14,
        column: 12,
        offset: 292,
        text: '${REGISTRY:-ghcr.io}/acme/app:${TAG:-latest}',
        resolved: 'ghcr.io/acme/app:latest',
        kind: 'built',
        context: 'services.app.image (the image services.app.build produces)',
      },
      {
        line: 16,
        column: 12,
        offset: 358,
        text: 'acme/worker:${TAG}',
        unresolved: 'uses $TAG, which has no default',
        context: 'services.worker.image',
      },
      {
        line: 18,
        column: 12,
        offset: 398,
        text: '${IMAGE:?set IMAGE}',
        unresolved: 'requires $IMAGE (set IMAGE)',
        context: 'services.priced.image',
      },
    ]);
  });

  it('reports an anchored image once, at its definition, and reads every document; CRLF', () => {
    const content = [
      'x-base: &base', // 1
      '  image: &img "nginx:1.27"', // 2
      '  restart: always', // 3
      'services:', // 4
      '  a:', // 5
      '    <<: *base', // 6
      '  b:', // 7
      '    image: *img', // 8
      '  c:', // 9
      '    <<: [*base]', // 10
      '---', // 11
      'services:', // 12
      '  d: {image: "quay.io/prometheus/prometheus:v2.53.0", ports: ["9090:9090"]}', // 13
      '', // 14
    ].join('\r\n');
    check(composeExtractor, 'compose.yaml', content, [
      { line: 2, column: 16, offset: 30, text: 'nginx:1.27', context: 'services.a.image' },
      {
        line: 13,
        column: 15,
        offset: 170,
        text: 'quay.io/prometheus/prometheus:v2.53.0',
        context: 'services.d.image',
      },
    ]);
  });

  it('reports the image a service builds as kind built, unless pull_policy pulls it', () => {
    const content = [
      'services:', // 1
      '  etl:', // 2
      '    build: ./etl', // 3
      '    image: etl-kafka', // 4
      '  api:', // 5
      '    build:', // 6
      '      context: .', // 7
      '      dockerfile: api.Dockerfile', // 8
      '    image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:${TAG:-dev}', // 9
      '    pull_policy: build', // 10
      '  worker:', // 11
      '    build: .', // 12
      '    image: acme/worker:1.4', // 13
      '    pull_policy: always', // 14
      '  cache:', // 15
      '    image: redis:7.4', // 16
      '  nightly:', // 17
      '    build: .', // 18
      '    image: acme/nightly', // 19
      '    pull_policy: daily', // 20
      '  odd:', // 21
      '    image: 42', // 22
      '',
    ].join('\n');
    const found = composeExtractor.extract('compose.yaml', content);
    assert.deepEqual(
      found.map((reference) => [reference.line, reference.text, reference.kind]),
      [
        [4, 'etl-kafka', 'built'],
        [9, '123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:${TAG:-dev}', 'built'],
        [13, 'acme/worker:1.4', 'compose'],
        [16, 'redis:7.4', 'compose'],
        [19, 'acme/nightly', 'compose'],
      ],
    );
    assert.equal(found[0]!.context, 'services.etl.image (the image services.etl.build produces)');
    assert.equal(found[1]!.resolved, '123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:dev');
  });

  it('yields nothing (and does not throw) for malformed or unrelated YAML', () => {
    for (const content of [
      '',
      'services: [',
      'services:\n  a:\n    image: [1, 2]',
      ': : :',
      'services: *nope',
      '\t- bad',
    ]) {
      assert.doesNotThrow(() => composeExtractor.extract('compose.yml', content));
    }
    assert.deepEqual(composeExtractor.extract('compose.yml', 'services:\n  a:\n    image: [1, 2]'), []);
    assert.deepEqual(composeExtractor.extract('compose.yml', 'image: nginx\n'), []);
  });
});

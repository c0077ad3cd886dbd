import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dockerfileExtractor } from './dockerfile.ts';
import type { FoundReference } from './types.ts';

type Expected = Partial<FoundReference> & Pick<FoundReference, 'line' | 'column' | 'offset' | 'text'>;

/** Extracts, checks every reference's position against the content, and compares the chosen fields. */
function check(content: string, expected: Expected[], path = 'Dockerfile'): FoundReference[] {
  const found = dockerfileExtractor.extract(path, content);
  for (const reference of found) {
    assert.equal(content.slice(reference.offset, reference.offset + reference.text.length), reference.text);
    assert.equal(reference.file, path);
    assert.equal(reference.kind, 'dockerfile');
  }
  assert.deepEqual(
    found.map((reference) => {
      const picked: Record<string, unknown> = {};
      for (const key of Object.keys(expected[0] ?? {})) {
        picked[key] = reference[key as keyof FoundReference];
      }
      return picked;
    }),
    expected.map((entry) => {
      const picked: Record<string, unknown> = {};
      for (const key of Object.keys(expected[0] ?? {})) {
        picked[key] = entry[key as keyof FoundReference];
      }
      return picked;
    }),
  );
  return found;
}

describe('dockerfileExtractor.matches', () => {
  it('accepts Dockerfile and Containerfile names, and nothing else', () => {
    for (const path of [
      'Dockerfile',
      'app/Dockerfile',
      'Dockerfile.prod',
      'docker/api.Dockerfile',
      'Containerfile',
      'build/Containerfile.dev',
      'docker/Dockerfile-dev',
      'dockerfile',
    ]) {
      assert.equal(dockerfileExtractor.matches(path, ''), true, path);
    }
    for (const path of [
      'Dockerfile.dockerignore',
      '.dockerignore',
      'docs/Dockerfile.md',
      'Dockerfiles/readme',
      'compose.yml',
      'src/dockerfile.ts',
    ]) {
      assert.equal(dockerfileExtractor.matches(path, ''), false, path);
    }
  });
});

describe('dockerfileExtractor.extract', () => {
  it('reads a multi-stage build: stage names, platforms, COPY --from an image, a stage and an index', () => {
    const content = [
      '# syntax=docker/dockerfile:1.7', // 1
      'FROM --platform=$BUILDPLATFORM golang:1.22-alpine AS builder', // 2
      'WORKDIR /src', // 3
      'RUN --mount=type=cache,target=/go/pkg/mod go build -o /app', // 4
      '', // 5
      'from builder as tester', // 6
      'RUN go test ./...', // 7
      '', // 8
      'FROM gcr.io/distroless/static-debian12:nonroot', // 9
      'COPY --from=builder /app /app', // 10
      'COPY --from=0 /etc/ssl /etc/ssl', // 11
      'COPY --from=nginx:1.25 /etc/nginx/nginx.conf /etc/nginx/', // 12
      'COPY --link --from=localhost:5000/tools/jq@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef /jq /jq', // 13
      'RUN --mount=type=bind,from=alpine:3.20,source=/bin/sh,target=/sh --mount=type=cache,from=builder,target=/x true', // 14
      'FROM scratch', // 15
      'FROM Builder', // 16
    ].join('\n');
    check(content, [
      { line: 2, column: 32, offset: 62, text: 'golang:1.22-alpine', context: 'stage builder' },
      {
        line: 9,
        column: 6,
        offset: 212,
        text: 'gcr.io/distroless/static-debian12:nonroot',
        context: 'stage 2',
      },
      { line: 12, column: 13, offset: 328, text: 'nginx:1.25', context: 'stage 2, COPY --from' },
      {
        line: 13,
        column: 20,
        offset: 392,
        text: 'localhost:5000/tools/jq@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
        context: 'stage 2, COPY --from',
      },
      { line: 14, column: 28, offset: 523, text: 'alpine:3.20', context: 'stage 2, RUN --mount from' },
    ]);
  });

  it('substitutes global ARG defaults into FROM, and reports variables without a default', () => {
    const content = [
      'ARG PY=3.12', // 1
      'ARG REGISTRY=docker.io', // 2
      'ARG BASE_IMAGE="${REGISTRY}/library/python:${PY}-slim"', // 3
      'ARG NODE_TAG', // 4
      'ARG EMPTY=', // 5
      'FROM ${BASE_IMAGE} AS base', // 6
      'FROM python:${PY}-slim', // 7
      'FROM $REGISTRY/library/redis:7', // 8
      'FROM node:${NODE_TAG}', // 9
      'FROM node:${NODE_TAG:-20-alpine}', // 10
      'FROM ${UNDECLARED}', // 11
      'FROM busybox${EMPTY}', // 12
      'FROM ${REGISTRY}/busybox:${EMPTY:-1.36}', // 13
    ].join('\n');
    const lines = content.split('\n');
    const offsetOf = (line: number, text: string): number => {
      let offset = 0;
      for (let index = 0; index < line - 1; index++) offset += (lines[index] ?? '').length + 1;
      return offset + (lines[line - 1] ?? '').indexOf(text);
    };
    const at = (line: number, text: string) => ({
      line,
      column: (lines[line - 1] ?? '').indexOf(text) + 1,
      offset: offsetOf(line, text),
      text,
    });
    check(content, [
      {
        ...at(6, '${BASE_IMAGE}'),
        resolved: 'docker.io/library/python:3.12-slim',
        unresolved: undefined,
      },
      { ...at(7, 'python:${PY}-slim'), resolved: 'python:3.12-slim', unresolved: undefined },
      {
        ...at(8, '$REGISTRY/library/redis:7'),
        resolved: 'docker.io/library/redis:7',
        unresolved: undefined,
      },
      {
        ...at(9, 'node:${NODE_TAG}'),
        resolved: undefined,
        unresolved: 'uses $NODE_TAG, which has no default',
      },
      { ...at(10, 'node:${NODE_TAG:-20-alpine}'), resolved: 'node:20-alpine', unresolved: undefined },
      {
        ...at(11, '${UNDECLARED}'),
        resolved: undefined,
        unresolved: 'uses $UNDECLARED, which is not declared by an ARG',
      },
      {
        ...at(12, 'busybox${EMPTY}'),
        resolved: undefined,
        unresolved: 'uses $EMPTY, whose default is empty',
      },
      {
        ...at(13, '${REGISTRY}/busybox:${EMPTY:-1.36}'),
        resolved: 'docker.io/busybox:1.36',
        unresolved: undefined,
      },
    ]);
    assert.deepEqual(at(6, '${BASE_IMAGE}'), {
      line: 6,
      column: 6,
      offset: 119,
      text: '${BASE_IMAGE}',
    });
  });

  it('uses stage ARGs (and redeclared globals) for COPY --from, not for FROM', () => {
    const content = [
      'ARG TOOLS=alpine/git:2.45.2',
      'FROM debian:12',
      'ARG TOOLS',
      'ARG HELPER=busybox:1.36',
      'COPY --from=${TOOLS} /usr/bin/git /usr/bin/git',
      'COPY --from="$HELPER" /bin/sh /sh',
    ].join('\n');
    check(content, [
      { line: 2, column: 6, offset: 33, text: 'debian:12', resolved: undefined },
      { line: 5, column: 13, offset: 89, text: '${TOOLS}', resolved: 'alpine/git:2.45.2' },
      { line: 6, column: 14, offset: 137, text: '$HELPER', resolved: 'busybox:1.36' },
    ]);
  });

  it('follows line continuations, comments, CRLF and the escape directive', () => {
    const crlf =
      'FROM \\\r\n  # a comment inside the instruction\r\n  --platform=linux/amd64 \\\r\n  ubuntu:24.04 \\\r\n  AS base\r\nFROM base\r\nRUN echo hi\r\n';
    check(crlf, [{ line: 4, column: 3, offset: 76, text: 'ubuntu:24.04', context: 'stage base' }]);

    const windows =
      '# escape=`\nFROM mcr.microsoft.com/windows/servercore:ltsc2022 `\n  AS win\nRUN dir c:\\\nFROM win\n';
    check(windows, [
      {
        line: 2,
        column: 6,
        offset: 16,
        text: 'mcr.microsoft.com/windows/servercore:ltsc2022',
        context: 'stage win',
      },
    ]);
  });

  it('skips heredoc bodies and lowercase instructions are still instructions', () => {
    const content = [
      'from alpine:3.20 as base',
      'RUN <<EOF',
      'FROM not-an-image:1',
      'EOF',
      'copy --from=base /x /y',
      'FROM base',
    ].join('\n');
    check(content, [{ line: 1, column: 6, offset: 5, text: 'alpine:3.20', context: 'stage base' }]);
  });

  it('never throws on malformed input', () => {
    for (const content of [
      '',
      'FROM',
      'FROM ${',
      'ARG',
      '\\\n\\\n',
      'COPY --from=',
      'RUN --mount=from=',
      '\u0000FROM',
    ]) {
      assert.doesNotThrow(() => dockerfileExtractor.extract('Dockerfile', content));
    }
    check('FROM ${BASE', [
      { line: 1, column: 6, offset: 5, text: '${BASE', unresolved: 'has an unterminated ${…}' },
    ]);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  bitbucketPipelinesExtractor,
  buildspecExtractor,
  ciExtractors,
  circleciExtractor,
  githubActionsExtractor,
  gitlabCiExtractor,
} from './ci.ts';
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

describe('CI extractors: matches', () => {
  const cases: [Extractor, string[], string[]][] = [
    [
      githubActionsExtractor,
      [
        '.github/workflows/ci.yml',
        'svc/.github/workflows/release.yaml',
        'action.yml',
        'actions/lint/action.yaml',
      ],
      ['.github/dependabot.yml', 'workflows/ci.yml', '.github/workflows/README.md'],
    ],
    [
      gitlabCiExtractor,
      ['.gitlab-ci.yml', 'ci/build.gitlab-ci.yml', 'sub/.gitlab-ci.yaml', '.gitlab/ci/test.yml'],
      ['gitlab-ci.md', '.gitlab/issue_templates/x.md', '.gitlab/agents/prod/config.yaml'],
    ],
    [
      buildspecExtractor,
      ['buildspec.yml', 'infra/buildspec.yaml', 'buildspec-deploy.yml'],
      ['buildspec.json', 'spec/build.yml'],
    ],
    [bitbucketPipelinesExtractor, ['bitbucket-pipelines.yml'], ['pipelines.yml']],
    [circleciExtractor, ['.circleci/config.yml'], ['circleci/config.yml', '.circleci/README.md']],
  ];
  for (const [extractor, yes, no] of cases) {
    it(extractor.kind, () => {
      for (const path of yes) assert.equal(extractor.matches(path, ''), true, path);
      for (const path of no) assert.equal(extractor.matches(path, ''), false, path);
    });
  }
  it('exports every CI extractor', () => {
    assert.deepEqual(
      ciExtractors.map((extractor) => extractor.kind),
      ['github-actions', 'gitlab-ci', 'buildspec', 'bitbucket-pipelines', 'circleci'],
    );
  });
});

describe('githubActionsExtractor', () => {
  it('reads job containers, services and docker:// steps', () => {
    const content = [
      'name: CI', // 1
      'on: [push]', // 2
      'jobs:', // 3
      '  test:', // 4
      '    runs-on: ubuntu-latest', // 5
      '    container: node:20-bookworm', // 6
      '    services:', // 7
      '      redis: redis:7', // 8
      '      postgres:', // 9
      "        image: 'postgres:16'", // 10
      '        ports: ["5432:5432"]', // 11
      '    steps:', // 12
      '      - uses: actions/checkout@v4', // 13
      '      - uses: docker://alpine:3.20 # a comment', // 14
      '      - uses: "docker://ghcr.io/org/tool@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"', // 15
      '  build:', // 16
      '    runs-on: ubuntu-latest', // 17
      '    container:', // 18
      '      image: ${{ matrix.image }}', // 19
      '      options: --user root', // 20
    ].join('\n');
    check(githubActionsExtractor, '.github/workflows/ci.yml', content, [
      { line: 6, column: 16, offset: 76, text: 'node:20-bookworm', context: 'jobs.test.container' },
      { line: 8, column: 14, offset: 120, text: 'redis:7', context: 'jobs.test.services.redis' },
      {
        line: 10,
        column: 17,
        offset: 160,
        text: 'postgres:16',
        context: 'jobs.test.services.postgres.image',
      },
      { line: 14, column: 24, offset: 270, text: 'alpine:3.20', context: 'jobs.test.steps[1].uses' },
      {
        line: 15,
        column: 25,
        offset: 318,
        text: 'ghcr.io/org/tool@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
        context: 'jobs.test.steps[2].uses',
      },
      {
        line: 19,
        column: 14,
        offset: 472,
        text: '${{ matrix.image }}',
        unresolved: 'uses a GitHub Actions expression (${{ … }})',
        context: 'jobs.build.container.image',
      },
    ]);
  });
});

describe('gitlabCiExtractor', () => {
  it('reads image and services at the top level, in default and in jobs, with variables', () => {
    const content = [
      'image: ruby:3.3', // 1
      'variables:', // 2
      '  PG_VERSION: "16"', // 3
      'default:', // 4
      '  image:', // 5
      '    name: localhost:5000/ci/base:1', // 6
      '    entrypoint: [""]', // 7
      'services:', // 8
      '  - docker:27-dind', // 9
      '  - name: postgres:$PG_VERSION', // 10
      '    alias: db', // 11
      '.template: &template', // 12
      '  image: "python:3.12-slim"', // 13
      'test:', // 14
      '  <<: *template', // 15
      '  script: [pytest]', // 16
      'build:', // 17
      '  variables:', // 18
      '    NODE: "22"', // 19
      '  image: node:${NODE}-alpine', // 20
      '  services: [ "mysql:8.4" ]', // 21
      'deploy:', // 22
      '  image: $CI_REGISTRY_IMAGE/deployer:latest', // 23
      'stages: [build, test]', // 24
    ].join('\n');
    check(gitlabCiExtractor, '.gitlab-ci.yml', content, [
      { line: 1, column: 8, offset: 7, text: 'ruby:3.3', context: 'image' },
      { line: 6, column: 11, offset: 74, text: 'localhost:5000/ci/base:1', context: 'default.image.name' },
      { line: 9, column: 5, offset: 134, text: 'docker:27-dind', context: 'services[0]' },
      {
        line: 10,
        column: 11,
        offset: 159,
        text: 'postgres:$PG_VERSION',
        resolved: 'postgres:16',
        context: 'services[1].name',
      },
      { line: 13, column: 11, offset: 225, text: 'python:3.12-slim', context: '.template.image' },
      {
        line: 20,
        column: 10,
        offset: 328,
        text: 'node:${NODE}-alpine',
        resolved: 'node:22-alpine',
        context: 'build.image',
      },
      { line: 21, column: 16, offset: 363, text: 'mysql:8.4', context: 'build.services[0]' },
      {
        line: 23,
        column: 10,
        offset: 393,
        text: '$CI_REGISTRY_IMAGE/deployer:latest',
        unresolved: 'uses $CI_REGISTRY_IMAGE, which is only known when the pipeline runs',
        context: 'deploy.image',
      },
    ]);
  });
});

describe('buildspecExtractor', () => {
  it('reads docker pull and docker run images from phase commands', () => {
    const content = [
      'version: 0.2', // 1
      'env:', // 2
      '  variables:', // 3
      '    IMAGE: nginx', // 4
      'phases:', // 5
      '  pre_build:', // 6
      '    commands:', // 7
      '      - docker pull public.ecr.aws/docker/library/node:20', // 8
      '      - docker pull --platform linux/amd64 "busybox:1.36"', // 9
      '      - docker run --rm -it -v $(pwd):/src -e CI=true postgres:16 psql --version', // 10
      '      - docker run --rm $IMAGE', // 11
      '  build:', // 12
      '    commands:', // 13
      '      - |', // 14
      '        docker login -u AWS && docker pull mcr.microsoft.com/dotnet/sdk:8.0', // 15
      '        echo done; docker run -d --name cache redis:7-alpine', // 16
      '      - echo "docker pull is not here"', // 17
      '      - docker build -t app .', // 18
    ].join('\r\n');
    check(buildspecExtractor, 'buildspec.yml', content, [
      {
        line: 8,
        column: 21,
        offset: 110,
        text: 'public.ecr.aws/docker/library/node:20',
        context: 'phases.pre_build.commands[0]: docker command',
      },
      {
        line: 9,
        column: 45,
        offset: 193,
        text: 'busybox:1.36',
        context: 'phases.pre_build.commands[1]: docker command',
      },
      {
        line: 10,
        column: 55,
        offset: 262,
        text: 'postgres:16',
        context: 'phases.pre_build.commands[2]: docker command',
      },
      {
        line: 15,
        column: 44,
        offset: 401,
        text: 'mcr.microsoft.com/dotnet/sdk:8.0',
        context: 'phases.build.commands[0]: docker command',
      },
      {
        line: 16,
        column: 47,
        offset: 481,
        text: 'redis:7-alpine',
        context: 'phases.build.commands[0]: docker command',
      },
    ]);
  });
});

describe('buildspecExtractor: FROM written by commands', () => {
  it('reads the image of a FROM line a command writes, literal or from a variable', () => {
    const content = [
      'version: 0.2', // 1
      'phases:', // 2
      '  build:', // 3
      '    commands:', // 4
      '      - echo "FROM public.ecr.aws/docker/library/python:3.12-slim" > Dockerfile', // 5
      "      - printf 'FROM node:20-alpine\\nRUN npm ci\\n' > Dockerfile.ci", // 6
      '      - |', // 7
      '        cat > Dockerfile.test <<EOF', // 8
      '        FROM --platform=linux/amd64 golang:1.23 AS build', // 9
      '        FROM scratch', // 10
      '        EOF', // 11
      '      - echo "FROM $BASE_IMAGE" >> Dockerfile', // 12
      '      - echo "from the docs" > notes.txt', // 13
      '',
    ].join('\n');
    const found = buildspecExtractor.extract('buildspec.yml', content);
    assert.deepEqual(
      found.map((reference) => [reference.line, reference.text, reference.unresolved]),
      [
        [5, 'public.ecr.aws/docker/library/python:3.12-slim', undefined],
        [6, 'node:20-alpine', undefined],
        [9, 'golang:1.23', undefined],
        [12, '$BASE_IMAGE', 'uses a shell variable'],
      ],
    );
    for (const reference of found) {
      assert.equal(content.slice(reference.offset, reference.offset + reference.text.length), reference.text);
      assert.match(reference.context ?? '', /FROM written by a command$/);
    }
  });
});

describe('githubActionsExtractor: action metadata', () => {
  it('reads runs.image of a Docker container action, not a Dockerfile it builds', () => {
    const action = 'name: lint\nruns:\n  using: docker\n  image: docker://ghcr.io/acme/linter:2.1\n';
    const found = githubActionsExtractor.extract('action.yml', action);
    assert.deepEqual(
      found.map((reference) => [reference.line, reference.column, reference.text]),
      [[4, 19, 'ghcr.io/acme/linter:2.1']],
    );
    assert.deepEqual(
      githubActionsExtractor.extract('action.yml', 'runs:\n  using: docker\n  image: Dockerfile\n'),
      [],
    );
  });
});

describe('bitbucketPipelinesExtractor', () => {
  it('reads the top-level image, step images and service definitions', () => {
    const content = [
      'image: atlassian/default-image:4', // 1
      'definitions:', // 2
      '  services:', // 3
      '    mysql:', // 4
      "      image: 'mysql:8.0'", // 5
      '    private:', // 6
      '      image:', // 7
      '        name: 123456789012.dkr.ecr.us-east-1.amazonaws.com/db:1', // 8
      '        aws:', // 9
      '          access-key: $AWS_ACCESS_KEY', // 10
      '  steps:', // 11
      '    - step: &lint', // 12
      '        name: Lint', // 13
      '        image: golangci/golangci-lint:v1.59', // 14
      'pipelines:', // 15
      '  default:', // 16
      '    - step: *lint', // 17
      '    - parallel:', // 18
      '        - step:', // 19
      '            image: node:${NODE_VERSION}', // 20
      '            script: [npm test]', // 21
      '  branches:', // 22
      '    main:', // 23
      '      - step:', // 24
      '          image: { name: "python:3.12" }', // 25
    ].join('\n');
    check(bitbucketPipelinesExtractor, 'bitbucket-pipelines.yml', content, [
      { line: 1, column: 8, offset: 7, text: 'atlassian/default-image:4', context: 'image' },
      { line: 5, column: 15, offset: 83, text: 'mysql:8.0', context: 'definitions.services.mysql.image' },
      {
        line: 8,
        column: 15,
        offset: 134,
        text: '123456789012.dkr.ecr.us-east-1.amazonaws.com/db:1',
        context: 'definitions.services.private.image.name',
      },
      {
        line: 14,
        column: 16,
        offset: 296,
        text: 'golangci/golangci-lint:v1.59',
        context: 'definitions.steps[0].step.image',
      },
      {
        line: 20,
        column: 20,
        offset: 416,
        text: 'node:${NODE_VERSION}',
        unresolved: 'uses $NODE_VERSION, which is only known when the pipeline runs',
        context: 'pipelines.default[1].parallel[0].step.image',
      },
      {
        line: 25,
        column: 27,
        offset: 530,
        text: 'python:3.12',
        context: 'pipelines.branches.main[0].step.image.name',
      },
    ]);
  });
});

describe('circleciExtractor', () => {
  it('reads jobs and executors docker images', () => {
    const content = [
      'version: 2.1', // 1
      'executors:', // 2
      '  py:', // 3
      '    docker:', // 4
      '      - image: cimg/python:3.12', // 5
      'jobs:', // 6
      '  test:', // 7
      '    docker:', // 8
      '      - image: cimg/node:20.11 # primary', // 9
      '        auth:', // 10
      '          username: $DOCKERHUB_USER', // 11
      '      - image: "circleci/postgres:9.6-alpine"', // 12
      '    steps: [checkout]', // 13
      '  param:', // 14
      '    parameters:', // 15
      '      tag: {type: string, default: "3.12"}', // 16
      '    docker:', // 17
      '      - image: cimg/python:<< parameters.tag >>', // 18
      '  machine-job:', // 19
      '    machine:', // 20
      '      image: ubuntu-2204:current', // 21
    ].join('\n');
    check(circleciExtractor, '.circleci/config.yml', content, [
      { line: 5, column: 16, offset: 57, text: 'cimg/python:3.12', context: 'executors.py.docker[0].image' },
      { line: 9, column: 16, offset: 115, text: 'cimg/node:20.11', context: 'jobs.test.docker[0].image' },
      {
        line: 12,
        column: 17,
        offset: 207,
        text: 'circleci/postgres:9.6-alpine',
        context: 'jobs.test.docker[1].image',
      },
      {
        line: 18,
        column: 16,
        offset: 354,
        text: 'cimg/python:<< parameters.tag >>',
        unresolved: 'uses a CircleCI parameter (<< … >>)',
        context: 'jobs.param.docker[0].image',
      },
    ]);
  });
});

describe('CI extractors never throw', () => {
  it('on malformed input', () => {
    for (const extractor of ciExtractors) {
      for (const content of [
        '',
        'jobs: [',
        '{{{',
        'phases:\n  b:\n    commands: "docker pull"',
        '- - -',
        'image: *x',
      ]) {
        assert.doesNotThrow(() => extractor.extract('x.yml', content));
      }
    }
  });
});

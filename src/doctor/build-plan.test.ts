import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { dockerHubLoginBefore, ecrLoginBefore, planBuild, type PlanInput } from './build-plan.ts';
import { dockerfilePulls } from './build-plan/files.ts';
import { splitCommand } from './build-plan/shell.ts';
import { parseSecretsManagerReference } from '../shared/arn.ts';

const account = '111122223333';
const region = 'us-east-1';

function plan(buildspec: string | undefined, extra: Partial<PlanInput> = {}) {
  return planBuild({
    ...(buildspec === undefined ? {} : { buildspec }),
    region,
    accountId: account,
    ...extra,
  });
}

/** A buildspec whose pre_build runs `commands`, then builds. */
function spec(commands: string[], env = ''): string {
  return [
    'version: 0.2',
    env,
    'phases:',
    '  pre_build:',
    '    commands:',
    ...commands.map((command) => `      - ${JSON.stringify(command)}`),
    '',
  ].join('\n');
}

function loginOf(command: string, env = '', extra: Partial<PlanInput> = {}) {
  const login = plan(spec([command], env), extra).logins[0];
  assert.ok(login, `a login in ${command}`);
  return login;
}

describe('splitCommand', () => {
  test('simple commands, quotes removed, $(…) and backquotes kept whole, comments dropped', () => {
    const segments = splitCommand(
      'aws ecr get-login-password --region "$R" | docker login -u AWS --password-stdin \'x y\' && echo `date` $(a | b) # done\nnext\\\n  line',
    );
    assert.deepEqual(
      segments.map((s) => [s.after, s.words]),
      [
        ['start', ['aws', 'ecr', 'get-login-password', '--region', '$R']],
        ['|', ['docker', 'login', '-u', 'AWS', '--password-stdin', 'x y']],
        ['&&', ['echo', '$(date)', '$(a | b)']],
        [';', ['next', 'line']],
      ],
    );
  });
});

describe('docker login: the registry it targets', () => {
  test('no server, or a Docker Hub host, is Docker Hub', () => {
    for (const command of [
      'echo "$T" | docker login --username "$U" --password-stdin',
      'docker login -u acme -p "$P" docker.io',
      'docker login https://index.docker.io/v1/',
      'docker login --username=acme registry-1.docker.io',
    ]) {
      assert.equal(loginOf(command).target, 'docker-hub', command);
    }
  });

  test('an ECR host, written out, from env.variables, or with $AWS_ACCOUNT_ID unset', () => {
    assert.equal(
      loginOf(`docker login -u AWS -p x ${account}.dkr.ecr.eu-west-1.amazonaws.com`).registry,
      `${account}.dkr.ecr.eu-west-1.amazonaws.com`,
    );
    const variables = 'env:\n  variables:\n    REG: "222233334444.dkr.ecr.us-west-2.amazonaws.com"';
    const fromEnv = loginOf('docker login --username AWS --password-stdin $REG', variables);
    assert.deepEqual(
      [fromEnv.target, fromEnv.registry],
      ['ecr', '222233334444.dkr.ecr.us-west-2.amazonaws.com'],
    );
    const shaped = loginOf(
      'aws ecr get-login-password | docker login --username AWS --password-stdin $AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com',
    );
    assert.deepEqual([shaped.target, shaped.registry], ['ecr', `${account}.dkr.ecr.${region}.amazonaws.com`]);
    assert.match(shaped.reason, /\$AWS_ACCOUNT_ID taken as this account/);
  });

  test('the project’s environment variables win over the buildspec’s', () => {
    const login = loginOf(
      'docker login -u AWS --password-stdin $REG',
      'env:\n  variables:\n    REG: docker.io',
      {
        projectVariables: [
          { name: 'REG', value: `${account}.dkr.ecr.${region}.amazonaws.com`, type: 'PLAINTEXT' },
        ],
      },
    );
    assert.equal(login.target, 'ecr');
  });

  test('an unresolved server is never Docker Hub: ECR when the password is an ECR token or the user is AWS', () => {
    const piped = loginOf(
      'aws ecr get-login-password --region us-east-1 | docker login -u AWS --password-stdin $ECR_REGISTRY',
    );
    assert.equal(piped.target, 'ecr');
    assert.equal(piped.registry, undefined);
    assert.equal(loginOf('docker login -u AWS -p "$TOKEN" "$ECR_REGISTRY"').target, 'ecr');
    const publicEcr = loginOf(
      'aws ecr-public get-login-password --region us-east-1 | docker login --username x --password-stdin $PUB',
    );
    assert.equal(publicEcr.target, 'ecr-public');
    const unknown = loginOf(
      'docker login -u "$U" -p "$P" $REG',
      'env:\n  secrets-manager:\n    REG: ci/registry:host',
    );
    assert.equal(unknown.target, 'unresolved');
    assert.match(unknown.reason, /\$REG is not set .*\(a secret or parameter, read at run time\)/);
  });

  test('an assignment in an earlier command resolves a later login, exported or not', () => {
    const resolved = plan(
      spec([
        'export ACCOUNT=$(aws sts get-caller-identity --query Account --output text)',
        'REGISTRY=$ACCOUNT.dkr.ecr.eu-central-1.amazonaws.com',
        'docker login -u AWS -p x $REGISTRY',
      ]),
    ).logins[0];
    assert.equal(resolved?.registry, `${account}.dkr.ecr.eu-central-1.amazonaws.com`);
  });

  test('the older $(aws ecr get-login) logs in to ECR', () => {
    const login = loginOf('$(aws ecr get-login --no-include-email --region eu-west-1)');
    assert.deepEqual([login.target, login.registry], ['ecr', `${account}.dkr.ecr.eu-west-1.amazonaws.com`]);
  });
});

describe('pulls', () => {
  test('docker pull, run and create, with their options; sudo; variables resolved; a pull allowed to fail is none', () => {
    const { pulls } = plan(
      spec(
        [
          'docker pull --platform linux/arm64 node:20',
          'sudo docker run --rm -it -v "$PWD":/src -e A=b --name t -w /src python:3.12 pytest',
          'docker create --network host redis:7',
          'docker pull $BASE',
          'docker pull ${TAGGED:=alpine:3.21}',
          'docker pull $UNSET',
          'docker pull app:latest || true',
        ],
        'env:\n  variables:\n    BASE: "public.ecr.aws/docker/library/alpine:3.20"',
      ),
    );
    assert.deepEqual(
      pulls.map((pull) => [pull.reference, pull.how, pull.where]),
      [
        ['node:20', 'docker pull', 'pre_build command 1'],
        ['python:3.12', 'docker run', 'pre_build command 2'],
        ['redis:7', 'docker run', 'pre_build command 3'],
        ['public.ecr.aws/docker/library/alpine:3.20', 'docker pull', 'pre_build command 4'],
        ['alpine:3.21', 'docker pull', 'pre_build command 5'],
      ],
    );
  });

  test('docker build and buildx name their Dockerfile, relative to cd and -f; compose its file', () => {
    const { wantedFiles } = plan(
      spec([
        'docker build -t app .',
        'cd services/api && docker buildx build -f docker/Dockerfile.prod --push .',
        'docker compose -f ci/compose.yml pull',
        'cd $CODEBUILD_SRC_DIR',
        'docker-compose up -d',
      ]),
    );
    assert.deepEqual(wantedFiles.sort(), [
      'Dockerfile',
      'compose.yaml',
      'compose.yml',
      'docker-compose.yaml',
      'docker-compose.yml',
      'services/api/ci/compose.yml',
      'services/api/docker/Dockerfile.prod',
    ]);
  });

  test('a Dockerfile path that leaves the source is not read', () => {
    assert.deepEqual(plan(spec(['docker build -f ../../etc/passwd .'])).wantedFiles, []);
  });

  test('FROM lines of the Dockerfiles read, compose images and the Dockerfiles compose builds', () => {
    const files = new Map<string, string | undefined>([
      ['Dockerfile', 'FROM node:20\n'],
      [
        'docker-compose.yml',
        'services:\n  db:\n    image: postgres:16\n  api:\n    build:\n      context: api\n      dockerfile: Dockerfile.dev\n',
      ],
      ['api/Dockerfile.dev', 'FROM golang:1.23\n'],
    ]);
    const { pulls } = plan(spec(['docker build .', 'docker compose up']), { files });
    assert.deepEqual(
      pulls.map((pull) => `${pull.how} ${pull.reference} (${pull.where})`),
      [
        'docker compose postgres:16 (docker-compose.yml service db)',
        'FROM node:20 (Dockerfile line 1)',
        'FROM golang:1.23 (api/Dockerfile.dev line 1)',
      ],
    );
  });
});

describe('dockerfilePulls', () => {
  test('multi-stage: stages are not images, scratch is nothing, ARGs and build args resolve', () => {
    const text = [
      '# syntax=docker/dockerfile:1',
      'ARG BASE=node',
      'ARG VERSION=20',
      'FROM ${BASE}:${VERSION} AS deps',
      'from deps as build',
      'FROM --platform=$BUILDPLATFORM golang:1.23 AS tools',
      'COPY --from=deps /app /app',
      'COPY --from=0 /x /y',
      'COPY --from=busybox:1.36 \\',
      '     /bin/busybox /busybox',
      'FROM scratch',
      'FROM $UNKNOWN',
      'FROM gcr.io/distroless/nodejs20@sha256:' + 'a'.repeat(64),
    ].join('\n');
    assert.deepEqual(
      dockerfilePulls(text, new Map([['VERSION', '22']])).map((pull) => [
        pull.how,
        pull.reference,
        pull.lineNumber,
      ]),
      [
        ['FROM', 'node:22', 4],
        ['FROM', 'golang:1.23', 6],
        ['COPY --from', 'busybox:1.36', 9],
        ['FROM', `gcr.io/distroless/nodejs20@sha256:${'a'.repeat(64)}`, 13],
      ],
    );
  });
});

describe('the build log', () => {
  test('FROM lines of the classic builder and BuildKit, tied to the command that ran them', () => {
    const logLines = [
      '[Container] 2026/11/28 10:00:01.000 Running command docker build -t web ./web',
      'Step 1/8 : FROM node:20 AS build',
      'Step 4/8 : FROM build',
      'Step 5/8 : FROM nginx:1.27',
      '[Container] 2026/11/28 10:00:09.000 Running command docker buildx build -t api ./api',
      '#2 [internal] load metadata for docker.io/library/golang:1.23',
    ];
    const result = plan(spec(['docker build -t web ./web', 'docker buildx build -t api ./api']), {
      logLines,
    });
    assert.deepEqual(
      result.pulls.map((pull) => [pull.reference, pull.command?.number, pull.line]),
      [
        ['node:20', 1, 'FROM node:20 AS build'],
        ['nginx:1.27', 1, 'FROM nginx:1.27'],
        ['docker.io/library/golang:1.23', 2, 'FROM docker.io/library/golang:1.23'],
      ],
    );
  });

  test('the Dockerfile line BuildKit quotes names the file and line of a failed FROM', () => {
    const logLines = [
      '#2 [internal] load metadata for docker.io/library/node:20',
      '#2 ERROR: toomanyrequests: You have reached your unauthenticated pull rate limit.',
      'Dockerfile:3',
      '--------------------',
      '   3 | >>> FROM --platform=linux/amd64 node:20 AS base',
      '--------------------',
    ];
    const [pull] = plan(spec(['docker build .']), { logLines }).pulls;
    assert.deepEqual(
      [pull?.reference, pull?.file, pull?.lineNumber, pull?.line],
      ['node:20', 'Dockerfile', 3, 'FROM --platform=linux/amd64 node:20 AS base'],
    );
  });

  test('without the buildspec, whether a login came first is unknown, never "no"', () => {
    const result = plan(undefined, { logLines: ['Step 1/2 : FROM node:20'] });
    const pull = result.pulls[0];
    assert.ok(pull);
    assert.equal(dockerHubLoginBefore(result, pull), undefined);
  });
});

describe('login before pull', () => {
  test('a Docker Hub login counts for the pulls after it only; an ECR login for its registry', () => {
    const ecr = `${account}.dkr.ecr.${region}.amazonaws.com`;
    const result = plan(
      spec([
        'docker pull node:20',
        'echo "$T" | docker login -u "$U" --password-stdin',
        'docker pull redis:7',
        `docker pull ${ecr}/app:1`,
        `aws ecr get-login-password | docker login -u AWS --password-stdin ${ecr}`,
        `docker pull ${ecr}/app:2`,
      ]),
    );
    const [node, redis, app1, app2] = result.pulls;
    assert.ok(node && redis && app1 && app2);
    assert.equal(dockerHubLoginBefore(result, node), false);
    assert.equal(dockerHubLoginBefore(result, redis), true);
    assert.equal(ecrLoginBefore(result, app1, ecr), false);
    assert.equal(ecrLoginBefore(result, app2, ecr), true);
  });
});

describe('secrets and parameters the build reads', () => {
  test('env.secrets-manager (names and ARNs, keys, version stages), env.parameter-store, project variables', () => {
    const arn = `arn:aws:secretsmanager:${region}:${account}:secret:ci/hub-AbCdEf`;
    const result = plan(
      [
        'version: 0.2',
        'env:',
        '  secrets-manager:',
        '    U: ci/hub:username',
        `    P: "${arn}:password:AWSPREVIOUS"`,
        '  parameter-store:',
        '    K: /ci/key',
        'phases:',
        '  build:',
        '    commands:',
        '      - make',
      ].join('\n'),
      {
        projectVariables: [
          { name: 'TOKEN', value: 'ci/npm:token', type: 'SECRETS_MANAGER' },
          { name: 'URL', value: '/ci/url', type: 'PARAMETER_STORE' },
          { name: 'PLAIN', value: 'x', type: 'PLAINTEXT' },
        ],
      },
    );
    assert.deepEqual(
      result.secrets.map((s) => [s.variable, s.service, s.id, s.jsonKey, s.versionStage]),
      [
        ['U', 'secretsmanager', 'ci/hub', 'username', undefined],
        ['P', 'secretsmanager', arn, 'password', 'AWSPREVIOUS'],
        ['K', 'ssm', '/ci/key', undefined, undefined],
        ['TOKEN', 'secretsmanager', 'ci/npm', 'token', undefined],
        ['URL', 'ssm', '/ci/url', undefined, undefined],
      ],
    );
    assert.deepEqual(parseSecretsManagerReference(`${arn}::`), { id: arn });
  });

  test('a buildspec that is not YAML says so', () => {
    assert.match(plan('version: 0.2\nphases: [\n').buildspecError ?? '', /not YAML/);
    assert.match(plan('just text').buildspecError ?? '', /not a YAML mapping/);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { check, digest } from './extractor.test-support.ts';
import { ecsTaskDefinitionExtractor } from './ecs.ts';

describe('ECS task definition JSON', () => {
  const registered = `{
  "taskDefinition": {
    "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7",
    "containerDefinitions": [
      {
        "name": "web",
        "image": "nginx:1.25",
        "essential": true
      },
      {
        "name": "app",
        "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app@${digest}"
      },
      {
        "name": "cache",
        "image": "registry.internal:5000/redis"
      }
    ],
    "family": "web"
  }
}
`;

  it('matches JSON files that hold container definitions', () => {
    assert.equal(ecsTaskDefinitionExtractor.matches('deploy/task-def.json', registered), true);
    assert.equal(ecsTaskDefinitionExtractor.matches('package.json', '{"name": "x"}'), false);
    assert.equal(ecsTaskDefinitionExtractor.matches('task.yaml', registered), false);
  });

  it('reads describe-task-definition output', () => {
    const found = ecsTaskDefinitionExtractor.extract('deploy/task-def.json', registered);
    check(registered, found, [
      {
        line: 7,
        column: 19,
        offset: 188,
        text: 'nginx:1.25',
        kind: 'ecs-task-definition',
        file: 'deploy/task-def.json',
        context: 'taskDefinition.containerDefinitions[0].image (container web)',
      },
      {
        line: 12,
        column: 19,
        offset: 285,
        text: `123456789012.dkr.ecr.us-east-1.amazonaws.com/app@${digest}`,
        context: 'taskDefinition.containerDefinitions[1].image (container app)',
      },
      { line: 16, column: 19, offset: 467, text: 'registry.internal:5000/redis', unresolved: undefined },
    ]);
  });

  it('reads a bare task definition with tabs, CRLF and placeholders', () => {
    const bare =
      '{\r\n\t"family": "worker",\r\n\t"containerDefinitions": [\r\n\t\t{ "name": "worker", "image": "<IMAGE>" },\r\n\t\t{ "name": "sidecar", "image": "${SIDECAR_IMAGE}" },\r\n\t\t{ "name": "log", "image": "amazon/aws-for-fluent-bit:stable" }\r\n\t]\r\n}\r\n';
    const found = ecsTaskDefinitionExtractor.extract('worker.json', bare);
    check(bare, found, [
      {
        line: 4,
        column: 33,
        offset: 85,
        text: '<IMAGE>',
        unresolved: 'uses a placeholder (<IMAGE>), filled in before registration',
      },
      {
        line: 5,
        column: 34,
        offset: 131,
        text: '${SIDECAR_IMAGE}',
        unresolved: 'uses ${SIDECAR_IMAGE}, substituted before the task definition is registered',
      },
      { line: 6, column: 30, offset: 182, text: 'amazon/aws-for-fluent-bit:stable', unresolved: undefined },
    ]);
  });

  it('reports escaped JSON strings as written, with the decoded value as resolved', () => {
    const escaped = '{"containerDefinitions": [{"name": "etcd", "image": "quay.io\\/coreos\\/etcd:v3.5"}]}';
    const found = ecsTaskDefinitionExtractor.extract('etcd.json', escaped);
    check(escaped, found, [
      {
        line: 1,
        column: 54,
        offset: 53,
        text: 'quay.io\\/coreos\\/etcd:v3.5',
        resolved: 'quay.io/coreos/etcd:v3.5',
      },
    ]);
  });

  it('never throws on malformed JSON', () => {
    for (const bad of ['', '{', '{"containerDefinitions": [{"image": }', '[1, 2', '"containerDefinitions"']) {
      assert.deepEqual(ecsTaskDefinitionExtractor.extract('bad.json', bad), []);
    }
  });
});

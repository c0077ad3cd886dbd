import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cloudFormationExtractor, ecsTaskDefinitionExtractor } from './ecs.ts';
import { terraformExtractor } from './terraform.ts';
import type { FoundReference } from './types.ts';

const digest = `sha256:${'b'.repeat(64)}`;

type Expected = Pick<FoundReference, 'line' | 'column' | 'offset' | 'text'> & Partial<FoundReference>;

/** Checks every reference against the file (offset, line, column computed independently) and the expectations. */
function check(content: string, found: FoundReference[], expected: Expected[]): void {
  for (const reference of found) {
    assert.equal(content.slice(reference.offset, reference.offset + reference.text.length), reference.text);
    const before = content.slice(0, reference.offset).split('\n');
    assert.equal(reference.line, before.length, `line of ${reference.text}`);
    assert.equal(
      reference.column,
      (before[before.length - 1] ?? '').length + 1,
      `column of ${reference.text}`,
    );
  }
  assert.equal(found.length, expected.length, JSON.stringify(found, null, 2));
  expected.forEach((want, index) => {
    const got = found[index]!;
    for (const [key, value] of Object.entries(want)) {
      assert.deepEqual(got[key as keyof FoundReference], value, `${key} of reference ${index}`);
    }
  });
}

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

const template = `AWSTemplateFormatVersion: '2010-09-09'
Description: Web service
Parameters:
  WebImage:
    Type: String
    Default: nginx:1.25
  AppTag:
    Type: String
    Default: v42
  WorkerImage:
    Type: String
Conditions:
  IsProd: !Equals [!Ref Env, prod]
Resources:
  TaskDefinition:
    Type: AWS::ECS::TaskDefinition
    Properties:
      Family: web
      ContainerDefinitions:
        - Name: web
          Image: !Ref WebImage
        - Name: app
          Image: !Sub '\${AWS::AccountId}.dkr.ecr.\${AWS::Region}.amazonaws.com/app:\${AppTag}'
        - Name: proxy
          Image: !Sub "envoyproxy/envoy:\${AppTag}"
        - Name: worker
          Image: !Ref WorkerImage
        - Name: cache
          Image: "redis:7-alpine"
        - Name: repo
          Image: !GetAtt Repository.RepositoryUri
        - Name: mapped
          Image: !FindInMap [Images, !Ref Env, Web]
        - Name: either
          Image: !If [IsProd, "public.ecr.aws/nginx/nginx:1.25", nginx]
  Build:
    Type: AWS::CodeBuild::Project
    Properties:
      Environment:
        Type: LINUX_CONTAINER
        Image: aws/codebuild/standard:7.0
  Batch:
    Type: AWS::Batch::JobDefinition
    Properties:
      Type: container
      ContainerProperties:
        Image: python:3.12
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      PackageType: Image
      Code:
        ImageUri: !Sub
          - '\${Registry}/lambda:\${Tag}'
          - { Registry: 'registry.example.com:5000', Tag: '1.0' }
`;

describe('CloudFormation', () => {
  it('matches templates', () => {
    assert.equal(cloudFormationExtractor.matches('infra/web.yaml', template), true);
    assert.equal(
      cloudFormationExtractor.matches(
        'infra/web.json',
        '{"Resources": {"T": {"Type": "AWS::ECS::TaskDefinition"}}}',
      ),
      true,
    );
    assert.equal(cloudFormationExtractor.matches('k8s/web.yaml', 'apiVersion: v1\nkind: Pod\n'), false);
  });

  it('explains intrinsics and uses parameter defaults', () => {
    const found = cloudFormationExtractor.extract('infra/web.yaml', template);
    check(template, found, [
      {
        line: 21,
        column: 23,
        offset: 420,
        text: 'WebImage',
        kind: 'cloudformation',
        resolved: 'nginx:1.25',
        unresolved: undefined,
        context:
          'Resources.TaskDefinition (AWS::ECS::TaskDefinition) Properties.ContainerDefinitions[0].Image (container web): comes from parameter WebImage (its Default is nginx:1.25)',
      },
      {
        line: 23,
        column: 24,
        offset: 472,
        text: '${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/app:${AppTag}',
        resolved: undefined,
        unresolved:
          'uses ${AWS::AccountId} (pseudo parameter, known only at deploy time), ${AWS::Region} (pseudo parameter, known only at deploy time)',
      },
      {
        line: 25,
        column: 24,
        offset: 587,
        text: 'envoyproxy/envoy:${AppTag}',
        resolved: 'envoyproxy/envoy:v42',
        unresolved: undefined,
        context:
          'Resources.TaskDefinition (AWS::ECS::TaskDefinition) Properties.ContainerDefinitions[2].Image (container proxy) (Fn::Sub)',
      },
      {
        line: 27,
        column: 23,
        offset: 660,
        text: 'WorkerImage',
        resolved: undefined,
        unresolved: 'comes from parameter WorkerImage, which has no Default',
      },
      {
        line: 29,
        column: 19,
        offset: 712,
        text: 'redis:7-alpine',
        resolved: undefined,
        unresolved: undefined,
      },
      {
        line: 31,
        column: 26,
        offset: 774,
        text: 'Repository.RepositoryUri',
        unresolved: 'comes from a resource attribute (Fn::GetAtt)',
      },
      {
        line: 33,
        column: 29,
        offset: 850,
        text: '[Images, !Ref Env, Web]',
        unresolved: 'comes from a Mappings lookup (Fn::FindInMap)',
      },
      { line: 35, column: 32, offset: 928, text: 'public.ecr.aws/nginx/nginx:1.25', unresolved: undefined },
      { line: 35, column: 66, offset: 962, text: 'nginx', unresolved: undefined },
      {
        line: 41,
        column: 16,
        offset: 1092,
        text: 'aws/codebuild/standard:7.0',
        context: 'Resources.Build (AWS::CodeBuild::Project) Properties.Environment.Image',
        codebuild: true,
      },
      {
        line: 47,
        column: 16,
        offset: 1244,
        text: 'python:3.12',
        context: 'Resources.Batch (AWS::Batch::JobDefinition) Properties.ContainerProperties.Image',
        codebuild: undefined,
      },
      {
        line: 54,
        column: 14,
        offset: 1383,
        text: '${Registry}/lambda:${Tag}',
        resolved: 'registry.example.com:5000/lambda:1.0',
        unresolved: undefined,
      },
    ]);
  });

  it('reads JSON templates with long-form intrinsics', () => {
    const json = `{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": { "Image": { "Type": "String", "Default": "httpd:2.4" } },
  "Resources": {
    "Task": {
      "Type": "AWS::ECS::TaskDefinition",
      "Properties": {
        "ContainerDefinitions": [
          { "Name": "a", "Image": { "Ref": "Image" } },
          { "Name": "b", "Image": { "Fn::Sub": "\${AWS::AccountId}.dkr.ecr.us-east-1.amazonaws.com/b:1" } },
          { "Name": "c", "Image": { "Fn::Join": ["", ["a", "b"]] } },
          { "Name": "d", "Image": "memcached@${digest}" }
        ]
      }
    }
  }
}
`;
    const found = cloudFormationExtractor.extract('stack.template.json', json);
    check(json, found, [
      { line: 9, column: 45, offset: 294, text: 'Image', resolved: 'httpd:2.4' },
      {
        line: 10,
        column: 49,
        offset: 354,
        text: '${AWS::AccountId}.dkr.ecr.us-east-1.amazonaws.com/b:1',
        unresolved: 'uses ${AWS::AccountId} (pseudo parameter, known only at deploy time)',
      },
      {
        line: 11,
        column: 49,
        offset: 462,
        text: '["", ["a", "b"]]',
        unresolved: 'is built with Fn::Join at deploy time',
      },
      { line: 12, column: 36, offset: 519, text: `memcached@${digest}`, unresolved: undefined },
    ]);
  });

  it('keeps offsets exact with CRLF and never throws', () => {
    const crlf = template.replace(/\n/g, '\r\n');
    const found = cloudFormationExtractor.extract('infra/web.yaml', crlf);
    assert.equal(found.length, 12);
    check(crlf, found.slice(0, 1), [{ line: 21, column: 23, offset: 440, text: 'WebImage' }]);
    for (const bad of [
      '',
      'Resources: [',
      'Resources:\n  T: !Ref\n',
      '{"Resources": 1}',
      'Resources:\n  T:\n    Type: AWS::ECS::TaskDefinition\n    Properties:\n      ContainerDefinitions: {}\n',
    ]) {
      assert.deepEqual(cloudFormationExtractor.extract('bad.yaml', bad), []);
    }
  });
});

describe('Terraform', () => {
  const main = `variable "tag" {
  type    = string
  default = "1.25"
}

resource "aws_ecs_task_definition" "web" {
  family                   = "web"
  requires_compatibilities = ["FARGATE"]
  container_definitions = jsonencode([
    {
      name      = "web"
      image     = "nginx:\${var.tag}"
      essential = true
      # image = "commented:out"
    },
    {
      name  = "proxy"
      image = "registry.example.com:5000/envoy@${digest}"
    },
    {
      name  = "app"
      image = var.app_image
    }
  ])
}

resource "aws_ecs_task_definition" "worker" {
  family                = "worker"
  container_definitions = <<-DEFS
    [
      { "name": "worker", "image": "python:3.12-slim" }
    ]
  DEFS
}

resource "aws_ecs_task_definition" "inline" {
  family                = "inline"
  container_definitions = "[{\\"name\\":\\"x\\",\\"image\\":\\"busybox:1.36\\"}]"
}

module "service" {
  source                = "./modules/service"
  container_definitions = jsonencode([{ name = "api", image = "redis:7" }])
}

resource "aws_instance" "vm" {
  ami = "ami-123"
  image = "not-a-container"
}
`;

  it('matches .tf files', () => {
    assert.equal(terraformExtractor.matches('infra/main.tf', ''), true);
    assert.equal(terraformExtractor.matches('infra/main.tfvars', ''), false);
  });

  it('finds images in container definitions in every form', () => {
    const found = terraformExtractor.extract('infra/main.tf', main);
    check(main, found, [
      {
        line: 12,
        column: 20,
        offset: 265,
        text: 'nginx:${var.tag}',
        kind: 'terraform',
        unresolved: 'uses ${var.tag}, known only at plan time',
        context: 'aws_ecs_task_definition.web',
      },
      {
        line: 18,
        column: 16,
        offset: 388,
        text: `registry.example.com:5000/envoy@${digest}`,
        unresolved: undefined,
      },
      {
        line: 22,
        column: 15,
        offset: 540,
        text: 'var.app_image',
        unresolved: 'comes from the Terraform expression var.app_image',
      },
      {
        line: 31,
        column: 37,
        offset: 725,
        text: 'python:3.12-slim',
        context: 'aws_ecs_task_definition.worker',
      },
      { line: 38, column: 57, offset: 898, text: 'busybox:1.36', context: 'aws_ecs_task_definition.inline' },
      { line: 43, column: 64, offset: 1047, text: 'redis:7', context: 'container_definitions' },
    ]);
  });

  it('keeps CRLF offsets and never throws', () => {
    const crlf = main.replace(/\n/g, '\r\n');
    const found = terraformExtractor.extract('infra/main.tf', crlf);
    assert.equal(found.length, 6);
    check(crlf, found.slice(3, 4), [{ line: 31, column: 37, offset: 755, text: 'python:3.12-slim' }]);
    for (const bad of [
      '',
      'resource "aws_ecs_task_definition" "x" {',
      'container_definitions = <<EOF\n',
      'container_definitions = "',
      '}}}{{{',
    ]) {
      assert.deepEqual(terraformExtractor.extract('bad.tf', bad), []);
    }
  });
  it('reads module image inputs, kubernetes_* containers, CodeBuild, Lambda and Docker provider images', () => {
    const tf = [
      'module "ecs_service" {', // 1
      '  source  = "terraform-aws-modules/ecs/aws//modules/service"', // 2
      '  version = "~> 5.11"', // 3
      '  container_definitions = {', // 4
      '    app = {', // 5
      '      image = "public.ecr.aws/aws-containers/ecsdemo-frontend:776fd50"', // 6
      '    }', // 7
      '  }', // 8
      '  sidecar_image = var.sidecar', // 9
      '}', // 10
      'module "container" {', // 11
      '  source          = "cloudposse/ecs-container-definition/aws"', // 12
      '  container_image = "nginx:1.27-alpine"', // 13
      '}', // 14
      'module "vm" {', // 15
      '  source   = "./modules/instance"', // 16
      '  image    = "debian-cloud/debian-12"', // 17
      '  image_id = "ami-0abcdef1234567890"', // 18
      '  agent_image = "ghcr.io/acme/agent:3.2.0"', // 19
      '  other_image = var.other', // 20
      '}', // 21
      'resource "kubernetes_deployment_v1" "web" {', // 22
      '  spec {', // 23
      '    template {', // 24
      '      spec {', // 25
      '        init_container {', // 26
      '          image = "busybox:1.36"', // 27
      '        }', // 28
      '        container {', // 29
      '          name  = "web"', // 30
      '          image = "nginx:1.27"', // 31
      '        }', // 32
      '      }', // 33
      '    }', // 34
      '  }', // 35
      '}', // 36
      'resource "aws_codebuild_project" "build" {', // 37
      '  environment {', // 38
      '    compute_type = "BUILD_GENERAL1_SMALL"', // 39
      '    image        = "aws/codebuild/amazonlinux2-x86_64-standard:5.0"', // 40
      '    type         = "LINUX_CONTAINER"', // 41
      '  }', // 42
      '}', // 43
      'resource "aws_lambda_function" "fn" {', // 44
      '  package_type = "Image"', // 45
      '  image_uri    = "123456789012.dkr.ecr.us-east-1.amazonaws.com/fn:1"', // 46
      '}', // 47
      'resource "docker_image" "cache" {', // 48
      '  name = "redis:7.4"', // 49
      '}', // 50
      '# resource "docker_image" "old" { name = "old:1" }', // 51
      '',
    ].join('\n');
    const found = terraformExtractor.extract('infra/main.tf', tf);
    assert.deepEqual(
      found.map((reference) => [
        reference.line,
        reference.text,
        reference.context,
        reference.codebuild ?? false,
      ]),
      [
        [6, 'public.ecr.aws/aws-containers/ecsdemo-frontend:776fd50', 'container_definitions', false],
        [9, 'var.sidecar', 'module.ecs_service', false],
        [13, 'nginx:1.27-alpine', 'module.container', false],
        [19, 'ghcr.io/acme/agent:3.2.0', 'module.vm', false],
        [27, 'busybox:1.36', 'kubernetes_deployment_v1.web', false],
        [31, 'nginx:1.27', 'kubernetes_deployment_v1.web', false],
        [40, 'aws/codebuild/amazonlinux2-x86_64-standard:5.0', 'aws_codebuild_project.build', true],
        [46, '123456789012.dkr.ecr.us-east-1.amazonaws.com/fn:1', 'aws_lambda_function.fn', false],
        [49, 'redis:7.4', 'docker_image.cache', false],
      ],
    );
    check(
      tf,
      found,
      found.map(({ line, column, offset, text }) => ({ line, column, offset, text })),
    );
    const computed =
      'module "ecs" {\n  source = "../../"\n  services = { web = { container_definitions = {\n    fluent-bit = {\n      image = nonsensitive(data.aws_ssm_parameter.fluentbit.value)\n    }\n  } } }\n}\n';
    assert.deepEqual(
      terraformExtractor
        .extract('main.tf', computed)
        .map((reference) => [reference.line, reference.text, reference.unresolved]),
      [
        [
          5,
          'nonsensitive(data.aws_ssm_parameter.fluentbit.value)',
          'comes from the Terraform expression nonsensitive(data.aws_ssm_parameter.fluentbit.value)',
        ],
      ],
    );
  });

  it('reads helm_release set entries as image maps, and heredoc values as a values file', () => {
    const tf = [
      'resource "helm_release" "cache" {', // 1
      '  name       = "cache"', // 2
      '  repository = "oci://registry-1.docker.io/examplecharts"', // 3
      '  chart      = "cache"', // 4
      '  set {', // 5
      '    name  = "image.registry"', // 6
      '    value = "docker.io"', // 7
      '  }', // 8
      '  set {', // 9
      '    name  = "image.repository"', // 10
      '    value = "acme/cache"', // 11
      '  }', // 12
      '  set {', // 13
      '    name  = "image.tag"', // 14
      '    value = "7.4.1"', // 15
      '  }', // 16
      '  set = [', // 17
      '    { name = "metrics.image.repository", value = "acme/cache-exporter" },', // 18
      '    { name = "replicaCount", value = "3" },', // 19
      '  ]', // 20
      '  set_sensitive {', // 21
      '    name  = "auth.password"', // 22
      '    value = var.password', // 23
      '  }', // 24
      '  set {', // 25
      '    name  = "sidecar.image"', // 26
      '    value = "busybox:1.36"', // 27
      '  }', // 28
      '  values = [<<-EOT', // 29
      '    proxy:', // 30
      '      image:', // 31
      '        repository: envoyproxy/envoy', // 32
      '        tag: v1.31.0', // 33
      '    EOT', // 34
      '  ]', // 35
      '}', // 36
      '',
    ].join('\n');
    const found = terraformExtractor.extract('infra/helm.tf', tf);
    assert.deepEqual(
      found.map((reference) => [reference.line, reference.text, reference.resolved]),
      [
        [11, 'acme/cache', 'docker.io/acme/cache:7.4.1'],
        [18, 'acme/cache-exporter', undefined],
        [27, 'busybox:1.36', undefined],
        [32, 'envoyproxy/envoy', 'envoyproxy/envoy:v1.31.0'],
      ],
    );
    check(
      tf,
      found,
      found.map(({ line, column, offset, text }) => ({ line, column, offset, text })),
    );
    assert.deepEqual(found[0]!.parts, {
      path: 'image',
      chart: 'remote',
      repository: { offset: tf.indexOf('acme/cache'), text: 'acme/cache' },
      registry: { offset: tf.indexOf('docker.io"'), text: 'docker.io' },
    });
    assert.equal(found[1]!.parts?.registry, undefined);
    assert.equal(found[2]!.parts, undefined);
    assert.equal(found[3]!.parts?.chart, 'remote');
    assert.equal(found[3]!.kind, 'terraform');
  });
});

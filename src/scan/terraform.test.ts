import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { check, digest } from './extractor.test-support.ts';
import { terraformExtractor } from './terraform.ts';

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

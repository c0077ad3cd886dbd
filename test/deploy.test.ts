/**
 * The deployment, offline: the CDK app (deploy/cdk) synthesizes without AWS, `aws-cdk-lib/assertions` and a
 * reading of the template check what it creates, the task role is checked with pullsafe's own IAM evaluator
 * against the S3 calls the driver makes, the checked-in template equals a fresh synthesis, the container's
 * entry point and command start a real `pullsafe serve` on s3rver, and the Kubernetes example and the
 * Dockerfile are checked against serve's config schema and flags.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { parseAllDocuments } from 'yaml';
import {
  PullsafeRegistry,
  configPath,
  containerPort,
  synthesizeTemplate,
  type PullsafeRegistryProps,
} from '../deploy/cdk/pullsafe-stack.ts';
import { evaluateIdentity, type AccessRequest } from '../src/doctor/iam-eval.ts';
import type { NamedPolicy, PolicyDocument } from '../src/doctor/types.ts';
import { validateServeConfig } from '../src/config/serve.ts';
import { parseDuration } from '../src/config/duration.ts';
import { cliPath, runCli } from './helpers/cli.ts';
import { startS3rver } from './helpers/s3rver.ts';
import { tempDir } from './helpers/tmp.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const templatePath = join(root, 'deploy/cloudformation/pullsafe.template.json');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Resource = { Type: string; Properties: Record<string, Json>; DependsOn?: string[] };
type CfnTemplate = { Resources: Record<string, Resource>; Parameters?: Record<string, Json> };

const region = 'eu-west-1';
const account = '123456789012';
const bucketName = 'pullsafe-test-bucket';
const bucketArn = `arn:aws:s3:::${bucketName}`;
const redisHost = 'pullsafe-valkey.example';
const hubSecretArn = `arn:aws:secretsmanager:${region}:${account}:secret:dockerhub-AbCdEf`;
const signingKeyArn = `arn:aws:secretsmanager:${region}:${account}:secret:RegistryUploadSigningKey-GhIjKl`;

function logicalIds(template: CfnTemplate, type: string): string[] {
  return Object.entries(template.Resources)
    .filter(([, resource]) => resource.Type === type)
    .map(([id]) => id);
}

function only(template: CfnTemplate, type: string): [string, Resource] {
  const ids = logicalIds(template, type);
  assert.equal(ids.length, 1, `one ${type} expected, found ${ids.length}`);
  return [ids[0]!, template.Resources[ids[0]!]!];
}

/**
 * Resolves the intrinsics a deployed stack would, with made-up physical values: the bucket's name and ARN,
 * Valkey's address, the pseudo parameters and the stack's parameters. Anything else fails the test.
 */
function resolver(template: CfnTemplate): (value: Json) => Json {
  const [bucketId] = logicalIds(template, 'AWS::S3::Bucket');
  const [redisId] = logicalIds(template, 'AWS::ElastiCache::ReplicationGroup');
  const [logsId] = logicalIds(template, 'AWS::Logs::LogGroup');
  const [signingKeyId] = logicalIds(template, 'AWS::SecretsManager::Secret');
  const refs: Record<string, string> = {
    'AWS::Region': region,
    'AWS::AccountId': account,
    'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
    ImageRepository: 'pullsafe',
    ImageTag: '1.0.0',
    DomainName: 'cache.example.com',
    ...(bucketId ? { [bucketId]: bucketName } : {}),
    ...(logsId ? { [logsId]: 'pullsafe-logs' } : {}),
    ...(signingKeyId ? { [signingKeyId]: signingKeyArn } : {}),
  };
  const attributes: Record<string, string> = {
    ...(bucketId ? { [`${bucketId}.Arn`]: bucketArn } : {}),
    ...(redisId ? { [`${redisId}.PrimaryEndPoint.Address`]: redisHost } : {}),
    ...(logsId ? { [`${logsId}.Arn`]: `arn:aws:logs:${region}:${account}:log-group:pullsafe-logs:*` } : {}),
  };
  const resolve = (value: Json): Json => {
    if (Array.isArray(value)) return value.map(resolve);
    if (value === null || typeof value !== 'object') return value;
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === 'Ref') {
      const name = value['Ref'] as string;
      assert.ok(name in refs, `cannot resolve Ref ${name}`);
      return refs[name]!;
    }
    if (keys.length === 1 && keys[0] === 'Fn::GetAtt') {
      const name = (value['Fn::GetAtt'] as string[]).join('.');
      assert.ok(name in attributes, `cannot resolve Fn::GetAtt ${name}`);
      return attributes[name]!;
    }
    if (keys.length === 1 && keys[0] === 'Fn::Join') {
      const [separator, parts] = value['Fn::Join'] as [string, Json[]];
      return parts.map((part) => String(resolve(part))).join(separator);
    }
    assert.ok(!keys.some((key) => key.startsWith('Fn::')), `cannot resolve ${JSON.stringify(value)}`);
    return Object.fromEntries(keys.map((key) => [key, resolve(value[key]!)]));
  };
  return resolve;
}

function synthesize(props: Partial<PullsafeRegistryProps>): CfnTemplate {
  const app = new App();
  const stack = new Stack(app, 'Test');
  new PullsafeRegistry(stack, 'Registry', {
    image: ecs.ContainerImage.fromRegistry('pullsafe:test'),
    ...props,
  });
  return Template.fromStack(stack).toJSON() as CfnTemplate;
}

interface Container {
  entryPoint: string[];
  command: string[];
  environment: Record<string, string>;
  /** What the ECS agent puts in the environment from Secrets Manager: the variable and the secret's ARN. */
  secrets: Record<string, string>;
  stopTimeout: number;
}

function containerOf(template: CfnTemplate): Container {
  const resolve = resolver(template);
  const [, task] = only(template, 'AWS::ECS::TaskDefinition');
  const definitions = task.Properties['ContainerDefinitions'] as { [key: string]: Json }[];
  assert.equal(definitions.length, 1);
  const definition = resolve(definitions[0]!) as { [key: string]: Json };
  const environment = Object.fromEntries(
    (definition['Environment'] as { Name: string; Value: string }[]).map((item) => [item.Name, item.Value]),
  );
  const secrets = Object.fromEntries(
    ((definition['Secrets'] ?? []) as { Name: string; ValueFrom: string }[]).map((item) => [
      item.Name,
      item.ValueFrom,
    ]),
  );
  return {
    entryPoint: definition['EntryPoint'] as string[],
    command: definition['Command'] as string[],
    environment,
    secrets,
    stopTimeout: definition['StopTimeout'] as number,
  };
}

/** serve's config as the container writes it, checked by serve's own schema. */
function serveConfigOf(container: Container): Record<string, unknown> {
  const text = container.environment['PULLSAFE_CONFIG_JSON'];
  assert.ok(text, 'the container is given PULLSAFE_CONFIG_JSON');
  const config = JSON.parse(text) as Record<string, unknown>;
  validateServeConfig(config, 'PULLSAFE_CONFIG_JSON');
  return config;
}

function seconds(value: unknown): number {
  const ms = parseDuration(value as string);
  assert.ok(ms !== undefined, `a duration: ${String(value)}`);
  return ms / 1000;
}

/** The identity policies attached to a role, resolved. */
function rolePolicies(template: CfnTemplate, roleId: string): NamedPolicy[] {
  const resolve = resolver(template);
  const role = template.Resources[roleId]!;
  assert.equal(role.Properties['ManagedPolicyArns'], undefined, `${roleId} has no managed policies`);
  assert.equal(role.Properties['Policies'], undefined, `${roleId} has no inline policies of its own`);
  return Object.entries(template.Resources)
    .filter(([, resource]) => resource.Type === 'AWS::IAM::Policy')
    .filter(([, resource]) =>
      (resource.Properties['Roles'] as Json[]).some((ref) => JSON.stringify(ref) === `{"Ref":"${roleId}"}`),
    )
    .map(([id, resource]) => ({
      name: id,
      kind: 'inline',
      document: resolve(resource.Properties['PolicyDocument']!) as unknown as PolicyDocument,
    }));
}

function roleIdOf(template: CfnTemplate, property: 'TaskRoleArn' | 'ExecutionRoleArn'): string {
  const [, task] = only(template, 'AWS::ECS::TaskDefinition');
  return (task.Properties[property] as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]!;
}

/**
 * The IAM actions of each S3 call (Service Authorization Reference): what the driver needs is derived from
 * the commands it sends, so a new call fails here until its action is added to the task role.
 */
const iamActionsOfCommand: Record<string, string[]> = {
  GetObject: ['s3:GetObject'],
  HeadObject: ['s3:GetObject'],
  PutObject: ['s3:PutObject'],
  CopyObject: ['s3:GetObject', 's3:PutObject'],
  UploadPartCopy: ['s3:GetObject', 's3:PutObject'],
  CreateMultipartUpload: ['s3:PutObject'],
  UploadPart: ['s3:PutObject'],
  CompleteMultipartUpload: ['s3:PutObject'],
  AbortMultipartUpload: ['s3:AbortMultipartUpload'],
  DeleteObject: ['s3:DeleteObject'],
  DeleteObjects: ['s3:DeleteObject'],
  ListObjectsV2: ['s3:ListBucket'],
};
const bucketLevelActions = new Set(['s3:ListBucket']);

function s3ActionsTheDriverNeeds(): Set<string> {
  const folder = join(root, 'src/store');
  const sources = readdirSync(folder)
    .filter((name) => /^s3-.*\.ts$/.test(name) && !name.endsWith('.test.ts'))
    .map((name) => readFileSync(join(folder, name), 'utf8'));
  const commands = new Set(
    sources.flatMap((text) => [...text.matchAll(/new (\w+)Command\(/g)].map((m) => m[1]!)),
  );
  assert.ok(commands.size >= 10, `the S3 driver's commands were found: ${[...commands].join(', ')}`);
  const actions = new Set<string>();
  for (const command of commands) {
    const mapped = iamActionsOfCommand[command];
    assert.ok(mapped, `the S3 driver sends ${command}Command: add its IAM actions here and to the task role`);
    for (const action of mapped) actions.add(action);
  }
  // The task role lets s3:ListBucket list the storage prefix only: every listing must name it.
  for (const text of sources) {
    for (const call of text.matchAll(/new ListObjectsV2Command\(\{[^}]*\}/g)) {
      assert.match(call[0], /Prefix: this\.full\(/, `a listing without the storage prefix: ${call[0]}`);
    }
  }
  return actions;
}

/** Every Allow statement of the policies, with its actions and resources as lists. */
function allowedOf(policies: NamedPolicy[]): { actions: string[]; resources: string[] }[] {
  const list = (value: string | string[] | undefined): string[] =>
    value === undefined ? [] : Array.isArray(value) ? value : [value];
  return policies
    .flatMap((policy) => [policy.document.Statement].flat())
    .filter((statement) => statement.Effect === 'Allow')
    .map((statement) => ({ actions: list(statement.Action), resources: list(statement.Resource) }));
}

function decide(policies: NamedPolicy[], request: AccessRequest): string {
  const decision = evaluateIdentity(policies, request);
  assert.deepEqual(decision.undecided, [], `nothing undecided for ${request.action} ${request.resource}`);
  return decision.decision;
}

/** The security group whose description matches. */
function securityGroup(template: CfnTemplate, description: RegExp): string {
  const ids = logicalIds(template, 'AWS::EC2::SecurityGroup').filter((id) =>
    description.test(template.Resources[id]!.Properties['GroupDescription'] as string),
  );
  assert.equal(ids.length, 1, `one security group matching ${description}`);
  return ids[0]!;
}

/**
 * Every security group rule of a template, inline or a resource of its own, as `FROM -> TO PROTOCOL:PORTS`,
 * groups by the given names and other peers as JSON. A rule between two groups appears twice: as the
 * source's egress and as the destination's ingress.
 */
function securityGroupRules(template: CfnTemplate, names: Record<string, string>): string[] {
  const name = (value: Json | undefined): string => {
    const group = (value as { 'Fn::GetAtt'?: string[] } | undefined)?.['Fn::GetAtt'];
    return group?.[1] === 'GroupId' && names[group[0]!] ? names[group[0]!]! : JSON.stringify(value);
  };
  const ports = (rule: Record<string, Json>): string =>
    `${String(rule['IpProtocol'])}:${String(rule['FromPort'])}-${String(rule['ToPort'])}`;
  const peer = (rule: Record<string, Json>, key: string): Json | undefined => rule[key] ?? rule['CidrIp'];
  const rules: string[] = [];
  for (const [id, resource] of Object.entries(template.Resources)) {
    const p = resource.Properties;
    if (resource.Type === 'AWS::EC2::SecurityGroupIngress') {
      rules.push(`${name(peer(p, 'SourceSecurityGroupId'))} -> ${name(p['GroupId'])} ${ports(p)}`);
    } else if (resource.Type === 'AWS::EC2::SecurityGroupEgress') {
      rules.push(`${name(p['GroupId'])} -> ${name(peer(p, 'DestinationSecurityGroupId'))} ${ports(p)}`);
    } else if (resource.Type === 'AWS::EC2::SecurityGroup') {
      const self = name({ 'Fn::GetAtt': [id, 'GroupId'] });
      for (const rule of (p['SecurityGroupIngress'] ?? []) as Record<string, Json>[]) {
        rules.push(`${name(peer(rule, 'SourceSecurityGroupId'))} -> ${self} ${ports(rule)}`);
      }
      for (const rule of (p['SecurityGroupEgress'] ?? []) as Record<string, Json>[]) {
        rules.push(`${self} -> ${name(peer(rule, 'DestinationSecurityGroupId'))} ${ports(rule)}`);
      }
    }
  }
  return rules.sort();
}

/** Runs a Node script of the repository (bounded: 60 s). */
function runNode(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

/** Every `--flag` serve's help lists. */
async function serveFlags(): Promise<Set<string>> {
  const help = await runCli(['serve', '--help'], { timeoutMs: 30_000 });
  assert.equal(help.code, 0, help.stderr);
  return new Set([...help.stdout.matchAll(/--[a-z][a-z-]*/g)].map((m) => m[0]));
}

function assertFlagsKnown(args: string[], flags: Set<string>, where: string): void {
  for (const arg of args.filter((item) => item.startsWith('--'))) {
    assert.ok(flags.has(arg), `${where} passes ${arg}, which \`pullsafe serve --help\` does not list`);
  }
}

describe('deploy: the CloudFormation template', () => {
  const template = synthesizeTemplate() as CfnTemplate;
  const assertions = Template.fromJSON(template);
  const container = containerOf(template);
  const config = serveConfigOf(container);

  test('the checked-in template equals a fresh synthesis (npm run deploy:synth rewrites it)', () => {
    const checkedIn = JSON.parse(readFileSync(templatePath, 'utf8')) as unknown;
    assert.deepEqual(checkedIn, template, 'deploy/cloudformation is stale: run `npm run deploy:synth`');
  });

  test('the CDK app synthesizes as the cdk CLI runs it, without AWS credentials', async () => {
    await using outdir = await tempDir('pullsafe-cdk-out-');
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('AWS_')));
    const run = await runNode([join(root, 'deploy/cdk/app.ts')], { ...env, CDK_OUTDIR: outdir.path });
    assert.equal(run.code, 0, run.stderr);
    const written = JSON.parse(readFileSync(join(outdir.path, 'Pullsafe.template.json'), 'utf8')) as unknown;
    assert.deepEqual(written, template);
  });

  test('needs no bootstrap, lookups or assets: its parameters are the image, certificate and name', () => {
    assert.deepEqual(Object.keys(template.Parameters ?? {}).sort(), [
      'CertificateArn',
      'DomainName',
      'ImageRepository',
      'ImageTag',
    ]);
    assert.doesNotMatch(JSON.stringify(template), /cdk-hnb659fds|AssetParameters|BootstrapVersion/);
  });

  test('the ALB: internal, HTTPS on 443 with the certificate, idle timeout for large layers', () => {
    assertions.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Scheme: 'internal',
      LoadBalancerAttributes: Match.arrayWith([{ Key: 'idle_timeout.timeout_seconds', Value: '900' }]),
    });
    assertions.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443,
      Protocol: 'HTTPS',
      Certificates: [{ CertificateArn: { Ref: 'CertificateArn' } }],
    });
    assertions.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 1);
  });

  test('the target group checks /readyz and drains as long as serve lets transfers finish', () => {
    const shutdownTimeout = seconds(config['shutdownTimeout']);
    const shutdownDelay = seconds(config['shutdownDelay']);
    assertions.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      HealthCheckPath: '/readyz',
      Matcher: { HttpCode: '200' },
      Port: containerPort,
      TargetType: 'ip',
      TargetGroupAttributes: Match.arrayWith([
        { Key: 'deregistration_delay.timeout_seconds', Value: String(shutdownTimeout) },
      ]),
    });
    assert.equal(shutdownDelay, 5);
    assert.ok(
      container.stopTimeout > shutdownDelay + shutdownTimeout && container.stopTimeout <= 120,
      `ECS waits ${container.stopTimeout} s after SIGTERM: more than serve's ${shutdownDelay} + ${shutdownTimeout} s, at most Fargate's 120`,
    );
  });

  test('the bucket: encrypted, public access blocked, TLS only, the lifecycle rule of docs/storage.md', () => {
    const docs = readFileSync(join(root, 'docs/storage.md'), 'utf8');
    const block = /```json\n(\{\n {2}"Rules"[\s\S]*?)```/.exec(docs);
    assert.ok(block, 'docs/storage.md gives the lifecycle rule as JSON');
    const documented = (JSON.parse(block[1]!) as { Rules: Record<string, Json>[] }).Rules[0]!;
    assertions.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LifecycleConfiguration: {
        Rules: [
          {
            Id: documented['ID'],
            Status: 'Enabled',
            Prefix: (documented['Filter'] as { Prefix: string }).Prefix,
            AbortIncompleteMultipartUpload: documented['AbortIncompleteMultipartUpload'],
            ExpirationInDays: (documented['Expiration'] as { Days: number }).Days,
          },
        ],
      },
    });
    assertions.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  test('the service: two Fargate tasks in private subnets, rolled back when a deploy fails', () => {
    assertions.hasResourceProperties('AWS::ECS::Service', {
      DesiredCount: 2,
      LaunchType: 'FARGATE',
      DeploymentConfiguration: Match.objectLike({
        DeploymentCircuitBreaker: { Enable: true, Rollback: true },
        MinimumHealthyPercent: 100,
      }),
      NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'DISABLED' }) },
      LoadBalancers: [Match.objectLike({ ContainerPort: containerPort })],
    });
    assertions.hasResourceProperties('AWS::ECS::TaskDefinition', {
      Cpu: '1024',
      Memory: '2048',
      ContainerDefinitions: [
        Match.objectLike({
          LogConfiguration: Match.objectLike({
            LogDriver: 'awslogs',
            Options: Match.objectLike({ 'awslogs-group': { Ref: only(template, 'AWS::Logs::LogGroup')[0] } }),
          }),
        }),
      ],
    });
  });

  test('the container runs serve on the bucket, docker.io and Valkey, with its config file', () => {
    assert.deepEqual(container.command, [
      'serve',
      '--config',
      configPath,
      '--listen',
      `0.0.0.0:${containerPort}`,
      '--storage',
      `s3://${bucketName}/pullsafe`,
      '--proxy',
      'docker.io',
      '--redis',
      `redis://${redisHost}:6379`,
    ]);
    assert.equal(container.environment['AWS_REGION'], region);
    assert.match(container.entryPoint.join(' '), new RegExp(`> ${configPath} && exec node dist/cli/main.js`));
  });

  test('Valkey: two nodes in two zones, reachable from the tasks on 6379 only', () => {
    assertions.hasResourceProperties('AWS::ElastiCache::ReplicationGroup', {
      Engine: 'valkey',
      NumCacheClusters: 2,
      AutomaticFailoverEnabled: true,
      MultiAZEnabled: true,
      Port: 6379,
    });
  });

  test('security groups: clients to the ALB, the ALB to the tasks on 5000, the tasks to Valkey on 6379 and to each other on 5000', () => {
    const alb = securityGroup(template, /^pullsafe load balancer/);
    const task = securityGroup(template, /^pullsafe tasks:/);
    const redis = securityGroup(template, /^pullsafe Valkey/);
    const rules = securityGroupRules(template, { [alb]: 'alb', [task]: 'task', [redis]: 'redis' });
    const vpcCidr = JSON.stringify({ 'Fn::GetAtt': [only(template, 'AWS::EC2::VPC')[0], 'CidrBlock'] });
    assert.deepEqual(
      rules,
      [
        // CDK's placeholder for "no egress at all".
        'redis -> "255.255.255.255/32" icmp:252-86',
        `${vpcCidr} -> alb tcp:443-443`,
        'alb -> task tcp:5000-5000',
        'alb -> task tcp:5000-5000',
        'task -> "0.0.0.0/0" tcp:443-443',
        'task -> redis tcp:6379-6379',
        'task -> redis tcp:6379-6379',
        // Fills streamed between tasks: the tasks' own group, in and out, on the container port alone.
        `task -> task tcp:${containerPort}-${containerPort}`,
        `task -> task tcp:${containerPort}-${containerPort}`,
      ].sort(),
    );
    const taskGroup = { 'Fn::GetAtt': [task, 'GroupId'] };
    const between = { IpProtocol: 'tcp', FromPort: containerPort, ToPort: containerPort, GroupId: taskGroup };
    assertions.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      ...between,
      SourceSecurityGroupId: taskGroup,
    });
    assertions.hasResourceProperties('AWS::EC2::SecurityGroupEgress', {
      ...between,
      DestinationSecurityGroupId: taskGroup,
    });
  });

  test('an S3 gateway endpoint on the task subnets, which the service waits for', () => {
    const [endpointId] = only(template, 'AWS::EC2::VPCEndpoint');
    assertions.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.s3']] },
    });
    const [, service] = only(template, 'AWS::ECS::Service');
    assert.ok(service.DependsOn?.includes(endpointId), 'the service depends on the S3 endpoint');
  });

  test('the task role allows exactly the S3 calls of the driver, on this bucket and prefix', () => {
    const needed = s3ActionsTheDriverNeeds();
    const policies = rolePolicies(template, roleIdOf(template, 'TaskRoleArn'));
    const granted = new Set(
      policies.flatMap((policy) => {
        const statements = Array.isArray(policy.document.Statement)
          ? policy.document.Statement
          : [policy.document.Statement];
        return statements.flatMap((statement) => {
          assert.equal(statement.Effect, 'Allow');
          const actions = statement.Action ?? [];
          return Array.isArray(actions) ? actions : [actions];
        });
      }),
    );
    assert.deepEqual([...granted].sort(), [...needed].sort(), 'the task role grants what the driver calls');

    const prefix = { 's3:prefix': 'pullsafe/' };
    for (const action of needed) {
      if (bucketLevelActions.has(action)) {
        assert.equal(decide(policies, { action, resource: bucketArn, context: prefix }), 'allowed', action);
        const deeper = { 's3:prefix': 'pullsafe/repositories/library/' };
        assert.equal(decide(policies, { action, resource: bucketArn, context: deeper }), 'allowed');
        for (const other of ['other/', 'pullsafe-other/', '']) {
          const context = { 's3:prefix': other === '' ? [] : other };
          assert.equal(decide(policies, { action, resource: bucketArn, context }), 'implicit-deny', other);
        }
        const elsewhere = { action, resource: 'arn:aws:s3:::another-bucket', context: prefix };
        assert.equal(decide(policies, elsewhere), 'implicit-deny');
        continue;
      }
      for (const key of ['pullsafe/blobs/sha256/ab/abcd', 'pullsafe/uploads/x/state.json']) {
        assert.equal(decide(policies, { action, resource: `${bucketArn}/${key}` }), 'allowed', action);
      }
      for (const resource of [
        `${bucketArn}/other/key`,
        `${bucketArn}/pullsafe-other/key`,
        `arn:aws:s3:::another-bucket/pullsafe/key`,
        '*',
      ]) {
        assert.equal(decide(policies, { action, resource }), 'implicit-deny', `${action} on ${resource}`);
      }
    }
    const refused: AccessRequest[] = [
      { action: 's3:*', resource: '*' },
      { action: 's3:ListAllMyBuckets', resource: '*' },
      ...[
        's3:DeleteBucket',
        's3:PutBucketPolicy',
        's3:PutBucketPublicAccessBlock',
        's3:PutLifecycleConfiguration',
        's3:ListBucketMultipartUploads',
        's3:GetBucketLocation',
      ].map((action) => ({ action, resource: bucketArn })),
      ...[
        's3:PutObjectAcl',
        's3:GetObjectVersion',
        's3:DeleteObjectVersion',
        's3:ListMultipartUploadParts',
      ].map((action) => ({ action, resource: `${bucketArn}/pullsafe/blobs/x` })),
      { action: 'iam:*', resource: '*' },
      { action: 'iam:PassRole', resource: `arn:aws:iam::${account}:role/admin` },
      { action: 'sts:AssumeRole', resource: '*' },
      { action: 'secretsmanager:GetSecretValue', resource: '*' },
      { action: 'kms:Decrypt', resource: '*' },
      { action: 'ecr:GetAuthorizationToken', resource: '*' },
    ];
    for (const request of refused) {
      assert.equal(decide(policies, request), 'implicit-deny', `${request.action} on ${request.resource}`);
    }
  });

  test('the execution role pulls the image and writes logs, and cannot touch the bucket', () => {
    const policies = rolePolicies(template, roleIdOf(template, 'ExecutionRoleArn'));
    const repository = `arn:aws:ecr:${region}:${account}:repository/pullsafe`;
    assert.equal(decide(policies, { action: 'ecr:BatchGetImage', resource: repository }), 'allowed');
    assert.equal(
      decide(policies, { action: 'ecr:BatchGetImage', resource: `${repository}-x` }),
      'implicit-deny',
    );
    for (const action of ['s3:GetObject', 's3:PutObject']) {
      assert.equal(decide(policies, { action, resource: `${bucketArn}/pullsafe/x` }), 'implicit-deny');
    }
  });

  test('the upload signing key: generated by Secrets Manager, given to the tasks by ECS, read by the execution role alone', () => {
    const [keyId, key] = only(template, 'AWS::SecretsManager::Secret');
    // 48 letters and digits: one line, past the 32 characters serve needs for a key.
    assert.deepEqual(key.Properties['GenerateSecretString'], {
      ExcludePunctuation: true,
      PasswordLength: 48,
    });
    assert.doesNotMatch(
      JSON.stringify(template),
      /"SecretString"/,
      'no secret value is written in the template',
    );
    assert.equal((key as Resource & { DeletionPolicy?: string }).DeletionPolicy, 'Delete');
    assert.deepEqual(
      container.secrets,
      { PULLSAFE_SECRET: signingKeyArn },
      'ECS puts the key in PULLSAFE_SECRET',
    );
    assert.ok(!Object.keys(container.environment).some((name) => name.startsWith('PULLSAFE_SECRET')));
    assert.equal(config['secretFile'], undefined, 'serve reads PULLSAFE_SECRET only without secretFile');
    const outputs = (template as CfnTemplate & { Outputs: Record<string, { Value: Json }> }).Outputs;
    assert.deepEqual(outputs['UploadSigningSecretArn']?.Value, { Ref: keyId });

    const task = rolePolicies(template, roleIdOf(template, 'TaskRoleArn'));
    const execution = rolePolicies(template, roleIdOf(template, 'ExecutionRoleArn'));
    const request = (action: string, resource: string): AccessRequest => ({ action, resource });
    assert.equal(decide(execution, request('secretsmanager:GetSecretValue', signingKeyArn)), 'allowed');
    assert.equal(
      decide(task, request('secretsmanager:GetSecretValue', signingKeyArn)),
      'implicit-deny',
      'serve is given the key; the task role cannot read it',
    );
    for (const resource of [hubSecretArn, `${signingKeyArn}x`, '*']) {
      assert.equal(decide(execution, request('secretsmanager:GetSecretValue', resource)), 'implicit-deny');
    }
    for (const action of ['secretsmanager:PutSecretValue', 'secretsmanager:DeleteSecret']) {
      assert.equal(decide(execution, request(action, signingKeyArn)), 'implicit-deny', action);
      assert.equal(decide(task, request(action, signingKeyArn)), 'implicit-deny', action);
    }
    const secretGrants = allowedOf(execution).filter((statement) =>
      statement.actions.some((action) => action.startsWith('secretsmanager:')),
    );
    assert.deepEqual(secretGrants, [
      {
        actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        resources: [signingKeyArn],
      },
    ]);
  });
});

describe('deploy: PullsafeRegistry variants', () => {
  test('subnets without NAT: interface endpoints, HTTP, credentials from the one secret the task may read', () => {
    const app = new App();
    const stack = new Stack(app, 'NoNat');
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
      vpcId: 'vpc-0123',
      vpcCidrBlock: '10.1.0.0/16',
      availabilityZones: [`${region}a`, `${region}b`],
      isolatedSubnetIds: ['subnet-a', 'subnet-b'],
      isolatedSubnetRouteTableIds: ['rtb-a', 'rtb-b'],
    });
    const hub = secretsmanager.Secret.fromSecretCompleteArn(stack, 'Hub', hubSecretArn);
    // Known by name only: its ARN lacks the suffix Secrets Manager adds.
    const quay = secretsmanager.Secret.fromSecretNameV2(stack, 'Quay', 'pullsafe/quay');
    new PullsafeRegistry(stack, 'Registry', {
      image: ecs.ContainerImage.fromRegistry('pullsafe:test'),
      vpc,
      taskSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      interfaceEndpoints: true,
      desiredCount: 1,
      clientCidrs: ['10.0.0.0/8'],
      upstreams: [
        { name: 'docker.io', credentials: hub, anonymousPull: true },
        { name: 'ghcr.io' },
        { name: 'quay.io', credentials: quay, anonymousPull: true },
      ],
    });
    const template = Template.fromStack(stack).toJSON() as CfnTemplate;
    const assertions = Template.fromJSON(template);

    const endpoints = logicalIds(template, 'AWS::EC2::VPCEndpoint').map((id) => {
      const properties = template.Resources[id]!.Properties;
      const service = JSON.stringify(properties['ServiceName']).replace(/.*\.(\S+?)"\]\]\}$/, '$1');
      return `${String(properties['VpcEndpointType'])} ${service}`;
    });
    assert.deepEqual(endpoints.sort(), [
      'Gateway s3',
      'Interface api',
      'Interface dkr',
      'Interface logs',
      'Interface secretsmanager',
    ]);
    assertions.allResourcesProperties('AWS::EC2::VPCEndpoint', { VpcId: 'vpc-0123' });
    const [, service] = only(template, 'AWS::ECS::Service');
    for (const id of logicalIds(template, 'AWS::EC2::VPCEndpoint')) {
      assert.ok(service.DependsOn?.includes(id), `the service waits for ${id}`);
    }
    const endpointGroup = securityGroup(template, /^pullsafe interface endpoints/);
    const task = securityGroup(template, /^pullsafe tasks:/);
    const rules = securityGroupRules(template, { [endpointGroup]: 'endpoints', [task]: 'task' });
    assert.deepEqual(
      rules.filter((rule) => rule.includes('endpoints')),
      ['endpoints -> "255.255.255.255/32" icmp:252-86', 'task -> endpoints tcp:443-443'],
    );
    // One task without Valkey learns of no other task's fills: the tasks' group stays closed to itself.
    assert.deepEqual(
      rules.filter((rule) => rule.startsWith('task -> task')),
      [],
    );
    assertions.hasResourceProperties('AWS::ECS::Service', {
      DesiredCount: 1,
      NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ Subnets: ['subnet-a', 'subnet-b'] }) },
    });
    assertions.resourceCountIs('AWS::ElastiCache::ReplicationGroup', 0);
    assertions.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 80, Protocol: 'HTTP' });
    assertions.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: Match.stringLikeRegexp('load balancer'),
      SecurityGroupIngress: [Match.objectLike({ CidrIp: '10.0.0.0/8', FromPort: 80 })],
    });

    const container = containerOf(template);
    assert.deepEqual(container.command.slice(-2), ['--proxy', 'ghcr.io']);
    assert.ok(!container.command.includes('--redis'));
    assert.ok(!container.command.includes('docker.io'), 'docker.io is configured with its credentials');
    const config = serveConfigOf(container);
    const quayArn = `arn:aws:secretsmanager:${region}:${account}:secret:pullsafe/quay`;
    assert.deepEqual(config['proxy'], {
      upstreams: [
        { name: 'docker.io', credentials: { secret: hubSecretArn }, anonymousPull: true },
        { name: 'quay.io', credentials: { secret: quayArn }, anonymousPull: true },
      ],
    });

    const policies = rolePolicies(template, roleIdOf(template, 'TaskRoleArn'));
    const read = (resource: string): string =>
      decide(policies, { action: 'secretsmanager:GetSecretValue', resource });
    assert.equal(read(hubSecretArn), 'allowed');
    assert.equal(read(`${quayArn}-AbCdEf`), 'allowed', 'the named secret, with the suffix it really has');
    assert.equal(read(`${quayArn}-other-AbCdEf`), 'implicit-deny');
    assert.equal(read(`arn:aws:secretsmanager:${region}:${account}:secret:other-XyZabc`), 'implicit-deny');
    assert.equal(
      decide(policies, { action: 'secretsmanager:PutSecretValue', resource: hubSecretArn }),
      'implicit-deny',
    );
  });

  test('your own upload signing key: none is created, and the execution role alone may read yours', () => {
    const stack = new Stack(new App(), 'OwnKey');
    const ownKeyArn = `arn:aws:secretsmanager:${region}:${account}:secret:team/pullsafe-key-MnOpQr`;
    new PullsafeRegistry(stack, 'Registry', {
      image: ecs.ContainerImage.fromRegistry('pullsafe:test'),
      desiredCount: 1,
      uploadSigningSecret: secretsmanager.Secret.fromSecretCompleteArn(stack, 'Key', ownKeyArn),
      upstreams: [
        {
          name: 'docker.io',
          credentials: secretsmanager.Secret.fromSecretCompleteArn(stack, 'Hub', hubSecretArn),
          anonymousPull: true,
        },
      ],
    });
    const template = Template.fromStack(stack).toJSON() as CfnTemplate;
    assert.deepEqual(logicalIds(template, 'AWS::SecretsManager::Secret'), []);
    assert.deepEqual(containerOf(template).secrets, { PULLSAFE_SECRET: ownKeyArn });
    const task = rolePolicies(template, roleIdOf(template, 'TaskRoleArn'));
    const execution = rolePolicies(template, roleIdOf(template, 'ExecutionRoleArn'));
    const read = (policies: NamedPolicy[], resource: string): string =>
      decide(policies, { action: 'secretsmanager:GetSecretValue', resource });
    assert.equal(read(execution, ownKeyArn), 'allowed');
    assert.equal(read(execution, hubSecretArn), 'implicit-deny', 'the upstream credentials are the task’s');
    assert.equal(read(task, hubSecretArn), 'allowed');
    assert.equal(read(task, ownKeyArn), 'implicit-deny', 'the signing key is the execution role’s');
  });

  test('without NAT, the tasks reach Secrets Manager for the signing key even with no upstream credentials', () => {
    const template = synthesize({ desiredCount: 1, interfaceEndpoints: true });
    const services = logicalIds(template, 'AWS::EC2::VPCEndpoint').map((id) =>
      JSON.stringify(template.Resources[id]!.Properties['ServiceName']).replace(/.*\.(\S+?)"\]\]\}$/, '$1'),
    );
    assert.ok(services.includes('secretsmanager'), services.join(', '));
  });

  test('props a deployment could not run with are refused, saying what to change', () => {
    const hub = (stack: Stack): secretsmanager.ISecret =>
      secretsmanager.Secret.fromSecretCompleteArn(stack, 'Hub', hubSecretArn);
    const cases: [string, (stack: Stack) => Partial<PullsafeRegistryProps>, RegExp][] = [
      [
        'several tasks without Redis',
        () => ({ desiredCount: 3, redis: false }),
        /desiredCount 3 needs redis/,
      ],
      ['no task', () => ({ desiredCount: 0 }), /desiredCount must be/],
      ['a new VPC without NAT', () => ({ natGateways: 0 }), /natGateways 1 or more/],
      ['a prefix with a slash at its end', () => ({ storagePrefix: 'pullsafe/' }), /storagePrefix/],
      [
        'a drain past Fargate',
        () => ({ drainTimeout: Duration.seconds(200) }),
        /drainTimeout must be 1 to 105/,
      ],
      [
        'an upstream URL as a name',
        () => ({ upstreams: [{ name: 'https://ghcr.io' }] }),
        /registry host name/,
      ],
      [
        'an upstream twice',
        () => ({ upstreams: [{ name: 'ghcr.io' }, { name: 'ghcr.io' }] }),
        /registry host name .* each once/,
      ],
      [
        'credentials served to nobody',
        (stack) => ({ upstreams: [{ name: 'docker.io', credentials: hub(stack) }] }),
        /has credentials but not anonymousPull: true/,
      ],
    ];
    for (const [name, props, message] of cases) {
      const stack = new Stack(new App(), 'Bad');
      assert.throws(
        () =>
          new PullsafeRegistry(stack, 'Registry', {
            image: ecs.ContainerImage.fromRegistry('pullsafe:test'),
            ...props(stack),
          }),
        message,
        name,
      );
    }
  });
});

describe('deploy: the container and the examples start a real serve', () => {
  test('the task definition entry point and command serve on s3rver, and SIGTERM drains as configured', async (t) => {
    const container = containerOf(synthesize({ desiredCount: 1 }));
    const config = serveConfigOf(container);
    const s3 = await startS3rver();
    t.after(() => s3.stop());
    await using dir = await tempDir('pullsafe-deploy-');
    // The container's working folder, as the Dockerfile lays it out: dist/cli/main.js, here the source.
    mkdirSync(join(dir.path, 'dist/cli'), { recursive: true });
    symlinkSync(cliPath, join(dir.path, 'dist/cli/main.js'));
    // Two substitutions, and only these: the config file goes to this test's folder instead of /tmp, and
    // serve listens on a free loopback port instead of 0.0.0.0:5000.
    const ownConfig = join(dir.path, 'pullsafe.json');
    const swap = (arg: string): string =>
      arg
        .replaceAll(configPath, ownConfig)
        .replace(`0.0.0.0:${containerPort}`, '127.0.0.1:0')
        .replace(`s3://${bucketName}/`, `s3://${s3.bucket}/`);
    const [shell, ...rest] = [...container.entryPoint, ...container.command].map(swap);
    // What the ECS agent reads from Secrets Manager: a value as the generated secret has it.
    assert.deepEqual(Object.keys(container.secrets), ['PULLSAFE_SECRET']);
    const uploadSigningKey = randomBytes(36).toString('base64url');
    const child = spawn(shell!, rest, {
      cwd: dir.path,
      env: {
        PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
        ...container.environment,
        PULLSAFE_SECRET: uploadSigningKey,
        ...s3.env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let logs = '';
    child.stderr.on('data', (chunk: Buffer) => (logs += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    t.after(() => void child.kill('SIGKILL'));

    let url: string | undefined;
    for (const deadline = Date.now() + 20_000; url === undefined && Date.now() < deadline;) {
      url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*"msg":"listening"/.exec(logs)?.[1];
      if (url === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(child.exitCode, null, `serve exited before listening:\n${logs}`);
    }
    assert.ok(url, `serve listened within 20 s:\n${logs}`);
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
    assert.match(readFileSync(ownConfig, 'utf8'), /"shutdownDelay":"5s"/);
    assert.match(logs, new RegExp(`"storage":"s3://${s3.bucket}/pullsafe`));
    // Upload locations are signed with the key from PULLSAFE_SECRET. `ns=` of a registry the cache does not
    // proxy reaches a hosted repository, which loopback lets push without users.
    const upload = await fetch(`${url}/v2/team/app/blobs/uploads/?ns=example.com`, { method: 'POST' });
    assert.equal(upload.status, 202, await upload.text());
    const location = upload.headers.get('location') ?? '';
    assert.match(location, /\?_sig=[\w-]{43}$/, 'the upload location is signed');
    assert.equal((await fetch(`${url}${location}&ns=example.com`)).status, 204, 'and the signature verifies');
    const forged = location.replace(/_sig=./, (sig) => `_sig=${sig.endsWith('A') ? 'B' : 'A'}`);
    const refused = await fetch(`${url}${forged}&ns=example.com`);
    assert.equal(refused.status, 404, 'an altered signature is refused');
    assert.match(await refused.text(), /BLOB_UPLOAD_UNKNOWN/);

    const stoppedAt = Date.now();
    child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await fetch(`${url}/readyz`)).status, 503, 'draining: /readyz says so at once');
    const code = await Promise.race([
      exited,
      new Promise((resolve) => setTimeout(() => resolve('hung'), 15_000)),
    ]);
    assert.equal(code, 0, logs);
    const took = (Date.now() - stoppedAt) / 1000;
    const delay = seconds(config['shutdownDelay']);
    assert.ok(took >= delay - 0.5 && took < delay + 5, `stopped after ${took} s, shutdownDelay ${delay} s`);
  });

  test('every flag the deployment passes is one serve has', async () => {
    const flags = await serveFlags();
    assertFlagsKnown(containerOf(synthesizeTemplate() as CfnTemplate).command, flags, 'the ECS task');
    const [deployment] = kubernetesObjects().filter((object) => object['kind'] === 'Deployment');
    const args = (deployment!['spec'] as Json as { template: { spec: { containers: { args: string[] }[] } } })
      .template.spec.containers[0]!.args;
    assertFlagsKnown(args, flags, 'deploy/kubernetes/pullsafe.yaml');
  });
});

function kubernetesObjects(): Record<string, Json>[] {
  const text = readFileSync(join(root, 'deploy/kubernetes/pullsafe.yaml'), 'utf8');
  return parseAllDocuments(text).map((document) => {
    assert.deepEqual(document.errors, []);
    return document.toJS() as Record<string, Json>;
  });
}

/** Kubernetes memory quantities: 512Mi, 1Gi, 300M, bytes. */
function mebibytes(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G)?$/.exec(quantity);
  assert.ok(match, `a memory quantity: ${quantity}`);
  const factor: Record<string, number> = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, K: 1e3, M: 1e6, G: 1e9 };
  return (Number(match[1]) * (match[2] ? factor[match[2]]! : 1)) / 1024 ** 2;
}

describe('deploy: the Kubernetes example', () => {
  const objects = kubernetesObjects();
  const find = (kind: string): Record<string, Json> => {
    const found = objects.filter((object) => object['kind'] === kind);
    assert.equal(found.length, 1, `one ${kind}`);
    return found[0]!;
  };
  type Pod = {
    serviceAccountName: string;
    terminationGracePeriodSeconds: number;
    containers: {
      args: string[];
      ports: { name: string; containerPort: number }[];
      readinessProbe: { httpGet: { path: string; port: string } };
      livenessProbe: { httpGet: { path: string; port: string } };
      lifecycle?: unknown;
      resources: { limits: { memory: string } };
      securityContext: { readOnlyRootFilesystem: boolean };
      volumeMounts: { name: string; mountPath: string }[];
    }[];
    volumes: { name: string; configMap?: { name: string }; secret?: { secretName: string } }[];
  };
  const deployment = find('Deployment') as { spec: { replicas: number; template: { spec: Pod } } };
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0]!;

  test('replicas probe /readyz and /healthz, stop without preStop, and get more than 300 MiB', () => {
    assert.ok(deployment.spec.replicas >= 2);
    assert.equal(container.readinessProbe.httpGet.path, '/readyz');
    assert.equal(container.livenessProbe.httpGet.path, '/healthz');
    assert.equal(container.lifecycle, undefined, 'shutdownDelay replaces a preStop sleep');
    assert.ok(mebibytes(container.resources.limits.memory) > 300, container.resources.limits.memory);
    assert.deepEqual(container.ports, [{ name: 'registry', containerPort }]);
    const service = find('Service') as { spec: { ports: { targetPort: string }[] } };
    assert.equal(service.spec.ports[0]!.targetPort, 'registry');
  });

  test("the ConfigMap is a valid serve config on S3, and the grace period covers serve's shutdown", () => {
    const configMap = find('ConfigMap') as { metadata: { name: string }; data: Record<string, string> };
    const [, configFlag, configFile] = container.args;
    assert.equal(configFlag, '--config');
    const mount = container.volumeMounts.find((item) => configFile!.startsWith(`${item.mountPath}/`));
    assert.ok(mount, `--config ${configFile} is in a mounted volume`);
    const volume = pod.volumes.find((item) => item.name === mount.name);
    assert.equal(volume?.configMap?.name, configMap.metadata.name);
    const key = configFile!.slice(mount.mountPath.length + 1);
    const config = validateServeConfig(parseAllDocuments(configMap.data[key]!)[0]!.toJS(), key);
    assert.match(config.storage, /^s3:\/\/[^/]+\/pullsafe$/);
    assert.equal(config.listen, `0.0.0.0:${containerPort}`);
    const shutdown = seconds(config.shutdownDelay) + seconds(config.shutdownTimeout);
    assert.ok(pod.terminationGracePeriodSeconds > shutdown, `grace ${pod.terminationGracePeriodSeconds} s`);
    assert.ok(container.securityContext.readOnlyRootFilesystem);
    assert.ok(
      container.volumeMounts.some((item) => item.mountPath === '/tmp'),
      'fills spool under /tmp',
    );
  });

  test('every replica reads the one upload signing key from the Secret, whose placeholder serve refuses', async () => {
    const secret = find('Secret') as {
      metadata: { name: string; namespace: string };
      stringData: Record<string, string>;
    };
    const at = container.args.indexOf('--secret-file');
    assert.ok(at > 0, 'the Deployment passes --secret-file');
    const file = container.args[at + 1]!;
    const mount = container.volumeMounts.find((item) => file.startsWith(`${item.mountPath}/`));
    assert.ok(mount, `--secret-file ${file} is in a mounted volume`);
    const volume = pod.volumes.find((item) => item.name === mount.name);
    assert.equal(volume?.secret?.secretName, secret.metadata.name);
    const key = file.slice(mount.mountPath.length + 1);
    const placeholder = secret.stringData[key];
    assert.ok(placeholder !== undefined, `the Secret holds ${key}`);

    // The command the example and docs/deploy.md give makes this Secret, with this key.
    const create = `kubectl create secret generic ${secret.metadata.name} --namespace ${secret.metadata.namespace} --from-literal=${key}=$(openssl rand -base64 32)`;
    assert.ok(readFileSync(join(root, 'deploy/kubernetes/pullsafe.yaml'), 'utf8').includes(create), create);
    assert.ok(readFileSync(join(root, 'docs/deploy.md'), 'utf8').includes(create), create);

    // A placeholder left in place stops serve, instead of signing with a key everyone can read.
    await using dir = await tempDir('pullsafe-k8s-key-');
    writeFileSync(join(dir.path, key), placeholder);
    const run = await runCli(
      [
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--storage',
        join(dir.path, 'data'),
        '--secret-file',
        join(dir.path, key),
      ],
      { timeoutMs: 30_000 },
    );
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /keys need at least 32/);
  });

  test('S3 through IRSA: the pods run as a service account annotated with a role', () => {
    const account = find('ServiceAccount') as {
      metadata: { name: string; annotations: Record<string, string> };
    };
    assert.equal(pod.serviceAccountName, account.metadata.name);
    assert.match(account.metadata.annotations['eks.amazonaws.com/role-arn']!, /^arn:aws:iam::[^:]+:role\/.+/);
  });
});

describe('deploy: the Dockerfile', () => {
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const instructions = dockerfile
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.trim().split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
  const final = instructions.slice(instructions.findLastIndex((item) => item.keyword === 'FROM'));
  const last = (keyword: string): string | undefined =>
    final.findLast((item) => item.keyword === keyword)?.args;

  test('builds with npm ci and tsc in one stage, runs serve on slim Node 24 in another', () => {
    assert.ok(instructions.filter((item) => item.keyword === 'FROM').length >= 2, 'multi-stage');
    assert.match(dockerfile, /ARG NODE_IMAGE=\S*node:24-\S*slim/);
    assert.ok(instructions.some((item) => item.keyword === 'RUN' && /\bnpm ci\b/.test(item.args)));
    assert.ok(instructions.some((item) => item.keyword === 'RUN' && /npm run build/.test(item.args)));
    // The ECS entry point runs `node dist/cli/main.js` relative to the image's working folder.
    assert.equal(last('WORKDIR'), '/app');
    assert.equal(last('ENTRYPOINT'), '["node", "dist/cli/main.js"]');
    assert.match(last('CMD') ?? '', /^\["serve",/);
    assert.equal(last('EXPOSE'), String(containerPort));
  });

  test('runs as a numeric non-root user, with a HEALTHCHECK on /readyz', () => {
    const user = last('USER');
    assert.match(user ?? '', /^[1-9]\d*(:\d+)?$/, `USER ${user}: numeric and not root`);
    assert.match(last('HEALTHCHECK') ?? '', new RegExp(`127\\.0\\.0\\.1:${containerPort}/readyz`));
  });

  test('.dockerignore lets in what the build copies and nothing else', () => {
    const ignore = readFileSync(join(root, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith('#'));
    assert.equal(ignore[0], '*', 'everything is ignored first');
    const allowed = ignore
      .filter((line) => line.startsWith('!'))
      .map((line) => line.slice(1).replace(/\/$/, ''));
    const copied = instructions
      .filter((item) => item.keyword === 'COPY' && !item.args.startsWith('--from'))
      .flatMap((item) => item.args.split(/\s+/).slice(0, -1))
      .map((source) => source.replace(/\/$/, ''));
    assert.deepEqual([...copied].sort(), [...allowed].sort());
  });
});

/**
 * pullsafe on AWS: `pullsafe serve` as ECS Fargate tasks behind an Application Load Balancer, its content in
 * an S3 bucket, and Valkey on ElastiCache when several tasks must act as one registry. docs/deploy.md says
 * how to deploy it, what it costs and how to point clients at it.
 *
 * Synthesis needs neither AWS credentials nor the network: nothing is looked up, and the stack is
 * environment-agnostic (the region and account are CloudFormation's pseudo parameters).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  App,
  CfnOutput,
  CfnParameter,
  DefaultStackSynthesizer,
  Duration,
  RemovalPolicy,
  Size,
  Stack,
  type StackProps,
} from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

/** The port `serve` listens on in the container. */
export const containerPort = 5000;
/** Where the container's entry point writes the serve config it is given in `PULLSAFE_CONFIG_JSON`. */
export const configPath = '/tmp/pullsafe.json';
/** After SIGTERM, how long `/readyz` answers 503 before the listener closes (serve's `shutdownDelay`). */
const shutdownDelaySeconds = 5;
/** Fargate's longest wait between SIGTERM and SIGKILL. */
const maxStopTimeoutSeconds = 120;
/** Time the stop timeout leaves after shutdownDelay + shutdownTimeout, for the process to exit. */
const exitMarginSeconds = 10;

export interface UpstreamProps {
  /** The registry as image references name it: `docker.io`, `ghcr.io`, `quay.io`, `public.ecr.aws`. */
  name: string;
  /** The registry's API when it is not `https://NAME` (`https://registry-1.docker.io` for docker.io). */
  url?: string;
  /**
   * A Secrets Manager secret holding `{"username","password"}` for this registry. The task role may read
   * these secrets and no other.
   */
  credentials?: secretsmanager.ISecret;
  /**
   * Whether clients without credentials may pull what this upstream serves. The construct configures no
   * users, so an upstream with credentials must say `true` (fit for a public registry's content fetched with
   * an account, such as Docker Hub's higher pull limit); pullsafe would otherwise serve it to nobody.
   */
  anonymousPull?: boolean;
}

export interface PullsafeRegistryProps {
  /** pullsafe's image (the repository's Dockerfile), e.g. `ecs.ContainerImage.fromEcrRepository(repo, tag)`. */
  image: ecs.ContainerImage;
  /** The VPC to run in; default a new one over two zones with public and private subnets. */
  vpc?: ec2.IVpc;
  /** NAT gateways of the new VPC (ignored with `vpc`); the tasks reach the upstream registries through them. */
  natGateways?: number;
  /** Subnets of the tasks, Valkey and the interface endpoints; default the private subnets with egress. */
  taskSubnets?: ec2.SubnetSelection;
  /** Tasks; default 2. More than one needs `redis`. */
  desiredCount?: number;
  /** Valkey on ElastiCache, which the tasks share as `--redis`; default on when desiredCount > 1. */
  redis?: boolean;
  /** Valkey's node type; default cache.t4g.micro (two nodes in two zones, with automatic failover). */
  redisNodeType?: string;
  /** Registries served as a pull-through cache; default docker.io, anonymously. */
  upstreams?: UpstreamProps[];
  /** The folder of the bucket pullsafe keeps its content in; default `pullsafe`. */
  storagePrefix?: string;
  /**
   * An ACM certificate for the name clients use: the load balancer then listens with HTTPS on 443, which
   * Fargate and CodeBuild need. Without it, plain HTTP on 80 (containerd, Docker and podman on EC2 only).
   */
  certificateArn?: string;
  /** The name clients use, for the Endpoint output (the certificate's name); default the load balancer's. */
  domainName?: string;
  /** Whether the load balancer has public addresses; default false (reachable from the VPC only). */
  internetFacing?: boolean;
  /** Who may connect to the load balancer; default the VPC's CIDR. */
  clientCidrs?: string[];
  /** An S3 gateway endpoint in the task subnets' route tables (free; bytes to S3 bypass NAT); default true. */
  s3GatewayEndpoint?: boolean;
  /**
   * Interface endpoints for ECR (api, dkr), CloudWatch Logs and Secrets Manager (the upload signing key,
   * upstream credentials), for subnets without NAT; default false. The upstream registries still need a
   * route (a proxy, a transit gateway to a shared egress VPC).
   */
  interfaceEndpoints?: boolean;
  /** Task size; default 1024 CPU units and 2048 MiB. */
  cpu?: number;
  memoryLimitMiB?: number;
  /** X86_64 (the default) or ARM64 (Graviton, about 20% cheaper), as the image was built. */
  cpuArchitecture?: ecs.CpuArchitecture;
  /** Fargate's local disk, where pull-through fills are spooled; default 50 GiB (20 are free). */
  ephemeralStorageGiB?: number;
  /** ALB idle timeout: a client may wait this long without a byte (large layers, long commits); default 900 s. */
  idleTimeout?: Duration;
  /**
   * How long a leaving task's transfers may go on: the target group's deregistration delay and serve's
   * `shutdownTimeout`; default 60 s, at most 105 s (Fargate stops a task 120 s after SIGTERM).
   */
  drainTimeout?: Duration;
  /** Retention of the log group; default one month. */
  logRetention?: logs.RetentionDays;
  /**
   * The key that signs upload locations, given to every task as `PULLSAFE_SECRET` (what serve's
   * `--secret-file` holds): one key of 32 characters or more per line, the first signs, every one verifies.
   * Default a new secret of 48 random letters and digits. Only the execution role may read it, to hand it
   * to the container at start; the value is in neither the template nor the task definition.
   */
  uploadSigningSecret?: secretsmanager.ISecret;
}

/** pullsafe serve on ECS Fargate behind an ALB, on S3, with Valkey for several tasks. */
export class PullsafeRegistry extends Construct {
  readonly vpc: ec2.IVpc;
  readonly bucket: s3.Bucket;
  readonly storageUrl: string;
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  readonly targetGroup: elbv2.ApplicationTargetGroup;
  readonly service: ecs.FargateService;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly taskRole: iam.Role;
  readonly taskSecurityGroup: ec2.SecurityGroup;
  readonly logGroup: logs.LogGroup;
  /** The key every task signs and checks upload locations with. */
  readonly uploadSigningSecret: secretsmanager.ISecret;
  /** `redis://HOST:6379` of the Valkey primary, when there is one. */
  readonly redisUrl: string | undefined;
  /** The URL clients pull from: `https://NAME` or `http://NAME:80`. */
  readonly endpoint: string;
  readonly upstreams: UpstreamProps[];

  constructor(scope: Construct, id: string, props: PullsafeRegistryProps) {
    super(scope, id);
    const settings = checkedSettings(props);
    this.upstreams = settings.upstreams;

    this.vpc =
      props.vpc ??
      new ec2.Vpc(this, 'Vpc', {
        maxAzs: 2,
        natGateways: settings.natGateways,
        restrictDefaultSecurityGroup: false,
        subnetConfiguration: [
          { name: 'public', subnetType: ec2.SubnetType.PUBLIC },
          { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        ],
      });
    const taskSubnets = props.taskSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };

    this.bucket = this.createBucket(settings.prefix);
    this.storageUrl = `s3://${this.bucket.bucketName}/${settings.prefix}`;
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.taskSecurityGroup = new ec2.SecurityGroup(this, 'TaskSecurityGroup', {
      vpc: this.vpc,
      description: 'pullsafe tasks: in from the load balancer on the container port only',
      allowAllOutbound: false,
    });
    this.taskSecurityGroup.addEgressRule(
      ec2.Peer.anyIpv4(),
      ec2.Port.tcp(443),
      'HTTPS: upstream registries, S3, ECR, CloudWatch Logs, Secrets Manager',
    );
    this.redisUrl = settings.redis ? this.createRedis(taskSubnets, props.redisNodeType) : undefined;
    if (this.redisUrl !== undefined) {
      // A task waiting on a fill another task is doing streams it from that task's own address (found
      // through Valkey) instead of waiting for the commit; without Valkey no task learns of another's fills.
      this.taskSecurityGroup.addIngressRule(
        this.taskSecurityGroup,
        ec2.Port.tcp(containerPort),
        'pullsafe tasks: fills streamed between tasks',
      );
      this.taskSecurityGroup.addEgressRule(
        this.taskSecurityGroup,
        ec2.Port.tcp(containerPort),
        'pullsafe tasks: fills streamed between tasks',
      );
    }

    this.taskRole = this.createTaskRole(settings.prefix, settings.upstreams);
    this.uploadSigningSecret = props.uploadSigningSecret ?? this.createUploadSigningSecret();
    this.taskDefinition = this.createTaskDefinition(props, settings);

    const cluster = new ecs.Cluster(this, 'Cluster', { vpc: this.vpc });
    this.service = new ecs.FargateService(this, 'Service', {
      cluster,
      taskDefinition: this.taskDefinition,
      desiredCount: settings.desiredCount,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { rollback: true },
      healthCheckGracePeriod: Duration.seconds(60),
      vpcSubnets: taskSubnets,
      securityGroups: [this.taskSecurityGroup],
      assignPublicIp: false,
    });

    this.loadBalancer = this.createLoadBalancer(props);
    this.targetGroup = this.listen(props, settings.drainSeconds);
    const host = props.domainName ?? this.loadBalancer.loadBalancerDnsName;
    this.endpoint = props.certificateArn !== undefined ? `https://${host}` : `http://${host}:80`;
    this.addEndpoints(props, taskSubnets);
  }

  /** The container's arguments after `node dist/cli/main.js`. */
  serveArguments(): string[] {
    const args = ['serve', '--config', configPath, '--listen', `0.0.0.0:${containerPort}`];
    args.push('--storage', this.storageUrl);
    for (const upstream of this.upstreams) {
      if (upstream.credentials !== undefined) continue;
      args.push('--proxy', upstream.url !== undefined ? `${upstream.name}=${upstream.url}` : upstream.name);
    }
    if (this.redisUrl !== undefined) args.push('--redis', this.redisUrl);
    return args;
  }

  private createBucket(prefix: string): s3.Bucket {
    return new s3.Bucket(this, 'Storage', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
      // docs/storage.md: multipart uploads a killed process never recorded, and uploads no server came back
      // to, cost storage until this rule removes them.
      lifecycleRules: [
        {
          id: 'pullsafe-abandoned-uploads',
          prefix: `${prefix}/uploads/`,
          abortIncompleteMultipartUploadAfter: Duration.days(1),
          expiration: Duration.days(2),
        },
      ],
    });
  }

  /** Exactly what the S3 driver calls (docs/storage.md, Permissions), on this bucket and prefix alone. */
  private createTaskRole(prefix: string, upstreams: UpstreamProps[]): iam.Role {
    const role = new iam.Role(this, 'TaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'pullsafe serve: its bucket and its upstream credentials, nothing else',
    });
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ListTheStoragePrefix',
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${prefix}/*`] } },
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadWriteTheStoragePrefix',
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
        resources: [this.bucket.arnForObjects(`${prefix}/*`)],
      }),
    );
    const secrets = upstreams.flatMap((upstream) => (upstream.credentials ? [upstream.credentials] : []));
    if (secrets.length > 0) {
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'ReadUpstreamCredentials',
          actions: ['secretsmanager:GetSecretValue'],
          resources: secrets.map(secretArnForPolicies),
        }),
      );
    }
    return role;
  }

  private createUploadSigningSecret(): secretsmanager.Secret {
    return new secretsmanager.Secret(this, 'UploadSigningKey', {
      description: 'pullsafe: the key that signs upload locations, shared by every serve task',
      generateSecretString: { passwordLength: 48, excludePunctuation: true },
      // Deleted with the stack: the key guards upload locations for at most uploads.maxAge and nothing
      // stored depends on it, so a kept copy would be a key of no registry (and a monthly charge).
      removalPolicy: RemovalPolicy.DESTROY,
    });
  }

  private createTaskDefinition(
    props: PullsafeRegistryProps,
    settings: CheckedSettings,
  ): ecs.FargateTaskDefinition {
    const definition = new ecs.FargateTaskDefinition(this, 'Task', {
      cpu: props.cpu ?? 1024,
      memoryLimitMiB: props.memoryLimitMiB ?? 2048,
      ephemeralStorageGiB: props.ephemeralStorageGiB ?? 50,
      taskRole: this.taskRole,
      runtimePlatform: {
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
        cpuArchitecture: props.cpuArchitecture ?? ecs.CpuArchitecture.X86_64,
      },
    });
    const config = serveConfig(settings, this.upstreams);
    definition.addContainer('pullsafe', {
      image: props.image,
      essential: true,
      // The config file is given as an environment variable (Fargate mounts no files); the entry point
      // writes it where `--config` reads it, then becomes pullsafe.
      entryPoint: [
        'sh',
        '-c',
        `umask 077 && printf '%s' "$PULLSAFE_CONFIG_JSON" > ${configPath} && exec node dist/cli/main.js "$@"`,
        'pullsafe',
      ],
      command: this.serveArguments(),
      environment: {
        PULLSAFE_CONFIG_JSON: Stack.of(this).toJsonString(config),
        AWS_REGION: Stack.of(this).region,
      },
      // The ECS agent reads the secret with the execution role when the task starts; the task role cannot.
      secrets: { PULLSAFE_SECRET: ecs.Secret.fromSecretsManager(this.uploadSigningSecret) },
      portMappings: [{ containerPort, protocol: ecs.Protocol.TCP }],
      stopTimeout: Duration.seconds(shutdownDelaySeconds + settings.drainSeconds + exitMarginSeconds),
      logging: ecs.LogDrivers.awsLogs({
        logGroup: this.logGroup,
        streamPrefix: 'pullsafe',
        // A slow CloudWatch must not block serve's writes to stderr.
        mode: ecs.AwsLogDriverMode.NON_BLOCKING,
        maxBufferSize: Size.mebibytes(25),
      }),
    });
    return definition;
  }

  private createRedis(subnets: ec2.SubnetSelection, nodeType: string | undefined): string {
    const securityGroup = new ec2.SecurityGroup(this, 'RedisSecurityGroup', {
      vpc: this.vpc,
      description: 'pullsafe Valkey: in from the pullsafe tasks on 6379 only',
      allowAllOutbound: false,
    });
    securityGroup.addIngressRule(this.taskSecurityGroup, ec2.Port.tcp(6379), 'pullsafe tasks');
    this.taskSecurityGroup.addEgressRule(securityGroup, ec2.Port.tcp(6379), 'Valkey');
    const subnetGroup = new elasticache.CfnSubnetGroup(this, 'RedisSubnets', {
      description: 'pullsafe Valkey',
      subnetIds: this.vpc.selectSubnets(subnets).subnetIds,
    });
    const group = new elasticache.CfnReplicationGroup(this, 'Redis', {
      replicationGroupDescription: 'pullsafe: coordination of the serve tasks',
      engine: 'valkey',
      engineVersion: '8.0',
      cacheNodeType: nodeType ?? 'cache.t4g.micro',
      numCacheClusters: 2,
      automaticFailoverEnabled: true,
      multiAzEnabled: true,
      atRestEncryptionEnabled: true,
      transitEncryptionEnabled: false,
      port: 6379,
      cacheSubnetGroupName: subnetGroup.ref,
      securityGroupIds: [securityGroup.securityGroupId],
    });
    return `redis://${group.attrPrimaryEndPointAddress}:6379`;
  }

  private createLoadBalancer(props: PullsafeRegistryProps): elbv2.ApplicationLoadBalancer {
    const port = listenerPort(props);
    const securityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: this.vpc,
      description: `pullsafe load balancer: in from clients on ${port}, out to the tasks only`,
      allowAllOutbound: false,
    });
    for (const cidr of props.clientCidrs ?? [this.vpc.vpcCidrBlock]) {
      securityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(port), 'registry clients');
    }
    return new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: this.vpc,
      internetFacing: props.internetFacing ?? false,
      securityGroup,
      idleTimeout: props.idleTimeout ?? Duration.seconds(900),
      dropInvalidHeaderFields: true,
    });
  }

  /** The listener, and the target group of the tasks: healthy while `/readyz` says so. */
  private listen(props: PullsafeRegistryProps, drainSeconds: number): elbv2.ApplicationTargetGroup {
    const targetGroup = new elbv2.ApplicationTargetGroup(this, 'Targets', {
      vpc: this.vpc,
      port: containerPort,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targetType: elbv2.TargetType.IP,
      deregistrationDelay: Duration.seconds(drainSeconds),
      healthCheck: {
        path: '/readyz',
        healthyHttpCodes: '200',
        interval: Duration.seconds(10),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 2,
      },
    });
    targetGroup.addTarget(this.service);
    const https = props.certificateArn !== undefined;
    this.loadBalancer.addListener(https ? 'Https' : 'Http', {
      port: listenerPort(props),
      open: false,
      defaultTargetGroups: [targetGroup],
      ...(https
        ? {
            protocol: elbv2.ApplicationProtocol.HTTPS,
            certificates: [elbv2.ListenerCertificate.fromArn(props.certificateArn!)],
            sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
          }
        : { protocol: elbv2.ApplicationProtocol.HTTP }),
    });
    return targetGroup;
  }

  private addEndpoints(props: PullsafeRegistryProps, subnets: ec2.SubnetSelection): void {
    // The tasks start once their routes to AWS exist (without NAT they have no other).
    if (props.s3GatewayEndpoint ?? true) {
      const endpoint = this.vpc.addGatewayEndpoint('S3Endpoint', {
        service: ec2.GatewayVpcEndpointAwsService.S3,
        subnets: [subnets],
      });
      this.service.node.addDependency(endpoint);
    }
    if (!(props.interfaceEndpoints ?? false)) return;
    const securityGroup = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
      vpc: this.vpc,
      description: 'pullsafe interface endpoints: in from the pullsafe tasks on 443 only',
      allowAllOutbound: false,
    });
    securityGroup.addIngressRule(this.taskSecurityGroup, ec2.Port.tcp(443), 'pullsafe tasks');
    const services: [string, ec2.InterfaceVpcEndpointAwsService][] = [
      ['EcrApiEndpoint', ec2.InterfaceVpcEndpointAwsService.ECR],
      ['EcrDockerEndpoint', ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER],
      ['LogsEndpoint', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
      ['SecretsManagerEndpoint', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
    ];
    for (const [id, service] of services) {
      const endpoint = this.vpc.addInterfaceEndpoint(id, {
        service,
        subnets,
        securityGroups: [securityGroup],
        open: false,
      });
      this.service.node.addDependency(endpoint);
    }
  }
}

/**
 * A secret known by name only has an ARN without the six characters Secrets Manager appends; a policy must
 * match them.
 */
function secretArnForPolicies(secret: secretsmanager.ISecret): string {
  return secret.secretFullArn ?? `${secret.secretArn}-??????`;
}

function listenerPort(props: PullsafeRegistryProps): number {
  return props.certificateArn !== undefined ? 443 : 80;
}

interface CheckedSettings {
  desiredCount: number;
  redis: boolean;
  prefix: string;
  drainSeconds: number;
  natGateways: number;
  upstreams: UpstreamProps[];
}

/** The props a deployment could not run with, refused at synthesis with what to change. */
function checkedSettings(props: PullsafeRegistryProps): CheckedSettings {
  const desiredCount = props.desiredCount ?? 2;
  if (!Number.isInteger(desiredCount) || desiredCount < 1) {
    throw new Error(`PullsafeRegistry: desiredCount must be a whole number of tasks, 1 or more`);
  }
  const redis = props.redis ?? desiredCount > 1;
  if (desiredCount > 1 && !redis) {
    throw new Error(
      `PullsafeRegistry: desiredCount ${desiredCount} needs redis: true (tasks on one bucket without Redis ` +
        'do not share uploads, fills or locks); or run one task',
    );
  }
  const prefix = props.storagePrefix ?? 'pullsafe';
  if (!/^[A-Za-z0-9!_.*'()-]+(\/[A-Za-z0-9!_.*'()-]+)*$/.test(prefix)) {
    throw new Error(
      `PullsafeRegistry: storagePrefix ${JSON.stringify(prefix)} must be folder names (letters, digits, ` +
        "!_.*'()-) between single slashes, without a leading or trailing slash",
    );
  }
  const drainSeconds = props.drainTimeout?.toSeconds() ?? 60;
  const longest = maxStopTimeoutSeconds - shutdownDelaySeconds - exitMarginSeconds;
  if (drainSeconds < 1 || drainSeconds > longest) {
    throw new Error(
      `PullsafeRegistry: drainTimeout must be 1 to ${longest} s: Fargate kills a task ` +
        `${maxStopTimeoutSeconds} s after SIGTERM, and serve first waits ${shutdownDelaySeconds} s`,
    );
  }
  const natGateways = props.natGateways ?? 1;
  if (props.vpc === undefined && !(Number.isInteger(natGateways) && natGateways >= 1)) {
    throw new Error(
      'PullsafeRegistry: a new VPC needs natGateways 1 or more, the way its tasks reach the upstream ' +
        'registries; for subnets without NAT, pass your vpc (with another route out) and interfaceEndpoints',
    );
  }
  const upstreams = props.upstreams ?? [{ name: 'docker.io' }];
  const names = new Set<string>();
  for (const upstream of upstreams) {
    if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?$/.test(upstream.name) || names.has(upstream.name)) {
      throw new Error(
        `PullsafeRegistry: upstream ${JSON.stringify(upstream.name)} must be a registry host name ` +
          '(docker.io, ghcr.io), each once',
      );
    }
    names.add(upstream.name);
    if (upstream.credentials !== undefined && upstream.anonymousPull !== true) {
      throw new Error(
        `PullsafeRegistry: upstream ${upstream.name} has credentials but not anonymousPull: true; the ` +
          'deployment configures no users, so pullsafe would serve it to nobody',
      );
    }
  }
  return { desiredCount, redis, prefix, drainSeconds, natGateways, upstreams };
}

/** serve's config file: what flags cannot say (upstream credentials, shutdown timing). */
function serveConfig(settings: CheckedSettings, upstreams: UpstreamProps[]): Record<string, unknown> {
  const withCredentials = upstreams.filter((upstream) => upstream.credentials !== undefined);
  return {
    shutdownDelay: `${shutdownDelaySeconds}s`,
    shutdownTimeout: `${settings.drainSeconds}s`,
    ...(withCredentials.length > 0
      ? {
          proxy: {
            upstreams: withCredentials.map((upstream) => ({
              name: upstream.name,
              ...(upstream.url !== undefined ? { url: upstream.url } : {}),
              credentials: { secret: upstream.credentials!.secretArn },
              anonymousPull: true,
            })),
          },
        }
      : {}),
  };
}

/**
 * The stack of the checked-in template (deploy/cloudformation/pullsafe.template.json): a new VPC, two
 * tasks with Valkey, HTTPS with the given certificate, docker.io as the upstream. The image, certificate and
 * name are parameters; everything else is a prop of PullsafeRegistry for CDK users.
 */
export class PullsafeStack extends Stack {
  readonly registry: PullsafeRegistry;

  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, id, {
      description: 'pullsafe: a pull-through cache and registry on ECS Fargate, S3 and Valkey',
      analyticsReporting: false,
      synthesizer: new DefaultStackSynthesizer({ generateBootstrapVersionRule: false }),
      ...props,
    });
    const repository = new CfnParameter(this, 'ImageRepository', {
      description: 'ECR repository (in this account and region) holding the pullsafe image',
      default: 'pullsafe',
    });
    const tag = new CfnParameter(this, 'ImageTag', { description: 'Tag of the pullsafe image' });
    const certificate = new CfnParameter(this, 'CertificateArn', {
      description: 'ACM certificate for DomainName (Fargate and CodeBuild pull over HTTPS only)',
      allowedPattern: '^arn:aws[a-z-]*:acm:.+',
    });
    const domainName = new CfnParameter(this, 'DomainName', {
      description: 'The name clients use for the cache (point it at the LoadBalancerDnsName output)',
      allowedPattern: '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$',
    });
    const image = ecs.ContainerImage.fromEcrRepository(
      ecr.Repository.fromRepositoryName(this, 'Image', repository.valueAsString),
      tag.valueAsString,
    );
    this.registry = new PullsafeRegistry(this, 'Registry', {
      image,
      certificateArn: certificate.valueAsString,
      domainName: domainName.valueAsString,
    });
    new CfnOutput(this, 'Endpoint', { value: this.registry.endpoint });
    new CfnOutput(this, 'LoadBalancerDnsName', { value: this.registry.loadBalancer.loadBalancerDnsName });
    new CfnOutput(this, 'BucketName', { value: this.registry.bucket.bucketName });
    new CfnOutput(this, 'UploadSigningSecretArn', { value: this.registry.uploadSigningSecret.secretArn });
    new CfnOutput(this, 'ClientConfigCommand', {
      value: `pullsafe client-config --endpoint ${this.registry.endpoint} --proxy docker.io`,
    });
  }
}

/** The CloudFormation template of PullsafeStack, synthesized in a temporary folder. */
export function synthesizeTemplate(): Record<string, unknown> {
  const outdir = mkdtempSync(join(tmpdir(), 'pullsafe-cdk-'));
  try {
    const app = new App({ outdir });
    const stack = new PullsafeStack(app, 'Pullsafe');
    return app.synth().getStackArtifact(stack.artifactId).template as Record<string, unknown>;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

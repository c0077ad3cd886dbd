/**
 * Every AWS operation doctor may call, each with the SDK command class that carries it out. The map is
 * both the allow-list (all read-only; anything else is refused) and the source of each call's types: a
 * call's input and output are the SDK command's own, so an operation missing here does not compile, and
 * none can be allowed without being typed. Modules load on first use: nothing of the SDK is read until
 * doctor calls AWS.
 */
import type { ImageConfigPlatform } from './aws.ts';

const ecs = () => import('@aws-sdk/client-ecs');
const ec2 = () => import('@aws-sdk/client-ec2');
const iam = () => import('@aws-sdk/client-iam');
const ecr = () => import('@aws-sdk/client-ecr');
const secretsmanager = () => import('@aws-sdk/client-secrets-manager');
const ssm = () => import('@aws-sdk/client-ssm');
const logs = () => import('@aws-sdk/client-cloudwatch-logs');
const codebuild = () => import('@aws-sdk/client-codebuild');
const sts = () => import('@aws-sdk/client-sts');

/** What every SDK v3 command class has in common, as far as doctor needs it. */
interface SdkCommand<Input extends object, Output extends object> {
  readonly input: Input;
  resolveMiddleware(...args: never[]): (args: never) => Promise<{ output: Output }>;
}
export type CommandClass = new (input: never) => SdkCommand<object, object>;

/** An operation sent as one SDK command. */
export interface SdkOperation<Command extends CommandClass> {
  readonly kind: 'sdk';
  readonly command: () => Promise<Command>;
}

declare const answers: unique symbol;

/**
 * An operation doctor makes of more than one request, with its own input and output: `command` is the SDK
 * command it starts with (so tests can answer it), `sdkCaller` does the rest.
 */
export interface CompositeOperation<
  Input extends object,
  Output extends object,
  Command extends CommandClass,
> {
  readonly kind: 'composite';
  readonly command: () => Promise<Command>;
  /** Types only: never set. */
  readonly [answers]?: { input: Input; output: Output };
}

function sdk<Command extends CommandClass>(command: () => Promise<Command>): SdkOperation<Command> {
  return { kind: 'sdk', command };
}

function composite<Input extends object, Output extends object>() {
  return <Command extends CommandClass>(
    command: () => Promise<Command>,
  ): CompositeOperation<Input, Output, Command> => ({ kind: 'composite', command });
}

export const awsOperations = {
  ecs: {
    DescribeTasks: sdk(async () => (await ecs()).DescribeTasksCommand),
    DescribeServices: sdk(async () => (await ecs()).DescribeServicesCommand),
    DescribeTaskDefinition: sdk(async () => (await ecs()).DescribeTaskDefinitionCommand),
    ListTasks: sdk(async () => (await ecs()).ListTasksCommand),
    DescribeContainerInstances: sdk(async () => (await ecs()).DescribeContainerInstancesCommand),
  },
  ec2: {
    DescribeSubnets: sdk(async () => (await ec2()).DescribeSubnetsCommand),
    DescribeVpcs: sdk(async () => (await ec2()).DescribeVpcsCommand),
    DescribeVpcAttribute: sdk(async () => (await ec2()).DescribeVpcAttributeCommand),
    DescribeRouteTables: sdk(async () => (await ec2()).DescribeRouteTablesCommand),
    DescribeSecurityGroups: sdk(async () => (await ec2()).DescribeSecurityGroupsCommand),
    DescribeNetworkAcls: sdk(async () => (await ec2()).DescribeNetworkAclsCommand),
    DescribeVpcEndpoints: sdk(async () => (await ec2()).DescribeVpcEndpointsCommand),
    DescribePrefixLists: sdk(async () => (await ec2()).DescribePrefixListsCommand),
    DescribeManagedPrefixLists: sdk(async () => (await ec2()).DescribeManagedPrefixListsCommand),
    DescribeInstances: sdk(async () => (await ec2()).DescribeInstancesCommand),
    DescribeNetworkInterfaces: sdk(async () => (await ec2()).DescribeNetworkInterfacesCommand),
  },
  iam: {
    GetRole: sdk(async () => (await iam()).GetRoleCommand),
    ListRolePolicies: sdk(async () => (await iam()).ListRolePoliciesCommand),
    GetRolePolicy: sdk(async () => (await iam()).GetRolePolicyCommand),
    ListAttachedRolePolicies: sdk(async () => (await iam()).ListAttachedRolePoliciesCommand),
    GetPolicy: sdk(async () => (await iam()).GetPolicyCommand),
    GetPolicyVersion: sdk(async () => (await iam()).GetPolicyVersionCommand),
    GetInstanceProfile: sdk(async () => (await iam()).GetInstanceProfileCommand),
    SimulatePrincipalPolicy: sdk(async () => (await iam()).SimulatePrincipalPolicyCommand),
  },
  ecr: {
    DescribeRepositories: sdk(async () => (await ecr()).DescribeRepositoriesCommand),
    DescribeImages: sdk(async () => (await ecr()).DescribeImagesCommand),
    GetRepositoryPolicy: sdk(async () => (await ecr()).GetRepositoryPolicyCommand),
    BatchGetImage: sdk(async () => (await ecr()).BatchGetImageCommand),
    DescribePullThroughCacheRules: sdk(async () => (await ecr()).DescribePullThroughCacheRulesCommand),
    /** GetDownloadUrlForLayer for the config blob, then a GET of that URL; answers only the platform. */
    GetImageConfigPlatform: composite<
      { registryId?: string; repositoryName: string; configDigest: string },
      ImageConfigPlatform
    >()(async () => (await ecr()).GetDownloadUrlForLayerCommand),
  },
  secretsmanager: {
    DescribeSecret: sdk(async () => (await secretsmanager()).DescribeSecretCommand),
    GetSecretValue: sdk(async () => (await secretsmanager()).GetSecretValueCommand),
    GetResourcePolicy: sdk(async () => (await secretsmanager()).GetResourcePolicyCommand),
  },
  ssm: {
    DescribeParameters: sdk(async () => (await ssm()).DescribeParametersCommand),
  },
  logs: {
    DescribeLogGroups: sdk(async () => (await logs()).DescribeLogGroupsCommand),
    GetLogEvents: sdk(async () => (await logs()).GetLogEventsCommand),
  },
  codebuild: {
    BatchGetProjects: sdk(async () => (await codebuild()).BatchGetProjectsCommand),
    ListBuildsForProject: sdk(async () => (await codebuild()).ListBuildsForProjectCommand),
    BatchGetBuilds: sdk(async () => (await codebuild()).BatchGetBuildsCommand),
  },
  sts: {
    GetCallerIdentity: sdk(async () => (await sts()).GetCallerIdentityCommand),
  },
} as const;

export type AwsService = keyof typeof awsOperations;
export type AwsOperation<Service extends AwsService> = keyof (typeof awsOperations)[Service] & string;
/** Any service's operation: for labels that name an operation without calling it. */
export type AnyAwsOperation = { [Service in AwsService]: AwsOperation<Service> }[AwsService];

type OperationEntry<
  Service extends AwsService,
  Operation extends AwsOperation<Service>,
> = (typeof awsOperations)[Service][Operation];

/** The input an operation takes: the SDK command's own input type. */
export type AwsInput<Service extends AwsService, Operation extends AwsOperation<Service>> =
  OperationEntry<Service, Operation> extends CompositeOperation<infer Input, object, CommandClass>
    ? Input
    : OperationEntry<Service, Operation> extends SdkOperation<infer Command>
      ? InstanceType<Command>['input']
      : never;

/** The answer an operation gives: the SDK command's own output type, without the SDK's `$metadata`. */
export type AwsOutput<Service extends AwsService, Operation extends AwsOperation<Service>> =
  OperationEntry<Service, Operation> extends CompositeOperation<object, infer Output, CommandClass>
    ? Output
    : OperationEntry<Service, Operation> extends SdkOperation<infer Command>
      ? InstanceType<Command> extends SdkCommand<object, infer Output>
        ? Omit<Output, '$metadata'>
        : never
      : never;

/** The SDK client class of each service, loaded with its commands. */
export const awsClients: Record<AwsService, () => Promise<ClientClass>> = {
  ecs: async () => (await ecs()).ECSClient,
  ec2: async () => (await ec2()).EC2Client,
  iam: async () => (await iam()).IAMClient,
  ecr: async () => (await ecr()).ECRClient,
  secretsmanager: async () => (await secretsmanager()).SecretsManagerClient,
  ssm: async () => (await ssm()).SSMClient,
  logs: async () => (await logs()).CloudWatchLogsClient,
  codebuild: async () => (await codebuild()).CodeBuildClient,
  sts: async () => (await sts()).STSClient,
};

export interface ClientSettings {
  region: string;
  maxAttempts: number;
  profile?: string;
  endpoint?: string;
}

export interface SdkClient {
  send<Output extends object>(command: SdkCommand<object, Output>): Promise<Output>;
}

export type ClientClass = new (settings: ClientSettings) => SdkClient;

/** The operations doctor may call, per service: the keys of `awsOperations`. */
export const allowedOperations: Readonly<Record<AwsService, readonly string[]>> = {
  ecs: Object.keys(awsOperations.ecs),
  ec2: Object.keys(awsOperations.ec2),
  iam: Object.keys(awsOperations.iam),
  ecr: Object.keys(awsOperations.ecr),
  secretsmanager: Object.keys(awsOperations.secretsmanager),
  ssm: Object.keys(awsOperations.ssm),
  logs: Object.keys(awsOperations.logs),
  codebuild: Object.keys(awsOperations.codebuild),
  sts: Object.keys(awsOperations.sts),
};

export function isAllowed(service: string, operation: string): boolean {
  return (allowedOperations[service as AwsService] ?? []).includes(operation);
}

/** The SDK command class an allowed operation sends (for a composite one, the command it starts with). */
export function commandOf(service: AwsService, operation: string): Promise<CommandClass> {
  const operations: Readonly<Record<string, { command: () => Promise<CommandClass> }>> =
    awsOperations[service];
  const entry = isAllowed(service, operation) ? operations[operation] : undefined;
  if (!entry) throw new Error(`${service}:${operation} is not in the operation map`);
  return entry.command();
}

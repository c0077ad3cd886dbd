/**
 * The one door doctor uses to AWS: `call(service, operation, input)`. Three implementations share it:
 * the SDK v3 clients (read-only operations only, retried on throttling), a recorder that keeps every answer
 * for `--save-snapshot`, and a replayer that answers from a snapshot with no network at all.
 *
 * A failed call becomes an `AwsCallError` carrying the AWS error name, so collectors can tell "does not
 * exist" (`RepositoryNotFoundException`) from "could not ask" (`AccessDeniedException`, network).
 */
import { readFile, writeFile, rename } from 'node:fs/promises';
import { PullsafeError, redact } from '../errors/index.ts';

export type AwsService =
  'ecs' | 'ec2' | 'iam' | 'ecr' | 'secretsmanager' | 'ssm' | 'logs' | 'codebuild' | 'sts';

export interface AwsCaller {
  /** Calls `operation` (SDK command name without `Command`) in `region` (default: the caller's). */
  call<Output = Record<string, unknown>>(
    service: AwsService,
    operation: string,
    input: Record<string, unknown>,
    region?: string,
  ): Promise<Output>;
}

/** Operations doctor may call: all read-only. Anything else is refused before it reaches AWS. */
export const allowedOperations: Readonly<Record<AwsService, readonly string[]>> = {
  ecs: [
    'DescribeTasks',
    'DescribeServices',
    'DescribeTaskDefinition',
    'ListTasks',
    'DescribeContainerInstances',
  ],
  ec2: [
    'DescribeSubnets',
    'DescribeVpcs',
    'DescribeVpcAttribute',
    'DescribeRouteTables',
    'DescribeSecurityGroups',
    'DescribeNetworkAcls',
    'DescribeVpcEndpoints',
    'DescribePrefixLists',
    'DescribeManagedPrefixLists',
    'DescribeInstances',
    'DescribeNetworkInterfaces',
  ],
  iam: [
    'GetRole',
    'ListRolePolicies',
    'GetRolePolicy',
    'ListAttachedRolePolicies',
    'GetPolicy',
    'GetPolicyVersion',
    'GetInstanceProfile',
    'SimulatePrincipalPolicy',
  ],
  ecr: [
    'DescribeRepositories',
    'DescribeImages',
    'GetRepositoryPolicy',
    'BatchGetImage',
    'DescribePullThroughCacheRules',
    // Composite: GetDownloadUrlForLayer for the config blob, then a GET of that URL; answers only the platform.
    'GetImageConfigPlatform',
  ],
  secretsmanager: ['DescribeSecret', 'GetSecretValue', 'GetResourcePolicy'],
  ssm: ['DescribeParameters'],
  logs: ['DescribeLogGroups', 'GetLogEvents'],
  codebuild: ['BatchGetProjects', 'ListBuildsForProject', 'BatchGetBuilds'],
  sts: ['GetCallerIdentity'],
};

const clientModules: Record<AwsService, { module: string; client: string }> = {
  ecs: { module: '@aws-sdk/client-ecs', client: 'ECSClient' },
  ec2: { module: '@aws-sdk/client-ec2', client: 'EC2Client' },
  iam: { module: '@aws-sdk/client-iam', client: 'IAMClient' },
  ecr: { module: '@aws-sdk/client-ecr', client: 'ECRClient' },
  secretsmanager: { module: '@aws-sdk/client-secrets-manager', client: 'SecretsManagerClient' },
  ssm: { module: '@aws-sdk/client-ssm', client: 'SSMClient' },
  logs: { module: '@aws-sdk/client-cloudwatch-logs', client: 'CloudWatchLogsClient' },
  codebuild: { module: '@aws-sdk/client-codebuild', client: 'CodeBuildClient' },
  sts: { module: '@aws-sdk/client-sts', client: 'STSClient' },
};

/** A failed AWS call: `name` is AWS's error name, or `NetworkError` when no answer came. */
export class AwsCallError extends Error {
  readonly service: AwsService;
  readonly operation: string;
  readonly awsName: string;
  readonly status: number | undefined;
  /** AWS's own message, redacted. */
  readonly detail: string;

  constructor(service: AwsService, operation: string, awsName: string, detail: string, status?: number) {
    super(`${service}:${operation} failed: ${awsName}: ${detail}`);
    this.name = 'AwsCallError';
    this.service = service;
    this.operation = operation;
    this.awsName = awsName;
    this.detail = detail;
    this.status = status;
  }
}

const throttlingNames = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ProvisionedThroughputExceededException',
]);

/**
 * What kind of failure an AWS error name is, so that doctor says what went wrong in the user's terms:
 * no credentials found, credentials refused, the identity may not call the operation, AWS not reached.
 */
export type CallFailureKind =
  'no-credentials' | 'credentials-refused' | 'access-denied' | 'network' | 'throttled' | 'other';

const credentialsRefusedNames = new Set([
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'ExpiredTokenException',
  'AuthFailure',
  'IncompleteSignature',
  'IncompleteSignatureException',
]);

const accessDeniedNames = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'UnauthorizedException',
  'NotAuthorized',
]);

export function callFailureKind(awsName: string, status?: number): CallFailureKind {
  // The SDK's credential chain throws these before any request is sent.
  if (awsName === 'CredentialsProviderError' || awsName === 'TokenProviderError') return 'no-credentials';
  if (credentialsRefusedNames.has(awsName)) return 'credentials-refused';
  if (accessDeniedNames.has(awsName)) return 'access-denied';
  if (awsName === 'NetworkError' || awsName === 'TimeoutError' || awsName === 'RequestTimeout')
    return 'network';
  if (throttlingNames.has(awsName) || status === 429) return 'throttled';
  return 'other';
}

export function isThrottling(error: unknown): boolean {
  return error instanceof AwsCallError && (throttlingNames.has(error.awsName) || error.status === 429);
}

/** Turns whatever the SDK threw into an `AwsCallError`. */
export function toCallError(service: AwsService, operation: string, error: unknown): AwsCallError {
  if (error instanceof AwsCallError) return error;
  const value = error as {
    name?: string;
    message?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const status = value?.$metadata?.httpStatusCode;
  const transport =
    status === undefined &&
    (typeof value?.code === 'string' ||
      /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EAI_AGAIN|socket hang up|TimeoutError/i.test(
        String(value?.name ?? ''),
      ));
  const name = transport ? 'NetworkError' : (value?.name ?? 'Error');
  return new AwsCallError(service, operation, name, redact(String(value?.message ?? error)), status);
}

export interface RetryOptions {
  /** Attempts in all, first included. */
  attempts: number;
  baseDelayMs: number;
  sleep: (ms: number) => Promise<void>;
}

const defaultRetry: RetryOptions = {
  attempts: 5,
  baseDelayMs: 250,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** Retries throttled calls with exponential backoff and jitter; every other failure is returned at once. */
export function withRetries(inner: AwsCaller, options: Partial<RetryOptions> = {}): AwsCaller {
  const settings = { ...defaultRetry, ...options };
  return {
    async call(service, operation, input, region) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await inner.call(service, operation, input, region);
        } catch (error) {
          const failure = toCallError(service, operation, error);
          if (!isThrottling(failure) || attempt >= settings.attempts) throw failure;
          const delay = settings.baseDelayMs * 2 ** (attempt - 1);
          await settings.sleep(delay / 2 + Math.random() * (delay / 2));
        }
      }
    },
  };
}

/** What `ecr:GetImageConfigPlatform` answers: the platform fields of an image's config blob, nothing else. */
export interface ImageConfigPlatform {
  os?: string;
  architecture?: string;
  variant?: string;
}

/** Config blobs are small; anything larger is not one. */
const configBlobLimit = 1024 * 1024;

/**
 * Downloads an image config through the presigned URL ECR hands out, and keeps only its platform. The URL
 * carries its own signature: no credentials are sent with it.
 */
export async function fetchConfigPlatform(url: string, timeoutMs = 15_000): Promise<ImageConfigPlatform> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  if (!response.ok) throw new Error(`the config blob download answered HTTP ${response.status}`);
  const length = Number(response.headers.get('content-length') ?? '0');
  if (length > configBlobLimit)
    throw new Error(`the config blob is ${length} bytes, more than a config can be`);
  const text = await response.text();
  if (text.length > configBlobLimit) throw new Error('the config blob is larger than a config can be');
  const config = JSON.parse(text) as { os?: unknown; architecture?: unknown; variant?: unknown };
  const field = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
  const os = field(config.os);
  const architecture = field(config.architecture);
  const variant = field(config.variant);
  return {
    ...(os ? { os } : {}),
    ...(architecture ? { architecture } : {}),
    ...(variant ? { variant } : {}),
  };
}

export interface SdkCallerOptions {
  region: string;
  profile?: string;
  /** Endpoint override for every service (tests point the SDK at a local server). */
  endpoint?: string;
}

interface SdkClientLike {
  send(command: unknown): Promise<Record<string, unknown>>;
}

/**
 * Real AWS through the SDK's standard credential chain (env, shared config and SSO with `profile`, container
 * and instance metadata). Clients and their modules load on first use. The SDK's own retries are off: the
 * retry policy lives in `withRetries`, where tests can see it.
 */
export function sdkCaller(
  settings: SdkCallerOptions & { fetchConfig?: (url: string) => Promise<ImageConfigPlatform> },
): AwsCaller & { clients: Map<string, unknown> } {
  const options = { fetchConfig: fetchConfigPlatform, ...settings };
  const clients = new Map<string, unknown>();
  const modules = new Map<AwsService, Record<string, unknown>>();
  const load = async (service: AwsService): Promise<Record<string, unknown>> => {
    let loaded = modules.get(service);
    if (!loaded) {
      loaded = (await import(clientModules[service].module)) as Record<string, unknown>;
      modules.set(service, loaded);
    }
    return loaded;
  };
  return {
    clients,
    async call(service, operation, input, region) {
      assertAllowed(service, operation);
      const where = region ?? options.region;
      const key = `${service}@${where}`;
      const loaded = await load(service);
      let client = clients.get(key) as SdkClientLike | undefined;
      if (!client) {
        const Client = loaded[clientModules[service].client] as new (
          config: Record<string, unknown>,
        ) => SdkClientLike;
        client = new Client({
          region: where,
          maxAttempts: 1,
          ...(options.profile ? { profile: options.profile } : {}),
          ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        });
        clients.set(key, client);
      }
      try {
        if (service === 'ecr' && operation === 'GetImageConfigPlatform') {
          const Download = loaded.GetDownloadUrlForLayerCommand as new (
            input: Record<string, unknown>,
          ) => unknown;
          const { downloadUrl } = (await client.send(
            new Download({
              registryId: input.registryId,
              repositoryName: input.repositoryName,
              layerDigest: input.configDigest,
            }),
          )) as { downloadUrl?: string };
          if (!downloadUrl)
            throw new AwsCallError(service, operation, 'NoDownloadUrl', 'ECR gave no download URL');
          return (await options.fetchConfig(downloadUrl)) as never;
        }
        const Command = loaded[`${operation}Command`] as new (input: Record<string, unknown>) => unknown;
        const output = await client.send(new Command(input));
        return stripMetadata(output) as never;
      } catch (error) {
        throw toCallError(service, operation, error);
      }
    },
  };
}

function assertAllowed(service: AwsService, operation: string): void {
  if (!allowedOperations[service]?.includes(operation)) {
    throw new PullsafeError(
      'INTERNAL',
      `doctor tried ${service}:${operation}, which is not a read-only call it may make`,
    );
  }
}

function stripMetadata(output: Record<string, unknown>): Record<string, unknown> {
  const { $metadata: _metadata, ...rest } = output;
  return rest;
}

// ---------------------------------------------------------------------------------------------------------
// Snapshots

export interface SnapshotEntry {
  service: AwsService;
  operation: string;
  region: string;
  input: unknown;
  output?: unknown;
  error?: { name: string; message: string; status?: number };
}

export interface Snapshot {
  format: 'pullsafe-doctor-snapshot';
  version: 1;
  region: string;
  recordedAt: string;
  calls: SnapshotEntry[];
}

/** Canonical key: service, operation, region and the input with object keys sorted. */
export function snapshotKey(service: string, operation: string, region: string, input: unknown): string {
  return `${service}:${operation}@${region} ${canonicalJson(input)}`;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value instanceof Date ? value.toISOString() : value) ?? 'null';
}

/** Dates survive a snapshot as `{"$date": ISO}`; binary values are dropped. */
function encodeValue(value: unknown): unknown {
  if (value instanceof Date) return { $date: value.toISOString() };
  if (value instanceof Uint8Array) return undefined;
  if (Array.isArray(value)) return value.map(encodeValue);
  if (value && typeof value === 'object') {
    const result: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const encoded = encodeValue(v);
      if (encoded !== undefined) result[k] = encoded;
    }
    return result;
  }
  return value;
}

function decodeValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decodeValue);
  if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    if (keys.length === 1 && typeof record.$date === 'string') return new Date(record.$date);
    const result: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(record)) result[k] = decodeValue(v);
    return result;
  }
  return value;
}

/**
 * A secret's value never enters a snapshot. What doctor reads it for is its shape (is it JSON with a
 * username and a password?), so the recorder keeps the keys and replaces every value: replay then reaches
 * the same verdict without the secret.
 */
export function maskSecretValue(output: Record<string, unknown>): Record<string, unknown> {
  const { SecretString, SecretBinary: _binary, ...rest } = output;
  if (typeof SecretString !== 'string') return rest;
  let masked: string;
  try {
    const parsed = JSON.parse(SecretString) as unknown;
    masked =
      parsed && typeof parsed === 'object' && !Array.isArray(parsed)
        ? JSON.stringify(Object.fromEntries(Object.keys(parsed).map((k) => [k, '[redacted]'])))
        : '[redacted: JSON that is not an object]';
  } catch {
    masked = '[redacted: not JSON]';
  }
  return { ...rest, SecretString: masked };
}

const arnPattern = /arn:aws[\w-]*:[a-z0-9-]+:[a-z0-9-]*:(?:\d{12}|\*)?:[^\s"',;]+/g;

/**
 * A build log line with credentials removed (URL userinfo, Authorization values, password and token
 * fields, access key ids), ARNs kept whole: they name resources, and `…:secret:name` is not a secret.
 */
export function redactLogLine(line: string): string {
  const arns: string[] = [];
  const shielded = line.replace(arnPattern, (arn) => `\uE000${arns.push(arn) - 1}\uE000`);
  return redact(shielded).replace(/\uE000(\d+)\uE000/g, (_, index: string) => arns[Number(index)] ?? '');
}

/** A GetLogEvents answer with every message passed through `redactLogLine`. */
export function maskLogEvents(output: Record<string, unknown>): Record<string, unknown> {
  const events = output.events;
  if (!Array.isArray(events)) return output;
  return {
    ...output,
    events: events.map((event: Record<string, unknown>) =>
      typeof event?.message === 'string' ? { ...event, message: redactLogLine(event.message) } : event,
    ),
  };
}

/** Wraps a caller and keeps every call and answer (errors too) for `--save-snapshot`. */
export function recordingCaller(inner: AwsCaller, region: string): AwsCaller & { snapshot(): Snapshot } {
  const calls: SnapshotEntry[] = [];
  return {
    async call(service, operation, input, callRegion) {
      const where = callRegion ?? region;
      try {
        let output = (await inner.call(service, operation, input, callRegion)) as Record<string, unknown>;
        if (service === 'secretsmanager' && operation === 'GetSecretValue') output = maskSecretValue(output);
        if (service === 'logs' && operation === 'GetLogEvents') output = maskLogEvents(output);
        calls.push({
          service,
          operation,
          region: where,
          input: encodeValue(input),
          output: encodeValue(output),
        });
        return decodeValue(encodeValue(output)) as never;
      } catch (error) {
        const failure = toCallError(service, operation, error);
        calls.push({
          service,
          operation,
          region: where,
          input: encodeValue(input),
          error: {
            name: failure.awsName,
            message: failure.detail,
            ...(failure.status === undefined ? {} : { status: failure.status }),
          },
        });
        throw failure;
      }
    },
    snapshot: () => ({
      format: 'pullsafe-doctor-snapshot',
      version: 1,
      region,
      recordedAt: new Date().toISOString(),
      calls,
    }),
  };
}

/** Answers from a snapshot. A call the snapshot lacks fails as `SnapshotMiss`: reported, never a pass. */
export function replayCaller(snapshot: Snapshot): AwsCaller {
  const answers = new Map<string, SnapshotEntry>();
  for (const entry of snapshot.calls) {
    answers.set(snapshotKey(entry.service, entry.operation, entry.region, decodeValue(entry.input)), entry);
  }
  return {
    async call(service, operation, input, region) {
      assertAllowed(service, operation);
      const where = region ?? snapshot.region;
      const entry = answers.get(snapshotKey(service, operation, where, input));
      if (!entry) {
        throw new AwsCallError(
          service,
          operation,
          'SnapshotMiss',
          'the snapshot holds no answer for this call',
        );
      }
      if (entry.error) {
        throw new AwsCallError(service, operation, entry.error.name, entry.error.message, entry.error.status);
      }
      return decodeValue(entry.output) as never;
    },
  };
}

export async function readSnapshot(path: string): Promise<Snapshot> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new PullsafeError(
      'CONFIG_UNREADABLE',
      `cannot read snapshot ${path}: ${(error as Error).message}`,
      {
        hint: 'give the file written by `pullsafe doctor --save-snapshot FILE`',
      },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new PullsafeError('CONFIG_INVALID', `snapshot ${path} is not JSON`);
  }
  const value = parsed as Partial<Snapshot> | null;
  if (
    !value ||
    value.format !== 'pullsafe-doctor-snapshot' ||
    value.version !== 1 ||
    typeof value.region !== 'string' ||
    !Array.isArray(value.calls)
  ) {
    throw new PullsafeError('CONFIG_INVALID', `${path} is not a pullsafe doctor snapshot (format version 1)`);
  }
  for (const [index, entry] of value.calls.entries()) {
    const e = entry as Partial<SnapshotEntry> | null;
    if (
      !e ||
      typeof e.service !== 'string' ||
      typeof e.operation !== 'string' ||
      typeof e.region !== 'string'
    ) {
      throw new PullsafeError(
        'CONFIG_INVALID',
        `snapshot ${path}: call ${index} lacks service, operation or region`,
      );
    }
  }
  return value as Snapshot;
}

/** Writes the snapshot under a temporary name first: never a partial file under the final name. */
export async function writeSnapshot(path: string, snapshot: Snapshot): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(snapshot, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, path);
}

/**
 * Follows a paginated list operation to the end, concatenating `itemsKey`. Bounded: past `maxPages` with
 * more to read it fails (`TooManyPages`), since a list read in part cannot say that something is absent.
 */
export async function paginate<Item>(
  caller: AwsCaller,
  service: AwsService,
  operation: string,
  input: Record<string, unknown>,
  itemsKey: string,
  tokens: { input: string; output: string } = { input: 'NextToken', output: 'NextToken' },
  region?: string,
  maxPages = 50,
): Promise<Item[]> {
  const items: Item[] = [];
  let token: string | undefined;
  for (let page = 0; page < maxPages; page++) {
    const output = await caller.call<Record<string, unknown>>(
      service,
      operation,
      token === undefined ? input : { ...input, [tokens.input]: token },
      region,
    );
    const pageItems = output[itemsKey];
    if (Array.isArray(pageItems)) items.push(...(pageItems as Item[]));
    const next = output[tokens.output];
    if (typeof next !== 'string' || next === '' || output.IsTruncated === false) return items;
    token = next;
  }
  throw new AwsCallError(
    service,
    operation,
    'TooManyPages',
    `stopped after ${maxPages} pages with more to read`,
  );
}

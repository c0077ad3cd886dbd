/**
 * The one door doctor uses to AWS: `call(service, operation, input)`, typed by the SDK's own command
 * types (`aws-operations.ts`). Three implementations share it: the SDK v3 clients (read-only operations
 * only, retried on throttling), a recorder that keeps every answer for `--save-snapshot`, and a replayer
 * that answers from a snapshot with no network at all (`snapshot.ts`).
 *
 * A failed call becomes an `AwsCallError` carrying the AWS error name, so collectors can tell "does not
 * exist" (`RepositoryNotFoundException`) from "could not ask" (`AccessDeniedException`, network).
 */
import { PullsafeError, redact } from '../errors/index.ts';
import { backoffDelay } from '../shared/backoff.ts';
import {
  awsClients,
  awsOperations,
  commandOf,
  isAllowed,
  type AwsInput,
  type AwsOperation,
  type AwsOutput,
  type AwsService,
  type SdkClient,
} from './aws-operations.ts';

export interface AwsCaller {
  /** Calls `operation` (SDK command name without `Command`) in `region` (default: the caller's). */
  call<Service extends AwsService, Operation extends AwsOperation<Service>>(
    service: Service,
    operation: Operation,
    input: AwsInput<Service, Operation>,
    region?: string,
  ): Promise<AwsOutput<Service, Operation>>;
}

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
          await settings.sleep(backoffDelay(attempt, settings));
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
  fetchConfig?: (url: string) => Promise<ImageConfigPlatform>;
}

/**
 * Real AWS through the SDK's standard credential chain (env, shared config and SSO with `profile`, container
 * and instance metadata). Clients and their modules load on first use. The SDK's own retries are off: the
 * retry policy lives in `withRetries`, where tests can see it.
 */
export function sdkCaller(settings: SdkCallerOptions): AwsCaller {
  const options = { fetchConfig: fetchConfigPlatform, ...settings };
  const clients = new Map<string, SdkClient>();
  const clientFor = async (service: AwsService, region: string): Promise<SdkClient> => {
    const key = `${service}@${region}`;
    let client = clients.get(key);
    if (!client) {
      const Client = await awsClients[service]();
      client = new Client({
        region,
        maxAttempts: 1,
        ...(options.profile ? { profile: options.profile } : {}),
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      });
      clients.set(key, client);
    }
    return client;
  };
  return {
    async call(service, operation, input, region) {
      assertAllowed(service, operation);
      const client = await clientFor(service, region ?? options.region);
      if (service === 'ecr' && operation === 'GetImageConfigPlatform') {
        const configInput = input as AwsInput<'ecr', 'GetImageConfigPlatform'>;
        return (await imageConfigPlatform(client, configInput, options.fetchConfig)) as never;
      }
      const Command = await commandOf(service, operation);
      try {
        const output = await client.send(new Command(input as never));
        return withoutMetadata(output) as never;
      } catch (error) {
        throw toCallError(service, operation, error);
      }
    },
  };
}

/** GetDownloadUrlForLayer for the config blob, then a GET of the presigned URL it answers. */
async function imageConfigPlatform(
  client: SdkClient,
  input: AwsInput<'ecr', 'GetImageConfigPlatform'>,
  fetchConfig: (url: string) => Promise<ImageConfigPlatform>,
): Promise<ImageConfigPlatform> {
  const operation = 'GetImageConfigPlatform';
  const GetDownloadUrlForLayer = await awsOperations.ecr[operation].command();
  try {
    const { downloadUrl } = await client.send(
      new GetDownloadUrlForLayer({
        registryId: input.registryId,
        repositoryName: input.repositoryName,
        layerDigest: input.configDigest,
      }),
    );
    if (!downloadUrl) throw new AwsCallError('ecr', operation, 'NoDownloadUrl', 'ECR gave no download URL');
    return await fetchConfig(downloadUrl);
  } catch (error) {
    throw toCallError('ecr', operation, error);
  }
}

/** Refuses an operation the map does not hold, for callers the compiler did not check (snapshots, tests). */
export function assertAllowed(service: string, operation: string): void {
  if (!isAllowed(service, operation)) {
    throw new PullsafeError(
      'INTERNAL',
      `doctor tried ${service}:${operation}, which is not a read-only call it may make`,
    );
  }
}

function withoutMetadata(output: object): object {
  const { $metadata: _metadata, ...rest } = output as { $metadata?: unknown };
  return rest;
}

/** The list-valued fields of an answer. */
type ListKey<Output> = {
  [Key in keyof Output]-?: NonNullable<Output[Key]> extends readonly unknown[] ? Key : never;
}[keyof Output] &
  string;

type ItemOf<List> = NonNullable<List> extends readonly (infer Item)[] ? Item : never;

/** Where a paginated operation takes its page token, and where its answer gives the next one. */
export interface PageTokens<Service extends AwsService, Operation extends AwsOperation<Service>> {
  input: keyof AwsInput<Service, Operation> & string;
  output: keyof AwsOutput<Service, Operation> & string;
}

/**
 * Follows a paginated list operation to the end, concatenating `itemsKey`. Bounded: past `maxPages` with
 * more to read it fails (`TooManyPages`), since a list read in part cannot say that something is absent.
 */
export async function paginate<
  Service extends AwsService,
  Operation extends AwsOperation<Service>,
  Key extends ListKey<AwsOutput<Service, Operation>>,
>(
  caller: AwsCaller,
  service: Service,
  operation: Operation,
  input: AwsInput<Service, Operation>,
  itemsKey: Key,
  tokens: PageTokens<Service, Operation>,
  region?: string,
  maxPages = 50,
): Promise<ItemOf<AwsOutput<Service, Operation>[Key]>[]> {
  const items: ItemOf<AwsOutput<Service, Operation>[Key]>[] = [];
  let token: string | undefined;
  for (let page = 0; page < maxPages; page++) {
    const output = await caller.call(
      service,
      operation,
      token === undefined ? input : { ...input, [tokens.input]: token },
      region,
    );
    const pageItems = output[itemsKey];
    if (Array.isArray(pageItems)) items.push(...(pageItems as ItemOf<typeof pageItems>[]));
    const answer = output as Record<string, unknown>;
    const next = answer[tokens.output];
    if (typeof next !== 'string' || next === '' || answer.IsTruncated === false) return items;
    token = next;
  }
  throw new AwsCallError(
    service,
    operation,
    'TooManyPages',
    `stopped after ${maxPages} pages with more to read`,
  );
}

/** Shared by the collectors: the caller, the failures seen, lookups that tell missing from failed, ARN helpers. */
import { PullsafeError } from '../../errors/index.ts';
import { toCallError, type AwsCaller, type AwsService } from '../aws.ts';
import type { CallFailure, Lookup } from '../types.ts';

export interface DoctorTarget {
  cluster?: string;
  task?: string;
  service?: string;
  taskDefinition?: string;
  codebuildProject?: string;
  /** For a task definition checked before deploying: where it would run. */
  subnets?: string[];
  securityGroups?: string[];
  assignPublicIp?: boolean;
}

/** Per-run state: the caller, the region, and every diagnostic call that failed. */
export class Collector {
  readonly failures: CallFailure[] = [];
  readonly caller: AwsCaller;
  readonly region: string;

  constructor(caller: AwsCaller, region: string) {
    this.caller = caller;
    this.region = region;
  }

  fail(error: unknown, service: AwsService, operation: string): CallFailure {
    const callError = toCallError(service, operation, error);
    const failure: CallFailure = {
      service: callError.service,
      operation: callError.operation,
      code: callError.awsName,
      message: callError.detail,
    };
    this.failures.push(failure);
    return failure;
  }

  /** Runs a lookup; errors named in `missing` mean "does not exist", anything else is a failure. */
  async lookup<T>(
    service: AwsService,
    operation: string,
    run: () => Promise<T | undefined>,
    missing: readonly string[] = [],
    missingDetail = 'does not exist',
  ): Promise<Lookup<T>> {
    try {
      const value = await run();
      return value === undefined ? { state: 'missing', detail: missingDetail } : { state: 'found', value };
    } catch (error) {
      const callError = toCallError(service, operation, error);
      if (missing.includes(callError.awsName)) {
        return { state: 'missing', detail: `${callError.awsName}: ${callError.detail}` };
      }
      return { state: 'failed', failure: this.fail(callError, service, operation) };
    }
  }
}

export function arnAccount(arn: string | undefined): string | undefined {
  const account = arn?.split(':')[4];
  return account && /^\d{12}$/.test(account) ? account : undefined;
}

export function arnRegion(arn: string | undefined): string | undefined {
  const region = arn?.split(':')[3];
  return region ? region : undefined;
}

export async function call<T>(
  c: Collector,
  service: AwsService,
  operation: string,
  input: Record<string, unknown>,
  region?: string,
): Promise<T> {
  try {
    return await c.caller.call<T>(service, operation, input, region);
  } catch (error) {
    const failure = toCallError(service, operation, error);
    if (failure.awsName === 'ClusterNotFoundException') {
      throw new PullsafeError(
        'REGISTRY_NOT_FOUND',
        `ECS has no cluster ${String(input.cluster ?? 'default')}`,
        {
          hint: 'check --cluster and --region',
        },
      );
    }
    throw new PullsafeError(
      'REGISTRY_UNAVAILABLE',
      `cannot read ${service}:${operation}: ${failure.awsName}: ${failure.detail}`,
      {
        hint:
          failure.awsName === 'AccessDeniedException' || failure.awsName === 'UnauthorizedOperation'
            ? `doctor needs read access to ${service}:${operation} (see docs/doctor.md for the read-only policy)`
            : 'check your AWS credentials (--profile), --region and the network path to AWS',
        cause: error,
      },
    );
  }
}

export async function optional(
  c: Collector,
  service: AwsService,
  operation: string,
  input: Record<string, unknown>,
  region?: string,
): Promise<Record<string, unknown> | undefined> {
  try {
    return await c.caller.call(service, operation, input, region);
  } catch (error) {
    c.fail(error, service, operation);
    return undefined;
  }
}

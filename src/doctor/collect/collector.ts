/** Shared by the collectors: the caller, the failures seen, lookups that tell missing from failed. */
import { PullsafeError } from '../../errors/index.ts';
import { callFailureKind, toCallError, type AwsCallError, type AwsCaller } from '../aws.ts';
import type { AnyAwsOperation, AwsInput, AwsOperation, AwsOutput, AwsService } from '../aws-operations.ts';
import type { CallFailure, Lookup } from '../types.ts';

export interface DoctorTarget {
  cluster?: string;
  task?: string;
  service?: string;
  taskDefinition?: string;
  codebuildProject?: string;
  /** For a CodeBuild project: the build to read (`project:uuid`) instead of the last failed one. */
  buildId?: string;
  /** For a CodeBuild project: a local buildspec file, for a buildspec kept in the source repository. */
  buildspecFile?: string;
  /** For a CodeBuild project: a local checkout of its source (buildspec path, Dockerfiles, compose files). */
  sourceDir?: string;
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

  fail<Service extends AwsService>(
    error: unknown,
    service: Service,
    operation: AwsOperation<Service>,
  ): CallFailure {
    return this.record(toCallError(service, operation, error));
  }

  private record(callError: AwsCallError): CallFailure {
    const failure: CallFailure = {
      service: callError.service,
      operation: callError.operation,
      code: callError.awsName,
      message: withoutFullStop(callError.detail),
    };
    this.failures.push(failure);
    return failure;
  }

  /** Runs a lookup; errors named in `missing` mean "does not exist", anything else is a failure. */
  async lookup<T>(
    service: AwsService,
    operation: AnyAwsOperation,
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
        return { state: 'missing', detail: `${callError.awsName}: ${withoutFullStop(callError.detail)}` };
      }
      return { state: 'failed', failure: this.record(callError) };
    }
  }
}

/**
 * AWS messages mostly end with a full stop; findings quote them inside their own sentences, so the stop
 * is dropped once here rather than doubled there ("can't find the specified secret..").
 */
function withoutFullStop(message: string): string {
  return message.replace(/\.\s*$/, '');
}

/**
 * A call doctor cannot go on without (the subject itself). Its failure ends the run with what failed, in
 * the user's terms: no credentials, credentials refused, access denied to the named action, AWS not
 * reached. A failed call is never reported as "not found"; only AWS's own answer says that.
 */
export async function call<Service extends AwsService, Operation extends AwsOperation<Service>>(
  c: Collector,
  service: Service,
  operation: Operation,
  input: AwsInput<Service, Operation>,
  region?: string,
  notFound?: (failure: AwsCallError) => PullsafeError | undefined,
): Promise<AwsOutput<Service, Operation>> {
  try {
    return await c.caller.call(service, operation, input, region);
  } catch (error) {
    const failure = toCallError(service, operation, error);
    const missing = notFound?.(failure);
    if (missing) throw missing;
    if (failure.awsName === 'ClusterNotFoundException') {
      throw new PullsafeError('AWS_NOT_FOUND', `ECS has no cluster ${clusterOf(input) ?? 'default'}`, {
        hint: 'check --cluster and --region',
      });
    }
    throw subjectCallError(failure, region ?? c.region, error);
  }
}

function clusterOf(input: object): string | undefined {
  return 'cluster' in input && typeof input.cluster === 'string' ? input.cluster : undefined;
}

function subjectCallError(failure: AwsCallError, region: string, cause: unknown): PullsafeError {
  const action = `${failure.service}:${failure.operation}`;
  const said = `${failure.awsName}: ${failure.detail}`;
  switch (callFailureKind(failure.awsName, failure.status)) {
    case 'no-credentials':
      return new PullsafeError('AWS_NO_CREDENTIALS', `cannot call ${action}: no AWS credentials (${said})`, {
        hint:
          'give a profile (--profile or AWS_PROFILE; `aws sso login --profile P` first for SSO), or set ' +
          'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; to see doctor without AWS, replay the example in ' +
          'docs/doctor.md (--snapshot examples/doctor-service-web.json)',
        cause,
      });
    case 'credentials-refused':
      return new PullsafeError(
        'AWS_CREDENTIALS_REFUSED',
        `cannot call ${action}: AWS refused the credentials (${said})`,
        { hint: 'refresh them (`aws sso login`, new keys) and check --profile', cause },
      );
    case 'access-denied':
      return new PullsafeError('AWS_ACCESS_DENIED', `cannot call ${action}: access denied (${said})`, {
        hint: `allow the identity running doctor ${action} (docs/doctor.md lists the read-only policy)`,
        cause,
      });
    case 'network':
      return new PullsafeError(
        'AWS_UNAVAILABLE',
        `cannot call ${action}: could not reach AWS in ${region} (${said})`,
        { hint: 'check the network path to AWS (DNS, proxy, firewall) and --region', cause },
      );
    case 'throttled':
      return new PullsafeError('AWS_UNAVAILABLE', `cannot call ${action}: AWS kept throttling (${said})`, {
        hint: 'wait a minute and run doctor again',
        cause,
      });
    default:
      return new PullsafeError('AWS_UNAVAILABLE', `cannot call ${action}: ${said}`, {
        hint: 'check --region, your AWS credentials (--profile) and the network path to AWS',
        cause,
      });
  }
}

export async function optional<Service extends AwsService, Operation extends AwsOperation<Service>>(
  c: Collector,
  service: Service,
  operation: Operation,
  input: AwsInput<Service, Operation>,
  region?: string,
): Promise<AwsOutput<Service, Operation> | undefined> {
  try {
    return await c.caller.call(service, operation, input, region);
  } catch (error) {
    c.fail(error, service, operation);
    return undefined;
  }
}

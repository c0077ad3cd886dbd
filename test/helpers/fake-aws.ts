/**
 * A fake AWS account for doctor's tests: resources held as the SDK's own response shapes, answered by
 * operation with the filters, pagination and error names AWS uses. `fakeCaller` plugs it in as an
 * `AwsCaller`; `installSdkMocks` plugs it behind the real SDK v3 clients (aws-sdk-client-mock), so the
 * collectors, and the CLI's own `--save-snapshot`, run through the clients users run.
 *
 * The account's shape is in `fake-aws/account.ts`, its answers in `fake-aws/answers.ts`, the accounts tests
 * start from in `fake-aws/healthy.ts` and `fake-aws/codebuild.ts`.
 */
import type { AwsCaller } from '../../src/doctor/aws.ts';
import {
  allowedOperations,
  awsClients,
  commandOf,
  type AwsService,
} from '../../src/doctor/aws-operations.ts';
import type { FakeAccount } from './fake-aws/account.ts';
import { answer } from './fake-aws/answers.ts';

export * from './fake-aws/account.ts';
export * from './fake-aws/codebuild.ts';
export * from './fake-aws/healthy.ts';

/** The account as an `AwsCaller`, with a log of the calls made. */
export function fakeCaller(account: FakeAccount): AwsCaller & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async call(service, operation, input, region) {
      calls.push(`${service}:${operation}`);
      // The fake reads requests by field name, as AWS reads their JSON. A structured clone: collectors
      // must not be able to change the account between calls.
      const request = input as Record<string, unknown>;
      return structuredClone(answer(account, service, operation, request, region ?? account.region)) as never;
    },
  };
}

/** Loosely typed: one loop installs the same fake behind every client. */
interface LooseStub {
  on(command: unknown): {
    callsFake(fn: (input: Record<string, unknown>, getClient: () => unknown) => unknown): unknown;
  };
  restore(): void;
}

/**
 * Puts `current()` behind the real SDK v3 clients of this process (aws-sdk-client-mock): every command doctor
 * may send is answered by the fake account, in the region the client was built for. `sent` logs
 * `service:Operation` per command; `restore` puts the clients back.
 */
export async function installSdkMocks(
  current: () => FakeAccount,
): Promise<{ sent: string[]; restore(): void }> {
  const { mockClient } = await import('aws-sdk-client-mock');
  const sent: string[] = [];
  const stubs: LooseStub[] = [];
  for (const service of Object.keys(allowedOperations) as AwsService[]) {
    const stub = mockClient((await awsClients[service]()) as never) as unknown as LooseStub;
    for (const listed of allowedOperations[service]) {
      // The composite operation is made of GetDownloadUrlForLayer and a plain HTTP GET of its URL.
      const operation = listed === 'GetImageConfigPlatform' ? 'GetDownloadUrlForLayer' : listed;
      const Command = await commandOf(service, listed);
      stub.on(Command).callsFake(async (input, getClient) => {
        sent.push(`${service}:${operation}`);
        const region = await (getClient() as { config: { region: () => Promise<string> } }).config.region();
        return structuredClone(answer(current(), service, operation, input, region));
      });
    }
    stubs.push(stub);
  }
  return {
    sent,
    restore: () => {
      for (const stub of stubs) stub.restore();
    },
  };
}

/** Facts for the checks' unit tests: a Fargate Linux task with nothing collected but what a test gives. */
import type { Facts, ImageFacts, Lookup, Needs } from '../types.ts';

export const noNeeds: Needs = {
  ecrApi: false,
  ecrDkr: false,
  s3Layers: false,
  logs: false,
  secretsmanager: false,
  ssm: false,
  kms: false,
  internetRegistries: [],
};

export function baseFacts(
  base: Pick<Facts, 'region' | 'accountId' | 'subject'>,
  images: ImageFacts[],
  overrides: Partial<Facts> = {},
): Facts {
  return {
    ...base,
    stopReasons: [],
    launchType: 'FARGATE',
    architecture: 'X86_64',
    os: 'LINUX',
    images,
    secrets: [],
    logs: [],
    needs: noNeeds,
    failures: [],
    ...overrides,
  };
}

export const found = <T>(value: T): Lookup<T> => ({ state: 'found', value });
export const missing = <T>(detail = 'not found'): Lookup<T> => ({ state: 'missing', detail });

/** Turning command-line words into registry clients, credentials and references (shared by copy, sync, inspect). */
import { homedir } from 'node:os';
import type { ECRClient } from '@aws-sdk/client-ecr';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import {
  RegistryClient,
  explicitCredentials,
  secretsManagerCredentials,
  standardCredentialChain,
  type CredentialSource,
  type TransportOptions,
} from '../client/index.ts';
import { PullsafeError } from '../errors/index.ts';
import { DEFAULT_TAG, parseReference, registryApiHost, type ImageReference } from '../reference/index.ts';

export interface ClientFlags {
  srcCreds?: string;
  destCreds?: string;
  srcSecret?: string;
  destSecret?: string;
  creds?: string;
  plainHttp?: string[];
  region?: string;
  /** `false`: the source's (or, for inspect and ratelimit, the image's) host is `insecure` (see transport.ts). */
  srcTlsVerify?: boolean;
  destTlsVerify?: boolean;
  tlsVerify?: boolean;
}

export function buildClient(
  flags: ClientFlags,
  env: Record<string, string | undefined>,
  registries: { source?: string; target?: string },
): RegistryClient {
  if (flags.creds !== undefined && registries.source === undefined && registries.target === undefined) {
    throw new PullsafeError('USAGE', '--creds applies to a registry image, not an OCI layout');
  }
  const credentials = buildCredentials(flags, env, registries);
  return new RegistryClient({ credentials, transport: transportOptions(flags, registries) });
}

/**
 * `--plain-http` hosts, and the hosts `--src-tls-verify=false`, `--dest-tls-verify=false` or
 * `--tls-verify=false` (the source's, else the target's) make `insecure`, as the API hosts requests go to.
 */
export function transportOptions(
  flags: ClientFlags,
  registries: { source?: string | undefined; target?: string | undefined },
): TransportOptions {
  for (const [value, registry, flag] of [
    [flags.srcTlsVerify, registries.source, '--src-tls-verify'],
    [flags.destTlsVerify, registries.target, '--dest-tls-verify'],
    [flags.tlsVerify, registries.source ?? registries.target, '--tls-verify'],
  ] as const) {
    if (value !== undefined && registry === undefined) {
      throw new PullsafeError('USAGE', `${flag} applies to a registry image, not an OCI layout`);
    }
  }
  if (
    registries.source !== undefined &&
    registries.source === registries.target &&
    (flags.srcTlsVerify ?? true) !== (flags.destTlsVerify ?? true)
  ) {
    // TLS settings belong to a host, as credentials do: one of two settings for the same host would be lost.
    throw new PullsafeError(
      'USAGE',
      `source and destination are both on ${registries.source}: --src-tls-verify and --dest-tls-verify must agree`,
      { hint: 'give both --src-tls-verify=false and --dest-tls-verify=false, or neither' },
    );
  }
  const insecure = new Set<string>();
  const add = (registry: string | undefined) => registry && insecure.add(registryApiHost(registry));
  if (flags.srcTlsVerify === false) add(registries.source);
  if (flags.destTlsVerify === false) add(registries.target);
  if (flags.tlsVerify === false) add(registries.source ?? registries.target);
  for (const host of insecure) {
    const plain = (flags.plainHttp ?? []).find(
      (entry) => entry.toLowerCase() === host || entry.toLowerCase() === host.replace(/:\d+$/, ''),
    );
    if (plain !== undefined) {
      throw new PullsafeError(
        'USAGE',
        `--plain-http ${plain} and a tls-verify=false flag name the same registry: plain HTTP has no certificate to skip`,
        {
          hint: 'give --plain-http for a registry that speaks plain HTTP, or the tls-verify flag for one with an untrusted certificate',
        },
      );
    }
  }
  return { plainHttp: flags.plainHttp ?? [], insecure };
}

/** --src-creds/--dest-creds/--creds, secrets, then environment, Docker config and ECR. */
export function buildCredentials(
  flags: ClientFlags,
  env: Record<string, string | undefined>,
  registries: { source?: string; target?: string },
): CredentialSource {
  const explicit: CredentialSource[] = [];
  for (const [creds, secret, side] of [
    [flags.srcCreds, flags.srcSecret, 'src'],
    [flags.destCreds, flags.destSecret, 'dest'],
  ] as const) {
    if (creds !== undefined && secret !== undefined) {
      throw new PullsafeError(
        'USAGE',
        `--${side}-creds and --${side}-secret both name credentials: give one`,
      );
    }
  }
  if (flags.srcCreds !== undefined && registries.source === undefined) {
    throw new PullsafeError('USAGE', '--src-creds applies to a registry image, not an OCI layout');
  }
  if (flags.destCreds !== undefined && registries.target === undefined) {
    throw new PullsafeError('USAGE', '--dest-creds applies to a registry image, not an OCI layout');
  }
  const sourceIdentity = flags.srcCreds ?? flags.srcSecret;
  const targetIdentity = flags.destCreds ?? flags.destSecret;
  if (
    registries.source !== undefined &&
    registries.source === registries.target &&
    sourceIdentity !== undefined &&
    targetIdentity !== undefined &&
    (flags.srcCreds !== flags.destCreds || flags.srcSecret !== flags.destSecret)
  ) {
    // Credentials are looked up per registry, so a second identity on the same host would be ignored.
    throw new PullsafeError(
      'USAGE',
      `source and destination are both on ${registries.source}: pullsafe uses one identity per registry, so different source and destination credentials cannot both apply`,
      {
        hint: 'give one account that may pull the source and push the destination (--src-creds or --src-secret alone), or copy in two steps through an OCI layout (oci:DIR)',
      },
    );
  }
  if (flags.srcCreds && registries.source) {
    explicit.push(
      explicitCredentials(flags.srcCreds, { registry: registries.source, description: '--src-creds' }),
    );
  }
  if (flags.destCreds && registries.target) {
    explicit.push(
      explicitCredentials(flags.destCreds, { registry: registries.target, description: '--dest-creds' }),
    );
  }
  if (flags.creds) explicit.push(explicitCredentials(flags.creds, { description: '--creds' }));
  const secretsFactory = (region: string) => lazySecretsManager(region);
  const regionOption = flags.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  for (const [secret, registry, flag] of [
    [flags.srcSecret, registries.source, '--src-secret'],
    [flags.destSecret, registries.target, '--dest-secret'],
  ] as const) {
    if (!secret) continue;
    if (!registry) throw new PullsafeError('USAGE', `${flag} applies to a registry image, not an OCI layout`);
    explicit.push(
      secretsManagerCredentials({
        secretId: secret,
        registry,
        ...(regionOption ? { region: regionOption } : {}),
        clientFactory: secretsFactory,
      }),
    );
  }
  return standardCredentialChain({
    explicit,
    env,
    home: homedir(),
    ecrClientFactory: (region) => lazyEcr(region),
  });
}

// The AWS SDK takes a few hundred milliseconds to load: clients load on their first request, so copies
// that never meet ECR or Secrets Manager never pay for it.
function lazyClient<Client extends { send(command: never): Promise<unknown> }>(
  create: () => Promise<Client>,
): Pick<Client, 'send'> {
  let client: Promise<Client> | undefined;
  const send = async (command: never) => (await (client ??= create())).send(command);
  return { send };
}

export const lazyEcr = (region: string): Pick<ECRClient, 'send'> =>
  lazyClient(async () => new (await import('@aws-sdk/client-ecr')).ECRClient({ region }));

export const lazySecretsManager = (region: string): Pick<SecretsManagerClient, 'send'> =>
  lazyClient(
    async () => new (await import('@aws-sdk/client-secrets-manager')).SecretsManagerClient({ region }),
  );

export function parseImage(text: string): ImageReference {
  try {
    return parseReference(text);
  } catch (error) {
    const hint = (error as { hint?: string }).hint;
    throw new PullsafeError('USAGE', (error as Error).message, hint ? { hint } : {});
  }
}

export function registryOf(text: string): string | undefined {
  if (text.startsWith('oci:')) return undefined;
  return parseImage(text).registry;
}

export function defaultTag(reference: string | undefined): string {
  return reference ?? DEFAULT_TAG;
}

/**
 * Where registry credentials come from: explicit `user:pass`, an environment map, Docker's config file
 * (inline `auths`, `credHelpers`, `credsStore`), an AWS Secrets Manager secret, and ECR's
 * GetAuthorizationToken. Sources are combined in a chain; the first that knows a registry answers.
 *
 * Promises:
 * - nothing here reads `process.env` or the home folder itself: callers pass the environment and paths;
 * - registries are matched the way Docker matches them (`docker.io`, `index.docker.io`,
 *   `registry-1.docker.io` and `https://index.docker.io/v1/` are one registry; a config key may carry a
 *   scheme and a path);
 * - error messages name the file, helper, secret or region involved, never a password, token or secret
 *   value.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GetAuthorizationTokenCommand, GetAuthorizationTokenCommandOutput } from '@aws-sdk/client-ecr';
import type { GetSecretValueCommand, GetSecretValueCommandOutput } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { PullsafeError, redact } from '../errors/index.ts';
import { parseSecretArn } from '../shared/arn.ts';

/** A user and password (sent as Basic, or exchanged for a token), or an OAuth2 refresh token. */
export type Credentials =
  { username: string; password: string } | { identityToken: string; username?: string };

export interface CredentialSource {
  /** What this source is, for messages (`--src-creds`, `docker config /home/u/.docker/config.json`). */
  readonly description: string;
  /** Credentials for a registry (`docker.io`, `host:5000`), or undefined when this source has none. */
  get(registry: string): Promise<Credentials | undefined>;
}

/** Docker's key for Docker Hub in config files and credential helpers. */
export const DOCKER_HUB_INDEX_SERVER = 'https://index.docker.io/v1/';

const dockerHubAliases = new Set([
  'docker.io',
  'index.docker.io',
  'registry-1.docker.io',
  'registry.hub.docker.com',
]);

/**
 * The registry a config key, URL or host names, normalised: scheme and path dropped, lowercased,
 * Docker Hub's names all `docker.io`.
 */
export function normaliseRegistryKey(key: string): string {
  let host = key.trim().toLowerCase();
  host = host.replace(/^[a-z][a-z0-9+.-]*:\/\//, '');
  const slash = host.indexOf('/');
  if (slash !== -1) host = host.slice(0, slash);
  return dockerHubAliases.has(host) ? 'docker.io' : host;
}

/** Whether two registry names, hosts or config keys mean the same registry. */
export function sameRegistry(a: string, b: string): boolean {
  return normaliseRegistryKey(a) === normaliseRegistryKey(b);
}

/** The server URL Docker uses for a registry in config keys and credential helper input. */
export function dockerServerAddress(registry: string): string {
  return normaliseRegistryKey(registry) === 'docker.io' ? DOCKER_HUB_INDEX_SERVER : registry.toLowerCase();
}

/**
 * The key of `entries` Docker would use for `registry`: the exact server address first, then the first
 * key whose host (scheme and path dropped) is the registry.
 */
export function matchRegistryKey(keys: Iterable<string>, registry: string): string | undefined {
  const all = [...keys];
  const address = dockerServerAddress(registry);
  const exact = all.find((key) => key === address || key === registry);
  if (exact !== undefined) return exact;
  const wanted = normaliseRegistryKey(registry);
  return all.find((key) => normaliseRegistryKey(key) === wanted);
}

/** The first source that has credentials for a registry answers. */
export class CredentialChain implements CredentialSource {
  readonly description: string;
  private readonly sources: readonly CredentialSource[];
  constructor(sources: readonly CredentialSource[]) {
    this.sources = sources;
    this.description = sources.map((source) => source.description).join(', ') || 'none';
  }
  async get(registry: string): Promise<Credentials | undefined> {
    for (const source of this.sources) {
      const found = await source.get(registry);
      if (found) return found;
    }
    return undefined;
  }
}

function appliesTo(scope: readonly string[] | undefined, registry: string): boolean {
  return scope === undefined || scope.some((entry) => sameRegistry(entry, registry));
}

function scopeList(registry: string | readonly string[] | undefined): readonly string[] | undefined {
  if (registry === undefined) return undefined;
  return typeof registry === 'string' ? [registry] : registry;
}

/**
 * Credentials given on the command line as `user:password` (split at the first `:`). With `registry`,
 * they apply to that registry only; without, to every registry asked about.
 */
export function explicitCredentials(
  spec: string,
  options: { registry?: string | readonly string[]; description?: string } = {},
): CredentialSource {
  const description = options.description ?? 'explicit credentials';
  const colon = spec.indexOf(':');
  if (colon <= 0) {
    throw new PullsafeError('CREDENTIALS_INVALID', `${description} must be "user:password"`, {
      hint: 'write the user name, a colon and the password (or token), e.g. "alice:s3cret"',
    });
  }
  const credentials: Credentials = { username: spec.slice(0, colon), password: spec.slice(colon + 1) };
  const scope = scopeList(options.registry);
  return {
    description,
    get: (registry) => Promise.resolve(appliesTo(scope, registry) ? credentials : undefined),
  };
}

/**
 * `PULLSAFE_REGISTRY_USER` / `PULLSAFE_REGISTRY_PASSWORD` from the given environment map, for the
 * registries in `registry`, else for the comma-separated hosts in `PULLSAFE_REGISTRY_HOST`; with neither,
 * for no registry (a password is never sent to a host nobody named).
 */
export function envCredentials(
  env: Readonly<Record<string, string | undefined>>,
  options: { registry?: string | readonly string[] } = {},
): CredentialSource {
  const username = env.PULLSAFE_REGISTRY_USER;
  const password = env.PULLSAFE_REGISTRY_PASSWORD;
  const fromEnv = env.PULLSAFE_REGISTRY_HOST?.split(',')
    .map((host) => host.trim())
    .filter((host) => host !== '');
  const scope = scopeList(options.registry) ?? fromEnv ?? [];
  return {
    description: 'PULLSAFE_REGISTRY_USER/PULLSAFE_REGISTRY_PASSWORD',
    get: (registry) =>
      Promise.resolve(
        username && password !== undefined && appliesTo(scope, registry) ? { username, password } : undefined,
      ),
  };
}

// ---- Docker config file ---------------------------------------------------------------------------------

/** `$DOCKER_CONFIG/config.json` when DOCKER_CONFIG is set in `env`, else `<home>/.docker/config.json`. */
export function dockerConfigPath(env: Readonly<Record<string, string | undefined>>, home: string): string {
  const folder = env.DOCKER_CONFIG;
  return folder ? join(folder, 'config.json') : join(home, '.docker', 'config.json');
}

const authEntrySchema = z
  .object({
    auth: z.string().optional(),
    username: z.string().optional(),
    password: z.string().optional(),
    identitytoken: z.string().optional(),
  })
  .loose();

const dockerConfigSchema = z
  .object({
    auths: z.record(z.string(), authEntrySchema).optional(),
    credHelpers: z.record(z.string(), z.string()).optional(),
    credsStore: z.string().optional(),
  })
  .loose();

export type DockerConfig = z.infer<typeof dockerConfigSchema>;

/** Parses config.json text; throws CREDENTIALS_INVALID naming `path` (never the content). */
export function parseDockerConfig(text: string, path: string): DockerConfig {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new PullsafeError('CREDENTIALS_INVALID', `Docker config ${path} is not valid JSON`, {
      hint: 'fix or remove the file; `docker login` rewrites it',
    });
  }
  const result = dockerConfigSchema.safeParse(document);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue ? issue.path.join('.') || '(root)' : '(root)';
    throw new PullsafeError('CREDENTIALS_INVALID', `Docker config ${path} is invalid at ${where}`, {
      hint: '"auths" maps registries to {auth} or {username, password}; "credHelpers" maps registries to helper names',
    });
  }
  return result.data;
}

/** Credentials of one `auths` entry, or undefined when the entry holds none (e.g. `{}` beside a credsStore). */
export function authEntryCredentials(
  entry: z.infer<typeof authEntrySchema>,
  where: string,
): Credentials | undefined {
  if (entry.identitytoken) {
    const username = entry.username ?? decodeAuth(entry.auth, where)?.username;
    return username
      ? { identityToken: entry.identitytoken, username }
      : { identityToken: entry.identitytoken };
  }
  if (entry.auth) return decodeAuth(entry.auth, where);
  if (entry.username && entry.password !== undefined) {
    return { username: entry.username, password: entry.password };
  }
  return undefined;
}

function decodeAuth(
  auth: string | undefined,
  where: string,
): { username: string; password: string } | undefined {
  if (!auth) return undefined;
  const text = Buffer.from(auth, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (!/^[A-Za-z0-9+/=\s_-]+$/.test(auth) || colon <= 0) {
    throw new PullsafeError(
      'CREDENTIALS_INVALID',
      `the "auth" field of ${where} is not base64 "user:password"`,
      {
        hint: 'run `docker login` again for this registry, or fix the entry',
      },
    );
  }
  return { username: text.slice(0, colon), password: text.slice(colon + 1).replace(/\n$/, '') };
}

/** Runs a program with text on stdin; resolves with its exit code and output (never rejects for exit codes). */
export type HelperRunner = (
  program: string,
  args: readonly string[],
  input: string,
  env: Readonly<Record<string, string | undefined>>,
) => Promise<{ exitCode: number; stdout: string; stderr: string }>;

/** The default runner: execFile with a 30 s timeout; the program is looked up on `env.PATH`. */
export const runHelper: HelperRunner = (program, args, input, env) =>
  new Promise((resolve, reject) => {
    const child = execFile(
      program,
      [...args],
      { env, timeout: 30_000, maxBuffer: 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error && typeof (error as { code?: unknown }).code !== 'number') {
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- execFile fails with Errors; its type (ExecFileException, built of Omit<...>) does not say so
          reject(error);
          return;
        }
        const exitCode = error ? Number((error as { code?: unknown }).code) : 0;
        resolve({ exitCode, stdout, stderr });
      },
    );
    child.stdin?.on('error', () => {
      // A helper that exits without reading stdin is judged by its exit code.
    });
    child.stdin?.end(input);
  });

const helperOutputSchema = z.object({
  Username: z.string().optional(),
  Secret: z.string().optional(),
  ServerURL: z.string().optional(),
});

/**
 * Asks `docker-credential-<helper> get` for a server address, with Docker's helper protocol: the address
 * on stdin, `{"ServerURL","Username","Secret"}` on stdout; a `<token>` user name means the secret is an
 * identity token. Resolves undefined when the helper reports "credentials not found".
 */
export async function credentialHelperGet(
  helper: string,
  serverAddress: string,
  env: Readonly<Record<string, string | undefined>>,
  run: HelperRunner = runHelper,
): Promise<Credentials | undefined> {
  const program = `docker-credential-${helper}`;
  if (!/^[A-Za-z0-9._-]+$/.test(helper)) {
    throw new PullsafeError(
      'CREDENTIALS_INVALID',
      `credential helper name ${JSON.stringify(helper)} is invalid`,
      {
        hint: 'a helper name is the part after "docker-credential-", e.g. "ecr-login" or "pass"',
      },
    );
  }
  let result: { exitCode: number; stdout: string; stderr: string };
  try {
    result = await run(program, ['get'], serverAddress, env);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new PullsafeError(
      'CREDENTIALS_INVALID',
      code === 'ENOENT'
        ? `credential helper ${program} is not installed (not found on PATH)`
        : `credential helper ${program} could not be run: ${redact(String((error as Error).message ?? error))}`,
      {
        hint: `install ${program}, or remove it from credsStore/credHelpers in the Docker config`,
        cause: error,
      },
    );
  }
  if (result.exitCode !== 0) {
    if (/credentials not found/i.test(result.stdout) || /credentials not found/i.test(result.stderr)) {
      return undefined;
    }
    const said = redact(firstLine(result.stderr) || firstLine(result.stdout)).slice(0, 200);
    throw new PullsafeError(
      'CREDENTIALS_INVALID',
      `credential helper ${program} failed for ${serverAddress} (exit ${result.exitCode})${said ? `: ${said}` : ''}`,
      { hint: `run \`echo ${serverAddress} | ${program} get\` to see what the helper says` },
    );
  }
  let parsed: z.infer<typeof helperOutputSchema>;
  try {
    parsed = helperOutputSchema.parse(JSON.parse(result.stdout));
  } catch {
    throw new PullsafeError(
      'CREDENTIALS_INVALID',
      `credential helper ${program} printed something other than {"Username","Secret"} for ${serverAddress}`,
      { hint: `check that ${program} speaks the docker-credential-helpers protocol` },
    );
  }
  const username = parsed.Username ?? '';
  const secret = parsed.Secret ?? '';
  if (secret === '') return undefined;
  if (username === '<token>') return { identityToken: secret };
  return { username, password: secret };
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.trim() ?? '';
}

export interface DockerConfigSourceOptions {
  /** The config.json path (see `dockerConfigPath`). A missing file means no credentials. */
  path: string;
  /** Environment for credential helpers (their PATH and HOME). */
  env: Readonly<Record<string, string | undefined>>;
  run?: HelperRunner;
}

/**
 * Docker's config file as a source: `credHelpers[registry]` first, then `credsStore`, then `auths`.
 * A helper that reports "not found" lets `auths` answer. The file is read once; helper answers are
 * remembered per registry for the life of the source.
 */
export function dockerConfigCredentials(options: DockerConfigSourceOptions): CredentialSource {
  let config: Promise<DockerConfig | undefined> | undefined;
  const answers = new Map<string, Promise<Credentials | undefined>>();
  const description = `Docker config ${options.path}`;
  const load = async (): Promise<DockerConfig | undefined> => {
    let text: string;
    try {
      text = await readFile(options.path, 'utf8');
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ENOENT') return undefined;
      throw new PullsafeError('CREDENTIALS_INVALID', `Docker config ${options.path} cannot be read`, {
        hint: 'check the file permissions, or point DOCKER_CONFIG at another folder',
        cause: error,
      });
    }
    return parseDockerConfig(text, options.path);
  };
  const lookup = async (registry: string): Promise<Credentials | undefined> => {
    config ??= load();
    const parsed = await config;
    if (!parsed) return undefined;
    const address = dockerServerAddress(registry);
    const helperKey = parsed.credHelpers
      ? matchRegistryKey(Object.keys(parsed.credHelpers), registry)
      : undefined;
    const helper = helperKey !== undefined ? parsed.credHelpers?.[helperKey] : parsed.credsStore;
    if (helper) {
      const found = await credentialHelperGet(helper, address, options.env, options.run);
      if (found) return found;
    }
    const authKey = parsed.auths ? matchRegistryKey(Object.keys(parsed.auths), registry) : undefined;
    const entry = authKey !== undefined ? parsed.auths?.[authKey] : undefined;
    return entry ? authEntryCredentials(entry, `${options.path} auths["${authKey}"]`) : undefined;
  };
  return {
    description,
    get(registry) {
      const key = normaliseRegistryKey(registry);
      let answer = answers.get(key);
      if (!answer) {
        answer = lookup(registry);
        answers.set(key, answer);
        answer.catch(() => answers.delete(key));
      }
      return answer;
    },
  };
}

// ---- AWS Secrets Manager --------------------------------------------------------------------------------

/** The part of a Secrets Manager client this module uses; tests pass a fake. */
export interface SecretsManagerLike {
  send(command: GetSecretValueCommand): Promise<GetSecretValueCommandOutput>;
}

export interface SecretsManagerSourceOptions {
  /** Secret name or ARN. The secret holds `{"username","password"}` (ECS repositoryCredentials shape). */
  secretId: string;
  /** Registries the secret is for; the secret is never sent to another one. */
  registry: string | readonly string[];
  /** Region, when `secretId` is not an ARN. */
  region?: string;
  clientFactory: (region: string) => SecretsManagerLike;
}

const secretShape = z.object({ username: z.string().min(1), password: z.string().min(1) });

/** `arn:aws:secretsmanager:eu-west-1:123…:secret:name` → `eu-west-1`. */
export function secretRegion(secretId: string): string | undefined {
  return parseSecretArn(secretId)?.region || undefined;
}

/** A Secrets Manager secret as a source; read once, on first use, and remembered. */
export class SecretsManagerCredentials implements CredentialSource {
  readonly description: string;
  private readonly options: SecretsManagerSourceOptions;
  private readonly scope: readonly string[] | undefined;
  private value: Promise<Credentials> | undefined;

  constructor(options: SecretsManagerSourceOptions) {
    this.options = options;
    this.scope = scopeList(options.registry);
    this.description = `AWS Secrets Manager secret ${options.secretId}`;
  }

  async get(registry: string): Promise<Credentials | undefined> {
    if (!appliesTo(this.scope, registry)) return undefined;
    if (!this.value) {
      const value = this.read();
      this.value = value;
      value.catch(() => {
        if (this.value === value) this.value = undefined;
      });
    }
    return this.value;
  }

  private async read(): Promise<Credentials> {
    const name = this.options.secretId;
    const region = secretRegion(name) ?? this.options.region;
    if (!region) {
      throw new PullsafeError('CREDENTIALS_INVALID', `no AWS region for secret ${name}`, {
        hint: 'give the secret as a full ARN, or the region with --region (or AWS_REGION)',
      });
    }
    const { GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
    let output: GetSecretValueCommandOutput;
    try {
      output = await this.options.clientFactory(region).send(new GetSecretValueCommand({ SecretId: name }));
    } catch (error) {
      const kind = (error as { name?: unknown }).name;
      // The SDK found no AWS identity at all: no call was made, so permissions are not the question.
      const noIdentity = kind === 'CredentialsProviderError';
      throw new PullsafeError(
        'CREDENTIALS_INVALID',
        `could not read secret ${name} in ${region}: ${
          noIdentity ? 'no AWS credentials found' : typeof kind === 'string' ? kind : 'error'
        }`,
        {
          hint: noIdentity
            ? 'give pullsafe an AWS identity: AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or an instance or task role'
            : 'check that the secret exists and that this identity may call secretsmanager:GetSecretValue (and kms:Decrypt for a customer key)',
          cause: error,
        },
      );
    }
    const text =
      output.SecretString ??
      (output.SecretBinary ? Buffer.from(output.SecretBinary).toString('utf8') : undefined);
    let document: unknown;
    try {
      document = text === undefined ? undefined : JSON.parse(text);
    } catch {
      document = undefined;
    }
    const parsed = secretShape.safeParse(document);
    if (!parsed.success) {
      throw new PullsafeError(
        'CREDENTIALS_INVALID',
        `secret ${name} does not hold a JSON object with non-empty "username" and "password"`,
        {
          hint: 'store the registry credentials as {"username":"…","password":"…"} (the ECS repositoryCredentials shape)',
        },
      );
    }
    return { username: parsed.data.username, password: parsed.data.password };
  }
}

export function secretsManagerCredentials(options: SecretsManagerSourceOptions): SecretsManagerCredentials {
  return new SecretsManagerCredentials(options);
}

// ---- Amazon ECR -----------------------------------------------------------------------------------------

export interface EcrHost {
  accountId: string;
  region: string;
  fips: boolean;
  /** `<acct>.dkr-ecr.<region>.on.aws`. */
  dualStack: boolean;
}

const ecrHostPattern =
  /^(\d{12})\.dkr([.-])ecr(-fips)?\.([a-z0-9][a-z0-9-]*)\.(amazonaws\.com(?:\.cn)?|on\.aws|on\.amazonwebservices\.com\.cn|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$/;

/** The account and region of a private ECR registry host (port ignored), or undefined for other hosts. */
export function parseEcrHost(host: string): EcrHost | undefined {
  const match = ecrHostPattern.exec(hostOnly(host.toLowerCase()));
  if (!match) return undefined;
  const dualStack = match[2] === '-';
  const suffix = match[5]!;
  if (dualStack !== suffix.startsWith('on.')) return undefined;
  return { accountId: match[1]!, region: match[4]!, fips: match[3] !== undefined, dualStack };
}

function hostOnly(host: string): string {
  const colon = host.lastIndexOf(':');
  return colon !== -1 && !host.includes(']') ? host.slice(0, colon) : host;
}

/** The part of an ECR client this module uses; tests pass a fake. */
export interface EcrLike {
  send(command: GetAuthorizationTokenCommand): Promise<GetAuthorizationTokenCommandOutput>;
}

export interface EcrSourceOptions {
  clientFactory: (region: string) => EcrLike;
  /** Milliseconds since the epoch; injected for tests. */
  now?: () => number;
}

/** A token is renewed this long before ECR says it expires. */
export const ECR_TOKEN_MARGIN_MS = 60_000;

/**
 * ECR's GetAuthorizationToken as a source for every private ECR host: the region comes from the host,
 * the token (base64 `AWS:password`) is remembered per account and region until `ECR_TOKEN_MARGIN_MS`
 * before its `expiresAt`; concurrent requests share one call.
 */
export class EcrCredentials implements CredentialSource {
  readonly description = 'Amazon ECR GetAuthorizationToken';
  private readonly clientFactory: (region: string) => EcrLike;
  private readonly now: () => number;
  private readonly cache = new Map<string, { credentials: Credentials; expiresAt: number }>();
  private readonly pending = new Map<string, Promise<Credentials>>();

  constructor(options: EcrSourceOptions) {
    this.clientFactory = options.clientFactory;
    this.now = options.now ?? Date.now;
  }

  async get(registry: string): Promise<Credentials | undefined> {
    const ecr = parseEcrHost(registry);
    if (!ecr) return undefined;
    const key = `${ecr.region}/${ecr.accountId}`;
    const cached = this.cache.get(key);
    if (cached && this.now() < cached.expiresAt - ECR_TOKEN_MARGIN_MS) return cached.credentials;
    let request = this.pending.get(key);
    if (!request) {
      request = this.fetch(ecr, key).finally(() => this.pending.delete(key));
      this.pending.set(key, request);
    }
    return request;
  }

  private async fetch(ecr: EcrHost, key: string): Promise<Credentials> {
    const { GetAuthorizationTokenCommand } = await import('@aws-sdk/client-ecr');
    let output: GetAuthorizationTokenCommandOutput;
    try {
      output = await this.clientFactory(ecr.region).send(new GetAuthorizationTokenCommand({}));
    } catch (error) {
      const kind = (error as { name?: unknown }).name;
      throw new PullsafeError(
        'CREDENTIALS_INVALID',
        `could not get an ECR authorization token in ${ecr.region}: ${typeof kind === 'string' ? kind : 'error'}`,
        {
          hint: 'check the AWS credentials and that this identity may call ecr:GetAuthorizationToken',
          cause: error,
        },
      );
    }
    const data = output.authorizationData?.[0];
    const decoded = data?.authorizationToken
      ? Buffer.from(data.authorizationToken, 'base64').toString('utf8')
      : '';
    const colon = decoded.indexOf(':');
    if (colon <= 0) {
      throw new PullsafeError(
        'CREDENTIALS_INVALID',
        `ECR in ${ecr.region} returned no usable authorization token`,
        {
          hint: 'retry; if it persists, check the ECR service status',
        },
      );
    }
    const credentials = { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    const expiresAt = data?.expiresAt ? new Date(data.expiresAt).getTime() : this.now() + 12 * 3_600_000;
    this.cache.set(key, { credentials, expiresAt });
    return credentials;
  }
}

export function ecrCredentials(options: EcrSourceOptions): EcrCredentials {
  return new EcrCredentials(options);
}

// ---- the usual chain ------------------------------------------------------------------------------------

export interface StandardChainOptions {
  /** Explicit sources first (e.g. from --src-creds / --dest-creds), in order. */
  explicit?: readonly CredentialSource[];
  env: Readonly<Record<string, string | undefined>>;
  /** Home folder, for `~/.docker/config.json`. */
  home: string;
  /** Enables ECR GetAuthorizationToken for ECR hosts. */
  ecrClientFactory?: (region: string) => EcrLike;
  run?: HelperRunner;
}

/** explicit → environment → Docker config → ECR. */
export function standardCredentialChain(options: StandardChainOptions): CredentialChain {
  const sources: CredentialSource[] = [...(options.explicit ?? [])];
  sources.push(envCredentials(options.env));
  sources.push(
    dockerConfigCredentials({
      path: dockerConfigPath(options.env, options.home),
      env: options.env,
      ...(options.run ? { run: options.run } : {}),
    }),
  );
  if (options.ecrClientFactory) sources.push(ecrCredentials({ clientFactory: options.ecrClientFactory }));
  return new CredentialChain(sources);
}

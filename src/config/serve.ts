/**
 * Configuration of `pullsafe serve`: one strict schema, loaded from a YAML or JSON file, then environment
 * variables, then command-line flags (last wins). Unknown keys are errors naming the path and the closest
 * known key.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { PullsafeError } from '../errors/index.ts';
import { parseDuration } from './duration.ts';
import { describeIssue } from './issues.ts';
import { globProblem, repositoryGlobProblem } from '../shared/glob.ts';

const duration = z
  .union([z.string(), z.number()])
  .refine(
    (value) => parseDuration(value) !== undefined,
    'must be seconds or a duration like 30s, 10m, 1h, 7d',
  );

const ruleSchema = z.strictObject({
  repositories: z
    .string()
    .min(1)
    .describe('Glob over repository names: * within a path component, ** across /'),
  users: z.array(z.string().min(1)).min(1).describe('User names; "*" = any authenticated user; "anonymous"'),
  actions: z.array(z.enum(['pull', 'push', 'delete'])).describe('Allowed actions'),
});

const byteSize = z
  .union([z.number().int().nonnegative(), z.string()])
  .refine((value) => parseByteSize(value) !== undefined, 'must be bytes or a size like 500MiB, 50GiB, 1TB');

const upstreamNamePattern =
  /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::\d{1,5})?$/;

const tagRuleSchema = z.strictObject({
  tags: z.string().min(1).describe('Glob over tag names (see Patterns), e.g. "v*" or "*.*.*"'),
  ttl: duration.optional().describe('How long a cached tag is served before one HEAD revalidates it'),
  immutable: z
    .boolean()
    .optional()
    .describe('Tags that never move (version tags): served from the cache without revalidation'),
});

export const upstreamSchema = z.strictObject({
  name: z
    .string()
    .regex(upstreamNamePattern, 'must be a registry host as in image references, e.g. docker.io or ghcr.io')
    .describe('The registry as image references name it: docker.io, ghcr.io, quay.io, public.ecr.aws'),
  url: z
    .string()
    .optional()
    .describe(
      'Where its API answers; default https://registry-1.docker.io for docker.io, https://NAME otherwise; http:// only for loopback',
    ),
  prefixes: z
    .array(z.string().regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/, 'must be one lowercase path component'))
    .default([])
    .describe('Short path prefixes routed to this upstream: /v2/PREFIX/library/nginx/...'),
  default: z
    .boolean()
    .optional()
    .describe('Bare names (/v2/library/nginx/...) go here; docker.io is the default when configured'),
  credentials: z
    .union([
      z.strictObject({
        username: z.string().min(1),
        password: z.string().min(1).optional().describe('Prefer passwordEnv: a file holding secrets leaks'),
        passwordEnv: z.string().min(1).optional().describe('Environment variable holding the password'),
      }),
      z.strictObject({
        secret: z.string().min(1).describe('Secrets Manager secret: {"username","password"}'),
      }),
      z.literal('docker-config').describe('Docker config and credential helpers of the user running serve'),
      z.literal('ecr').describe('ECR tokens from the AWS SDK credential chain'),
    ])
    .optional()
    .describe('How the cache authenticates to this upstream; anonymous when absent'),
  anonymousPull: z
    .boolean()
    .optional()
    .describe(
      'Whether anonymous clients may pull what this upstream serves (default: true without credentials, false with)',
    ),
  concurrency: z.number().int().positive().default(16).describe('Upstream requests in flight at most'),
  requestsPerSecond: z
    .number()
    .nonnegative()
    .default(0)
    .describe('Upstream requests started per second (0 = no cap)'),
  connectTimeout: duration.default('5s').describe('Connecting to the upstream'),
  responseTimeout: duration.default('30s').describe('Waiting for an upstream answer'),
  revalidateWait: duration
    .default('2s')
    .describe(
      'Longest a client waits on a revalidation of a tag the cache holds before it gets the cached one',
    ),
  tagTtl: duration.default('5m').describe('How long a cached tag is served before one HEAD revalidates it'),
  tags: z
    .array(tagRuleSchema)
    .default([])
    .describe('Per tag pattern TTLs and immutable tags; first match wins'),
  notFoundTtl: duration.default('30s').describe('How long an upstream 404 is remembered'),
  quotaReserve: z
    .number()
    .int()
    .nonnegative()
    .default(10)
    .describe(
      'Below this many pulls left (RateLimit-Remaining), tags are served from the cache unrevalidated',
    ),
});

export type UpstreamConfig = z.infer<typeof upstreamSchema>;

const proxySchema = z
  .strictObject({
    upstreams: z.array(upstreamSchema).default([]).describe('Registries served as a pull-through cache'),
    hosted: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Repository globs that are hosted (push allowed, never proxied) even where bare names go upstream',
      ),
    maxSize: byteSize
      .optional()
      .describe('Cached content past this size is evicted, least recently used first (default: no limit)'),
    highWatermark: z
      .number()
      .gt(0)
      .lte(1)
      .default(0.9)
      .describe('Eviction starts above this share of maxSize'),
    lowWatermark: z.number().gt(0).lte(1).default(0.8).describe('Eviction stops below this share of maxSize'),
    pin: z
      .array(z.string().min(1))
      .default([])
      .describe('Globs over cached repository names (docker.io/library/*) never evicted'),
  })
  .default({ upstreams: [], hosted: [], highWatermark: 0.9, lowWatermark: 0.8, pin: [] });

export const serveConfigSchema = z.strictObject({
  listen: z.string().default('127.0.0.1:5000').describe('host:port to listen on; [::1]:5000 for IPv6'),
  storage: z
    .string()
    .min(1)
    .default('./data')
    .describe('Folder of the filesystem storage, or s3://BUCKET/PREFIX for S3 (see docs/storage.md)'),
  s3: z
    .strictObject({
      endpoint: z
        .string()
        .regex(/^https?:\/\/[^/?#]+\/?$/, 'must be http(s)://HOST[:PORT], no path')
        .optional()
        .describe(
          'Where S3 answers, for S3-compatible services; default: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS',
        ),
      region: z
        .string()
        .regex(/^[a-z0-9-]+$/, 'must be a region name like eu-west-1')
        .optional()
        .describe(
          "The bucket's region; default: the SDK's (AWS_REGION, the profile), us-east-1 with an endpoint",
        ),
      forcePathStyle: z
        .boolean()
        .optional()
        .describe(
          'Bucket in the URL path instead of the host name; default: on for an endpoint on localhost or an IP',
        ),
      redirect: z
        .boolean()
        .default(false)
        .describe(
          'Answer blob GETs with a redirect to a presigned S3 URL (valid 20 minutes) instead of streaming the bytes; clients then need a route to S3',
        ),
      rememberLinksSeconds: z
        .number()
        .int()
        .min(0)
        .max(3600)
        .default(600)
        .describe(
          "How long a repository's link to a blob or manifest, once read, is taken as present without asking S3 again; 0: ask every time. Replicas with a Redis forget a link another one removes at once",
        ),
    })
    .default({ redirect: false, rememberLinksSeconds: 600 })
    .describe('How to reach the bucket of an s3:// storage; credentials come from the AWS SDK chain'),
  allowAnonymousPush: z
    .boolean()
    .default(false)
    .describe('Allow pushes without credentials on a non-loopback address (loopback allows them already)'),
  auth: z
    .strictObject({
      realm: z.string().min(1).default('pullsafe').describe('Realm shown in the Basic challenge'),
      htpasswd: z.string().optional().describe('htpasswd file with bcrypt entries (htpasswd -B)'),
      anonymousPull: z
        .boolean()
        .default(true)
        .describe('Pulls without credentials (when no rules are given)'),
      rules: z.array(ruleSchema).optional().describe('Access rules; the first match decides'),
    })
    .default({ realm: 'pullsafe', anonymousPull: true }),
  limits: z
    .strictObject({
      maxManifestBytes: z
        .number()
        .int()
        .positive()
        .max(64 * 1024 * 1024)
        .default(4 * 1024 * 1024)
        .describe('Largest manifest accepted'),
      manifestCacheBytes: z
        .number()
        .int()
        .nonnegative()
        .default(64 * 1024 * 1024)
        .describe('Memory for cached manifests'),
      maxPageSize: z
        .number()
        .int()
        .positive()
        .default(10_000)
        .describe('Largest n for tags/list and _catalog'),
    })
    .default({
      maxManifestBytes: 4 * 1024 * 1024,
      manifestCacheBytes: 64 * 1024 * 1024,
      maxPageSize: 10_000,
    }),
  uploads: z
    .strictObject({ maxAge: duration.default('1h').describe('Uploads idle longer than this are removed') })
    .default({ maxAge: '1h' }),
  proxy: proxySchema.describe('Pull-through cache: upstream registries served from this registry'),
  secretFile: z
    .string()
    .min(1)
    .optional()
    .describe(
      'File of the key that signs upload locations, one key per line (the first signs, every one verifies); replicas share it. Env PULLSAFE_SECRET_FILE, or the key itself in PULLSAFE_SECRET',
    ),
  redis: z
    .strictObject({
      url: z
        .string()
        .regex(/^rediss?:\/\//, 'must be redis://HOST:PORT or rediss://HOST:PORT')
        .describe(
          'Redis or Valkey shared by the replicas of one registry (ElastiCache: the primary endpoint)',
        ),
      leaseTtl: duration
        .default('15s')
        .describe(
          "How long a replica's claim on a fill lasts unrenewed: a replica that dies is taken over within it",
        ),
      advertiseUrl: z
        .string()
        .regex(/^https?:\/\/[^/?#]+\/?$/, 'must be http(s)://HOST:PORT')
        .optional()
        .describe(
          "How the other replicas reach this one, for streaming fills between replicas (needs secretFile); default: http:// this host's first non-loopback IPv4 address and the listening port",
        ),
    })
    .optional()
    .describe('Several replicas on one storage act as one registry (see docs/cache.md, Replicas)'),
  gc: z
    .strictObject({
      interval: duration.describe('Run garbage collection while serving, this often (one replica at a time)'),
      minAge: duration
        .default('1h')
        .describe(
          'Blobs and untagged manifests younger than this are kept (pushes, mounts and fills under way)',
        ),
      deleteUntagged: z.boolean().default(false).describe('Also remove manifests no tag reaches'),
    })
    .optional()
    .describe('Garbage collection while serving; without it, run pullsafe gc'),
  shutdownTimeout: duration.default('30s').describe('How long shutdown waits for in-flight transfers'),
  shutdownDelay: duration
    .optional()
    .describe(
      'After SIGTERM, how long /readyz answers 503 while the listener still accepts, so load balancers see the registry leave (default 5s, 0 on a loopback address)',
    ),
  log: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
      requests: z.boolean().default(true).describe('One log line per request'),
    })
    .default({ level: 'info', requests: true }),
});

export type ServeConfig = z.infer<typeof serveConfigSchema>;
type ServeConfigInput = z.input<typeof serveConfigSchema>;

/** Flags and environment, already parsed by the CLI; undefined means "not given". */
export interface ServeOverrides {
  /** `--proxy NAME[=URL]`, repeatable: upstreams added to those of the file. */
  proxies?: string[];
  /** `--hosted GLOB`, repeatable: added to `proxy.hosted`. */
  hosted?: string[];
  /** `--redis URL`: `redis.url`. */
  redis?: string;
  /** `--secret-file FILE`: `secretFile`. */
  secretFile?: string;
  listen?: string;
  storage?: string;
  htpasswd?: string;
  allowAnonymousPush?: boolean;
  logLevel?: string;
}

export async function loadServeConfig(options: {
  file?: string;
  env: Record<string, string | undefined>;
  flags: ServeOverrides;
}): Promise<ServeConfig> {
  const file = options.file ?? options.env.PULLSAFE_CONFIG;
  let raw: Record<string, unknown> = {};
  if (file) raw = await readConfigFile(file);

  const fromEnv: ServeOverrides = {};
  const env = options.env;
  if (env.PULLSAFE_LISTEN) fromEnv.listen = env.PULLSAFE_LISTEN;
  if (env.PULLSAFE_STORAGE) fromEnv.storage = env.PULLSAFE_STORAGE;
  if (env.PULLSAFE_HTPASSWD) fromEnv.htpasswd = env.PULLSAFE_HTPASSWD;
  if (env.PULLSAFE_LOG_LEVEL) fromEnv.logLevel = env.PULLSAFE_LOG_LEVEL;
  if (env.PULLSAFE_SECRET_FILE) fromEnv.secretFile = env.PULLSAFE_SECRET_FILE;
  if (env.PULLSAFE_ALLOW_ANONYMOUS_PUSH !== undefined) {
    const value = env.PULLSAFE_ALLOW_ANONYMOUS_PUSH.toLowerCase();
    if (!['true', 'false', '1', '0'].includes(value)) {
      throw new PullsafeError('CONFIG_INVALID', 'PULLSAFE_ALLOW_ANONYMOUS_PUSH must be true or false');
    }
    fromEnv.allowAnonymousPush = value === 'true' || value === '1';
  }
  const merged = applyOverrides(applyOverrides(raw, fromEnv), options.flags);
  return validateServeConfig(merged, file ?? 'configuration');
}

export function validateServeConfig(input: unknown, source: string): ServeConfig {
  const result = serveConfigSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.slice(0, 10).map((issue) => describeIssue(issue, serveConfigSchema));
    throw new PullsafeError('CONFIG_INVALID', `${source}: invalid configuration\n  ${lines.join('\n  ')}`, {
      hint: 'see docs/configuration.md for every key (docs/config.schema.json for editors)',
    });
  }
  parseListen(result.data.listen);
  checkProxy(result.data.proxy, source);
  return result.data;
}

/** The local namespace an upstream's repositories are cached under: its name, `:` as `-` (names hold no `:`). */
export function upstreamNamespace(name: string): string {
  return name.replace(':', '-');
}

/** What the schema cannot say about the proxy section: names, prefixes and defaults that clash, bad URLs and globs. */
function checkProxy(proxy: ServeConfig['proxy'], source: string): void {
  const problems: string[] = [];
  const routes = new Map<string, string>();
  const claim = (route: string, owner: string): void => {
    const previous = routes.get(route);
    if (previous !== undefined) problems.push(`${owner}: "${route}" is already routed to ${previous}`);
    else routes.set(route, owner);
  };
  let defaults = 0;
  proxy.upstreams.forEach((upstream, index) => {
    const where = `proxy.upstreams[${index}] (${upstream.name})`;
    claim(upstreamNamespace(upstream.name), where);
    for (const prefix of upstream.prefixes) claim(prefix, where);
    if (upstream.default) defaults++;
    let url: URL | undefined;
    try {
      url = upstreamUrl(upstream);
    } catch {
      problems.push(`${where}.url: "${upstream.url}" is not a URL`);
    }
    if (
      url &&
      url.protocol !== 'https:' &&
      !(url.protocol === 'http:' && isLoopback(url.hostname.replace(/^\[|\]$/g, '')))
    ) {
      problems.push(`${where}.url: only https:// (http:// for a loopback address), not ${url.protocol}`);
    }
    if (url && (url.pathname !== '/' || url.search !== '' || url.username !== '' || url.password !== '')) {
      problems.push(`${where}.url: scheme, host and port only (no path, query or credentials)`);
    }
    upstream.tags.forEach((rule, ruleIndex) => {
      const problem = globProblem(rule.tags);
      if (problem) problems.push(`${where}.tags[${ruleIndex}].tags: ${problem}`);
    });
    if (typeof upstream.credentials === 'object' && 'username' in upstream.credentials) {
      const { password, passwordEnv } = upstream.credentials;
      if ((password === undefined) === (passwordEnv === undefined)) {
        problems.push(`${where}.credentials: give exactly one of password and passwordEnv`);
      }
    }
  });
  if (defaults > 1) problems.push('proxy.upstreams: at most one upstream may be the default');
  for (const [key, globs] of [
    ['proxy.hosted', proxy.hosted],
    ['proxy.pin', proxy.pin],
  ] as const) {
    globs.forEach((glob, index) => {
      const problem = repositoryGlobProblem(glob);
      if (problem) problems.push(`${key}[${index}]: ${problem}`);
    });
  }
  if (proxy.lowWatermark > proxy.highWatermark) {
    problems.push('proxy.lowWatermark must not be above proxy.highWatermark');
  }
  if (problems.length > 0) {
    throw new PullsafeError(
      'CONFIG_INVALID',
      `${source}: invalid configuration\n  ${problems.join('\n  ')}`,
      {
        hint: 'see docs/cache.md for the proxy section',
      },
    );
  }
}

function applyOverrides(raw: Record<string, unknown>, overrides: ServeOverrides): Record<string, unknown> {
  const result: Record<string, unknown> = { ...raw };
  if (overrides.listen !== undefined) result.listen = overrides.listen;
  if (overrides.storage !== undefined) result.storage = overrides.storage;
  if (overrides.allowAnonymousPush !== undefined) result.allowAnonymousPush = overrides.allowAnonymousPush;
  if (overrides.htpasswd !== undefined) {
    result.auth = { ...asObject(result.auth), htpasswd: overrides.htpasswd };
  }
  if (overrides.logLevel !== undefined) result.log = { ...asObject(result.log), level: overrides.logLevel };
  if (overrides.proxies?.length) {
    const proxy = asObject(result.proxy);
    const upstreams = Array.isArray(proxy.upstreams) ? [...(proxy.upstreams as unknown[])] : [];
    for (const flag of overrides.proxies) upstreams.push(parseProxyFlag(flag));
    result.proxy = { ...proxy, upstreams };
  }
  if (overrides.redis !== undefined) result.redis = { ...asObject(result.redis), url: overrides.redis };
  if (overrides.secretFile !== undefined) result.secretFile = overrides.secretFile;
  if (overrides.hosted?.length) {
    const proxy = asObject(result.proxy);
    const hosted = Array.isArray(proxy.hosted) ? [...(proxy.hosted as unknown[])] : [];
    result.proxy = { ...proxy, hosted: [...hosted, ...overrides.hosted] };
  }
  return result;
}

/** `--proxy docker.io` or `--proxy ghcr.io=https://ghcr.io`. */
export function parseProxyFlag(value: string): { name: string; url?: string } {
  const equals = value.indexOf('=');
  const name = (equals === -1 ? value : value.slice(0, equals)).trim();
  const url = equals === -1 ? undefined : value.slice(equals + 1).trim();
  if (!upstreamNamePattern.test(name) || url === '') {
    throw new PullsafeError('USAGE', `--proxy ${value}: expected NAME or NAME=URL`, {
      hint: 'for example --proxy docker.io or --proxy ghcr.io=https://ghcr.io',
    });
  }
  return url === undefined ? { name } : { name, url };
}

/** The API base URL of an upstream: its `url`, else the registry's well-known endpoint. */
export function upstreamUrl(upstream: Pick<UpstreamConfig, 'name' | 'url'>): URL {
  if (upstream.url !== undefined) return new URL(upstream.url);
  return new URL(upstream.name === 'docker.io' ? 'https://registry-1.docker.io' : `https://${upstream.name}`);
}

/** `500MiB`, `50GiB`, `1TB`, `1048576`: bytes, or undefined when not a size. */
export function parseByteSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$/i.exec(value);
  if (!match) return undefined;
  const unit = (match[2] ?? 'b').toLowerCase();
  const powers: Record<string, number> = { b: 0, k: 1, m: 2, g: 3, t: 4 };
  const power = powers[unit[0]!] ?? 0;
  const base = unit.includes('i') || unit.length === 1 ? 1024 : 1000;
  const bytes = Math.round(Number(match[1]) * base ** power);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

function asObject(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new PullsafeError(
      'CONFIG_UNREADABLE',
      `cannot read config file ${file}: ${(error as Error).message}`,
      {
        hint: 'check the path given with --config or PULLSAFE_CONFIG',
      },
    );
  }
  let value: unknown;
  try {
    value = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    throw new PullsafeError('CONFIG_INVALID', `${file}: not valid YAML or JSON: ${(error as Error).message}`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new PullsafeError('CONFIG_INVALID', `${file}: the top level must be a mapping of keys`);
  }
  return value as Record<string, unknown>;
}

export interface ListenAddress {
  host: string;
  port: number;
  loopback: boolean;
}

/** `host:port`, `[v6]:port` or `:port` (all interfaces). */
export function parseListen(value: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new PullsafeError('CONFIG_INVALID', `listen: "${value}" is not host:port`, {
      hint: 'for example 127.0.0.1:5000, [::1]:5000 or 0.0.0.0:5000',
    });
  }
  const host = match[1] ?? (match[2] || '0.0.0.0');
  if (match[1] !== undefined && isIP(host) !== 6) {
    throw new PullsafeError('CONFIG_INVALID', `listen: "${value}" has an invalid IPv6 address`);
  }
  return { host, port, loopback: isLoopback(host) };
}

/**
 * Secure by default: without users, anonymous push is allowed only on a loopback address, unless the
 * operator says otherwise with allowAnonymousPush. With users, anonymous push needs allowAnonymousPush.
 */
export function anonymousPushAllowed(config: ServeConfig): boolean {
  if (config.allowAnonymousPush) return true;
  return !config.auth.htpasswd && parseListen(config.listen).loopback;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export function durationMs(value: string | number): number {
  return parseDuration(value) ?? 0;
}

export type { ServeConfigInput };

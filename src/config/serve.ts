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

export const serveConfigSchema = z.strictObject({
  listen: z.string().default('127.0.0.1:5000').describe('host:port to listen on; [::1]:5000 for IPv6'),
  storage: z.string().min(1).default('./data').describe('Folder of the filesystem storage'),
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
  listen?: string;
  storage?: string;
  htpasswd?: string;
  allowAnonymousPush?: boolean;
  logLevel?: string;
}

export const serveEnvironment = {
  PULLSAFE_CONFIG: 'config file path',
  PULLSAFE_LISTEN: 'listen',
  PULLSAFE_STORAGE: 'storage',
  PULLSAFE_HTPASSWD: 'auth.htpasswd',
  PULLSAFE_ALLOW_ANONYMOUS_PUSH: 'allowAnonymousPush (true/false)',
  PULLSAFE_LOG_LEVEL: 'log.level',
} as const;

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
  return result.data;
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
  return result;
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

/** `pullsafe serve`: the hosted registry on filesystem or S3 storage. */
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { homedir, networkInterfaces, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import {
  anonymousPushAllowed,
  durationMs,
  loadServeConfig,
  parseByteSize,
  parseListen,
  upstreamNamespace,
  upstreamUrl,
  type ServeConfig,
  type ServeOverrides,
  type UpstreamConfig,
} from '../config/serve.ts';
import { PullsafeError, redact } from '../errors/index.ts';
import { AccessControl, AuthConfigError } from '../server/auth.ts';
import { startServer } from '../server/app.ts';
import {
  GcFence,
  MemoryFenceStore,
  StoreError,
  openStorage,
  parseStorageLocation,
  s3Connection,
  writeCacheNamespaces,
  type Storage,
  type StorageLocation,
} from '../store/index.ts';
import {
  dockerConfigCredentials,
  dockerConfigPath,
  ecrCredentials,
  explicitCredentials,
  secretsManagerCredentials,
  type CredentialSource,
} from '../client/index.ts';
import { PullThroughCache, RedisCoordinator, type UpstreamOptions } from '../proxy/index.ts';
import { compileGlob } from '../shared/glob.ts';
import { connectLinkRemovals } from './link-channel.ts';
import { lazyEcr, lazySecretsManager } from './registry.ts';

export interface ServeFlags {
  config?: string;
  proxy?: string[];
  hosted?: string[];
  redis?: string;
  secretFile?: string;
  listen?: string;
  storage?: string;
  htpasswd?: string;
  allowAnonymousPush?: boolean;
  logLevel?: string;
}

export async function runServe(flags: ServeFlags, env: Record<string, string | undefined>): Promise<number> {
  const config = await loadServeConfig({
    ...(flags.config ? { file: flags.config } : {}),
    env,
    flags: flagOverrides(flags, env),
  });
  const listen = parseListen(config.listen);
  const uploadKeys = await loadUploadKeys(config.secretFile, env.PULLSAFE_SECRET);
  const logger = createLogger(config.log.level);
  const access = await loadAccess(config, logger);
  const { storage, location } = await openConfiguredStorage(config, env);

  // Replicas sharing a Redis take turns at gc and share the cache's fills and memory.
  const coordinator = config.redis ? await connectRedis(config.redis.url) : undefined;
  // A replica forgets at once a repository link another one removed, so links may be remembered for long.
  if (config.redis && storage.shareLinkRemovals) {
    storage.shareLinkRemovals(await connectLinkRemovals(config.redis.url, { listen: true }));
  }
  // Writes and every gc (this replica's, another's, `pullsafe gc --redis`) meet at the fence.
  const gcFence = new GcFence(coordinator ?? new MemoryFenceStore());
  const cache =
    config.proxy.upstreams.length > 0
      ? await openCache(config, storage, location, env, logger, coordinator, gcFence, uploadKeys)
      : undefined;

  let running;
  let peerUrl: string | undefined;
  try {
    running = await startServer({
      ...(cache ? { cache } : {}),
      storage,
      gcFence,
      access,
      logger,
      host: listen.host,
      port: listen.port,
      registry: {
        maxManifestBytes: config.limits.maxManifestBytes,
        manifestCacheBytes: config.limits.manifestCacheBytes,
        maxPageSize: config.limits.maxPageSize,
        redirectBlobs: config.s3.redirect,
        ...(uploadKeys ? { uploadKeys } : {}),
      },
      uploadMaxAgeMs: durationMs(config.uploads.maxAge),
      shutdownTimeoutMs: durationMs(config.shutdownTimeout),
      drainDelayMs:
        config.shutdownDelay !== undefined ? durationMs(config.shutdownDelay) : listen.loopback ? 0 : 5_000,
      logRequests: config.log.requests,
      ...(config.gc ? { gc: onlineGc(config.gc, coordinator) } : {}),
    });
    if (cache && uploadKeys && config.redis) {
      peerUrl = config.redis.advertiseUrl ?? advertisedUrl(listen.host, new URL(running.url).port);
      cache.setPeerUrl(peerUrl);
    }
  } catch (error) {
    throw new PullsafeError(
      'LISTEN_FAILED',
      `cannot listen on ${config.listen}: ${(error as Error).message}`,
      {
        hint: 'pick a free port with --listen HOST:PORT',
      },
    );
  }
  // A promise that failed unheard is a bug of one operation, not of the process: the default (the process
  // ends) would take every pull in flight with it. It is logged at error level and counted instead.
  process.on('unhandledRejection', (reason) => {
    running.metrics.unhandledRejections++;
    logger.error({ err: reason }, 'unhandled rejection (a bug in pullsafe; serving goes on)');
  });
  // The signal handlers come before the line that says the server is up: whoever waits for that line may
  // send SIGTERM at once, and without a handler the signal would kill the process outright.
  const exited = stopOnSignals(running, logger);
  logger.info(
    {
      url: running.url,
      storage: storage.location,
      users: access.usersConfigured,
      ...(cache ? { upstreams: cache.upstreams.map((upstream) => upstream.name) } : {}),
      ...(peerUrl !== undefined ? { peer: peerUrl } : {}),
    },
    'listening',
  );
  return exited;
}

/**
 * Resolves with serve's exit code once SIGTERM or SIGINT has stopped the server: SIGTERM comes from
 * orchestrators, which want the drain delay; Ctrl-C (SIGINT) is a person waiting.
 */
function stopOnSignals(
  running: { close(options?: { immediate?: boolean }): Promise<void> },
  logger: pino.Logger,
): Promise<number> {
  return new Promise<number>((resolveExit) => {
    const stop = (signal: 'SIGTERM' | 'SIGINT'): void => {
      logger.info({ signal }, 'shutting down: finishing in-flight requests');
      running.close({ immediate: signal === 'SIGINT' }).then(
        () => {
          logger.info({}, 'stopped');
          logger.flush();
          resolveExit(0);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          logger.flush();
          resolveExit(70);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/** serve's own gc (`gc.interval`), taking turns with the other replicas through their Redis. */
function onlineGc(
  gc: NonNullable<ServeConfig['gc']>,
  coordinator: RedisCoordinator | undefined,
): { intervalMs: number; minAgeMs: number; deleteUntagged: boolean; coordinator?: RedisCoordinator } {
  return {
    intervalMs: durationMs(gc.interval),
    minAgeMs: durationMs(gc.minAge),
    deleteUntagged: gc.deleteUntagged,
    ...(coordinator ? { coordinator } : {}),
  };
}

/** What serve's flags (and PULLSAFE_REDIS) set over the config file and its environment. */
function flagOverrides(flags: ServeFlags, env: Record<string, string | undefined>): ServeOverrides {
  const overrides: ServeOverrides = {};
  if (flags.listen !== undefined) overrides.listen = flags.listen;
  if (flags.storage !== undefined) overrides.storage = flags.storage;
  if (flags.htpasswd !== undefined) overrides.htpasswd = flags.htpasswd;
  if (flags.allowAnonymousPush) overrides.allowAnonymousPush = true;
  if (flags.logLevel !== undefined) overrides.logLevel = flags.logLevel;
  if (flags.proxy?.length) overrides.proxies = flags.proxy;
  if (flags.hosted?.length) overrides.hosted = flags.hosted;
  const redis = flags.redis ?? env.PULLSAFE_REDIS;
  if (redis !== undefined) overrides.redis = redis;
  if (flags.secretFile !== undefined) overrides.secretFile = flags.secretFile;
  return overrides;
}

/** JSON lines on stderr, with credentials redacted wherever a field may hold them. */
function createLogger(level: string): pino.Logger {
  return pino(
    {
      name: 'pullsafe',
      level,
      redact: {
        paths: [
          '*.authorization',
          '*.password',
          '*.token',
          'headers.authorization',
          'req.headers.authorization',
        ],
        censor: '[redacted]',
      },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}

/** Users and rules; says at start when pushes will be refused for want of both. */
async function loadAccess(
  config: ServeConfig,
  logger: { warn(fields: object, message?: string): void },
): Promise<AccessControl> {
  try {
    const usersFile = config.auth.htpasswd ? resolve(config.auth.htpasswd) : undefined;
    const anonymousPush = anonymousPushAllowed(config);
    const access = await AccessControl.load({
      realm: config.auth.realm,
      ...(usersFile ? { htpasswd: usersFile } : {}),
      ...(config.auth.rules ? { rules: config.auth.rules } : {}),
      anonymousPull: config.auth.anonymousPull,
      anonymousPush,
    });
    if (!anonymousPush && !usersFile && !config.auth.rules) {
      logger.warn(
        { listen: config.listen },
        'push is refused: anonymous push is off on a non-loopback address; configure users (--htpasswd) or pass --allow-anonymous-push',
      );
    }
    return access;
  } catch (error) {
    if (error instanceof AuthConfigError) {
      throw new PullsafeError('AUTH_CONFIG_INVALID', error.message, {
        hint: 'create entries with `htpasswd -B -c FILE USER` (bcrypt only)',
      });
    }
    throw error;
  }
}

/** The storage the config names, opened and checked (a usage error or STORAGE_UNAVAILABLE when not). */
async function openConfiguredStorage(
  config: ServeConfig,
  env: Record<string, string | undefined>,
): Promise<{ storage: Storage; location: StorageLocation }> {
  let location: StorageLocation;
  let s3;
  try {
    location = parseStorageLocation(config.storage);
    s3 = s3Connection(config.s3, env);
    if (config.s3.redirect && location.kind !== 's3') {
      throw new StoreError('INVALID_KEY', 's3.redirect needs an s3://BUCKET/PREFIX storage');
    }
  } catch (error) {
    if (!(error instanceof StoreError)) throw error;
    throw new PullsafeError('CONFIG_INVALID', error.message, {
      hint: 'storage is a folder or s3://BUCKET/PREFIX (docs/storage.md)',
    });
  }
  try {
    const storage = await openStorage(location.kind === 'fs' ? resolve(location.path) : config.storage, {
      s3,
      rememberLinksMs: config.s3.rememberLinksSeconds * 1000,
    });
    return { storage, location };
  } catch (error) {
    throw new PullsafeError(
      'STORAGE_UNAVAILABLE',
      `cannot open storage ${config.storage}: ${(error as Error).message}`,
      {
        hint:
          location.kind === 'fs'
            ? 'the folder must be writable by this user'
            : 'check the bucket, the AWS credentials, s3.region (or AWS_REGION) and s3.endpoint (or AWS_ENDPOINT_URL_S3); see docs/storage.md',
      },
    );
  }
}

/**
 * The pull-through cache of the `proxy` section: one client per upstream with its own credentials (never
 * another upstream's), fills spooled under the storage folder (what a killed process left there is removed),
 * or for S3 storage in a temporary folder of this process's, removed when it exits.
 */
async function openCache(
  config: ServeConfig,
  storage: Storage,
  location: StorageLocation,
  env: Record<string, string | undefined>,
  logger: { warn(fields: object, message?: string): void },
  coordinator: RedisCoordinator | undefined,
  gcFence: GcFence,
  uploadKeys: Buffer[] | undefined,
): Promise<PullThroughCache> {
  const upstreams: UpstreamOptions[] = config.proxy.upstreams.map((upstream) => {
    const credentials = upstreamCredentials(upstream, env);
    const anonymousPull = upstream.anonymousPull ?? credentials === undefined;
    if (!anonymousPull && !config.auth.htpasswd) {
      logger.warn(
        { upstream: upstream.name },
        'this upstream is fetched with credentials, so only authenticated clients may pull from it, and no users are configured: set --htpasswd, or anonymousPull: true if its content may be public',
      );
    }
    return {
      name: upstream.name,
      url: upstreamUrl(upstream),
      namespace: upstreamNamespace(upstream.name),
      prefixes: upstream.prefixes,
      ...(upstream.default !== undefined ? { default: upstream.default } : {}),
      ...(credentials ? { credentials } : {}),
      anonymousPull,
      concurrency: upstream.concurrency,
      requestsPerSecond: upstream.requestsPerSecond,
      connectTimeoutMs: durationMs(upstream.connectTimeout),
      responseTimeoutMs: durationMs(upstream.responseTimeout),
      revalidateWaitMs: durationMs(upstream.revalidateWait),
      tagTtlMs: durationMs(upstream.tagTtl),
      tagRules: upstream.tags.map((rule) => ({
        pattern: compileGlob(rule.tags),
        ...(rule.ttl !== undefined ? { ttlMs: durationMs(rule.ttl) } : {}),
        ...(rule.immutable !== undefined ? { immutable: rule.immutable } : {}),
      })),
      notFoundTtlMs: durationMs(upstream.notFoundTtl),
      quotaReserve: upstream.quotaReserve,
    };
  });
  let spoolDir: string;
  if (location.kind === 'fs') {
    spoolDir = join(resolve(location.path), 'fills');
    await rm(spoolDir, { recursive: true, force: true });
  } else {
    const temporary = await mkdtemp(join(tmpdir(), 'pullsafe-fills-'));
    process.once('exit', () => rmSync(temporary, { recursive: true, force: true }));
    spoolDir = temporary;
  }
  // Tells `fsck` which repositories are cache content, whose blobs are fetched on demand.
  await writeCacheNamespaces(
    storage,
    upstreams.map((u) => u.namespace),
  );
  const maxBytes = config.proxy.maxSize === undefined ? undefined : parseByteSize(config.proxy.maxSize);
  return new PullThroughCache(storage, {
    upstreams,
    hosted: config.proxy.hosted,
    spoolDir,
    gcFence,
    ...(coordinator && config.redis ? { coordinator, leaseMs: durationMs(config.redis.leaseTtl) } : {}),
    // Fills stream between replicas only when they share Redis (to find each other) and a key (to trust).
    ...(coordinator && config.redis && uploadKeys ? { peer: { keys: uploadKeys } } : {}),
    ...(maxBytes !== undefined
      ? {
          eviction: {
            maxBytes,
            highWatermark: config.proxy.highWatermark,
            lowWatermark: config.proxy.lowWatermark,
            pinned: config.proxy.pin,
          },
        }
      : {}),
  });
}

function upstreamCredentials(
  upstream: UpstreamConfig,
  env: Record<string, string | undefined>,
): CredentialSource | undefined {
  const credentials = upstream.credentials;
  if (credentials === undefined) return undefined;
  const description = `proxy.upstreams ${upstream.name} credentials`;
  if (credentials === 'docker-config') {
    return dockerConfigCredentials({ path: dockerConfigPath(env, homedir()), env });
  }
  if (credentials === 'ecr') return ecrCredentials({ clientFactory: lazyEcr });
  if ('secret' in credentials) {
    const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
    return secretsManagerCredentials({
      secretId: credentials.secret,
      registry: upstream.name,
      ...(region ? { region } : {}),
      clientFactory: lazySecretsManager,
    });
  }
  const password = credentials.password ?? env[credentials.passwordEnv ?? ''];
  if (password === undefined || password === '') {
    throw new PullsafeError(
      'CONFIG_INVALID',
      `${description}: the environment variable ${credentials.passwordEnv} is not set`,
      { hint: 'export it before starting pullsafe serve' },
    );
  }
  return explicitCredentials(`${credentials.username}:${password}`, { registry: upstream.name, description });
}

/**
 * A Redis (or Valkey) connection for the replicas' coordinator. The client reconnects by itself after a
 * drop; a server that cannot be reached at start is a configuration problem, said at once.
 */
export async function connectRedis(url: string): Promise<RedisCoordinator> {
  const { createClient } = await import('redis');
  const client = createClient({
    url,
    socket: { connectTimeout: 5_000, reconnectStrategy: (tries) => Math.min(tries * 200, 5_000) },
  });
  client.on('error', () => undefined);
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 5 s')), 5_000).unref()),
    ]);
  } catch (error) {
    await client.disconnect().catch(() => undefined);
    throw new PullsafeError(
      'CONFIG_INVALID',
      `cannot reach Redis at ${redact(url)}: ${(error as Error).message}`,
      {
        hint: 'check --redis / redis.url (redis://HOST:PORT) and that the server answers from here',
      },
    );
  }
  return new RedisCoordinator(client);
}

/** Shortest key taken: 32 characters (`openssl rand -base64 32` gives 44). */
const minimumKeyLength = 32;

/**
 * The keys that sign upload locations, from `secretFile` or else the value of PULLSAFE_SECRET (what ECS puts
 * there from Secrets Manager): one per line, blank lines and `#` comments skipped.
 */
async function loadUploadKeys(
  file: string | undefined,
  value: string | undefined,
): Promise<Buffer[] | undefined> {
  let text = value;
  const source = file !== undefined ? `secretFile ${file}` : 'PULLSAFE_SECRET';
  if (file !== undefined) {
    try {
      text = await readFile(resolve(file), 'utf8');
    } catch (error) {
      throw new PullsafeError('CONFIG_INVALID', `cannot read ${source}: ${(error as Error).message}`, {
        hint: 'the file holds the key that signs upload locations; create one with `openssl rand -base64 32 > FILE`',
      });
    }
  }
  if (text === undefined) return undefined;
  const keys = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (keys.length === 0) {
    throw new PullsafeError('CONFIG_INVALID', `${source} holds no key`, {
      hint: 'put one key per line: `openssl rand -base64 32 > FILE`',
    });
  }
  const short = keys.find((key) => key.length < minimumKeyLength);
  if (short !== undefined) {
    throw new PullsafeError(
      'CONFIG_INVALID',
      `a key in ${source} is ${short.length} characters; keys need at least ${minimumKeyLength}`,
      { hint: 'make one with `openssl rand -base64 32`' },
    );
  }
  return keys.map((key) => Buffer.from(key, 'utf8'));
}

/**
 * Where the other replicas reach this one when no `redis.advertiseUrl` says: the listening address when it
 * is a specific one, else this host's first IPv4 address that is neither loopback nor link-local (a task's
 * or pod's own address; link-local ones, 169.254.x.x, are for metadata endpoints).
 */
function advertisedUrl(host: string, port: string): string {
  const wildcard = host === '0.0.0.0' || host === '::' || host === '[::]' || host === '';
  if (!wildcard) return `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
  for (const addresses of Object.values(networkInterfaces())) {
    const address = addresses?.find(
      (entry) => entry.family === 'IPv4' && !entry.internal && !entry.address.startsWith('169.254.'),
    );
    if (address) return `http://${address.address}:${port}`;
  }
  return `http://127.0.0.1:${port}`;
}

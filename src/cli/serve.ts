/** `pullsafe serve`: the hosted registry on filesystem storage. */
import { resolve } from 'node:path';
import { pino } from 'pino';
import {
  anonymousPushAllowed,
  durationMs,
  loadServeConfig,
  parseListen,
  type ServeOverrides,
} from '../config/serve.ts';
import { PullsafeError } from '../errors/index.ts';
import { AccessControl, AuthConfigError } from '../server/auth.ts';
import { startServer } from '../server/app.ts';
import { openFsStorage } from '../store/index.ts';

export interface ServeFlags {
  config?: string;
  proxy?: string[];
  listen?: string;
  storage?: string;
  htpasswd?: string;
  allowAnonymousPush?: boolean;
  logLevel?: string;
}

export async function runServe(flags: ServeFlags, env: Record<string, string | undefined>): Promise<number> {
  const overrides: ServeOverrides = {};
  if (flags.listen !== undefined) overrides.listen = flags.listen;
  if (flags.storage !== undefined) overrides.storage = flags.storage;
  if (flags.htpasswd !== undefined) overrides.htpasswd = flags.htpasswd;
  if (flags.allowAnonymousPush) overrides.allowAnonymousPush = true;
  if (flags.logLevel !== undefined) overrides.logLevel = flags.logLevel;
  if (flags.proxy?.length) overrides.proxies = flags.proxy;
  const config = await loadServeConfig({
    ...(flags.config ? { file: flags.config } : {}),
    env,
    flags: overrides,
  });
  const listen = parseListen(config.listen);

  const logger = pino(
    {
      name: 'pullsafe',
      level: config.log.level,
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

  let access: AccessControl;
  try {
    const usersFile = config.auth.htpasswd ? resolve(config.auth.htpasswd) : undefined;
    const anonymousPush = anonymousPushAllowed(config);
    access = await AccessControl.load({
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
  } catch (error) {
    if (error instanceof AuthConfigError) {
      throw new PullsafeError('AUTH_CONFIG_INVALID', error.message, {
        hint: 'create entries with `htpasswd -B -c FILE USER` (bcrypt only)',
      });
    }
    throw error;
  }

  let storage;
  try {
    storage = await openFsStorage(resolve(config.storage));
  } catch (error) {
    throw new PullsafeError(
      'STORAGE_UNAVAILABLE',
      `cannot open storage ${config.storage}: ${(error as Error).message}`,
      {
        hint: 'the folder must be writable by this user',
      },
    );
  }

  let running;
  try {
    running = await startServer({
      storage,
      access,
      logger,
      host: listen.host,
      port: listen.port,
      registry: {
        maxManifestBytes: config.limits.maxManifestBytes,
        manifestCacheBytes: config.limits.manifestCacheBytes,
        maxPageSize: config.limits.maxPageSize,
      },
      uploadMaxAgeMs: durationMs(config.uploads.maxAge),
      shutdownTimeoutMs: durationMs(config.shutdownTimeout),
      drainDelayMs:
        config.shutdownDelay !== undefined ? durationMs(config.shutdownDelay) : listen.loopback ? 0 : 5_000,
      logRequests: config.log.requests,
    });
  } catch (error) {
    throw new PullsafeError(
      'LISTEN_FAILED',
      `cannot listen on ${config.listen}: ${(error as Error).message}`,
      {
        hint: 'pick a free port with --listen HOST:PORT',
      },
    );
  }
  // The signal handlers come before the line that says the server is up: whoever waits for that line may
  // send SIGTERM at once, and without a handler the signal would kill the process outright.
  const exited = new Promise<number>((resolveExit) => {
    // SIGTERM comes from orchestrators, which want the drain delay; Ctrl-C (SIGINT) is a person waiting.
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
  logger.info({ url: running.url, storage: storage.location, users: access.usersConfigured }, 'listening');
  return exited;
}

/** `pullsafe warm -f FILE --endpoint URL`: fills a pullsafe pull-through cache ahead of a deploy. */
import { RegistryClient, describeRateLimit } from '../client/index.ts';
import { loadSyncConfig } from '../config/sync.ts';
import { upstreamNamespace } from '../config/serve.ts';
import { PullsafeError } from '../errors/index.ts';
import { parsePlatform } from '../copy/filters.ts';
import { readCacheStatus, runWarm, type WarmImageEvent, type WarmSummary } from '../copy/warm.ts';
import { counted } from './copy.ts';
import {
  exitCodes,
  exitOnInterrupt,
  formatBytes,
  writeLines,
  type CommandIo,
  type OutputStream,
} from './output.ts';
import { eventLine, Progress } from './progress.ts';
import { buildCredentials } from './registry.ts';

export interface WarmFlags {
  file: string;
  endpoint: string;
  platform?: string[];
  reserve?: string;
  imageConcurrency?: string;
  blobConcurrency?: string;
  creds?: string;
  tlsVerify?: boolean;
  json?: boolean;
}

/** A finished warm-up: the run's summary and the reserve it kept. */
export interface WarmOutcome {
  summary: WarmSummary;
  seconds: number;
  quotaReserve: number;
  /** 3 when an image failed or was deferred, or the quota reserve stopped the run. */
  exitCode: number;
}

export async function runWarmCommand(flags: WarmFlags, io: CommandIo): Promise<number> {
  const outcome = await warm(flags, io);
  printWarm(outcome, flags, io);
  return outcome.exitCode;
}

/** Pulls a mirror file's images through the cache; each image's line and warnings go to `io` as they happen. */
export async function warm(flags: WarmFlags, io: CommandIo): Promise<WarmOutcome> {
  const { env } = io;
  const endpoint = parseEndpoint(flags.endpoint);
  if (flags.tlsVerify === false && endpoint.plain) {
    throw new PullsafeError(
      'USAGE',
      '--tls-verify=false: the endpoint is plain HTTP, which has no certificate',
    );
  }
  // Checked before the file is read: a mistyped flag is named first.
  for (const platform of flags.platform ?? []) parsePlatform(platform);
  const reserve = parseCount(flags.reserve, '--reserve', 0, Number.MAX_SAFE_INTEGER);
  const imageConcurrency = parseCount(flags.imageConcurrency, '--image-concurrency', 1, 32);
  const blobConcurrency = parseCount(flags.blobConcurrency, '--blob-concurrency', 1, 64);
  const config = await loadSyncConfig(flags.file, { sourcesOnly: true });
  const entries = flags.platform?.length
    ? config.entries.map((entry) => ({ ...entry, platforms: flags.platform! }))
    : config.entries;

  const credentials = buildCredentials({ ...(flags.creds ? { creds: flags.creds } : {}) }, env, {});
  const client = new RegistryClient({
    credentials,
    transport: {
      plainHttp: endpoint.plain ? [endpoint.host] : [],
      insecure: flags.tlsVerify === false ? [endpoint.host] : [],
      // A 429 from the cache means its upstream's quota is spent: the image is deferred at once, not waited for.
      retry: { maxRetryAfterMs: 0 },
    },
  });
  const progress = new Progress(Progress.detect({ json: !!flags.json, stream: io.stderr, ci: !!env.CI }), io);
  for (const warning of config.warnings) io.stderr.write(`warning: ${warning}\n`);

  const started = Date.now();
  const interruptible = exitOnInterrupt(
    'what was pulled stays in the cache: run the same command again to finish',
    !!flags.json,
    io,
  );
  try {
    const status = await readCacheStatus(client, endpoint.host, credentials);
    if ('problem' in status) {
      io.stderr.write(
        `warning: ${status.problem}: registries the cache does not proxy show as 404s, and the pull quota is learnt from the first manifest\n`,
      );
    }
    const summary = await runWarm(client, {
      entries,
      endpoint: endpoint.host,
      cacheRepository: (source) => `${upstreamNamespace(source.registry)}/${source.repository}`,
      ...('upstreams' in status ? { upstreams: status.upstreams } : {}),
      quotaReserve: reserve ?? config.quotaReserve,
      concurrency: {
        images: imageConcurrency ?? config.concurrency.images,
        blobs: blobConcurrency ?? config.concurrency.blobs,
      },
      onImage: (event) => report(progress, event, !!flags.json, io.stdout),
      onBlobEvent: (image, event) => progress.copyEvent(image, event),
    });
    progress.clear();
    const unfinished = summary.failed || summary.deferred || summary.stoppedForQuota;
    return {
      summary,
      seconds: (Date.now() - started) / 1000,
      quotaReserve: reserve ?? config.quotaReserve,
      exitCode: unfinished ? exitCodes.upstream : exitCodes.ok,
    };
  } finally {
    interruptible();
    await client.close();
  }
}

/** The summary: a last `summary` event with --json, else the run's warnings (stderr) and a few lines. */
export function printWarm(
  outcome: WarmOutcome,
  flags: { json?: boolean },
  io: Pick<CommandIo, 'stdout' | 'stderr'>,
): void {
  const { summary, seconds } = outcome;
  if (flags.json) {
    io.stdout.write(eventLine('summary', { ...summary, seconds }));
    return;
  }
  for (const warning of summary.warnings) io.stderr.write(`warning: ${warning}\n`);
  const parts = [`${summary.warmed} warmed`, `${summary.cached} already cached`];
  if (summary.failed) parts.push(`${summary.failed} failed`);
  if (summary.deferred) parts.push(`${summary.deferred} deferred`);
  const lines = [
    `${counted(summary.images, 'image')}: ${parts.join(', ')}; ${formatBytes(summary.bytesPulled)} pulled in ${counted(summary.blobsPulled, 'blob')} (${formatBytes(summary.bytesFetched)} fetched by the cache), ${seconds.toFixed(1)} s`,
  ];
  for (const [registry, quota] of Object.entries(summary.quotas)) {
    lines.push(`pull quota of ${registry} (as the cache saw it): ${describeRateLimit(quota)}`);
  }
  if (summary.stoppedForQuota) {
    lines.push(
      `stopped before a pull quota fell below the reserve (${outcome.quotaReserve}); run the same command after the window to finish`,
    );
  }
  writeLines(io.stdout, lines);
}

/** `http[s]://host[:port]`, nothing else: the cache's API is at `/v2/` of that origin. */
function parseEndpoint(text: string): { host: string; plain: boolean } {
  const hint = 'give the cache as http://HOST:PORT or https://HOST[:PORT], e.g. --endpoint http://cache:5000';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new PullsafeError('USAGE', `--endpoint "${text}" is not a URL`, { hint });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new PullsafeError('USAGE', `--endpoint "${text}": the scheme must be http or https`, { hint });
  }
  if (url.username || url.password) {
    throw new PullsafeError('USAGE', '--endpoint: the URL carries credentials', {
      hint: 'give them with --creds user:password (or docker login to the cache), not in the URL',
    });
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    throw new PullsafeError('USAGE', `--endpoint "${text}": the cache is named by its origin alone`, {
      hint: `${hint}; pullsafe adds /v2/<registry>/<repository> itself`,
    });
  }
  return { host: url.host, plain: url.protocol === 'http:' };
}

function parseCount(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const count = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(count) || count < min || count > max) {
    throw new PullsafeError('USAGE', `${flag} "${value}": give a whole number from ${min} to ${max}`);
  }
  return count;
}

/** One image's line as it finishes (a JSON `image` event with --json). */
function report(progress: Progress, event: WarmImageEvent, json: boolean, out: OutputStream): void {
  if (event.status === 'started') {
    progress.imageStart(event.image);
    return;
  }
  if (json) {
    progress.emit('image', { ...event });
    return;
  }
  progress.imageDone(event.image, {});
  progress.clear();
  const result = event.result;
  const pulled = result
    ? `${result.platforms.length > 0 ? `${counted(result.platforms.length, 'platform')}, ` : ''}${counted(result.blobs, 'blob')}, ${formatBytes(result.bytes)}`
    : '';
  switch (event.status) {
    case 'warmed':
      out.write(
        `warmed     ${event.image} (${pulled}; the cache fetched ${formatBytes(result?.bytesFetched ?? 0)})\n`,
      );
      break;
    case 'cached':
      out.write(`cached     ${event.image} (${pulled}, all from the cache)\n`);
      break;
    case 'deferred':
      out.write(
        `deferred   ${event.image} (${event.error?.code === 'RATE_LIMITED' ? "the cache answered 429: its upstream's quota is spent" : 'quota reserve'})\n`,
      );
      break;
    case 'failed':
      out.write(`failed     ${event.image}: ${event.error?.message ?? 'unknown error'}\n`);
      if (event.error?.hint) out.write(`           hint: ${event.error.hint}\n`);
      break;
  }
}

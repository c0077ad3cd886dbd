/** `pullsafe sync -f FILE [--dest PREFIX]`. */
import {
  RegistryClient,
  describeRateLimit,
  explicitCredentials,
  type CredentialSource,
} from '../client/index.ts';
import { loadSyncConfig, targetFor, type SyncPlanEntry } from '../config/sync.ts';
import { registryApiHost } from '../reference/index.ts';
import { runSync, type SyncEntry, type SyncImageEvent, type SyncSummary } from '../copy/sync.ts';
import { BlobLocations } from '../copy/blob-locations.ts';
import { blobLocationsFile, counted } from './copy.ts';
import {
  exitCodes,
  exitOnInterrupt,
  formatBytes,
  writeLines,
  type CommandIo,
  type OutputStream,
} from './output.ts';
import { eventLine, Progress } from './progress.ts';
import { buildCredentials, type ClientFlags } from './registry.ts';

export interface SyncFlags extends ClientFlags {
  file: string;
  dest?: string;
  scoped?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

/** A finished sync: the run's summary and what it needs to be read. */
export interface SyncOutcome {
  summary: SyncSummary;
  seconds: number;
  dryRun: boolean;
  quotaReserve: number;
  /** 3 when an image failed, or (not for --dry-run) the quota reserve stopped the run. */
  exitCode: number;
}

export async function runSyncCommand(flags: SyncFlags, io: CommandIo): Promise<number> {
  const outcome = await sync(flags, io);
  printSync(outcome, flags, io);
  return outcome.exitCode;
}

/** Runs a mirror file; each image's line (or --json events) and warnings go to `io` as they happen. */
export async function sync(flags: SyncFlags, io: CommandIo): Promise<SyncOutcome> {
  const { env } = io;
  const config = await loadSyncConfig(flags.file, {
    ...(flags.dest !== undefined ? { dest: flags.dest } : {}),
    ...(flags.scoped ? { scoped: true } : {}),
  });
  // tls-verify false (tlsVerify) is skopeo's: HTTPS without certificate checks, plain HTTP if the host
  // answers so. --dest-tls-verify=false does the same for every target registry.
  const insecure = new Set<string>();
  const fileCredentials: CredentialSource[] = [];
  for (const entry of config.entries) {
    if (!entry.tlsVerify) insecure.add(registryApiHost(entry.source.registry));
    const target = flags.destTlsVerify === false ? targetRegistry(entry) : undefined;
    if (target !== undefined) insecure.add(registryApiHost(target));
    if (entry.credentials) {
      fileCredentials.push(
        explicitCredentials(`${entry.credentials.username}:${entry.credentials.password}`, {
          registry: entry.source.registry,
          description: `credentials for ${entry.source.registry} in ${flags.file}`,
        }),
      );
    }
  }
  const standard = buildCredentials(flags, env, {});
  const credentials: CredentialSource = {
    description: 'sync credentials',
    async get(registry) {
      for (const source of fileCredentials) {
        const found = await source.get(registry);
        if (found) return found;
      }
      return standard.get(registry);
    },
  };
  const client = new RegistryClient({
    credentials,
    transport: { plainHttp: flags.plainHttp ?? [], insecure },
  });
  const progress = new Progress(Progress.detect({ json: !!flags.json, stream: io.stderr, ci: !!env.CI }), io);
  for (const warning of config.warnings) io.stderr.write(`warning: ${warning}\n`);

  const started = Date.now();
  const interruptible = exitOnInterrupt(
    'images copied so far stay and nothing partial is visible: run the same command again to finish',
    !!flags.json,
    io,
  );
  const blobLocations = flags.dryRun ? undefined : await BlobLocations.open({ file: blobLocationsFile(env) });
  try {
    const summary = await runSync(client, {
      entries: config.entries,
      targetFor: (entry, selected) => targetFor(entry as SyncPlanEntry, selected),
      quotaReserve: config.quotaReserve,
      concurrency: config.concurrency,
      dryRun: !!flags.dryRun,
      ...(blobLocations ? { blobLocations } : {}),
      onImage: (event) => report(progress, event, !!flags.json, io.stdout),
      onCopyEvent: (image, event) => progress.copyEvent(image, event),
    });
    progress.clear();
    const failed = summary.failed > 0 || (!flags.dryRun && summary.stoppedForQuota);
    return {
      summary,
      seconds: (Date.now() - started) / 1000,
      dryRun: !!flags.dryRun,
      quotaReserve: config.quotaReserve,
      exitCode: failed ? exitCodes.upstream : exitCodes.ok,
    };
  } finally {
    interruptible();
    await blobLocations?.save();
    await client.close();
  }
}

/** The summary: a last `summary` event with --json, else the run's warnings (stderr) and a few lines. */
export function printSync(
  outcome: SyncOutcome,
  flags: { json?: boolean },
  io: Pick<CommandIo, 'stdout' | 'stderr'>,
): void {
  const { summary, seconds } = outcome;
  if (flags.json) {
    io.stdout.write(eventLine('summary', { ...summary, seconds }));
    return;
  }
  for (const warning of summary.warnings) io.stderr.write(`warning: ${warning}\n`);
  const parts = outcome.dryRun
    ? [`${summary.wouldCopy} would be copied`, `${summary.upToDate} up to date`]
    : [`${summary.copied} copied`, `${summary.upToDate} up to date`];
  if (summary.failed) parts.push(`${summary.failed} failed`);
  if (summary.deferred) parts.push(`${summary.deferred} deferred`);
  const lines = [
    `${counted(summary.images, 'image')}: ${parts.join(', ')}; ${formatBytes(summary.bytesCopied)} in ${counted(summary.blobsCopied, 'blob')}, ${seconds.toFixed(1)} s`,
  ];
  for (const [registry, quota] of Object.entries(summary.quotas)) {
    lines.push(`pull quota of ${registry}: ${describeRateLimit(quota)}`);
  }
  if (summary.stoppedForQuota) {
    lines.push(
      `stopped before a pull quota fell below the reserve (${outcome.quotaReserve}); run the same command after the window to finish`,
    );
  }
  writeLines(io.stdout, lines);
}

/** The registry an entry's images go to (the template's, whatever the tag); undefined for a bad template, which runSync reports. */
function targetRegistry(entry: SyncPlanEntry): string | undefined {
  try {
    return targetFor(entry, { tag: 'latest' }).registry;
  } catch {
    return undefined;
  }
}

/** One image's line as it finishes (a JSON `image` event with --json). */
function report(progress: Progress, event: SyncImageEvent, json: boolean, out: OutputStream): void {
  if (event.status === 'started') {
    progress.imageStart(event.source);
    return;
  }
  if (json) {
    progress.emit('image', { ...event });
    return;
  }
  progress.imageDone(event.source, {});
  progress.clear();
  const arrow = event.target ? ` → ${event.target}` : '';
  switch (event.status) {
    case 'copied':
      out.write(
        `copied     ${event.source}${arrow} (${counted(event.result?.blobsCopied ?? 0, 'blob')}, ${formatBytes(event.result?.bytesCopied ?? 0)})\n`,
      );
      if (event.result?.digestChanged) {
        out.write(
          `           note: the platform filter changed the digest: source ${event.result.sourceDigest}, target ${event.result.targetDigest}\n`,
        );
      }
      break;
    case 'up-to-date':
      out.write(`up to date ${event.source}${arrow}\n`);
      break;
    case 'would-copy':
      out.write(`would copy ${event.source}${arrow}${event.note ? ` (${event.note})` : ''}\n`);
      break;
    case 'deferred':
      out.write(`deferred   ${event.source}${arrow} (quota reserve)\n`);
      break;
    case 'failed':
      out.write(`failed     ${event.source}${arrow}: ${event.error?.message ?? 'unknown error'}\n`);
      if (event.error?.hint) out.write(`           hint: ${event.error.hint}\n`);
      break;
  }
}

export type { SyncEntry };

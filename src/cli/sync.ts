/** `pullsafe sync -f FILE [--dest PREFIX]`. */
import {
  RegistryClient,
  describeRateLimit,
  explicitCredentials,
  type CredentialSource,
} from '../client/index.ts';
import { loadSyncConfig, targetFor, type SyncPlanEntry } from '../config/sync.ts';
import { registryApiHost } from '../reference/index.ts';
import { runSync, type SyncEntry, type SyncImageEvent } from '../copy/sync.ts';
import { BlobLocations } from '../copy/blob-locations.ts';
import { blobLocationsFile, counted } from './copy.ts';
import { exitCodes, exitOnInterrupt, formatBytes, printLines } from './output.ts';
import { Progress } from './progress.ts';
import { buildCredentials, type ClientFlags } from './registry.ts';

export interface SyncFlags extends ClientFlags {
  file: string;
  dest?: string;
  scoped?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

export async function runSyncCommand(
  flags: SyncFlags,
  env: Record<string, string | undefined>,
): Promise<number> {
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
  const progress = new Progress(Progress.detect({ json: !!flags.json, ci: !!env.CI }));
  for (const warning of config.warnings) process.stderr.write(`warning: ${warning}\n`);

  const started = Date.now();
  const interruptible = exitOnInterrupt(
    'images copied so far stay and nothing partial is visible: run the same command again to finish',
    !!flags.json,
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
      onImage: (event) => report(progress, event, !!flags.json),
      onCopyEvent: (image, event) => progress.copyEvent(image, event),
    });
    progress.clear();
    const seconds = (Date.now() - started) / 1000;
    if (flags.json) {
      progress.emit('summary', { ...summary, seconds });
    } else {
      for (const warning of summary.warnings) process.stderr.write(`warning: ${warning}\n`);
      const parts = flags.dryRun
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
          `stopped before a pull quota fell below the reserve (${config.quotaReserve}); run the same command after the window to finish`,
        );
      }
      printLines(lines);
    }
    if (flags.dryRun) return summary.failed ? exitCodes.upstream : exitCodes.ok;
    return summary.failed || summary.stoppedForQuota ? exitCodes.upstream : exitCodes.ok;
  } finally {
    interruptible();
    await blobLocations?.save();
    await client.close();
  }
}

/** The registry an entry's images go to (the template's, whatever the tag); undefined for a bad template, which runSync reports. */
function targetRegistry(entry: SyncPlanEntry): string | undefined {
  try {
    return targetFor(entry, { tag: 'latest' }).registry;
  } catch {
    return undefined;
  }
}

function report(progress: Progress, event: SyncImageEvent, json: boolean): void {
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
      process.stdout.write(
        `copied     ${event.source}${arrow} (${counted(event.result?.blobsCopied ?? 0, 'blob')}, ${formatBytes(event.result?.bytesCopied ?? 0)})\n`,
      );
      if (event.result?.digestChanged) {
        process.stdout.write(
          `           note: the platform filter changed the digest: source ${event.result.sourceDigest}, target ${event.result.targetDigest}\n`,
        );
      }
      break;
    case 'up-to-date':
      process.stdout.write(`up to date ${event.source}${arrow}\n`);
      break;
    case 'would-copy':
      process.stdout.write(`would copy ${event.source}${arrow}${event.note ? ` (${event.note})` : ''}\n`);
      break;
    case 'deferred':
      process.stdout.write(`deferred   ${event.source}${arrow} (quota reserve)\n`);
      break;
    case 'failed':
      process.stdout.write(
        `failed     ${event.source}${arrow}: ${event.error?.message ?? 'unknown error'}\n`,
      );
      if (event.error?.hint) process.stdout.write(`           hint: ${event.error.hint}\n`);
      break;
  }
}

export type { SyncEntry };

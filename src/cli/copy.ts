/** `pullsafe copy`, `pullsafe inspect` and `pullsafe ratelimit`. */
import { RegistryClient, RegistryError, describeRateLimit, type RateLimit } from '../client/index.ts';
import { isAbsolute, join } from 'node:path';
import { BlobLocations } from '../copy/blob-locations.ts';
import { copyImage, type CopyResult } from '../copy/copy.ts';
import { parsePlatform, type PlatformFilter } from '../copy/filters.ts';
import { Limiter } from '../copy/limit.ts';
import type { ImageSource, ImageTarget } from '../copy/endpoints.ts';
import { OciLayout, parseLayoutReference } from '../copy/layout.ts';
import { RegistryEndpoint } from '../copy/registry-endpoint.ts';
import { errorFields, PullsafeError } from '../errors/index.ts';
import { digestOf } from '../oci/digest.ts';
import { parseManifest } from '../oci/manifest.ts';
import { formatReference, type ImageReference } from '../reference/index.ts';
import {
  exitCodes,
  exitOnInterrupt,
  formatBytes,
  writeJson,
  writeLines,
  type CommandIo,
  type OutputStream,
} from './output.ts';
import { eventLine, Progress } from './progress.ts';
import {
  buildClient,
  buildCredentials,
  defaultTag,
  parseImage,
  registryOf,
  transportOptions,
  type ClientFlags,
} from './registry.ts';

/** One named image: a registry repository or an OCI layout, with its tag or digest. */
export interface NamedImage {
  endpoint: ImageSource & ImageTarget;
  /** Tag or digest; undefined for a layout named without one. */
  reference: string | undefined;
  /** Set for registry images. */
  image?: ImageReference;
  label: string;
}

/** `oci:DIR[:TAG]` or an image reference as users write it. */
export function nameImage(text: string, client: RegistryClient): NamedImage {
  const layout = parseLayoutReference(text);
  if (layout) {
    return { endpoint: new OciLayout(layout.dir), reference: layout.reference, label: text };
  }
  const image = parseImage(text);
  return {
    endpoint: new RegistryEndpoint(client, image),
    reference: image.digest ?? image.tag,
    image,
    label: formatReference(image),
  };
}

export interface CopyFlags extends ClientFlags {
  platform?: string[];
  referrers?: boolean;
  json?: boolean;
  concurrency?: string;
}

export function parsePlatforms(values: string[] | undefined): PlatformFilter[] {
  const filters: PlatformFilter[] = [];
  for (const value of values ?? []) {
    if (!value.trim()) {
      throw new PullsafeError('USAGE', '--platform needs a value', {
        hint: 'write os/architecture[/variant], e.g. linux/arm64 or linux/arm/v7; leave --platform out for all platforms',
      });
    }
    for (const part of value.split(',')) {
      const text = part.trim();
      if (!text) continue;
      try {
        filters.push(parsePlatform(text));
      } catch (error) {
        throw new PullsafeError('USAGE', `--platform ${text}: ${(error as Error).message}`, {
          hint: 'write os/architecture[/variant], e.g. linux/arm64 or linux/arm/v7',
        });
      }
    }
  }
  return filters;
}

export function parseConcurrency(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1 || number > 64) {
    throw new PullsafeError('USAGE', `--concurrency must be a whole number from 1 to 64, not "${value}"`);
  }
  return number;
}

/** A finished copy: what went where, and with --referrers and --platform, the referrers left behind. */
export interface CopyOutcome {
  source: string;
  target: string;
  /** The tag or digest the target was written under. */
  reference: string;
  result: CopyResult;
  note?: string;
}

export async function runCopy(
  source: string,
  destination: string,
  flags: CopyFlags,
  io: CommandIo,
): Promise<number> {
  printCopy(await copy(source, destination, flags, io), flags, io.stdout);
  return exitCodes.ok;
}

/** Copies one image; progress (bars, or --json events up to `image-done`) goes to `io` as it happens. */
export async function copy(
  source: string,
  destination: string,
  flags: CopyFlags,
  io: CommandIo,
): Promise<CopyOutcome> {
  const { env } = io;
  const platforms = parsePlatforms(flags.platform);
  const concurrency = parseConcurrency(flags.concurrency, 4);
  const registries = { source: registryOf(source), target: registryOf(destination) };
  const client = buildClient(flags, env, {
    ...(registries.source ? { source: registries.source } : {}),
    ...(registries.target ? { target: registries.target } : {}),
  });
  try {
    const from = nameImage(source, client);
    const to = nameImage(destination, client);
    const sourceReference = from.image ? defaultTag(from.reference) : from.reference;
    // A target named without a tag takes the source's tag (or digest); a layout's only image, its tag (or
    // digest: an untagged image never lands on `latest`).
    const layoutTag =
      to.reference === undefined && sourceReference === undefined && from.endpoint instanceof OciLayout
        ? await from.endpoint.nameOfOnlyImage()
        : undefined;
    const targetReference = to.reference ?? sourceReference ?? layoutTag ?? defaultTag(undefined);
    const progress = new Progress(
      Progress.detect({ json: !!flags.json, stream: io.stderr, ci: !!env.CI }),
      io,
    );
    const label = `${from.label} → ${to.label}`;
    progress.imageStart(label);
    const interruptible = exitOnInterrupt(
      'what was copied stays and nothing partial is visible: run the same command again to finish',
      !!flags.json,
      io,
    );
    const blobLocations = to.image ? await BlobLocations.open({ file: blobLocationsFile(env) }) : undefined;
    let result: CopyResult;
    try {
      // A layout named without a tag passes undefined: the layout then picks its only image, or says which exist.
      result = await copyImage(from.endpoint, sourceReference as string, to.endpoint, targetReference, {
        platforms,
        referrers: !!flags.referrers,
        blobs: new Limiter(concurrency),
        ...(blobLocations ? { blobLocations } : {}),
        onEvent: (event) => progress.copyEvent(label, event),
      });
    } catch (error) {
      // JSON readers get the failure on stdout too, as the last event; stderr keeps the worded message.
      if (flags.json) progress.emit('error', { source: from.label, target: to.label, ...errorFields(error) });
      throw error;
    } finally {
      interruptible();
      progress.clear();
      await blobLocations?.save();
    }
    progress.imageDone(label, { ...result });
    return {
      source: from.label,
      target: to.label,
      reference: targetReference,
      result,
      ...(flags.referrers && result.digestChanged ? { note: referrersLeftBehind(result.targetDigest) } : {}),
    };
  } finally {
    await client.close();
  }
}

/** The summary: a last `summary` event with --json, else a few lines. */
export function printCopy(outcome: CopyOutcome, flags: { json?: boolean }, out: OutputStream): void {
  const { source, target, result, note } = outcome;
  if (flags.json) {
    out.write(eventLine('summary', { source, target, ...result, ...(note ? { note } : {}) }));
    return;
  }
  const lines = describeCopy(source, target, outcome.reference, result);
  if (note) lines.push(`  note: ${note}`);
  writeLines(out, lines);
}

/**
 * Where copies record which repositories of a registry hold which blobs, for mounts in later runs:
 * `$XDG_CACHE_HOME/pullsafe/blob-locations.json`, else under `~/.cache`; none without either.
 */
export function blobLocationsFile(env: Record<string, string | undefined>): string | undefined {
  const cache = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : undefined;
  const base = cache ?? (env.HOME && isAbsolute(env.HOME) ? join(env.HOME, '.cache') : undefined);
  return base === undefined ? undefined : join(base, 'pullsafe', 'blob-locations.json');
}

/** A count and its noun in agreement: `1 blob`, `0 blobs`, `2 blobs`. */
export function counted(count: number, noun: string): string {
  return `${count} ${count === 1 ? noun : `${noun}s`}`;
}

export function describeCopy(
  source: string,
  target: string,
  reference: string,
  result: CopyResult,
): string[] {
  const lines: string[] = [];
  if (result.upToDate) {
    lines.push(`up to date: ${target} already holds ${source} (${result.targetDigest})`);
  } else {
    const named = target.endsWith(reference) || reference === result.targetDigest ? '' : ` (${reference})`;
    lines.push(`copied ${source} → ${target}${named} ${result.targetDigest}`);
    const parts = [
      `${counted(result.blobsCopied, 'blob')} copied (${formatBytes(result.bytesCopied)})`,
      `${result.blobsSkipped} already there`,
    ];
    if (result.blobsMounted) parts.push(`${result.blobsMounted} mounted`);
    parts.push(`${counted(result.manifestsWritten, 'manifest')} written`);
    if (result.referrersCopied) parts.push(counted(result.referrersCopied, 'referrer'));
    lines.push(`  ${parts.join(', ')}`);
  }
  if (result.platforms.length) lines.push(`  platforms: ${result.platforms.join(', ')}`);
  if (result.digestChanged) {
    lines.push(
      `  note: the platform filter changed the digest: source ${result.sourceDigest}, target ${result.targetDigest}`,
    );
  }
  return lines;
}

export interface InspectFlags extends ClientFlags {
  raw?: boolean;
  json?: boolean;
}

/** With --raw, the manifest's bytes as stored; else what they describe. */
export type InspectOutcome = { raw: Buffer } | { report: ImageReport };

export async function runInspect(text: string, flags: InspectFlags, io: CommandIo): Promise<number> {
  printInspect(await inspect(text, flags, io.env), flags, io.stdout);
  return exitCodes.ok;
}

export async function inspect(
  text: string,
  flags: InspectFlags,
  env: Record<string, string | undefined>,
): Promise<InspectOutcome> {
  if (flags.raw && flags.json) {
    throw new PullsafeError('USAGE', '--raw and --json ask for two different outputs: give one');
  }
  const registry = registryOf(text);
  const client = buildClient(flags, env, registry ? { source: registry } : {});
  try {
    const named = nameImage(text, client);
    const reference = named.image ? defaultTag(named.reference) : named.reference;
    const manifest = await named.endpoint.getManifest(reference as string);
    if (flags.raw) return { raw: manifest.bytes };
    return {
      report: await describeImage(named.endpoint, named.label, manifest.bytes, manifest.mediaType),
    };
  } finally {
    await client.close();
  }
}

export function printInspect(outcome: InspectOutcome, flags: InspectFlags, out: OutputStream): void {
  if ('raw' in outcome) out.write(outcome.raw);
  else if (flags.json) writeJson(out, outcome.report);
  else writeLines(out, renderInspect(outcome.report));
}

export interface ImageReport {
  name: string;
  digest: string;
  mediaType: string;
  size: number;
  platforms?: { platform: string; digest: string; size: number; mediaType: string }[];
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  labels?: Record<string, string>;
  layers?: { digest: string; size: number; mediaType: string }[];
  totalLayerBytes?: number;
}

async function describeImage(
  source: ImageSource,
  name: string,
  bytes: Buffer,
  mediaType: string,
): Promise<ImageReport> {
  let parsed: ReturnType<typeof parseManifest>;
  try {
    parsed = parseManifest(bytes, mediaType);
  } catch (error) {
    throw new PullsafeError('MANIFEST_INVALID', `${name}: ${(error as Error).message}`, {
      hint: '--raw prints the stored bytes as they are; schema 1 images must be converted first',
    });
  }
  const report: ImageReport = {
    name,
    digest: digestOf(bytes),
    mediaType: parsed.mediaType,
    size: bytes.length,
  };
  if (parsed.kind === 'index') {
    report.platforms = parsed.manifests.map((entry) => ({
      platform: entry.platform
        ? [entry.platform.os, entry.platform.architecture, entry.platform.variant].filter(Boolean).join('/')
        : 'unknown',
      digest: entry.digest,
      size: entry.size,
      mediaType: entry.mediaType,
    }));
    return report;
  }
  const [config, ...layers] = parsed.blobs;
  report.layers = layers.map((layer) => ({
    digest: layer.digest,
    size: layer.size,
    mediaType: layer.mediaType,
  }));
  report.totalLayerBytes = layers.reduce((sum, layer) => sum + layer.size, 0);
  if (config && config.size <= 4 * 1024 * 1024) {
    const chunks: Buffer[] = [];
    for await (const chunk of await source.getBlob(config.digest, config.size)) chunks.push(chunk as Buffer);
    try {
      const document = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        architecture?: string;
        os?: string;
        variant?: string;
        created?: string;
        config?: { Labels?: Record<string, string> | null };
      };
      if (document.architecture) report.architecture = document.architecture;
      if (document.os) report.os = document.os;
      if (document.variant) report.variant = document.variant;
      if (document.created) report.created = document.created;
      if (document.config?.Labels) report.labels = document.config.Labels;
    } catch {
      // Artifacts carry configs that are not image configs; the manifest facts above still stand.
    }
  }
  return report;
}

function renderInspect(report: ImageReport): string[] {
  const lines = [`${report.name}`, `  digest      ${report.digest}`, `  media type  ${report.mediaType}`];
  if (report.platforms) {
    lines.push(`  platforms   ${report.platforms.length}`);
    for (const entry of report.platforms)
      lines.push(`    ${entry.platform.padEnd(16)} ${entry.digest}  ${formatBytes(entry.size)}`);
  }
  if (report.os || report.architecture)
    lines.push(
      `  platform    ${[report.os ?? '?', report.architecture ?? '?', report.variant].filter(Boolean).join('/')}`,
    );
  if (report.created) lines.push(`  created     ${report.created}`);
  if (report.layers)
    lines.push(`  layers      ${report.layers.length} (${formatBytes(report.totalLayerBytes ?? 0)})`);
  for (const [key, value] of Object.entries(report.labels ?? {})) lines.push(`  label       ${key}=${value}`);
  return lines;
}

export interface RateLimitFlags extends ClientFlags {
  json?: boolean;
}

/** What each identity may still pull from `registry`, asked with `image`. */
export interface RateLimitOutcome {
  registry: string;
  image: string;
  results: { who: string; status: number; rateLimit?: RateLimit; retryAfterSeconds?: number }[];
}

export async function runRateLimit(
  text: string | undefined,
  flags: RateLimitFlags,
  io: CommandIo,
): Promise<number> {
  printRateLimit(await rateLimit(text, flags, io.env), flags, io.stdout);
  return exitCodes.ok;
}

export async function rateLimit(
  text: string | undefined,
  flags: RateLimitFlags,
  env: Record<string, string | undefined>,
): Promise<RateLimitOutcome> {
  // Docker Hub by default; any registry that announces a quota the same way can be asked too.
  const image = text !== undefined ? parseImage(text) : undefined;
  const repo = image ?? { registry: 'docker.io', repository: 'ratelimitpreview/test' };
  const reference = image ? defaultTag(image.digest ?? image.tag) : 'latest';
  const credentials = buildCredentials(flags, env, { source: repo.registry });
  const hasCredentials = (await credentials.get(repo.registry)) !== undefined;
  const withCredentials = new RegistryClient({
    credentials,
    transport: transportOptions(flags, { source: repo.registry }),
  });
  const anonymous = new RegistryClient({ transport: transportOptions(flags, { source: repo.registry }) });
  try {
    const results: RateLimitOutcome['results'] = [];
    try {
      const anonymousStatus = await anonymous.rateLimitStatus(repo, reference);
      results.push({ who: 'anonymous', status: anonymousStatus.status, ...definedOnly(anonymousStatus) });
    } catch (error) {
      // A private image refuses anonymous pulls; with credentials, their answer is the one that matters.
      const status = error instanceof RegistryError ? error.status : undefined;
      if (!hasCredentials || (status !== 401 && status !== 403)) throw error;
      results.push({ who: 'anonymous', status });
    }
    if (hasCredentials) {
      const authenticatedStatus = await withCredentials.rateLimitStatus(repo, reference);
      results.push({
        who: 'with credentials',
        status: authenticatedStatus.status,
        ...definedOnly(authenticatedStatus),
      });
    }
    return { registry: repo.registry, image: `${repo.registry}/${repo.repository}:${reference}`, results };
  } finally {
    await Promise.all([withCredentials.close(), anonymous.close()]);
  }
}

export function printRateLimit(outcome: RateLimitOutcome, flags: RateLimitFlags, out: OutputStream): void {
  const { results } = outcome;
  if (flags.json) {
    writeJson(out, { image: outcome.image, results });
    return;
  }
  const lines = [`pull quota of ${outcome.registry} (HEAD requests only; checking spends nothing)`];
  for (const result of results) {
    const quota = result.rateLimit
      ? describeRateLimit(result.rateLimit)
      : result.status === 401 || result.status === 403
        ? `refused (HTTP ${result.status}): this image needs credentials`
        : result.status === 404
          ? 'no quota headers, and the image does not exist (HTTP 404)'
          : 'no quota headers (unlimited or not reported)';
    const spent =
      result.status === 429 ? ` — exhausted, retry after ${result.retryAfterSeconds ?? '?'}s` : '';
    lines.push(`  ${result.who.padEnd(17)} ${quota}${spent}`);
  }
  writeLines(out, lines);
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>;
}

function referrersLeftBehind(written: string): string {
  return `referrers of the source index were not copied: --platform wrote a new manifest (${written}), which they do not refer to`;
}

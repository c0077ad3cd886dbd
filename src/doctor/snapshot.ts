/**
 * Snapshots of doctor's AWS calls: a recorder that keeps every call and answer for `--save-snapshot`
 * (secret values and log credentials masked), a replayer that answers from one with no network at all, and
 * the file format (JSON, `format: pullsafe-doctor-snapshot`, version 1).
 */
import { readFile, writeFile, rename } from 'node:fs/promises';
import { PullsafeError, redact } from '../errors/index.ts';
import { keepArns } from '../shared/arn.ts';
import { AwsCallError, assertAllowed, toCallError, type AwsCaller } from './aws.ts';
import type { AwsService } from './aws-operations.ts';

export interface SnapshotEntry {
  service: AwsService;
  operation: string;
  region: string;
  input: unknown;
  output?: unknown;
  error?: { name: string; message: string; status?: number };
}

export interface Snapshot {
  format: 'pullsafe-doctor-snapshot';
  version: 1;
  region: string;
  recordedAt: string;
  calls: SnapshotEntry[];
}

/** Canonical key: service, operation, region and the input with object keys sorted. */
export function snapshotKey(service: string, operation: string, region: string, input: unknown): string {
  return `${service}:${operation}@${region} ${canonicalJson(input)}`;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value instanceof Date ? value.toISOString() : value) ?? 'null';
}

/** Dates survive a snapshot as `{"$date": ISO}`; binary values are dropped. */
function encodeValue(value: unknown): unknown {
  if (value instanceof Date) return { $date: value.toISOString() };
  if (value instanceof Uint8Array) return undefined;
  if (Array.isArray(value)) return value.map(encodeValue);
  if (value && typeof value === 'object') {
    const result: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const encoded = encodeValue(v);
      if (encoded !== undefined) result[k] = encoded;
    }
    return result;
  }
  return value;
}

function decodeValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decodeValue);
  if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    if (keys.length === 1 && typeof record.$date === 'string') return new Date(record.$date);
    const result: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(record)) result[k] = decodeValue(v);
    return result;
  }
  return value;
}

/**
 * A secret's value never enters a snapshot. What doctor reads it for is its shape (is it JSON with a
 * username and a password?), so the recorder keeps the keys and replaces every value: replay then reaches
 * the same verdict without the secret.
 */
export function maskSecretValue(output: Record<string, unknown>): Record<string, unknown> {
  const { SecretString, SecretBinary: _binary, ...rest } = output;
  if (typeof SecretString !== 'string') return rest;
  let masked: string;
  try {
    const parsed = JSON.parse(SecretString) as unknown;
    masked =
      parsed && typeof parsed === 'object' && !Array.isArray(parsed)
        ? JSON.stringify(Object.fromEntries(Object.keys(parsed).map((k) => [k, '[redacted]'])))
        : '[redacted: JSON that is not an object]';
  } catch {
    masked = '[redacted: not JSON]';
  }
  return { ...rest, SecretString: masked };
}

/**
 * A build log line with credentials removed (URL userinfo, Authorization values, password and token
 * fields, access key ids), ARNs kept whole: they name resources, and `…:secret:name` is not a secret.
 */
export function redactLogLine(line: string): string {
  return keepArns(line, redact);
}

/** A GetLogEvents answer with every message passed through `redactLogLine`. */
export function maskLogEvents(output: Record<string, unknown>): Record<string, unknown> {
  const events = output.events;
  if (!Array.isArray(events)) return output;
  return {
    ...output,
    events: events.map((event: Record<string, unknown>) =>
      typeof event?.message === 'string' ? { ...event, message: redactLogLine(event.message) } : event,
    ),
  };
}

/** Wraps a caller and keeps every call and answer (errors too) for `--save-snapshot`. */
export function recordingCaller(inner: AwsCaller, region: string): AwsCaller & { snapshot(): Snapshot } {
  const calls: SnapshotEntry[] = [];
  return {
    async call(service, operation, input, callRegion) {
      const where = callRegion ?? region;
      try {
        let output = (await inner.call(service, operation, input, callRegion)) as Record<string, unknown>;
        if (service === 'secretsmanager' && operation === 'GetSecretValue') output = maskSecretValue(output);
        if (service === 'logs' && operation === 'GetLogEvents') output = maskLogEvents(output);
        calls.push({
          service,
          operation,
          region: where,
          input: encodeValue(input),
          output: encodeValue(output),
        });
        return decodeValue(encodeValue(output)) as never;
      } catch (error) {
        const failure = toCallError(service, operation, error);
        calls.push({
          service,
          operation,
          region: where,
          input: encodeValue(input),
          error: {
            name: failure.awsName,
            message: failure.detail,
            ...(failure.status === undefined ? {} : { status: failure.status }),
          },
        });
        throw failure;
      }
    },
    snapshot: () => ({
      format: 'pullsafe-doctor-snapshot',
      version: 1,
      region,
      recordedAt: new Date().toISOString(),
      calls,
    }),
  };
}

/** Answers from a snapshot. A call the snapshot lacks fails as `SnapshotMiss`: reported, never a pass. */
export function replayCaller(snapshot: Snapshot): AwsCaller {
  const answers = new Map<string, SnapshotEntry>();
  for (const entry of snapshot.calls) {
    answers.set(snapshotKey(entry.service, entry.operation, entry.region, decodeValue(entry.input)), entry);
  }
  return {
    // eslint-disable-next-line @typescript-eslint/require-await -- an AwsCaller fails by rejecting, as the live one does; a replay has nothing to wait for
    async call(service, operation, input, region) {
      assertAllowed(service, operation);
      const where = region ?? snapshot.region;
      const entry = answers.get(snapshotKey(service, operation, where, input));
      if (!entry) {
        throw new AwsCallError(
          service,
          operation,
          'SnapshotMiss',
          'the snapshot holds no answer for this call',
        );
      }
      if (entry.error) {
        throw new AwsCallError(service, operation, entry.error.name, entry.error.message, entry.error.status);
      }
      return decodeValue(entry.output) as never;
    },
  };
}

export async function readSnapshot(path: string): Promise<Snapshot> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new PullsafeError(
      'CONFIG_UNREADABLE',
      `cannot read snapshot ${path}: ${(error as Error).message}`,
      {
        hint: 'give the file written by `pullsafe doctor --save-snapshot FILE`',
      },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new PullsafeError('CONFIG_INVALID', `snapshot ${path} is not JSON`);
  }
  const value = parsed as Partial<Snapshot> | null;
  if (
    !value ||
    value.format !== 'pullsafe-doctor-snapshot' ||
    value.version !== 1 ||
    typeof value.region !== 'string' ||
    !Array.isArray(value.calls)
  ) {
    throw new PullsafeError('CONFIG_INVALID', `${path} is not a pullsafe doctor snapshot (format version 1)`);
  }
  for (const [index, entry] of value.calls.entries()) {
    const e = entry as Partial<SnapshotEntry> | null;
    if (
      !e ||
      typeof e.service !== 'string' ||
      typeof e.operation !== 'string' ||
      typeof e.region !== 'string'
    ) {
      throw new PullsafeError(
        'CONFIG_INVALID',
        `snapshot ${path}: call ${index} lacks service, operation or region`,
      );
    }
  }
  return value as Snapshot;
}

/** Writes the snapshot under a temporary name first: never a partial file under the final name. */
export async function writeSnapshot(path: string, snapshot: Snapshot): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(snapshot, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, path);
}

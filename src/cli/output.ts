/**
 * Exit codes and printing. Commands write only to the streams of their `CommandIo`: the process's own when
 * pullsafe runs as a program, a test's buffers when it runs in process.
 */
import { PullsafeError, redact, type PullsafeErrorCode } from '../errors/index.ts';

/** Where a command writes: the process's stdout or stderr, or a buffer. */
export interface OutputStream {
  write(chunk: string | Uint8Array): unknown;
  /** True for a terminal, where progress bars are drawn. */
  readonly isTTY?: boolean | undefined;
  /** The terminal's width, for help text. */
  readonly columns?: number | undefined;
}

/** What `explain` reads when no message is given. */
export interface InputStream extends AsyncIterable<string | Uint8Array> {
  readonly isTTY?: boolean | undefined;
}

/** Everything a command reads and writes besides files and the network. */
export interface CommandIo {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly stdin: InputStream;
  readonly env: Record<string, string | undefined>;
}

/** The running process's streams and environment. */
export function processIo(): CommandIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}

export const exitCodes = {
  ok: 0,
  findings: 1,
  usage: 2,
  upstream: 3,
  internal: 70,
} as const;

/**
 * A reader that stops early (`pullsafe … | head`) closes the pipe: the next write fails with EPIPE, which
 * would otherwise end the process with a stack trace. pullsafe then stops at once and quietly, as a Unix
 * filter killed by SIGPIPE would, with the command's exit code when it has one by then (else 0). The
 * program installs this before it parses anything, so it covers every command and commander's own help.
 */
export function exitQuietlyWhenOutputCloses(): void {
  const exitQuietly = (error: NodeJS.ErrnoException): void => {
    if (error.code !== 'EPIPE') throw error;
    // Later in the same turn the command may still settle its exit code; give it that turn, then end.
    setImmediate(() => process.exit());
  };
  process.stdout.on('error', exitQuietly);
  process.stderr.on('error', exitQuietly);
}

export function writeJson(out: OutputStream, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function writeLines(out: OutputStream, lines: string[]): void {
  out.write(`${lines.join('\n')}\n`);
}

/**
 * Until the returned function is called, SIGINT and SIGTERM end the process at once with 130 or 143, after
 * saying what an interruption leaves behind (`json`: also a last `{"event":"interrupted"}` line on stdout).
 * Copies may stop anywhere: nothing partial is ever visible under a final name, so there is nothing to wait for.
 */
export function exitOnInterrupt(message: string, json: boolean, io: CommandIo): () => void {
  let exiting = false;
  const handler = (signal: NodeJS.Signals): void => {
    // A second Ctrl-C while exiting must not kill the process before it has said its last line.
    if (exiting) return;
    exiting = true;
    if (json) {
      const event = { event: 'interrupted', time: new Date().toISOString(), signal };
      io.stdout.write(`${JSON.stringify(event)}\n`);
    }
    io.stderr.write(`\npullsafe: interrupted (${signal}); ${message}\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/** Prints an error for a person (message and hint, never a stack) and returns its exit code. */
export function reportError(error: unknown, stderr: OutputStream): number {
  if (error instanceof PullsafeError) {
    stderr.write(`pullsafe: ${redact(error.message)}\n`);
    if (error.hint) stderr.write(`hint: ${error.hint}\n`);
    return exitCodeFor(error.code);
  }
  const code = (error as { code?: string } | undefined)?.code;
  if (typeof code === 'string' && code.startsWith('commander.')) return exitCodes.usage;
  stderr.write(`pullsafe: internal error: ${redact(String((error as Error)?.stack ?? error))}\n`);
  stderr.write('hint: this is a bug; please report it with the command you ran\n');
  return exitCodes.internal;
}

const upstreamCodes = new Set<PullsafeErrorCode>([
  'LISTEN_FAILED',
  'STORAGE_UNAVAILABLE',
  'REGISTRY_UNAUTHORIZED',
  'REGISTRY_DENIED',
  'REGISTRY_NOT_FOUND',
  'REGISTRY_REJECTED',
  'REGISTRY_UNAVAILABLE',
  'RATE_LIMITED',
  'AWS_NO_CREDENTIALS',
  'AWS_CREDENTIALS_REFUSED',
  'AWS_ACCESS_DENIED',
  'AWS_NOT_FOUND',
  'AWS_UNAVAILABLE',
  'QUOTA_RESERVE_REACHED',
  'DIGEST_MISMATCH',
  'MANIFEST_INVALID',
  'LAYOUT_INVALID',
]);

/** 3 for what the network, a registry or storage did; 70 for bugs; 2 for everything the user can fix in the command. */
export function exitCodeFor(code: PullsafeErrorCode): number {
  if (code === 'INTERNAL') return exitCodes.internal;
  return upstreamCodes.has(code) ? exitCodes.upstream : exitCodes.usage;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

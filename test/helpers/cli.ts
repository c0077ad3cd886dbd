/**
 * Runs the pullsafe CLI: as a user would (a child process of the same Node, from the source tree), or in
 * this process with buffers for its streams, which is the same program without the start-up of a process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { OutputStream } from '../../src/cli/output.ts';
import { runProgram } from '../../src/cli/program.ts';

export const cliPath = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * XDG_CACHE_HOME for CLI runs: a path that cannot be a folder, so copies record no blob locations in the
 * user's cache and find none from earlier runs. A test that wants records passes its own folder.
 */
export const noCacheHome = '/dev/null/pullsafe-tests-cache';

export function runCli(
  args: string[],
  options: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      env: { ...process.env, XDG_CACHE_HOME: noCacheHome, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A stream that keeps its bytes, decoded once at the end as a child's output would be read. */
class Captured implements OutputStream {
  private readonly chunks: Buffer[] = [];
  write(chunk: string | Uint8Array): boolean {
    this.chunks.push(Buffer.from(chunk));
    return true;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString();
  }
}

/**
 * Runs `pullsafe ARGS…` in this process: the same parsing, commands, output and exit code as `runCli`,
 * with the environment `runCli` would give the child and `stdin` as its input (none by default). What
 * needs a process of its own (signals, a closed stdout, Node's start-up flags and environment such as
 * NODE_EXTRA_CA_CERTS, the AWS SDK's environment, `serve`) takes `runCli`. Fails the test when the command
 * has not finished within `timeoutMs`.
 */
export async function runCliInProcess(
  args: string[],
  options: { timeoutMs?: number; env?: Record<string, string>; stdin?: string } = {},
): Promise<CliResult> {
  const stdout = new Captured();
  const stderr = new Captured();
  const io = {
    stdout,
    stderr,
    stdin: Readable.from(options.stdin === undefined ? [] : [Buffer.from(options.stdin)]),
    env: { ...process.env, XDG_CACHE_HOME: noCacheHome, ...options.env },
  };
  const timeoutMs = options.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`pullsafe ${args.join(' ')} did not finish within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    const code = await Promise.race([runProgram(args, io), timeout]);
    return { code, stdout: stdout.text(), stderr: stderr.text() };
  } finally {
    clearTimeout(timer);
  }
}

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  /** Everything the server wrote to stderr so far (JSON log lines). */
  logs(): string;
  /** Resolves with the exit code once the process has ended. */
  exited: Promise<number | null>;
}

/** Starts `pullsafe serve` on 127.0.0.1:0 and waits for its "listening" log line (bounded). */
export function startServeProcess(args: string[], timeoutMs = 20_000): Promise<ServeProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, 'serve', '--listen', '127.0.0.1:0', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let settled = false;
    const exited = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      reject(new Error(`pullsafe serve did not start within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.stdout.resume();
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (settled) return;
      for (const line of stderr.split('\n')) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'listening' && entry.url) {
          settled = true;
          clearTimeout(timer);
          resolve({ child, url: entry.url, logs: () => stderr, exited });
          return;
        }
      }
    });
    void exited.then((code) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`pullsafe serve exited with ${code} before listening:\n${stderr}`));
    });
  });
}

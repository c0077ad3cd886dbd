/** pullsafe as a process: the process's streams, environment and arguments, and its exit code. */
import { exitQuietlyWhenOutputCloses, processIo, reportError } from './output.ts';
import { runProgram } from './program.ts';

/**
 * V8 flags for `serve` alone: request bodies arrive as short-lived buffers, and a small young generation
 * with the memory-saving mode collects them sooner, keeping the resident size well under 200 MB under load
 * for a few percent of upload CPU (docs/benchmarks.md). Short-lived commands run with V8's defaults.
 */
const serveV8Flags = ['--max-semi-space-size=2', '--optimize-for-size'];

/**
 * Heap flags only count at start-up, so a `serve` started without them replaces its own process with one
 * that has them: same pid, stdio and environment. Without `process.execve` (Node before 22.15), or if it
 * fails, it runs as is. Flags given by the user come later on the new command line and so win.
 */
function restartWithServeFlags(): void {
  if (serveV8Flags.every((flag) => process.execArgv.includes(flag))) return;
  if (typeof process.execve !== 'function' || !process.argv[1]) return;
  const script = process.argv[1];
  try {
    process.execve(process.execPath, [
      process.execPath,
      ...serveV8Flags,
      ...process.execArgv,
      script,
      ...process.argv.slice(2),
    ]);
  } catch {
    // The flags only save memory: a process that cannot replace itself serves without them.
  }
}

exitQuietlyWhenOutputCloses();
const io = processIo();
runProgram(process.argv.slice(2), io, { beforeServe: restartWithServeFlags }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.exitCode = reportError(error, io.stderr);
  },
);

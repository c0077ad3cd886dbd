/**
 * One bench run's lifecycle, as every bench script has it: its temporary folder, the servers it keeps
 * running, and how it ends (time limit, SIGINT or SIGTERM, error, or done): every child stopped and the
 * folder removed.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAllChildren, stopService } from './proc.ts';
import type { RunningTarget } from './servers.ts';

let workDir: string | undefined;
const running = new Set<RunningTarget>();

function emergencyCleanup(): void {
  killAllChildren();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
  workDir = undefined;
}

/** Makes the run's temporary folder (`prefix` and a random suffix, in the system's temporary folder). */
export async function makeWorkDir(prefix: string): Promise<string> {
  workDir = await mkdtemp(join(tmpdir(), prefix));
  return workDir;
}

/** The run's temporary folder; only between makeWorkDir and endRun. */
export function currentWorkDir(): string {
  if (workDir === undefined) throw new Error('no bench run in progress');
  return workDir;
}

/** Counts `target` among the servers endRun stops. */
export function keepRunning<T extends RunningTarget>(target: T): T {
  running.add(target);
  return target;
}

export async function stop(target: RunningTarget): Promise<void> {
  await stopService(target.service);
  running.delete(target);
}

/**
 * Ends the process after `limitMs` (exit 1) or on SIGINT or SIGTERM (exit 130), stopping every child and
 * removing the temporary folder. `servers` names what is stopped, for the message. The timer goes to endRun.
 */
export function guardRun(limitMs: number, servers: string): NodeJS.Timeout {
  const deadline = setTimeout(() => {
    console.error(`benchmark exceeded its ${limitMs / 60_000} min limit; stopping`);
    emergencyCleanup();
    process.exit(1);
  }, limitMs);
  deadline.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`${signal}: stopping ${servers} and removing temporary files`);
      emergencyCleanup();
      process.exit(130);
    });
  }
  return deadline;
}

/** The end of a run that got this far: the servers still running stopped, every child ended, the folder gone. */
export async function endRun(deadline: NodeJS.Timeout): Promise<void> {
  for (const target of [...running]) await stop(target);
  killAllChildren();
  if (workDir) await rm(workDir, { recursive: true, force: true });
  workDir = undefined;
  clearTimeout(deadline);
}

/** Runs `main` and exits with its code; on an error, prints its stack, cleans up and exits 1. */
export function runMain(main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`benchmark failed: ${(error as Error).stack ?? String(error)}`);
      emergencyCleanup();
      process.exit(1);
    },
  );
}

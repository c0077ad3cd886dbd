/**
 * Child processes for the benchmark: every command runs with a time limit, every child is tracked so
 * that an error or a signal can end them (by pid, one at a time), and long-running services log to a
 * file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';

const live = new Set<ChildProcess>();

/** Direct children of `pid`, read synchronously (usable in signal handlers). */
function childPidsSync(pid: number): number[] {
  const pids: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      for (const child of text.split(' ')) if (child) pids.push(Number(child));
    }
  } catch {
    // process gone
  }
  return pids;
}

/**
 * Sends SIGKILL to every child still running, and to their own children first (nginx's workers would
 * outlive a killed master). Used on errors and signals.
 */
export function killAllChildren(): void {
  for (const child of live) {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue;
    for (const grandchild of childPidsSync(child.pid)) {
      try {
        process.kill(grandchild, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    child.kill('SIGKILL');
  }
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const maxCapture = 1 << 20;

/**
 * Runs a command to completion; SIGKILL after `timeoutMs`. Never rejects for a non-zero exit. `env` is added to
 * this process's environment.
 */
export function run(
  command: string,
  args: string[],
  options: { timeoutMs: number; cwd?: string; env?: Record<string, string> },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.cwd ? { cwd: options.cwd } : {}),
      ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
    });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      if (stdout.length < maxCapture) stdout += chunk;
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < maxCapture) stderr += chunk;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      live.delete(child);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

export interface Service {
  name: string;
  pid: number;
  logFile: string;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  hasExited(): boolean;
  child: ChildProcess;
}

/** Starts a long-running process with stdout and stderr appended to `logFile`. */
export function startService(
  name: string,
  command: string,
  args: string[],
  logFile: string,
  cwd?: string,
): Promise<Service> {
  return new Promise((resolve, reject) => {
    const fd = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(command, args, { stdio: ['ignore', fd, fd], ...(cwd ? { cwd } : {}) });
    } finally {
      closeSync(fd);
    }
    live.add(child);
    let done = false;
    const exited = new Promise<void>((resolveExit) => {
      child.once('exit', () => {
        done = true;
        live.delete(child);
        resolveExit();
      });
    });
    child.once('error', (error) => {
      live.delete(child);
      reject(error);
    });
    child.once('spawn', () => {
      resolve({ name, pid: child.pid!, logFile, exited, hasExited: () => done, child });
    });
  });
}

/** SIGTERM, then SIGKILL if the process has not exited after `graceMs`. */
export async function stopService(service: Service, graceMs = 10_000): Promise<void> {
  if (service.hasExited()) return;
  service.child.kill('SIGTERM');
  if (await exitsWithin(service, graceMs)) return;
  service.child.kill('SIGKILL');
  await exitsWithin(service, 5_000);
}

async function exitsWithin(service: Service, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const result = await Promise.race([service.exited.then(() => true), timeout]);
  clearTimeout(timer);
  return result;
}

export async function logTail(service: Service, lines = 20): Promise<string> {
  try {
    const text = await readFile(service.logFile, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Memory figures from /proc/<pid>/status, in bytes. */
export async function memoryOf(pid: number): Promise<{ peakRss: number; rss: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) * 1024 : Number.NaN;
  };
  return { peakRss: kib('VmHWM'), rss: kib('VmRSS') };
}

let clockTicks: number | undefined;

async function ownCpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]); // utime + stime
}

async function childPids(pid: number): Promise<number[]> {
  const pids: number[] = [];
  for (const task of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const text = await readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '');
    for (const child of text.trim().split(' ')) if (child) pids.push(Number(child));
  }
  return pids;
}

/**
 * User + system CPU seconds used so far by the process and its live direct children (nginx's workers);
 * all threads included.
 */
export async function cpuSecondsOf(pid: number): Promise<number> {
  if (clockTicks === undefined) {
    const result = await run('getconf', ['CLK_TCK'], { timeoutMs: 5_000 }).catch(() => undefined);
    const parsed = Number(result?.stdout.trim());
    clockTicks = Number.isFinite(parsed) && parsed > 0 ? parsed : 100;
  }
  let ticks = await ownCpuTicks(pid);
  for (const child of await childPids(pid)) ticks += await ownCpuTicks(child).catch(() => 0);
  return ticks / clockTicks;
}

/** Samples a process's RSS every `intervalMs`, keeping the maximum per label. */
export class RssSampler {
  label = 'start';
  readonly peaks: Record<string, number> = {};
  private readonly timer: NodeJS.Timeout;
  private busy = false;
  private readonly pid: number;

  constructor(pid: number, intervalMs = 50) {
    this.pid = pid;
    this.timer = setInterval(() => void this.sample(), intervalMs);
  }

  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const { rss } = await memoryOf(this.pid);
      if (Number.isFinite(rss)) this.peaks[this.label] = Math.max(this.peaks[this.label] ?? 0, rss);
    } catch {
      // process gone
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface SystemCpu {
  /** user + nice + system: time spent by processes (and kernel threads such as writeback). */
  busy: number;
  /** Time the hypervisor gave to someone else. */
  steal: number;
  total: number;
}

/**
 * Jiffies from the first line of /proc/stat. irq and softirq (loopback packet processing) are left out
 * of `busy`, as they are not attributed to any process.
 */
export async function systemCpu(): Promise<SystemCpu> {
  const stat = await readFile('/proc/stat', 'utf8');
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = stat
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  return {
    busy: user + nice + system,
    steal,
    total: user + nice + system + idle + iowait + irq + softirq + steal,
  };
}

/** Cores busy (or stolen, with `field: 'steal'`) machine-wide between two systemCpu() readings. */
export function busyCores(
  before: SystemCpu,
  after: SystemCpu,
  cores: number,
  field: 'busy' | 'steal' = 'busy',
): number {
  const total = after.total - before.total;
  return total > 0 ? ((after[field] - before[field]) / total) * cores : 0;
}

/**
 * Waits (up to `maxWaitMs`) for a second in which the machine is nearly idle, so that other work does
 * not distort the figures. Returns the busy cores of the last second measured.
 */
export async function waitForQuiet(
  cores: number,
  maxWaitMs: number,
  threshold: number,
  onBusy: (busy: number) => void,
): Promise<number> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const before = await systemCpu();
    await sleep(1_000);
    const busy = busyCores(before, await systemCpu(), cores);
    if (busy < threshold || Date.now() >= deadline) return busy;
    onBusy(busy);
  }
}

/**
 * CPU seconds of this process plus its reaped children (curl and wrk, once they have exited): fields
 * utime, stime, cutime and cstime of /proc/self/stat.
 */
export async function selfAndChildrenCpuSeconds(): Promise<number> {
  await cpuSecondsOf(process.pid); // makes sure clockTicks is known
  const stat = await readFile('/proc/self/stat', 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14])) / (clockTicks ?? 100);
}

/**
 * The three ways bench/sync.ts moves the image set: `pullsafe sync` (the ./pullsafe launcher, pullsafe's
 * mirror file), `skopeo sync --all` (skopeo's YAML) and `skopeo copy --all` once per image in a loop. Each
 * run is timed from the first process start to the last exit, with the CPU of the tool, of both registries
 * and of everything else on the machine.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  busyCores,
  cpuSecondsOf,
  run,
  selfAndChildrenCpuSeconds,
  systemCpu,
  type RunResult,
} from './proc.ts';
import type { ImageSet, ImageSpec } from './sync-images.ts';

/**
 * The three compared tools, and the reference copiers of --profile: `node-pipe` (node:http,
 * bench/lib/sync-pipe.ts) and `node-raw` (hand-written HTTP/1.1 on net sockets, bench/lib/sync-raw.ts).
 */
export type ToolName = 'pullsafe' | 'skopeo-sync' | 'skopeo-copy' | 'node-pipe' | 'node-raw';

export const toolNames: ToolName[] = ['pullsafe', 'skopeo-sync', 'skopeo-copy'];

export const toolLabels: Record<ToolName, string> = {
  pullsafe: 'pullsafe sync',
  'skopeo-sync': 'skopeo sync --all',
  'skopeo-copy': 'skopeo copy --all, 1 image at a time',
  'node-pipe': 'reference node:http pipe copier',
  'node-raw': 'reference raw-socket copier',
};

export interface Concurrency {
  images: number;
  blobs: number;
}

/** Where each tool puts an image in the target (skopeo sync without --scoped keeps the last component). */
export function targetRepository(tool: ToolName, spec: ImageSpec): string {
  if (tool === 'skopeo-sync') return `mirror/${spec.repository.split('/').pop()!}`;
  return `mirror/${spec.repository}`;
}

export function pullsafeMirrorFile(
  sourceHost: string,
  targetHost: string,
  set: ImageSet,
  c: Concurrency,
): string {
  return [
    `target: ${targetHost}/mirror/{repository}`,
    `concurrency: { images: ${c.images}, blobs: ${c.blobs} }`,
    'images:',
    ...set.images.map((spec) => `  - source: ${sourceHost}/${spec.repository}:${spec.tag}`),
    '',
  ].join('\n');
}

export function skopeoSyncFile(sourceHost: string, set: ImageSet): string {
  return [
    `${sourceHost}:`,
    '  tls-verify: false',
    '  images:',
    ...set.images.map((spec) => `    ${spec.repository}: [${spec.tag}]`),
    '',
  ].join('\n');
}

export const skopeoPolicy = `${JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] })}\n`;

export interface ToolContext {
  root: string;
  work: string;
  set: ImageSet;
  sourceHost: string;
  concurrency: Concurrency;
  policyFile: string;
  timeoutMs: number;
  /** Extra arguments for `pullsafe sync` (--json for the timeline). */
  pullsafeArgs?: string[];
  /** Replaces the launcher: [command, ...args before `sync`] (node --cpu-prof dist/cli/main.js). */
  pullsafeCommand?: string[];
}

export interface CpuSplit {
  /** user + system seconds of the tool's processes (all of them, for the skopeo loop). */
  tool: number;
  source: number;
  target: number;
  /** Everything else on the machine (user + system), this script excluded. */
  other: number;
  /** irq + softirq time machine-wide (loopback TCP is mostly processed there), charged to no process. */
  irq: number;
}

export interface ToolRun {
  tool: ToolName;
  wallSeconds: number;
  /** Date.now() when the clock started. */
  startedAt: number;
  exitCodes: (number | null)[];
  timedOut: boolean;
  cpu: CpuSplit;
  /** stdout of the (last) process, for the timeline and the log. */
  stdout: string;
  stderr: string;
}

/** CPU seconds of everything during a run: tool, registries, other processes, irq and softirq. */
export function allCpu(r: ToolRun): number {
  return r.cpu.tool + r.cpu.source + r.cpu.target + r.cpu.other + r.cpu.irq;
}

/** CPU seconds of both registries and irq: what a run costs besides the tool's own CPU. */
export function registryCpu(r: ToolRun): number {
  return r.cpu.source + r.cpu.target + r.cpu.irq;
}

/** irq + softirq seconds machine-wide so far (/proc/stat, USER_HZ = 100 on Linux). */
async function irqSeconds(): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  return ((fields[5] ?? 0) + (fields[6] ?? 0)) / 100;
}

interface Command {
  command: string;
  args: string[];
  env?: Record<string, string>;
}

async function commandsFor(
  tool: ToolName,
  ctx: ToolContext,
  targetHost: string,
  tag: string,
): Promise<Command[]> {
  const policy = ['--policy', ctx.policyFile];
  if (tool === 'pullsafe') {
    const file = join(ctx.work, `pullsafe-${tag}.yaml`);
    await writeFile(file, pullsafeMirrorFile(ctx.sourceHost, targetHost, ctx.set, ctx.concurrency));
    const [command, ...prefix] = ctx.pullsafeCommand ?? [join(ctx.root, 'pullsafe')];
    return [
      {
        command: command!,
        args: [...prefix, 'sync', '-f', file, ...(ctx.pullsafeArgs ?? [])],
        // Where pullsafe records which repositories hold which blobs: the bench's own, not the user's.
        env: { XDG_CACHE_HOME: join(ctx.work, 'pullsafe-cache') },
      },
    ];
  }
  if (tool === 'node-pipe' || tool === 'node-raw') {
    const file = join(ctx.work, 'image-set.json');
    await writeFile(file, JSON.stringify(ctx.set));
    return [
      {
        command: process.execPath,
        args: [
          join(ctx.root, 'bench', 'lib', tool === 'node-pipe' ? 'sync-pipe.ts' : 'sync-raw.ts'),
          file,
          `http://${ctx.sourceHost}`,
          `http://${targetHost}`,
          String(ctx.concurrency.images),
          String(ctx.concurrency.blobs),
        ],
      },
    ];
  }
  if (tool === 'skopeo-sync') {
    const file = join(ctx.work, `skopeo-${tag}.yaml`);
    await writeFile(file, skopeoSyncFile(ctx.sourceHost, ctx.set));
    return [
      {
        command: 'skopeo',
        args: [
          ...policy,
          'sync',
          '--all',
          '--src',
          'yaml',
          '--dest',
          'docker',
          '--dest-tls-verify=false',
          file,
          `${targetHost}/mirror`,
        ],
      },
    ];
  }
  return ctx.set.images.map((spec) => ({
    command: 'skopeo',
    args: [
      ...policy,
      'copy',
      '--all',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${ctx.sourceHost}/${spec.repository}:${spec.tag}`,
      `docker://${targetHost}/${targetRepository('skopeo-copy', spec)}:${spec.tag}`,
    ],
  }));
}

/**
 * Runs one tool against a running target registry (`targetHost`, pids of both registries for CPU) and
 * times it. Stops at the first failing command. The files it needs are written before the clock starts.
 */
export async function runTool(
  tool: ToolName,
  ctx: ToolContext,
  targetHost: string,
  pids: { source: number; target: number },
  tag: string,
): Promise<ToolRun> {
  const commands = await commandsFor(tool, ctx, targetHost, tag);
  const cores = availableParallelism();
  const children0 = await selfAndChildrenCpuSeconds();
  const self0 = process.cpuUsage();
  const source0 = await cpuSecondsOf(pids.source);
  const target0 = await cpuSecondsOf(pids.target);
  const system0 = await systemCpu();
  const irq0 = await irqSeconds();
  const started = performance.now();
  const startedAt = Date.now();
  const deadline = started + ctx.timeoutMs;
  const results: RunResult[] = [];
  for (const { command, args, env } of commands) {
    const left = deadline - performance.now();
    if (left <= 0) {
      results.push({
        code: null,
        signal: 'SIGKILL',
        stdout: '',
        stderr: 'time limit reached',
        timedOut: true,
      });
      break;
    }
    const result = await run(command, args, { timeoutMs: left, cwd: ctx.work, ...(env ? { env } : {}) });
    results.push(result);
    if (result.code !== 0) break;
  }
  const wallSeconds = (performance.now() - started) / 1000;
  const system1 = await systemCpu();
  const irq = (await irqSeconds()) - irq0;
  const source = (await cpuSecondsOf(pids.source)) - source0;
  const target = (await cpuSecondsOf(pids.target)) - target0;
  const selfUsage = process.cpuUsage(self0);
  const self = (selfUsage.user + selfUsage.system) / 1e6;
  const toolCpu = Math.max(0, (await selfAndChildrenCpuSeconds()) - children0 - self);
  const busy = busyCores(system0, system1, cores) * wallSeconds;
  const last = results[results.length - 1];
  return {
    tool,
    wallSeconds,
    startedAt,
    exitCodes: results.map((r) => r.code),
    timedOut: results.some((r) => r.timedOut),
    cpu: { tool: toolCpu, source, target, other: Math.max(0, busy - toolCpu - source - target - self), irq },
    stdout: last?.stdout ?? '',
    stderr: results
      .map((r) => r.stderr.trim())
      .filter(Boolean)
      .join('\n'),
  };
}

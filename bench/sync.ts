/**
 * `pullsafe sync` against `skopeo sync --all` and a `skopeo copy --all` loop: the same set of multi-arch
 * images moved between two docker-registry (distribution 2.8) instances on 127.0.0.1.
 *
 *   node bench/sync.ts [--shape small|large] [--quick] [--reps N] [--images N] [--blobs N] [--profile] ...
 *
 * One source registry is seeded once with one of two sets of OCI images (gzip'd layers of random bytes):
 *   small (default): 20 images (bench/img00..img19:v1), each an index over 2-3 platforms with 2-3 layers
 *     of 1.25-3.75 MiB per platform, 307 MB in all (43 MB with --quick);
 *   large: 6 images, each an index over 2 platforms with 4 layers of 6-18 MiB per platform, 554 MB (528
 *     MiB) in all (69 MB with --quick).
 * Every run copies the whole set into a fresh, empty target registry, is checked digest by digest
 * afterwards, and is timed from the first process start to the last exit. Tools take turns within
 * each repetition (A B C, then C B A, ...). The report gives the median wall time of each tool, bytes
 * stored in the target, the ratio skopeo time / pullsafe time and PASS/FAIL against "pullsafe at least 2x
 * faster than skopeo". Progress goes to stderr, the report to stdout.
 *
 * --shape S     the image set: small (default: many small images) or large (few images, large layers)
 * --quick       smaller layers and one repetition (smoke test, under a minute)
 * --reps N      repetitions per tool (default 3; 1 with --quick)
 * --images N    pullsafe's concurrency.images (default 4)
 * --blobs N     pullsafe's concurrency.blobs (default 8)
 * --profile     afterwards, where pullsafe's time goes: a concurrency sweep, a timeline from --json events,
 *               a CPU profile of the sync process (not part of the PASS/FAIL figures)
 * --json FILE   also write every run as JSON
 * --strict      exit 2 if a target is missed
 *
 * See docs/benchmarks.md, section "sync: pullsafe vs skopeo".
 */
import { endRun, guardRun, keepRunning, makeWorkDir, runMain, stop } from './lib/bench-run.ts';
import { existsSync } from 'node:fs';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './lib/load.ts';
import { quietLimit } from './lib/measure.ts';
import { run, waitForQuiet } from './lib/proc.ts';
import { describeMachine, fixed, markdownTable, type Machine } from './lib/report.ts';
import { distributionBinary, startDistribution, type RunningTarget } from './lib/servers.ts';
import { describeSet, makeAndSeed, MiB, setSizes, storedBlobs, verifyCopy } from './lib/sync-images.ts';
import type { ImageSet, SetShape } from './lib/sync-images.ts';
import { runProfile } from './lib/sync-profile.ts';
import {
  allCpu,
  registryCpu,
  runTool,
  skopeoPolicy,
  targetRepository,
  toolLabels,
  toolNames,
} from './lib/sync-tools.ts';
import type { Concurrency, ToolContext, ToolName, ToolRun } from './lib/sync-tools.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface Plan {
  shape: SetShape;
  images: number;
  /** Mean payload of one layer (before tar and gzip). */
  layerBytes: number;
  reps: number;
  toolTimeoutMs: number;
  quietWaitMs: number;
  deadlineMs: number;
}

const fullPlan: Omit<Plan, 'shape' | 'images' | 'layerBytes'> = {
  reps: 3,
  toolTimeoutMs: 10 * 60_000,
  quietWaitMs: 120_000,
  deadlineMs: 60 * 60_000,
};

const quickPlan: typeof fullPlan = {
  reps: 1,
  toolTimeoutMs: 3 * 60_000,
  quietWaitMs: 10_000,
  deadlineMs: 15 * 60_000,
};

function planFor(shape: SetShape, quick: boolean): Plan {
  const { images, layerBytes, quickLayerBytes } = setSizes[shape];
  return quick
    ? { ...quickPlan, shape, images, layerBytes: quickLayerBytes }
    : { ...fullPlan, shape, images, layerBytes };
}

/** The target: pullsafe at least this many times faster than skopeo. */
const targetFactor = 2;
/** A run during which other processes kept more cores than this busy is flagged. */
const otherLimitCores = 0.3;
/** A disturbed run is discarded and repeated, at most this many attempts in all. */
const runAttempts = 3;

interface Options {
  shape: SetShape;
  quick: boolean;
  reps?: number;
  concurrency: Concurrency;
  profile: boolean;
  json?: string;
  strict: boolean;
}

const usage =
  'usage: node bench/sync.ts [--shape small|large] [--quick] [--reps N] [--images N] [--blobs N] [--profile] [--json FILE] [--strict]';

function log(message: string): void {
  const time = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[${time}] ${message}\n`);
}

function usageError(message: string): never {
  console.error(`${message}\n${usage}`);
  process.exit(64);
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    shape: 'small',
    quick: false,
    concurrency: { images: 4, blobs: 8 },
    profile: false,
    strict: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => argv[++i] ?? usageError(`${arg} needs a value`);
    const count = (max: number): number => {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1 || n > max)
        usageError(`${arg} takes a whole number from 1 to ${max}`);
      return n;
    };
    if (arg === '--quick') options.quick = true;
    else if (arg === '--shape') {
      const shape = value();
      options.shape =
        shape === 'small' || shape === 'large' ? shape : usageError('--shape takes small or large');
    } else if (arg === '--reps') options.reps = count(9);
    else if (arg === '--images') options.concurrency.images = count(32);
    else if (arg === '--blobs') options.concurrency.blobs = count(64);
    else if (arg === '--profile') options.profile = true;
    else if (arg === '--strict') options.strict = true;
    else if (arg === '--json') options.json = resolve(value());
    else if (arg === '--help' || arg === '-h') {
      console.log(usage);
      process.exit(0);
    } else usageError(`unknown argument: ${arg}`);
  }
  return options;
}

async function firstLine(command: string, args: string[]): Promise<string> {
  try {
    const result = await run(command, args, { timeoutMs: 10_000, cwd: root });
    return (result.stdout.trim() || result.stderr.trim()).split('\n')[0]!.trim();
  } catch {
    return 'unknown';
  }
}

interface Measured extends ToolRun {
  rep: number;
  /** 1-based position of the tool within its repetition. */
  position: number;
  problems: string[];
  stored: { files: number; bytes: number };
  ok: boolean;
  /** Earlier attempts discarded because other processes were busy. */
  repeated: number;
}

/** A fresh, empty distribution in a folder of its own. */
async function freshTarget(work: string, name: string): Promise<RunningTarget> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  const target = await startDistribution(dir);
  keepRunning(target);
  return target;
}

const hostOf = (target: RunningTarget): string => new URL(target.base).host;

/** Triggers the launcher's rebuild (if src/ changed since the last build) outside the timed runs. */
async function prepareLauncher(): Promise<void> {
  const result = await run(join(root, 'pullsafe'), ['--version'], { timeoutMs: 300_000, cwd: root });
  if (result.code !== 0) throw new Error(`./pullsafe --version failed: ${result.stderr.slice(0, 500)}`);
}

type Once = Omit<Measured, 'rep' | 'position' | 'repeated'> & {
  /** The launcher rebuilt dist/ during the run (someone changed src/ meanwhile): the time is not comparable. */
  rebuilt: boolean;
};

async function buildTime(): Promise<number> {
  return (await stat(join(root, 'dist', 'cli', 'main.js')).catch(() => undefined))?.mtimeMs ?? 0;
}

/** One timed run of `tool` into a fresh target, verified, then the target is removed. */
async function measureOnce(
  tool: ToolName,
  ctx: ToolContext,
  source: RunningTarget,
  name: string,
): Promise<Once> {
  const viaLauncher = tool === 'pullsafe' && !ctx.pullsafeCommand;
  if (viaLauncher) await prepareLauncher();
  const built = viaLauncher ? await buildTime() : 0;
  const target = await freshTarget(ctx.work, name);
  try {
    const result = await runTool(
      tool,
      ctx,
      hostOf(target),
      { source: source.service.pid, target: target.service.pid },
      name,
    );
    const problems: string[] = [];
    if (result.timedOut) problems.push(`time limit of ${ctx.timeoutMs / 1000} s reached`);
    if (result.exitCodes.some((code) => code !== 0)) {
      problems.push(`exit ${result.exitCodes.join(',')}: ${result.stderr.slice(-600)}`);
    }
    problems.push(...(await verifyCopy(target.base, ctx.set, (spec) => targetRepository(tool, spec))));
    const stored = await storedBlobs(target.storage);
    const rebuilt = viaLauncher && (await buildTime()) !== built;
    return { ...result, problems, stored, ok: problems.length === 0, rebuilt };
  } finally {
    await stop(target);
    await rm(join(ctx.work, name), { recursive: true, force: true });
  }
}

/**
 * measureOnce, repeated (at most runAttempts in all) while other processes kept more than otherLimitCores
 * busy during the run, or the launcher rebuilt dist/ during it. Waits for a quiet machine before each.
 */
async function measureStable(
  tool: ToolName,
  ctx: ToolContext,
  source: RunningTarget,
  name: string,
  quietWaitMs: number,
): Promise<Once & { repeated: number }> {
  let repeated = 0;
  for (let attempt = 1; ; attempt++) {
    await waitForQuiet(cores, quietWaitMs, quietLimit, (busy) =>
      log(`waiting for the machine to go quiet (${busy.toFixed(2)} cores busy)`),
    );
    if (attempt > 1) log(`  attempt ${attempt}`);
    const result = await measureOnce(tool, ctx, source, `${name}-${attempt}`);
    const other = result.cpu.other / result.wallSeconds;
    if ((other <= otherLimitCores && !result.rebuilt) || attempt >= runAttempts) {
      return { ...result, repeated };
    }
    log(
      result.rebuilt
        ? '  the launcher rebuilt dist/ during the run (src/ changed): discarding this run and repeating it'
        : `  other processes kept ${other.toFixed(2)} cores busy: discarding this run and repeating it`,
    );
    repeated++;
  }
}

function seconds(value: number | undefined, digits = 2): string {
  return fixed(value, digits);
}

function mb(bytes: number | undefined): string {
  return bytes === undefined ? '—' : fixed(bytes / 1e6, 1);
}

interface Summary {
  tool: ToolName;
  ok: Measured[];
  failed: Measured[];
  wall?: number;
}

const cores = availableParallelism();

function summarize(runs: Measured[]): Summary[] {
  return toolNames.map((tool) => {
    const mine = runs.filter((r) => r.tool === tool);
    const ok = mine.filter((r) => r.ok);
    return {
      tool,
      ok,
      failed: mine.filter((r) => !r.ok),
      ...(ok.length ? { wall: median(ok.map((r) => r.wallSeconds)) } : {}),
    };
  });
}

function printReport(
  plan: Plan,
  options: Options,
  set: ImageSet,
  runs: Measured[],
): { failed: boolean; lines: string[] } {
  const lines: string[] = [];
  const out = (text = ''): void => {
    lines.push(text);
    console.log(text);
  };
  const summaries = summarize(runs);
  const pullsafe = summaries.find((s) => s.tool === 'pullsafe')!;
  const c = options.concurrency;
  const label = (tool: ToolName): string =>
    tool === 'pullsafe'
      ? `${toolLabels.pullsafe} (images ${c.images}, blobs ${c.blobs})`
      : tool === 'skopeo-copy'
        ? `skopeo copy --all, ${set.images.length} × in a loop`
        : toolLabels[tool];
  const speedup = (s: Summary): number | undefined =>
    s.wall !== undefined && pullsafe.wall !== undefined ? s.wall / pullsafe.wall : undefined;

  out('## Results');
  out();
  const table = summaries.map((s) => {
    const bytes = s.ok.length ? median(s.ok.map((r) => r.stored.bytes)) : undefined;
    const ratio = speedup(s);
    const isSkopeo = s.tool !== 'pullsafe';
    return [
      label(s.tool),
      seconds(s.wall),
      runs
        .filter((r) => r.tool === s.tool)
        .map((r) => (r.ok ? seconds(r.wallSeconds) : 'failed'))
        .join(' / '),
      mb(bytes),
      s.wall !== undefined && bytes !== undefined ? fixed(bytes / 1e6 / s.wall, 0) : '—',
      isSkopeo ? (ratio === undefined ? '—' : `${ratio.toFixed(2)}x`) : '1.00x',
      isSkopeo ? `≥ ${targetFactor.toFixed(1)}x` : '',
      isSkopeo ? (ratio !== undefined && ratio >= targetFactor ? 'PASS' : 'FAIL') : '',
    ];
  });
  out(
    markdownTable(
      [
        'Tool',
        `wall time (s, median of ${plan.reps})`,
        'runs (s)',
        'stored in target (MB)',
        'MB/s',
        'skopeo time / pullsafe time',
        'target',
        'result',
      ],
      table,
      [false, true, true, true, true, true, false, false],
    ),
  );
  out();
  out(
    'MB = 10^6 bytes. "stored in target" = the blob files (layers, configs, manifests) the target registry',
  );
  out('holds after the run, i.e. the bytes that crossed from source to target.');
  out();

  out('## Targets');
  out();
  let failed = false;
  for (const s of summaries.filter((x) => x.tool !== 'pullsafe')) {
    const ratio = speedup(s);
    const pass = ratio !== undefined && ratio >= targetFactor;
    if (!pass) failed = true;
    out(
      `${pass ? 'PASS' : 'FAIL'}  pullsafe sync at least ${targetFactor}x faster than ${label(s.tool)}: ` +
        `${ratio === undefined ? 'no successful run to compare' : `${ratio.toFixed(2)}x`}`,
    );
  }
  out();

  const failures = runs.filter((r) => !r.ok);
  if (failures.length) {
    out('## Failed runs (not timed)');
    out();
    for (const r of failures) {
      out(`- ${label(r.tool)}, repetition ${r.rep + 1}: ${r.problems.length} problem(s)`);
      for (const problem of r.problems.slice(0, 5)) out(`  - ${problem.replace(/\s+/g, ' ').slice(0, 300)}`);
    }
    out();
  }

  out('## Details');
  out();
  out(
    'Every run; CPU in seconds (user + system) over the run; irq = irq + softirq time machine-wide (loopback TCP);',
  );
  out('cores busy = all of it / wall seconds:');
  out();
  out(
    markdownTable(
      [
        'tool',
        'rep',
        'order',
        'wall (s)',
        'verified',
        'blobs stored',
        'MB stored',
        'tool CPU',
        'source CPU',
        'target CPU',
        'other CPU',
        'irq CPU',
        'cores busy',
        'repeated',
      ],
      runs.map((r) => [
        r.tool,
        String(r.rep + 1),
        String(r.position),
        seconds(r.wallSeconds),
        r.ok ? 'yes' : 'NO',
        String(r.stored.files),
        mb(r.stored.bytes),
        seconds(r.cpu.tool),
        seconds(r.cpu.source),
        seconds(r.cpu.target),
        seconds(r.cpu.other),
        seconds(r.cpu.irq),
        fixed(allCpu(r) / r.wallSeconds, 2),
        String(r.repeated),
      ]),
      [false, true, true, true, false, true, true, true, true, true, true, true, true, true],
    ),
  );
  out();
  const disturbed = runs.filter((r) => r.cpu.other / r.wallSeconds > otherLimitCores);
  if (disturbed.length) {
    out(
      `WARNING: other processes kept more than ${otherLimitCores} cores busy during ${disturbed.length} run(s): ` +
        `${disturbed.map((r) => `${r.tool} #${r.rep + 1}`).join(', ')}. Rerun on a quiet machine.`,
    );
    out();
  }

  out('Medians per tool (successful runs):');
  out();
  out(
    markdownTable(
      [
        'tool',
        'wall (s)',
        'tool CPU (s)',
        'source registry CPU (s)',
        'target registry CPU (s)',
        'irq + softirq (s)',
        'cores busy',
        `all CPU / ${cores} cores (s)`,
        `registries + irq / ${cores} cores (s)`,
      ],
      summaries.map((s) => {
        const m = (pick: (r: Measured) => number): number | undefined =>
          s.ok.length ? median(s.ok.map(pick)) : undefined;
        return [
          label(s.tool),
          seconds(s.wall),
          seconds(m((r) => r.cpu.tool)),
          seconds(m((r) => r.cpu.source)),
          seconds(m((r) => r.cpu.target)),
          seconds(m((r) => r.cpu.irq)),
          fixed(
            m((r) => allCpu(r) / r.wallSeconds),
            2,
          ),
          seconds(m((r) => allCpu(r) / cores)),
          seconds(m((r) => registryCpu(r) / cores)),
        ];
      }),
      [false, true, true, true, true, true, true, true, true],
    ),
  );
  out();

  out(
    [
      'Method:',
      describeSet(plan.shape, set),
      '- Source and targets: docker-registry (distribution 2.8), filesystem storage, on 127.0.0.1. Each run gets a',
      '  fresh target with empty storage, started before the clock starts, so every run moves everything.',
      `- pullsafe: ./pullsafe sync -f FILE (the launcher, as users run it) with target 127.0.0.1:PORT/mirror/{repository}`,
      `  and concurrency { images: ${c.images}, blobs: ${c.blobs} }. ./pullsafe --version runs untimed before each run, so`,
      '  a rebuild of dist/ (after a change to src/) never lands in a timed run.',
      '- skopeo sync: skopeo --policy P sync --all --src yaml --dest docker --dest-tls-verify=false FILE',
      '  127.0.0.1:PORT/mirror, with the source under tls-verify: false (targets mirror/imgNN:v1).',
      `- skopeo copy: skopeo --policy P copy --all --src-tls-verify=false --dest-tls-verify=false, once per image,`,
      '  one after the other; the time runs from the first start to the last exit.',
      '  P is a temporary policy file: {"default":[{"type":"insecureAcceptAnything"}]}.',
      '- Verification after each run: HEAD on every tag (index digest = source digest), on every platform manifest',
      '  by digest, and on every blob (Content-Length). A run that fails it, or exits non-zero, counts as failed and',
      `  is not timed. ${plan.reps} repetition(s) per tool, median; the order rotates (A B C, then C B A).`,
      '- Bytes: sum of the blob data files under the target registry storage after the run (apparent size).',
      `- CPU: tool = user + system of the tool's processes (reaped children of this script); source and target = the`,
      '  registry processes; other = the rest of /proc/stat user + system; irq = /proc/stat irq + softirq. "all CPU /',
      '  cores" is the shortest wall time that much CPU work allows on this machine; "registries + irq / cores" is that',
      "  bound without the tool's own CPU, the least any client could take. Before each run the script waits (up to",
      `  ${plan.quietWaitMs / 1000} s) for a second with less than ${quietLimit} cores busy; a run during which other processes`,
      `  kept more than ${otherLimitCores} cores busy is discarded and repeated (at most ${runAttempts} attempts; "repeated").`,
      `- One unrecorded warm-up run per tool (one image) comes first. All data is in the page cache.`,
    ].join('\n'),
  );
  lines.push('');
  return { failed, lines };
}

/** The report's title and the machine and tools it ran on. */
async function printHeader(plan: Plan, options: Options, skopeo: string): Promise<Machine> {
  const machine = await describeMachine(root, undefined);
  const dirty = (
    await run('git', ['status', '--porcelain', '--', 'src'], { timeoutMs: 10_000, cwd: root })
  ).stdout
    .trim()
    .split('\n')
    .filter(Boolean).length;
  const c = options.concurrency;
  const mode = options.quick ? 'quick' : 'full';
  console.log(`# pullsafe sync vs skopeo (${plan.shape} images, ${mode} run, ${new Date().toISOString()})\n`);
  console.log(
    [
      `CPU:          ${machine.cpu}, ${machine.cores} cores`,
      `Memory:       ${machine.memory}`,
      `Kernel:       ${machine.kernel}`,
      `Node:         ${machine.node}`,
      `pullsafe:     ${machine.pullsafe}${dirty ? `, ${dirty} file(s) in src/ changed since that commit` : ''},` +
        ` run as ./pullsafe sync -f FILE, concurrency { images: ${c.images}, blobs: ${c.blobs} }`,
      `skopeo:       ${skopeo}`,
      `Registries:   ${machine.distribution} (source and targets)`,
      `Load average: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} (1, 5, 15 min) at start`,
      '',
    ].join('\n'),
  );
  return machine;
}

/** One unrecorded warm-up per tool, then the repetitions, tools taking turns (A B C, then C B A). */
async function measureTools(plan: Plan, ctx: ToolContext, source: RunningTarget): Promise<Measured[]> {
  log('warm-up: each tool copies one image (unrecorded)');
  for (const tool of toolNames) {
    const warm = await measureOnce(
      tool,
      { ...ctx, set: { ...ctx.set, images: ctx.set.images.slice(0, 1) } },
      source,
      `warmup-${tool}`,
    );
    if (!warm.ok) throw new Error(`warm-up of ${tool} failed: ${warm.problems.slice(0, 3).join('; ')}`);
  }

  const runs: Measured[] = [];
  for (let rep = 0; rep < plan.reps; rep++) {
    const order = rep % 2 === 0 ? toolNames : [...toolNames].reverse();
    for (const [index, tool] of order.entries()) {
      log(`repetition ${rep + 1}/${plan.reps}: ${toolLabels[tool]}`);
      const { repeated, ...result } = await measureStable(
        tool,
        ctx,
        source,
        `run-${rep}-${tool}`,
        plan.quietWaitMs,
      );
      runs.push({ ...result, rep, position: index + 1, repeated });
      log(
        `  ${result.ok ? 'ok' : 'FAILED'}: ${result.wallSeconds.toFixed(2)} s, ${(result.stored.bytes / 1e6).toFixed(1)} MB stored` +
          (result.ok ? '' : ` (${result.problems[0]?.slice(0, 200)})`),
      );
    }
  }
  return runs;
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const plan = planFor(options.shape, options.quick);
  if (options.reps !== undefined) plan.reps = options.reps;
  const deadline = guardRun(plan.deadlineMs, 'registries');

  if (!existsSync(distributionBinary)) {
    throw new Error(`${distributionBinary} not found (apt-get install -y docker-registry)`);
  }
  const skopeo = await firstLine('skopeo', ['--version']);
  if (skopeo === 'unknown') throw new Error('skopeo is required (apt-get install -y skopeo)');
  const launcher = join(root, 'pullsafe');
  if (!existsSync(launcher)) throw new Error(`${launcher} not found`);

  const machine = await printHeader(plan, options, skopeo);
  const c = options.concurrency;
  const mode = options.quick ? 'quick' : 'full';

  const work = await makeWorkDir('pullsafe-bench-sync-');
  try {
    log('starting the source registry');
    const sourceDir = join(work, 'source');
    await mkdir(sourceDir);
    const source = await startDistribution(sourceDir);
    keepRunning(source);
    log(
      `making ${plan.images} ${plan.shape}-shape images (mean layer ${(plan.layerBytes / MiB).toFixed(2)} MiB) and pushing them`,
    );
    const set = await makeAndSeed(source.base, plan.shape, plan.images, plan.layerBytes, log);
    const sourceProblems = await verifyCopy(source.base, set, (spec) => spec.repository);
    if (sourceProblems.length)
      throw new Error(`source check failed: ${sourceProblems.slice(0, 3).join('; ')}`);
    log(
      `image set: ${set.images.length} images, ${set.manifests} platform manifests, ${set.layers} layers, ` +
        `${(set.totalBytes / 1e6).toFixed(1)} MB (${(set.totalBytes / MiB).toFixed(1)} MiB) in all`,
    );
    const policyFile = join(work, 'policy.json');
    await writeFile(policyFile, skopeoPolicy);
    const ctx: ToolContext = {
      root,
      work,
      set,
      sourceHost: hostOf(source),
      concurrency: c,
      policyFile,
      timeoutMs: plan.toolTimeoutMs,
    };

    const runs = await measureTools(plan, ctx, source);

    const report = printReport(plan, options, set, runs);
    if (options.profile) {
      log('profiling pullsafe (not part of the figures above)');
      await runProfile({
        ctx,
        source,
        log,
        out: (text) => console.log(text),
        measure: (tool, context, name) => measureStable(tool, context, source, name, plan.quietWaitMs),
      });
    }
    if (options.json) {
      const json = {
        date: new Date().toISOString(),
        mode,
        machine: { ...machine, skopeo },
        plan,
        concurrency: c,
        imageSet: { ...set, images: set.images.map((s) => s.repository) },
        runs: runs.map(({ stdout: _stdout, ...rest }) => rest),
      };
      await writeFile(options.json, `${JSON.stringify(json, null, 2)}\n`);
    }
    return options.strict && report.failed ? 2 : 0;
  } finally {
    await endRun(deadline);
  }
}

runMain(main);

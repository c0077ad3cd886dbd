/**
 * pullsafe on S3 storage against CNCF distribution (docker-registry 2.8) on its S3 driver, both on one s3rver
 * (each under its own prefix of one bucket), on 127.0.0.1. Each registry reaches s3rver through a counting
 * proxy of its own (bench/lib/s3-counter.ts), so S3 requests are counted outside the registries.
 *
 *   node bench/s3.ts [--quick] [--json FILE] [--strict] [--pullsafe-entry FILE]
 *
 * Figures, registries taking turns (A B, then B A):
 * - blob GET throughput: one 256 MiB blob by 1 client, and by 8 clients at once (curl);
 * - push throughput: 8 blobs of 64 MiB, 4 at a time, as POST + PUT (monolithic) and as POST + one streamed
 *   PATCH + PUT (what docker and skopeo send);
 * - S3 requests, by method and S3 operation, per blob GET and per blob push over those phases; then, after
 *   a restart of both registries, per image pull (first and second), per image push and per blob pushed in
 *   12 MiB PATCHes;
 * - peak RSS of each registry process; CPU of each process by phase (what limits each side).
 * Targets (issue 18), PASS/FAIL: throughput >= 1.0x distribution's, no more S3 requests per operation than
 * distribution, pullsafe's RSS under 300 MB. Progress goes to stderr, the report to stdout.
 *
 * --quick               64 MiB blob, pushes of 4 x 16 MiB, fewer samples (smoke test, about a minute)
 * --json FILE           also write every figure as JSON
 * --strict              exit 2 if a target is missed
 * --pullsafe-entry FILE how to run pullsafe: a script run with node (default src/cli/main.ts, or
 *                       dist/cli/main.js) or the ./pullsafe launcher
 *
 * See docs/benchmarks.md, section "S3 storage: pullsafe vs distribution".
 */
import { endRun, guardRun, makeWorkDir, runMain } from './lib/bench-run.ts';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { blobFromRange, imageOf, MiB, writeRandomFile, type BlobSource } from './lib/data.ts';
import { uploadBlob } from './lib/http.ts';
import { concurrentGets, curlGet, mbps, type Transfer } from './lib/load.ts';
import {
  busyCores,
  cpuSecondsOf,
  memoryOf,
  RssSampler,
  run,
  selfAndChildrenCpuSeconds,
  stopService,
  systemCpu,
  waitForQuiet,
} from './lib/proc.ts';
import { describeMachine } from './lib/report.ts';
import {
  pullImage,
  pushChunked,
  pushConcurrently,
  pushImage,
  type BenchImage,
  type PushKind,
} from './lib/s3-clients.ts';
import {
  addCounts,
  newFigures,
  type CountedOperation,
  type PhaseFigures,
  type Plan,
  type RegistryFigures,
  type S3Tallies,
  type ThroughputPhase,
} from './lib/s3-figures.ts';
import { printReport, type Run } from './lib/s3-report.ts';
import {
  readCounts,
  startCounter,
  startDistributionS3,
  startPullsafeS3,
  startS3rver,
  type RegistryName,
  type S3rver,
} from './lib/s3-servers.ts';
import { distributionBinary, resetCounts, type RunningTarget } from './lib/servers.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cores = availableParallelism();

const fullPlan: Plan = {
  bigBytes: 256 * MiB,
  singleRuns: 5,
  clients: 8,
  concurrentRounds: 3,
  pushBytes: 64 * MiB,
  pushCount: 8,
  pushConcurrency: 4,
  pushRounds: 3,
  chunkBytes: 12 * MiB,
  layerBytes: [32 * MiB, 4 * MiB],
  quietWaitMs: 30_000,
  deadlineMs: 45 * 60_000,
};

const quickPlan: Plan = {
  ...fullPlan,
  bigBytes: 64 * MiB,
  singleRuns: 2,
  concurrentRounds: 1,
  pushBytes: 16 * MiB,
  pushCount: 4,
  pushRounds: 1,
  layerBytes: [8 * MiB, 1 * MiB],
  quietWaitMs: 5_000,
  deadlineMs: 15 * 60_000,
};

/** How long a registry may go on with S3 requests after answering (removing an upload's objects). */
const settleMs = 10_000;
const getTimeoutMs = 300_000;
const seededRepo = 'bench/app';
const pushedRepo = 'bench/new';

function log(message: string): void {
  const time = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[${time}] ${message}\n`);
}

interface Options {
  quick: boolean;
  json?: string;
  strict: boolean;
  pullsafeEntry: string;
}

const usage = 'usage: node bench/s3.ts [--quick] [--json FILE] [--strict] [--pullsafe-entry FILE]';

function parseArgs(argv: string[]): Options {
  const options: Options = { quick: false, strict: false, pullsafeEntry: join(root, 'src/cli/main.ts') };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) {
        console.error(`${arg} needs a value\n${usage}`);
        process.exit(64);
      }
      return next;
    };
    if (arg === '--quick') options.quick = true;
    else if (arg === '--strict') options.strict = true;
    else if (arg === '--json') options.json = resolve(value());
    else if (arg === '--pullsafe-entry') options.pullsafeEntry = resolve(value());
    else if (arg === '--help' || arg === '-h') {
      console.log(usage);
      process.exit(0);
    } else {
      console.error(`unknown argument: ${arg}\n${usage}`);
      process.exit(64);
    }
  }
  return options;
}

interface Data {
  big: BlobSource;
  /** pushes[kind][round][i]: distinct blobs. */
  pushes: Record<PushKind, BlobSource[][]>;
  seeded: BenchImage;
  pushed: BenchImage;
  chunked: BlobSource;
}

/**
 * One file of random bytes. The big blob is all of it; every other blob is a range starting at its own
 * whole MiB, so every digest differs.
 */
async function prepareData(work: string, plan: Plan): Promise<Data> {
  const file = join(work, 'random.bin');
  log(`writing ${plan.bigBytes / MiB} MiB of random bytes and hashing the blobs cut from it`);
  await writeRandomFile(file, plan.bigBytes);
  let nextOffset = MiB;
  const cut = async (size: number): Promise<BlobSource> => {
    const offset = nextOffset;
    nextOffset += MiB;
    if (offset + size > plan.bigBytes) throw new Error('the blobs do not fit in the data file');
    return blobFromRange(file, offset, size);
  };
  const rounds = async (): Promise<BlobSource[][]> => {
    const all: BlobSource[][] = [];
    for (let round = 0; round < plan.pushRounds; round++) {
      const blobs: BlobSource[] = [];
      for (let i = 0; i < plan.pushCount; i++) blobs.push(await cut(plan.pushBytes));
      all.push(blobs);
    }
    return all;
  };
  const image = async (): Promise<BenchImage> => {
    const layers: BlobSource[] = [];
    for (const size of plan.layerBytes) layers.push(await cut(size));
    return imageOf(layers);
  };
  return {
    big: await blobFromRange(file, 0, plan.bigBytes),
    pushes: { monolithic: await rounds(), streamed: await rounds() },
    seeded: await image(),
    pushed: await image(),
    chunked: await cut(plan.pushBytes),
  };
}

interface Registry {
  name: RegistryName;
  target: RunningTarget;
  counter: RunningTarget;
  sampler: RssSampler;
  figures: RegistryFigures;
}

interface Context {
  work: string;
  entry: string;
  plan: Plan;
  s3rver: S3rver;
  registries: Registry[];
  /** Cores busy with other work before each phase. */
  busyBefore: number[];
}

async function startRegistry(
  context: Context,
  name: RegistryName,
  counter: RunningTarget,
): Promise<RunningTarget> {
  log(`starting ${name} on S3 (through its counting proxy ${counter.base})`);
  const folder = join(context.work, name);
  await mkdir(folder, { recursive: true });
  return name === 'pullsafe'
    ? startPullsafeS3(root, folder, context.entry, counter.base)
    : startDistributionS3(folder, counter.base);
}

/** CPU seconds so far of the processes a sample involves. */
async function cpuNow(context: Context, registry: Registry): Promise<Omit<PhaseCpu, 'system'>> {
  return {
    registry: await cpuSecondsOf(registry.target.service.pid),
    s3rver: await cpuSecondsOf(context.s3rver.service.pid),
    counter: await cpuSecondsOf(registry.counter.service.pid),
    clients: await selfAndChildrenCpuSeconds(),
  };
}

interface PhaseCpu {
  registry: number;
  s3rver: number;
  counter: number;
  clients: number;
}

/** Runs one sample of `phase` against `registry`, counting its S3 requests and the CPU of every process. */
async function sample(
  context: Context,
  registry: Registry,
  phase: ThroughputPhase,
  operations: number,
  body: () => Promise<Transfer>,
): Promise<Transfer> {
  for (const other of context.registries) other.sampler.label = other === registry ? phase : 'idle';
  const stats: PhaseFigures = (registry.figures.phases[phase] ??= {
    operations: 0,
    bytes: 0,
    s3: {},
    cpu: { wall: 0, registry: 0, s3rver: 0, counter: 0, clients: 0, other: 0 },
  });
  await resetCounts(registry.counter);
  const before = await cpuNow(context, registry);
  const systemBefore = await systemCpu();
  const started = performance.now();
  const result = await body();
  const wall = (performance.now() - started) / 1000;
  const systemAfter = await systemCpu();
  const after = await cpuNow(context, registry);
  addCounts(stats.s3, await readCounts(registry.counter, settleMs));
  stats.operations += operations;
  stats.bytes += result.bytes;
  const used = {
    registry: after.registry - before.registry,
    s3rver: after.s3rver - before.s3rver,
    counter: after.counter - before.counter,
    clients: after.clients - before.clients,
  };
  const machine = busyCores(systemBefore, systemAfter, cores) * wall;
  const ours = used.registry + used.s3rver + used.counter + used.clients;
  stats.cpu.wall += wall;
  stats.cpu.registry += used.registry;
  stats.cpu.s3rver += used.s3rver;
  stats.cpu.counter += used.counter;
  stats.cpu.clients += used.clients;
  stats.cpu.other += Math.max(0, machine - ours);
  return result;
}

/** A B, then B A, … */
function order(registries: Registry[], round: number): Registry[] {
  return round % 2 === 0 ? registries : [...registries].reverse();
}

async function settle(context: Context): Promise<void> {
  const busy = await waitForQuiet(cores, context.plan.quietWaitMs, 0.25, (n) =>
    log(
      `machine busy (${n.toFixed(2)} cores) with other work; waiting up to ${context.plan.quietWaitMs / 1000} s`,
    ),
  );
  context.busyBefore.push(busy);
  if (busy >= 0.25) log(`measuring with ${busy.toFixed(2)} cores busy with other work`);
}

async function measureGets(context: Context, data: Data): Promise<void> {
  const { plan, registries } = context;
  const blobUrl = (registry: Registry): string =>
    `${registry.target.base}/v2/${seededRepo}/blobs/${data.big.digest}`;
  await settle(context);
  for (const registry of registries) {
    registry.sampler.label = 'warm-up';
    await curlGet(blobUrl(registry), data.big.size, getTimeoutMs);
  }
  for (let round = 0; round < plan.singleRuns; round++) {
    for (const registry of order(registries, round)) {
      const transfer = await sample(context, registry, 'single', 1, () =>
        curlGet(blobUrl(registry), data.big.size, getTimeoutMs),
      );
      registry.figures.samples.single.push(mbps(transfer));
      log(`${registry.name}: GET 1 x ${data.big.size / MiB} MiB: ${mbps(transfer).toFixed(0)} MB/s`);
    }
  }
  await settle(context);
  for (let round = 0; round < plan.concurrentRounds; round++) {
    for (const registry of order(registries, round)) {
      const downloads = Array.from({ length: plan.clients }, () => ({
        url: blobUrl(registry),
        bytes: data.big.size,
      }));
      const transfer = await sample(context, registry, 'concurrent', plan.clients, () =>
        concurrentGets(downloads, getTimeoutMs),
      );
      registry.figures.samples.concurrent.push(mbps(transfer));
      log(
        `${registry.name}: GET ${plan.clients} x ${data.big.size / MiB} MiB at once: ${mbps(transfer).toFixed(0)} MB/s`,
      );
    }
  }
}

async function measurePushes(context: Context, data: Data, kind: PushKind): Promise<void> {
  const { plan, registries } = context;
  await settle(context);
  for (let round = 0; round < plan.pushRounds; round++) {
    for (const registry of order(registries, round)) {
      const blobs = data.pushes[kind][round]!;
      const transfer = await sample(context, registry, kind, blobs.length, () =>
        pushConcurrently(kind, registry.target.base, `bench/${kind}${round}`, blobs, plan.pushConcurrency),
      );
      registry.figures.samples[kind].push(mbps(transfer));
      log(
        `${registry.name}: push (${kind}) ${blobs.length} x ${plan.pushBytes / MiB} MiB, ` +
          `${plan.pushConcurrency} at a time: ${mbps(transfer).toFixed(0)} MB/s`,
      );
    }
  }
}

/** S3 requests of one client operation, alone, once the registry has none in flight. */
async function countOne(
  registry: Registry,
  operation: CountedOperation,
  body: () => Promise<void>,
): Promise<S3Tallies> {
  await resetCounts(registry.counter);
  await body();
  const tallies: S3Tallies = {};
  addCounts(tallies, await readCounts(registry.counter, settleMs));
  registry.figures.counted[operation] = tallies;
  return tallies;
}

/**
 * Both registries start again on the same storage, so that the first pull finds distribution's descriptor
 * cache empty (pullsafe keeps no S3 state in memory); then each operation is counted alone.
 */
async function measureCounts(context: Context, data: Data): Promise<void> {
  const { plan } = context;
  for (const registry of context.registries) {
    registry.sampler.stop();
    await stopService(registry.target.service);
    registry.target = await startRegistry(context, registry.name, registry.counter);
    const base = registry.target.base;
    const operations: [CountedOperation, () => Promise<void>][] = [
      ['pull-cold', () => pullImage(base, seededRepo, 'v1', data.seeded)],
      ['pull-warm', () => pullImage(base, seededRepo, 'v1', data.seeded)],
      ['push-image', () => pushImage(base, pushedRepo, 'v1', data.pushed)],
      ['push-chunked', () => pushChunked(base, pushedRepo, data.chunked, plan.chunkBytes)],
    ];
    for (const [operation, body] of operations) {
      const tallies = await countOne(registry, operation, body);
      const total = Object.values(tallies).reduce((sum, t) => sum + t.requests - t.failed, 0);
      log(`${registry.name}: ${operation}: ${total} S3 requests`);
    }
  }
}

async function seed(registry: Registry, data: Data): Promise<void> {
  log(
    `${registry.name}: seeding ${seededRepo} (the ${data.big.size / MiB} MiB blob, an image of ${data.seeded.layers.length} layers)`,
  );
  registry.sampler.label = 'seed';
  await uploadBlob(registry.target.base, seededRepo, data.big);
  await pushImage(registry.target.base, seededRepo, 'v1', data.seeded);
}

async function requirements(options: Options): Promise<void> {
  const curl = await run('curl', ['--version'], { timeoutMs: 10_000 }).catch(() => undefined);
  if (curl?.code !== 0) throw new Error('curl is required (apt-get install -y curl)');
  if (!existsSync(distributionBinary)) {
    throw new Error(`${distributionBinary} not found (apt-get install -y docker-registry)`);
  }
  if (!existsSync(options.pullsafeEntry)) throw new Error(`${options.pullsafeEntry} not found`);
}

async function startAll(context: Context): Promise<void> {
  log('starting s3rver');
  context.s3rver = await startS3rver(context.work);
  for (const name of ['distribution', 'pullsafe'] as const) {
    const counter = await startCounter(context.work, name, context.s3rver.base);
    const target = await startRegistry(context, name, counter);
    const registry: Registry = {
      name,
      target,
      counter,
      sampler: new RssSampler(target.service.pid),
      figures: newFigures(name),
    };
    context.registries.push(registry);
  }
}

async function measure(context: Context, data: Data): Promise<void> {
  for (const registry of context.registries) await seed(registry, data);
  await measureGets(context, data);
  await measurePushes(context, data, 'monolithic');
  await measurePushes(context, data, 'streamed');
  for (const registry of context.registries) {
    registry.sampler.stop();
    Object.assign(registry.figures.rssByPhase, registry.sampler.peaks);
    registry.figures.peakRss = (await memoryOf(registry.target.service.pid)).peakRss;
    log(`${registry.name}: peak RSS ${((registry.figures.peakRss ?? 0) / 1e6).toFixed(0)} MB`);
  }
  await measureCounts(context, data);
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const plan = options.quick ? quickPlan : fullPlan;
  const deadline = guardRun(plan.deadlineMs, 'the servers');
  await requirements(options);
  const machine = await describeMachine(root, undefined);
  const entry = relative(root, options.pullsafeEntry);
  const loadStart = loadavg();
  const context: Context = {
    work: await makeWorkDir('pullsafe-bench-s3-'),
    entry: options.pullsafeEntry,
    plan,
    s3rver: undefined as unknown as S3rver,
    registries: [],
    busyBefore: [],
  };
  try {
    const data = await prepareData(context.work, plan);
    await startAll(context);
    await measure(context, data);
    const result: Run = {
      date: new Date().toISOString(),
      mode: options.quick ? 'quick' : 'full',
      machine,
      pullsafeCommand: /\.(ts|js)$/.test(entry) ? `node ${entry}` : `./${entry}`,
      plan,
      loadStart,
      loadEnd: loadavg(),
      busyBefore: context.busyBefore,
      registries: Object.fromEntries(context.registries.map((r) => [r.name, r.figures])) as Run['registries'],
    };
    const failed = printReport(result);
    if (options.json) await writeFile(options.json, `${JSON.stringify(result, null, 2)}\n`);
    return options.strict && failed ? 2 : 0;
  } finally {
    for (const registry of context.registries) registry.sampler.stop();
    for (const registry of context.registries) {
      await stopService(registry.target.service);
      await stopService(registry.counter.service);
    }
    if (context.s3rver) await stopService(context.s3rver.service);
    await endRun(deadline);
  }
}

runMain(main);

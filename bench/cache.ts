/**
 * pullsafe's pull-through cache against CNCF distribution (docker-registry 2.8) in proxy mode, both in
 * front of the same upstream registry, on 127.0.0.1.
 *
 *   node bench/cache.ts [--quick] [--large] [--runs N] [--clients N] [--client-processes N]
 *                       [--only CACHE] [--json FILE] [--strict] [--pullsafe-entry FILE]
 *
 * The upstream is a plain docker-registry holding library/demo:v1, an OCI index over 2 platforms with 7
 * layers of 2-16 MiB each (random bytes). Each cache reaches it through a counting proxy of its own
 * (bench/lib/cache-counter.ts), so upstream requests and bytes are counted outside the caches. The
 * clients (bench/lib/cache-pull.ts) pull every platform as a runtime does, verifying every digest.
 *
 * Per run and cache: a cold pull by 1 client and a cold pull by 32 concurrent clients (each on a fresh
 * cache), then a warm pull by the same 32 clients; upstream requests and bytes of the 32 cold pulls; the
 * peak RSS of each cache process. Once per cache, on a fresh cache, `skopeo copy --all` pulls the image
 * (real-client compatibility; index digest checked). Caches take turns (A B, then B A), and the report
 * gives medians with PASS/FAIL against the targets of issue 16.
 *
 * --quick        smaller layers, one run (smoke test, under a minute)
 * --large        also pull library/large:v1 (one 2 GiB layer; 512 MiB with --quick), cold then warm, by 8
 *                clients at once: peak RSS while serving multi-gigabyte layers
 * --runs N       runs (default 3; 1 with --quick)
 * --clients N    concurrent clients (default 32)
 * --client-processes N  processes the clients are spread over (default 2, one per core)
 * --only CACHE   measure one cache only: distribution or pullsafe (for development; no ratios)
 * --json FILE    also write every figure as JSON
 * --strict       exit 2 if a target is missed
 * --pullsafe-entry FILE  the launcher to build pullsafe with (default ./pullsafe); the caches then run
 *                        dist/cli/main.js, what the launcher runs; a .ts or .js file is run as it is
 *
 * See docs/benchmarks.md, section "pull-through cache: pullsafe vs distribution's proxy mode".
 */
import {
  currentWorkDir,
  endRun,
  guardRun,
  keepRunning,
  makeWorkDir,
  runMain,
  stop,
} from './lib/bench-run.ts';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBenchImage, pushBenchImage, type BenchImage, type ImageShape } from './lib/cache-image.ts';
import type { PullReport } from './lib/cache-pull.ts';
import {
  printReport,
  summarize,
  type CacheFigures,
  type Phase,
  type RunFigures,
} from './lib/cache-report.ts';
import {
  pullScript,
  readCounts,
  startCounter,
  startDistributionCache,
  startPullsafeCache,
  startUpstream,
  type CacheName,
} from './lib/cache-servers.ts';
import { MiB } from './lib/data.ts';
import {
  busyCores,
  cpuSecondsOf,
  memoryOf,
  run,
  selfAndChildrenCpuSeconds,
  sleep,
  systemCpu,
  waitForQuiet,
} from './lib/proc.ts';
import { describeMachine, fixed, type Machine } from './lib/report.ts';
import { distributionBinary, resetCounts, type RunningTarget } from './lib/servers.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cores = availableParallelism();

interface Plan {
  layerSizes: number[];
  runs: number;
  clients: number;
  largeBytes: number;
  largeClients: number;
  /** Warm pulls after each cold pull by many clients. */
  warmRounds: number;
  /** Processes the clients are spread over. */
  clientProcesses: number;
  /** Limit of one pull phase (all clients). */
  pullTimeoutMs: number;
  quietWaitMs: number;
  deadlineMs: number;
}

const fullPlan: Plan = {
  layerSizes: [16, 12, 8, 6, 4, 3, 2].map((n) => n * MiB),
  runs: 3,
  clients: 32,
  largeBytes: 2048 * MiB,
  largeClients: 8,
  warmRounds: 3,
  clientProcesses: 2,
  pullTimeoutMs: 5 * 60_000,
  quietWaitMs: 20_000,
  deadlineMs: 40 * 60_000,
};

const quickPlan: Plan = {
  ...fullPlan,
  layerSizes: [2, 1, 1, 0.5].map((n) => n * MiB),
  runs: 1,
  warmRounds: 1,
  largeBytes: 512 * MiB,
  pullTimeoutMs: 60_000,
  quietWaitMs: 2_000,
  deadlineMs: 5 * 60_000,
};

const platforms = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
];

interface Options {
  quick: boolean;
  large: boolean;
  runs?: number;
  clients?: number;
  clientProcesses?: number;
  only?: CacheName;
  json?: string;
  strict: boolean;
  pullsafeEntry: string;
}

const usage =
  'usage: node bench/cache.ts [--quick] [--large] [--runs N] [--clients N] [--client-processes N] ' +
  '[--only distribution|pullsafe] ' +
  '[--json FILE] [--strict] [--pullsafe-entry FILE]';

function parseArgs(argv: string[]): Options {
  const options: Options = {
    quick: false,
    large: false,
    strict: false,
    pullsafeEntry: join(root, 'pullsafe'),
  };
  const fail = (message: string): never => {
    console.error(`${message}\n${usage}`);
    process.exit(64);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => argv[++i] ?? fail(`${arg} needs a value`);
    const count = (): number => {
      const n = Number(value());
      return Number.isInteger(n) && n >= 1 && n <= 256
        ? n
        : fail(`${arg} needs a whole number from 1 to 256`);
    };
    if (arg === '--quick') options.quick = true;
    else if (arg === '--large') options.large = true;
    else if (arg === '--strict') options.strict = true;
    else if (arg === '--runs') options.runs = count();
    else if (arg === '--clients') options.clients = count();
    else if (arg === '--client-processes') options.clientProcesses = count();
    else if (arg === '--json') options.json = resolve(value());
    else if (arg === '--pullsafe-entry') options.pullsafeEntry = resolve(value());
    else if (arg === '--only') {
      const name = value();
      options.only =
        name === 'distribution' || name === 'pullsafe' ? name : fail(`--only ${name}: not a cache`);
    } else if (arg === '--help' || arg === '-h') {
      console.log(usage);
      process.exit(0);
    } else fail(`unknown argument: ${arg}`);
  }
  return options;
}

function log(message: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

interface Cache {
  name: CacheName;
  counter: RunningTarget;
  start: (work: string) => Promise<RunningTarget>;
  figures: CacheFigures;
}

async function settle(plan: Plan): Promise<void> {
  const busy = await waitForQuiet(cores, plan.quietWaitMs, 0.25, (n) =>
    log(`machine busy (${n.toFixed(2)} cores) with other work; waiting up to ${plan.quietWaitMs / 1000} s`),
  );
  if (busy >= 0.25) log(`measuring with ${busy.toFixed(2)} cores busy with other work`);
}

/**
 * Starts each of `caches` on an empty storage folder (all idle but the one under load), runs `body`,
 * and stops them; resolves with what `body` returned and each cache's peak RSS (VmHWM, bytes).
 */
async function withFreshCaches<T>(
  caches: Cache[],
  label: string,
  body: (targets: Map<Cache, RunningTarget>) => Promise<T>,
): Promise<{ result: T; peakRss: Map<Cache, number> }> {
  const folders: string[] = [];
  const targets = new Map<Cache, RunningTarget>();
  try {
    for (const cache of caches) {
      const folder = await mkdtemp(join(currentWorkDir(), `${cache.name}-${label}-`));
      folders.push(folder);
      targets.set(cache, await cache.start(folder));
    }
    const result = await body(targets);
    const peakRss = new Map<Cache, number>();
    for (const [cache, target] of targets) {
      if (target.service.hasExited()) throw new Error(`${cache.name} exited during ${label}`);
      peakRss.set(cache, (await memoryOf(target.service.pid)).peakRss);
    }
    return { result, peakRss };
  } finally {
    for (const target of targets.values()) await stop(target);
    for (const folder of folders) await rm(folder, { recursive: true, force: true });
  }
}

interface Helpers {
  upstream: RunningTarget;
  counters: RunningTarget[];
}

/**
 * `clients` pulls of `image` through `target`, spread over processes (one per core by default) that
 * all start at `startAt`; their reports merged.
 */
async function pullTogether(
  plan: Plan,
  target: RunningTarget,
  image: BenchImage,
  clients: number,
  startAt: number,
): Promise<PullReport> {
  const processes = Math.min(plan.clientProcesses, clients);
  const results = await Promise.all(
    Array.from({ length: processes }, (_, i) =>
      run(
        process.execPath,
        [
          pullScript,
          target.base,
          image.repository,
          image.tag,
          image.index.digest,
          String(Math.floor(clients / processes) + (i < clients % processes ? 1 : 0)),
          String(plan.pullTimeoutMs),
          String(startAt),
        ],
        { timeoutMs: plan.pullTimeoutMs + 15_000 },
      ),
    ),
  );
  const reports: PullReport[] = results.map((result) => {
    if (result.code !== 0 || result.timedOut) {
      throw new Error(
        `pull through ${target.name} failed (exit ${result.code}${result.timedOut ? ', timed out' : ''}): ${result.stderr.slice(0, 500)}`,
      );
    }
    return JSON.parse(result.stdout) as PullReport;
  });
  return {
    clients: reports.reduce((sum, r) => sum + r.clients, 0),
    succeeded: reports.reduce((sum, r) => sum + r.succeeded, 0),
    failures: reports.flatMap((r) => r.failures).slice(0, 5),
    seconds: Math.max(...reports.map((r) => r.seconds)),
    lateMs: Math.max(...reports.map((r) => r.lateMs)),
    bytes: reports.reduce((sum, r) => sum + r.bytes, 0),
    clientSeconds: reports.flatMap((r) => r.clientSeconds),
    cpuSeconds: reports.reduce((sum, r) => sum + r.cpuSeconds, 0),
  };
}

/**
 * A freshly started cache first serves two pulls of a small image of its own, so that the measured
 * cold pull finds a running server (code loaded, connections open), as a long-running cache meets a
 * new image, and not the first request of a new process.
 */
async function warmUp(plan: Plan, target: RunningTarget, image: BenchImage): Promise<void> {
  const pull = await pullTogether(plan, target, image, 2, Date.now());
  if (pull.succeeded !== pull.clients) {
    throw new Error(`${target.name}: warm-up pull of ${image.repository} failed: ${pull.failures[0]}`);
  }
}

/** Pulls `image` through `target` with `clients` at once, counting upstream traffic and CPU. */
async function pullPhase(
  plan: Plan,
  helpers: Helpers,
  cache: Cache,
  target: RunningTarget,
  image: BenchImage,
  clients: number,
): Promise<Phase> {
  await settle(plan);
  await resetCounts(cache.counter);
  const helperPids = [helpers.upstream, ...helpers.counters].map((t) => t.service.pid);
  const helperCpu = async (): Promise<number> => {
    let sum = 0;
    for (const pid of helperPids) sum += await cpuSecondsOf(pid);
    return sum;
  };
  const startAt = Date.now() + 1_500;
  const pulls = pullTogether(plan, target, image, clients, startAt);
  pulls.catch(() => undefined); // awaited below; no unhandled rejection while waiting for the start
  await sleep(Math.max(0, startAt - Date.now()));
  const cacheBefore = await cpuSecondsOf(target.service.pid);
  const helpersBefore = await helperCpu();
  const oursBefore = await selfAndChildrenCpuSeconds();
  const systemBefore = await systemCpu();
  const started = performance.now();
  const pull = await pulls;
  const wall = (performance.now() - started) / 1000;
  const systemAfter = await systemCpu();
  const cacheCpu = (await cpuSecondsOf(target.service.pid)) - cacheBefore;
  const ours = (await selfAndChildrenCpuSeconds()) - oursBefore + (await helperCpu()) - helpersBefore;
  if (pull.lateMs > 0) log(`WARNING: a client process was ${pull.lateMs.toFixed(0)} ms late for the start`);
  const upstream = summarize(await readCounts(cache.counter, 30_000), image);
  const otherCores = Math.max(0, busyCores(systemBefore, systemAfter, cores) - (cacheCpu + ours) / wall);
  const failed = pull.clients - pull.succeeded;
  log(
    `${cache.name}: ${clients} × ${image.repository}: ${pull.seconds.toFixed(2)} s` +
      `${failed ? `, ${failed} FAILED (${pull.failures[0]})` : ''}; upstream ${upstream.requests} requests, ` +
      `${fixed(upstream.contentBytes / 1e6, 1)} MB (image ${fixed(image.totalBytes / 1e6, 1)} MB); ` +
      `clients ${pull.cpuSeconds.toFixed(2)} CPU s; other processes ${otherCores.toFixed(2)} cores`,
  );
  return { pull, upstream, cacheCpu, otherCores };
}

const skopeoPolicy = '{"default":[{"type":"insecureAcceptAnything"}]}';

/** `skopeo copy --all` from a fresh cache into a dir: folder; checks the index digest it wrote. */
async function skopeoCheck(plan: Plan, cache: Cache, image: BenchImage): Promise<void> {
  const { result } = await withFreshCaches([cache], 'skopeo', async (targets) => {
    const target = targets.get(cache)!;
    const folder = await mkdtemp(join(currentWorkDir(), `skopeo-${cache.name}-`));
    const policy = join(folder, 'policy.json');
    await writeFile(policy, skopeoPolicy);
    const destination = join(folder, 'image');
    try {
      await resetCounts(cache.counter);
      const started = performance.now();
      const copy = await run(
        'skopeo',
        [
          '--policy',
          policy,
          'copy',
          '--all',
          '--src-tls-verify=false',
          `docker://${new URL(target.base).host}/${image.repository}:${image.tag}`,
          `dir:${destination}`,
        ],
        { timeoutMs: plan.pullTimeoutMs },
      );
      const seconds = (performance.now() - started) / 1000;
      const upstream = summarize(await readCounts(cache.counter, 30_000), image);
      let ok = copy.code === 0;
      let detail = ok ? '' : `exit ${copy.code}: ${copy.stderr.trim().split('\n').slice(-2).join(' ')}`;
      if (ok) {
        const index = await readFile(join(destination, 'manifest.json'));
        const digest = `sha256:${createHash('sha256').update(index).digest('hex')}`;
        ok = digest === image.index.digest;
        detail = ok ? 'index digest unchanged' : `index digest ${digest}, upstream ${image.index.digest}`;
      }
      return { seconds, ok, detail, upstream };
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
  cache.figures.skopeo = result;
  log(
    `${cache.name}: skopeo copy --all: ${result.ok ? 'ok' : 'FAILED'} (${result.detail}), ${result.seconds.toFixed(2)} s`,
  );
}

function orderOf(caches: Cache[], round: number): Cache[] {
  return round % 2 === 0 ? caches : [...caches].reverse();
}

async function measure(
  plan: Plan,
  helpers: Helpers,
  caches: Cache[],
  image: BenchImage,
  large: BenchImage | undefined,
): Promise<void> {
  for (const cache of caches) await skopeoCheck(plan, cache, image);
  for (let round = 0; round < plan.runs; round++) {
    const load = loadavg();
    log(`run ${round + 1} of ${plan.runs} (load average ${load.map((l) => l.toFixed(2)).join(' ')})`);
    const figures = new Map(caches.map((cache): [Cache, RunFigures] => [cache, { load, warm: [] }]));
    await withFreshCaches(caches, `cold1-${round}`, async (targets) => {
      for (const cache of orderOf(caches, round)) {
        figures.get(cache)!.cold1 = await pullPhase(plan, helpers, cache, targets.get(cache)!, image, 1);
      }
    });
    const { peakRss } = await withFreshCaches(caches, `cold-${round}`, async (targets) => {
      for (const cache of orderOf(caches, round)) {
        figures.get(cache)!.cold = await pullPhase(
          plan,
          helpers,
          cache,
          targets.get(cache)!,
          image,
          plan.clients,
        );
      }
      for (let warm = 0; warm < plan.warmRounds; warm++) {
        for (const cache of orderOf(caches, round + warm + 1)) {
          figures
            .get(cache)!
            .warm.push(await pullPhase(plan, helpers, cache, targets.get(cache)!, image, plan.clients));
        }
      }
    });
    for (const cache of caches) {
      const run = figures.get(cache)!;
      run.peakRss = peakRss.get(cache);
      log(`${cache.name}: peak RSS ${fixed((run.peakRss ?? 0) / 1e6)} MB`);
      cache.figures.runs.push(run);
    }
  }
  if (!large) return;
  const phases = new Map<Cache, { cold?: Phase; warm?: Phase }>(caches.map((cache) => [cache, {}]));
  const { peakRss } = await withFreshCaches(caches, 'large', async (targets) => {
    for (const phase of ['cold', 'warm'] as const) {
      for (const cache of caches) {
        phases.get(cache)![phase] = await pullPhase(
          plan,
          helpers,
          cache,
          targets.get(cache)!,
          large,
          plan.largeClients,
        );
      }
    }
  });
  for (const cache of caches) {
    const { cold, warm } = phases.get(cache)!;
    cache.figures.large = { cold: cold!, warm: warm!, peakRss: peakRss.get(cache)! };
    log(
      `${cache.name}: peak RSS with the ${large.largestLayer / MiB} MiB layer: ${fixed(peakRss.get(cache)! / 1e6)} MB`,
    );
  }
}

async function distMtime(): Promise<number> {
  return (await stat(join(root, 'dist', 'cli', 'main.js')).catch(() => undefined))?.mtimeMs ?? 0;
}

/**
 * Checks the peers, and builds pullsafe with the launcher (which rebuilds dist/ when src/ changed) now,
 * outside every measurement. Returns the script the caches run.
 */
async function checkPeers(options: Options, names: CacheName[]): Promise<string> {
  if (!existsSync(distributionBinary)) {
    throw new Error(`${distributionBinary} not found (apt-get install -y docker-registry)`);
  }
  if ((await run('skopeo', ['--version'], { timeoutMs: 10_000 }).catch(() => undefined))?.code !== 0) {
    throw new Error('skopeo is required (apt-get install -y skopeo)');
  }
  if (!names.includes('pullsafe')) return options.pullsafeEntry;
  if (!existsSync(options.pullsafeEntry)) throw new Error(`${options.pullsafeEntry} not found`);
  if (/\.(ts|js)$/.test(options.pullsafeEntry)) return options.pullsafeEntry;
  log('building pullsafe (./pullsafe --version)');
  const built = await run(options.pullsafeEntry, ['--version'], { timeoutMs: 300_000, cwd: root });
  if (built.code !== 0) {
    throw new Error(`${options.pullsafeEntry} --version failed: ${built.stderr.slice(0, 500)}`);
  }
  return join(root, 'dist', 'cli', 'main.js');
}

async function printHeader(mode: string, names: CacheName[], pullsafeScript: string): Promise<Machine> {
  const machine = await describeMachine(root, undefined);
  const skopeoVersion = (await run('skopeo', ['--version'], { timeoutMs: 10_000 })).stdout.trim();
  const script = pullsafeScript.startsWith(`${root}/`) ? relative(root, pullsafeScript) : pullsafeScript;
  console.log(
    `# pullsafe's pull-through cache vs distribution's proxy mode (${mode} run, ${new Date().toISOString()})\n`,
  );
  console.log(
    [
      `CPU:          ${machine.cpu}, ${machine.cores} cores`,
      `Memory:       ${machine.memory}`,
      `Kernel:       ${machine.kernel}`,
      `Node:         ${machine.node}`,
      `Cache A:      ${machine.pullsafe}, ${
        names.includes('pullsafe')
          ? `run as node ${script} serve --proxy docker.io=http://127.0.0.1:PORT`
          : 'not measured (--only)'
      }`,
      `Cache B:      ${machine.distribution}, proxy.remoteurl: http://127.0.0.1:PORT`,
      `Upstream:     the same docker-registry, behind one counting proxy per cache (bench/lib/cache-counter.ts)`,
      `Clients:      bench/lib/cache-pull.ts (node:http, digests verified); ${skopeoVersion}`,
      `Load average: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} (1, 5, 15 min) at start`,
      '',
    ].join('\n'),
  );
  return machine;
}

/** The measured image, the warm-up image and (with --large) the large one, written to `work`. */
async function makeImages(work: string, plan: Plan, withLarge: boolean) {
  log('writing the image');
  const shape: ImageShape = {
    repository: 'library/demo',
    tag: 'v1',
    platforms,
    layerSizes: plan.layerSizes,
  };
  const image = await makeBenchImage(work, shape);
  const warmup = await makeBenchImage(work, {
    repository: 'library/warmup',
    tag: 'v1',
    platforms,
    layerSizes: [256 * 1024, 128 * 1024],
  });
  const large = withLarge
    ? await makeBenchImage(work, {
        repository: 'library/large',
        tag: 'v1',
        platforms: platforms.slice(0, 1),
        layerSizes: [plan.largeBytes, 8 * MiB, 2 * MiB],
      })
    : undefined;
  return { image, warmup, large };
}

/**
 * One counting proxy per cache in front of `upstream`, and how to start each cache behind its proxy (and
 * warm it up with `warmup`).
 */
async function startCounters(
  work: string,
  names: CacheName[],
  upstream: RunningTarget,
  plan: Plan,
  pullsafeScript: string,
  warmup: BenchImage,
): Promise<Cache[]> {
  const caches: Cache[] = [];
  for (const name of names) {
    const counter = await startCounter(work, name, upstream.base);
    keepRunning(counter);
    const remote = counter.base;
    caches.push({
      name,
      counter,
      figures: { runs: [] },
      start: async (folder) => {
        const target =
          name === 'distribution'
            ? await startDistributionCache(folder, remote)
            : await startPullsafeCache(root, folder, pullsafeScript, remote);
        keepRunning(target);
        await warmUp(plan, target, warmup);
        return target;
      },
    });
  }
  return caches;
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const base = options.quick ? quickPlan : fullPlan;
  const plan: Plan = {
    ...base,
    runs: options.runs ?? base.runs,
    clients: options.clients ?? base.clients,
    clientProcesses: options.clientProcesses ?? base.clientProcesses,
  };
  const deadline = guardRun(plan.deadlineMs + (options.large ? 15 * 60_000 : 0), 'servers');

  const names: CacheName[] = options.only ? [options.only] : ['distribution', 'pullsafe'];
  const pullsafeScript = await checkPeers(options, names);
  const builtAt = await distMtime();
  const mode = options.quick ? 'quick' : 'full';
  const machine = await printHeader(mode, names, pullsafeScript);

  const work = await makeWorkDir('pullsafe-bench-cache-');
  try {
    const { image, warmup, large } = await makeImages(work, plan, options.large);
    log('starting the upstream and seeding it');
    const upstream = await startUpstream(work);
    keepRunning(upstream);
    await pushBenchImage(upstream.base, image);
    if (large) await pushBenchImage(upstream.base, large);
    await pushBenchImage(upstream.base, warmup);

    const caches = await startCounters(work, names, upstream, plan, pullsafeScript, warmup);
    const helpers: Helpers = { upstream, counters: caches.map((cache) => cache.counter) };
    // A failure part-way still reports what was measured before it, marked incomplete.
    const failure = await measure(plan, helpers, caches, image, large).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    if (failure) console.log(`INCOMPLETE: the run stopped early: ${failure.message.split('\n')[0]}\n`);

    const figuresOf = (name: CacheName) => caches.find((cache) => cache.name === name)?.figures;
    if (pullsafeScript.startsWith(join(root, 'dist')) && (await distMtime()) !== builtAt) {
      console.log('WARNING: dist/ was rebuilt during the run (by someone else); rerun for clean figures.\n');
    }
    const missed = printReport(plan, image, large, figuresOf('distribution'), figuresOf('pullsafe'));
    if (options.json) {
      const json = { date: new Date().toISOString(), mode, machine, plan, image: describe(image), caches };
      await writeFile(
        options.json,
        `${JSON.stringify(json, (key, value) => (key === 'counter' || key === 'start' ? undefined : value), 2)}\n`,
      );
    }
    if (failure) throw failure;
    return options.strict && missed ? 2 : 0;
  } finally {
    await endRun(deadline);
  }
}

function describe(image: BenchImage) {
  return {
    repository: image.repository,
    tag: image.tag,
    index: image.index.digest,
    totalBytes: image.totalBytes,
    blobs: image.blobs.map(({ digest, size }) => ({ digest, size })),
  };
}

runMain(main);

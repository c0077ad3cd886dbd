/**
 * pullsafe against CNCF distribution (docker-registry 2.8) on 127.0.0.1, with the same data, one server
 * under load at a time. nginx with sendfile serving the same files is the loopback ceiling (reference).
 *
 *   node bench/registry.ts [--quick] [--sequential] [--no-nginx] [--json FILE] [--strict]
 *                          [--pullsafe-entry FILE]
 *
 * Figures: blob GET throughput (one big blob; 16 concurrent clients), manifest GET req/s (wrk, 64
 * keep-alive connections), push throughput (monolithic POST+PUT, 4 concurrent) and each server's peak
 * RSS, with PASS/FAIL against the targets. Progress goes to stderr, the report to stdout.
 *
 * --quick       smaller sizes and shorter runs (smoke test, about a minute)
 * --sequential  start each server only for its own measurements (default: all up, samples interleaved)
 * --no-nginx    skip the nginx reference
 * --json FILE   also write all figures as JSON
 * --strict      exit 2 if a target is missed
 * --pullsafe-entry FILE  how to run pullsafe: the ./pullsafe launcher (default, as users run it), or a script
 *                        run with plain node (src/cli/main.ts, dist/cli/main.js)
 *
 * See docs/benchmarks.md.
 */
import { endRun, guardRun, keepRunning, makeWorkDir, runMain, stop } from './lib/bench-run.ts';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  blobFromRange,
  copyRange,
  digestOf,
  imageOf,
  MiB,
  writeRandomFile,
  type BlobSource,
} from './lib/data.ts';
import { httpRequest, ociManifestType, putManifest, uploadBlob } from './lib/http.ts';
import {
  Measurement,
  newFigures,
  startRssSampler,
  stopRssSampler,
  type Data,
  type Plan,
  type Subject,
} from './lib/measure.ts';
import { run } from './lib/proc.ts';
import { describeMachine, machineLines } from './lib/report.ts';
import {
  distributionBinary,
  distributionBlobPath,
  startDistribution,
  startNginx,
  startPullsafe,
  type RunningTarget,
} from './lib/servers.ts';
import { printReport, type Results } from './lib/summary.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const fullPlan: Plan = {
  bigBytes: 1024 * MiB,
  singleRuns: 5,
  clients: 16,
  sliceBytes: 64 * MiB,
  concurrentRounds: 5,
  wrkConnections: 64,
  wrkSeconds: 10,
  wrkWarmupSeconds: 3,
  pushCount: 8,
  pushBytes: 64 * MiB,
  pushConcurrency: 4,
  pushRounds: 3,
  quietWaitMs: 120_000,
  deadlineMs: 45 * 60_000,
};

const quickPlan: Plan = {
  ...fullPlan,
  bigBytes: 256 * MiB,
  singleRuns: 3,
  sliceBytes: 16 * MiB,
  concurrentRounds: 3,
  wrkSeconds: 3,
  wrkWarmupSeconds: 1,
  pushBytes: 16 * MiB,
  quietWaitMs: 10_000,
  deadlineMs: 10 * 60_000,
};

const repo = 'bench/app';
const tag = 'v1';
const manifestLayers = 8;

function log(message: string): void {
  const time = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[${time}] ${message}\n`);
}

interface Options {
  quick: boolean;
  sequential: boolean;
  nginx: boolean;
  json?: string;
  strict: boolean;
  pullsafeEntry: string;
}

const usage =
  'usage: node bench/registry.ts [--quick] [--sequential] [--no-nginx] [--json FILE] [--strict] [--pullsafe-entry FILE]';

function parseArgs(argv: string[]): Options {
  const options: Options = {
    quick: false,
    sequential: false,
    nginx: true,
    strict: false,
    pullsafeEntry: join(root, 'pullsafe'),
  };
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
    else if (arg === '--sequential') options.sequential = true;
    else if (arg === '--no-nginx') options.nginx = false;
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

async function requireTool(command: string, args: string[]): Promise<void> {
  try {
    await run(command, args, { timeoutMs: 10_000 });
  } catch {
    throw new Error(`${command} is required (apt-get install -y ${command})`);
  }
}

function findNginx(): string | undefined {
  return ['/usr/sbin/nginx', '/usr/bin/nginx'].find((path) => existsSync(path));
}

/** One random file; the blobs are ranges of it, the push blobs copies of ranges (curl -T sends files). */
async function prepareData(work: string, plan: Plan): Promise<Data> {
  const file = join(work, 'random.bin');
  log(`writing ${plan.bigBytes / MiB} MiB of random bytes to ${file}`);
  await writeRandomFile(file, plan.bigBytes);
  const big = await blobFromRange(file, 0, plan.bigBytes);
  const slices: BlobSource[] = [];
  for (let i = 0; i < plan.clients; i++) {
    slices.push(await blobFromRange(file, i * plan.sliceBytes, plan.sliceBytes));
  }
  // Push blobs start off the slice grid, so their digests differ from everything already stored.
  const step = plan.bigBytes / 64;
  const pushes: BlobSource[][] = [];
  for (let round = 0; round < plan.pushRounds; round++) {
    const blobs: BlobSource[] = [];
    for (let i = 0; i < plan.pushCount; i++) {
      const offset = (round + 1) * step + i * plan.pushBytes;
      if (offset + plan.pushBytes > plan.bigBytes) throw new Error('push blobs do not fit in the data file');
      const range = await blobFromRange(file, offset, plan.pushBytes);
      blobs.push(await copyRange(range, join(work, `push-${round}-${i}.bin`)));
    }
    pushes.push(blobs);
  }
  const layers = slices.slice(0, manifestLayers);
  const { config, manifest: manifestBytes } = imageOf(layers);
  return { big, slices, pushes, config, manifest: { bytes: manifestBytes, digest: digestOf(manifestBytes) } };
}

async function seed(target: RunningTarget, data: Data): Promise<void> {
  log(`${target.name}: seeding ${repo} (config, ${data.slices.length} slices, the big blob, manifest)`);
  await uploadBlob(target.base, repo, data.config);
  for (const slice of data.slices) await uploadBlob(target.base, repo, slice);
  await uploadBlob(target.base, repo, data.big);
  await putManifest(target.base, repo, tag, data.manifest.bytes);
  const check = await httpRequest(`${target.base}/v2/${repo}/manifests/${tag}`, {
    method: 'GET',
    headers: { Accept: ociManifestType },
    timeoutMs: 10_000,
  });
  if (check.status !== 200 || !check.body.equals(data.manifest.bytes)) {
    throw new Error(`${target.name}: manifest GET answered ${check.status} with different bytes`);
  }
}

function registrySubject(name: 'distribution' | 'pullsafe', target: RunningTarget, data: Data): Subject {
  const blob = (digest: string): string => `${target.base}/v2/${repo}/blobs/${digest}`;
  return {
    name,
    target,
    figures: newFigures(),
    urls: {
      big: blob(data.big.digest),
      slices: data.slices.map((s) => blob(s.digest)),
      manifest: `${target.base}/v2/${repo}/manifests/${tag}`,
      base: target.base,
    },
  };
}

function nginxSubject(target: RunningTarget, data: Data): Subject {
  const file = (digest: string): string => `${target.base}${distributionBlobPath(digest)}`;
  return {
    name: 'nginx',
    target,
    figures: newFigures(),
    urls: {
      big: file(data.big.digest),
      slices: data.slices.map((s) => file(s.digest)),
      manifest: file(data.manifest.digest),
    },
  };
}

/** Starts a registry, seeds it and returns its subject with RSS sampling on. */
async function startRegistry(
  name: 'distribution' | 'pullsafe',
  start: () => Promise<RunningTarget>,
  data: Data,
): Promise<Subject> {
  log(`starting ${name}`);
  const target = await start();
  keepRunning(target);
  const subject = registrySubject(name, target, data);
  startRssSampler(subject);
  subject.sampler!.label = 'seed';
  await seed(target, data);
  return subject;
}

async function measure(subjects: Subject[], plan: Plan, data: Data): Promise<void> {
  await new Measurement(subjects, plan, data, log).run();
}

async function requirements(options: Options): Promise<void> {
  await requireTool('curl', ['--version']);
  await requireTool('wrk', ['-v']);
  if (!existsSync(distributionBinary)) {
    throw new Error(`${distributionBinary} not found (apt-get install -y docker-registry)`);
  }
  if (!existsSync(options.pullsafeEntry)) throw new Error(`${options.pullsafeEntry} not found`);
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const plan = options.quick ? quickPlan : fullPlan;
  const deadline = guardRun(plan.deadlineMs, 'servers');

  await requirements(options);
  const nginxBinary = options.nginx ? findNginx() : undefined;
  const machine = await describeMachine(root, nginxBinary);
  const entry = relative(root, options.pullsafeEntry);
  machine.pullsafe += /\.(ts|js)$/.test(entry)
    ? `, run as node ${entry} --log-level warn`
    : `, run as ./${entry} serve --log-level warn`;
  const mode = `${options.quick ? 'quick' : 'full'}, ${options.sequential ? 'sequential' : 'interleaved'}`;
  console.log(`# pullsafe vs distribution (${mode} run, ${new Date().toISOString()})\n`);
  for (const line of machineLines(machine)) console.log(line);
  console.log(
    `Load average: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (1, 5, 15 min) at start\n`,
  );

  const work = await makeWorkDir('pullsafe-bench-');
  const subjects: Subject[] = [];
  try {
    const data = await prepareData(work, plan);
    const startD = (): Promise<RunningTarget> => startDistribution(work);
    const startP = (): Promise<RunningTarget> => startPullsafe(root, work, options.pullsafeEntry);
    const startN = async (storage: string): Promise<Subject | undefined> => {
      if (!nginxBinary) return undefined;
      log('starting nginx (reference) on the files distribution stored');
      const target = await startNginx(nginxBinary, work, storage);
      if (!target) return undefined;
      keepRunning(target);
      return nginxSubject(target, data);
    };

    let distribution: Subject;
    let pullsafe: Subject;
    let nginx: Subject | undefined;
    if (options.sequential) {
      distribution = await startRegistry('distribution', startD, data);
      subjects.push(distribution);
      await measure([distribution], plan, data);
      stopRssSampler(distribution);
      await stop(distribution.target);
      nginx = await startN(distribution.target.storage);
      if (nginx) {
        subjects.push(nginx);
        await measure([nginx], plan, data);
        await stop(nginx.target);
      }
      pullsafe = await startRegistry('pullsafe', startP, data);
      subjects.push(pullsafe);
      await measure([pullsafe], plan, data);
      stopRssSampler(pullsafe);
    } else {
      distribution = await startRegistry('distribution', startD, data);
      subjects.push(distribution);
      distribution.sampler!.label = 'idle';
      pullsafe = await startRegistry('pullsafe', startP, data);
      subjects.push(pullsafe);
      nginx = await startN(distribution.target.storage);
      if (nginx) subjects.push(nginx);
      await measure(subjects, plan, data);
      stopRssSampler(distribution);
      stopRssSampler(pullsafe);
    }

    const results: Results = { distribution: distribution.figures, pullsafe: pullsafe.figures };
    if (nginx) results.nginx = nginx.figures;
    const failed = printReport(plan, data, results, !options.sequential);
    if (options.json) {
      const json = { date: new Date().toISOString(), mode, machine, plan, results };
      await writeFile(options.json, `${JSON.stringify(json, null, 2)}\n`);
    }
    return options.strict && failed ? 2 : 0;
  } finally {
    for (const subject of subjects) stopRssSampler(subject);
    await endRun(deadline);
  }
}

runMain(main);

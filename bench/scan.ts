/**
 * `pullsafe scan` against `grep -rnE` over the same generated tree, side by side (the trees are built by
 * bench/lib/scan-charts.ts and bench/lib/scan-trees.ts):
 *
 * - `--tree charts` (the default): a Helm charts repository of about 3,400 files and 74 MB, values files of
 *   100 KB, Go-templated manifests, CRDs of several MB;
 * - `--tree monorepo`: 30,000 small files shaped like a monorepo (`--files N`).
 *
 * Both write their output to a pipe that the benchmark reads (GNU grep writing to /dev/null stops at each
 * file's first match, which is not the work a person waiting for the output asks of it). Prints the wall
 * time of each run, the medians, their ratio, pullsafe's peak RSS, the load average before and after, and
 * checks that pullsafe found every reference the tree was generated with. Targets: within 3x grep's time,
 * peak RSS under 200 MB. A benchmark, not a test: nothing fails when the machine is slow.
 *
 *   node bench/scan.ts [--tree charts|monorepo] [--runs N] [--files N] [--charts N]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCharts } from './lib/scan-charts.ts';
import { generateMonorepo, type TreeSummary } from './lib/scan-trees.ts';

const args = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const index = args.indexOf(name);
  return index === -1 ? fallback : (args[index + 1] ?? fallback);
};
const tree = option('--tree', 'charts');
if (tree !== 'charts' && tree !== 'monorepo') throw new Error(`--tree charts|monorepo, not ${tree}`);
const runs = Number(option('--runs', '5'));
const fileCount = Number(option('--files', '30000'));
const chartCount = Number(option('--charts', '118'));
const root = fileURLToPath(new URL('..', import.meta.url));
const build = join(root, '.tmp', 'bench-dist');

/** The peak RSS of the pullsafe process, written to stderr as it exits (workers included). */
const rssHook = `data:text/javascript,process.on('exit',()=>process.stderr.write('\\nbench-max-rss-kb='+process.resourceUsage().maxRSS+'\\n'))`;

interface Run {
  seconds: number;
  stdout: string;
  rssMB?: number;
}

function timed(command: string, commandArgs: string[]): Run {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, commandArgs, {
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 1 << 30,
    encoding: 'utf8',
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0 && !(command === 'grep' && result.status === 1)) {
    throw new Error(`${command} failed (${result.status}): ${result.stderr}`);
  }
  const rss = /bench-max-rss-kb=(\d+)/.exec(result.stderr)?.[1];
  return { seconds, stdout: result.stdout, ...(rss ? { rssMB: Number(rss) / 1024 } : {}) };
}

const median = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const load = (): string =>
  loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');

console.error(`compiling into ${build}`);
const compile = spawnSync(
  process.execPath,
  [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', build],
  {
    cwd: root,
    stdio: 'inherit',
  },
);
const cli = join(build, 'cli/main.js');
if (!existsSync(cli)) throw new Error(`the build left no ${cli} (tsc exit ${compile.status})`);

const dir = await mkdtemp(join(tmpdir(), 'pullsafe-scan-bench-'));
try {
  console.error(`generating the ${tree} tree in ${dir}`);
  const summary: TreeSummary =
    tree === 'charts' ? await generateCharts(dir, chartCount) : await generateMonorepo(dir, fileCount);
  const keywords =
    tree === 'charts' ? 'FROM|image:|"image"|container:|repository:' : 'FROM|image:|"image"|container:';
  const grepArgs = ['-rnE', `(^|[[:space:]])(${keywords})`, dir];
  const pullsafeArgs = ['--import', rssHook, cli, 'scan', '--json', dir];
  // Warm the page cache for both, and check pullsafe's answer once.
  timed('grep', grepArgs);
  const check = JSON.parse(timed(process.execPath, pullsafeArgs).stdout) as { references: unknown[] };
  const loadBefore = load();
  const grepTimes: number[] = [];
  const pullsafeTimes: number[] = [];
  const rss: number[] = [];
  for (let run = 0; run < runs; run++) {
    grepTimes.push(timed('grep', grepArgs).seconds);
    const pullsafe = timed(process.execPath, pullsafeArgs);
    pullsafeTimes.push(pullsafe.seconds);
    if (pullsafe.rssMB !== undefined) rss.push(pullsafe.rssMB);
  }
  const loadAfter = load();
  const grepSeconds = median(grepTimes);
  const pullsafeSeconds = median(pullsafeTimes);
  const ratio = pullsafeSeconds / grepSeconds;
  const peak = Math.max(...rss);
  const machine = `${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}`;
  console.log(
    `# scan: pullsafe vs grep -rnE, ${tree} tree (${summary.files} files, ${(summary.bytes / 1e6).toFixed(1)} MB), median of ${runs}, ${new Date().toISOString()}\n`,
  );
  console.log(`machine: ${machine}; load average before ${loadBefore}, after ${loadAfter}\n`);
  console.log('| tool | seconds | runs |');
  console.log('| --- | ---: | --- |');
  const list = (times: number[]): string => times.map((time) => time.toFixed(3)).join(' / ');
  console.log(`| grep -rnE (keywords only, no parsing) | ${grepSeconds.toFixed(3)} | ${list(grepTimes)} |`);
  console.log(
    `| pullsafe scan --json (parsed, classified) | ${pullsafeSeconds.toFixed(3)} | ${list(pullsafeTimes)} |`,
  );
  console.log(`\npullsafe/grep: ${ratio.toFixed(2)}x (target within 3x): ${ratio <= 3 ? 'PASS' : 'FAIL'}`);
  console.log(
    `pullsafe peak RSS: ${peak.toFixed(0)} MB (target under 200 MB): ${peak < 200 ? 'PASS' : 'FAIL'}`,
  );
  const found = check.references.length;
  console.log(
    `references: ${found} found, ${summary.expectedReferences} generated: ${found === summary.expectedReferences ? 'all' : 'MISMATCH'}`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}

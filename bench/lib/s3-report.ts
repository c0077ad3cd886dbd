/** The report of bench/s3.ts: figures against issue 18's targets, then the S3 requests and CPU behind them. */
import { median } from './load.ts';
import { fixed, markdownTable, ratio, type Machine } from './report.ts';
import {
  byMethod,
  byOperation,
  formatCount,
  requestsOf,
  throughputPhases,
  type CountedOperation,
  type Plan,
  type RegistryFigures,
  type S3Tallies,
  type ThroughputPhase,
} from './s3-figures.ts';
import type { RegistryName } from './s3-servers.ts';

export interface Run {
  date: string;
  mode: 'quick' | 'full';
  machine: Machine;
  pullsafeCommand: string;
  plan: Plan;
  loadStart: number[];
  loadEnd: number[];
  /** Cores busy with other work in the second before each phase. */
  busyBefore: number[];
  registries: Record<RegistryName, RegistryFigures>;
}

const MiB = 1024 * 1024;
const rssLimit = 300e6;

function throughputLabel(phase: ThroughputPhase, plan: Plan): string {
  const big = `${plan.bigBytes / MiB} MiB`;
  const pushes = `${plan.pushCount} × ${plan.pushBytes / MiB} MiB, ${plan.pushConcurrency} at a time`;
  switch (phase) {
    case 'single':
      return `Blob GET, 1 × ${big}, 1 client (MB/s, median of ${plan.singleRuns})`;
    case 'concurrent':
      return `Blob GET, ${plan.clients} clients × ${big} at once (MB/s, median of ${plan.concurrentRounds})`;
    case 'monolithic':
      return `Push ${pushes}, POST + PUT (MB/s, median of ${plan.pushRounds})`;
    case 'streamed':
      return `Push ${pushes}, POST + PATCH + PUT (MB/s, median of ${plan.pushRounds})`;
  }
}

interface RequestRow {
  label: string;
  tallies: (figures: RegistryFigures) => S3Tallies | undefined;
  perOf: (figures: RegistryFigures) => number;
}

function requestRows(plan: Plan): RequestRow[] {
  const phase = (name: ThroughputPhase, label: string): RequestRow => ({
    label,
    tallies: (figures) => figures.phases[name]?.s3,
    perOf: (figures) => figures.phases[name]?.operations ?? Number.NaN,
  });
  const counted = (name: CountedOperation, label: string): RequestRow => ({
    label,
    tallies: (figures) => figures.counted[name],
    perOf: () => 1,
  });
  const layers = plan.layerBytes.map((bytes) => `${bytes / MiB}`).join(' + ');
  return [
    phase('single', 'per blob GET, 1 client'),
    phase('concurrent', `per blob GET, ${plan.clients} clients at once`),
    phase('monolithic', `per blob push, POST + PUT (${plan.pushBytes / MiB} MiB)`),
    phase('streamed', `per blob push, POST + PATCH + PUT (${plan.pushBytes / MiB} MiB)`),
    counted('pull-cold', `per image pull, first after a start (manifest, config, ${layers} MiB layers)`),
    counted('pull-warm', 'per image pull, again'),
    counted('push-image', 'per image push (HEAD, POST, PATCH, PUT per blob; manifest)'),
    counted(
      'push-chunked',
      `per blob push in ${plan.chunkBytes / MiB} MiB PATCHes (${plan.pushBytes / MiB} MiB)`,
    ),
  ];
}

interface Target {
  label: string;
  passed: boolean;
  detail: string;
}

function throughputSection(run: Run, targets: Target[]): string[] {
  const { distribution, pullsafe } = run.registries;
  const rows = throughputPhases.map((phase) => {
    const d = median(distribution.samples[phase]);
    const p = median(pullsafe.samples[phase]);
    const passed = Number.isFinite(d) && Number.isFinite(p) && p >= d;
    const label = throughputLabel(phase, run.plan);
    targets.push({ label, passed, detail: `≥ 1.0x (pullsafe/distribution ${ratio(p, d)})` });
    return [label, fixed(d), fixed(p), ratio(p, d), '≥ 1.0x', passed ? 'PASS' : 'FAIL'];
  });
  const dRss = distribution.peakRss;
  const pRss = pullsafe.peakRss;
  const rssPassed = pRss !== undefined && pRss < rssLimit;
  const rssLabel = 'Peak RSS of the registry process, VmHWM (MB)';
  targets.push({
    label: rssLabel,
    passed: rssPassed,
    detail: `pullsafe < 300 MB (${fixed((pRss ?? NaN) / 1e6)} MB)`,
  });
  rows.push([
    rssLabel,
    fixed((dRss ?? NaN) / 1e6),
    fixed((pRss ?? NaN) / 1e6),
    ratio(pRss, dRss),
    'pullsafe < 300 MB',
    rssPassed ? 'PASS' : 'FAIL',
  ]);
  return [
    '### Throughput and memory',
    '',
    markdownTable(['Figure', 'distribution', 'pullsafe', 'pullsafe/distribution', 'target', 'result'], rows, [
      false,
      true,
      true,
      true,
      false,
      false,
    ]),
    '',
    'MB = 10^6 bytes. A ratio above 1 favours pullsafe, except for RSS (lower is better).',
  ];
}

function requestSection(run: Run, targets: Target[]): string[] {
  const { distribution, pullsafe } = run.registries;
  const rows: string[][] = [];
  const details: string[][] = [];
  for (const row of requestRows(run.plan)) {
    const dTallies = row.tallies(distribution);
    const pTallies = row.tallies(pullsafe);
    if (!dTallies || !pTallies) continue;
    const dPer = row.perOf(distribution);
    const pPer = row.perOf(pullsafe);
    const d = requestsOf(dTallies) / dPer;
    const p = requestsOf(pTallies) / pPer;
    const passed = p <= d + 1e-9;
    const label = `S3 requests ${row.label}`;
    targets.push({
      label,
      passed,
      detail: `no more than distribution (${formatCount(p)} vs ${formatCount(d)})`,
    });
    rows.push([
      row.label,
      `${formatCount(d)} (${byMethod(dTallies, dPer)})`,
      `${formatCount(p)} (${byMethod(pTallies, pPer)})`,
      passed ? 'PASS' : 'FAIL',
    ]);
    details.push([row.label, 'distribution', byOperation(dTallies, dPer)]);
    details.push(['', 'pullsafe', byOperation(pTallies, pPer)]);
  }
  return [
    '### S3 requests per operation (counting proxies between each registry and s3rver)',
    '',
    markdownTable(['operation', 'distribution', 'pullsafe', 'pullsafe ≤ distribution'], rows),
    '',
    'By S3 operation (* = answered by the counting proxy, which s3rver lacks; a real request on S3):',
    '',
    markdownTable(['operation', 'registry', 'S3 requests by operation'], details),
  ];
}

function cpuSection(run: Run): string[] {
  const rows: string[][] = [];
  for (const figures of Object.values(run.registries)) {
    for (const phase of throughputPhases) {
      const stats = figures.phases[phase];
      if (!stats || stats.cpu.wall === 0) continue;
      const cores = (seconds: number): string => (seconds / stats.cpu.wall).toFixed(2);
      rows.push([
        figures.name,
        phase,
        stats.cpu.wall.toFixed(1),
        cores(stats.cpu.registry),
        cores(stats.cpu.s3rver),
        cores(stats.cpu.counter),
        cores(stats.cpu.clients),
        cores(stats.cpu.other),
        (stats.cpu.registry / (stats.bytes / 1e9)).toFixed(2),
      ]);
    }
  }
  return [
    '### CPU by process (cores busy on average over the phase)',
    '',
    markdownTable(
      ['registry', 'phase', 'wall (s)', 'registry', 's3rver', 'counter', 'clients', 'other', 'registry s/GB'],
      rows,
      [false, false, true, true, true, true, true, true, true],
    ),
  ];
}

function samplesSection(run: Run): string[] {
  const rows = Object.values(run.registries).map((figures) => [
    figures.name,
    ...throughputPhases.map((phase) => figures.samples[phase].map((v) => fixed(v)).join(' / ')),
  ]);
  const rss = Object.values(run.registries).map((figures) => [
    figures.name,
    ...['seed', 'warm-up', ...throughputPhases, 'idle'].map((label) =>
      fixed((figures.rssByPhase[label] ?? NaN) / 1e6),
    ),
  ]);
  return [
    '### Samples (MB/s) and RSS by phase (highest 50 ms sample, MB; idle = while the other was measured)',
    '',
    markdownTable(['registry', ...throughputPhases], rows),
    '',
    markdownTable(['registry', 'seed', 'warm-up', ...throughputPhases, 'idle'], rss, [
      false,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
    ]),
  ];
}

/** Prints the report; returns whether a target was missed. */
export function printReport(run: Run): boolean {
  const { machine } = run;
  const targets: Target[] = [];
  const lines = [
    `# S3 storage: pullsafe vs distribution (${run.mode} run, ${run.date})`,
    '',
    '```',
    `CPU:          ${machine.cpu}, ${machine.cores} cores`,
    `Kernel:       ${machine.kernel}`,
    `Node:         ${machine.node}`,
    `pullsafe:     ${machine.pullsafe}, run as ${run.pullsafeCommand} serve --storage s3://bench/pullsafe`,
    `distribution: ${machine.distribution}, S3 driver, rootdirectory /distribution`,
    `S3:           s3rver 3.7.1 on 127.0.0.1, one counting proxy per registry`,
    `Load average: ${run.loadStart.map((l) => l.toFixed(2)).join(' ')} at start, ` +
      `${run.loadEnd.map((l) => l.toFixed(2)).join(' ')} at the end (1, 5, 15 min)`,
    `Other work:   ${run.busyBefore.map((b) => b.toFixed(2)).join(' / ')} cores busy before each phase`,
    '```',
    '',
    ...throughputSection(run, targets),
    '',
    ...requestSection(run, targets),
    '',
    ...cpuSection(run),
    '',
    ...samplesSection(run),
    '',
    '### Targets',
    '',
    ...targets.map((t) => `${t.passed ? 'PASS' : 'FAIL'} ${t.label}: ${t.detail}`),
  ];
  console.log(lines.join('\n'));
  return targets.some((t) => !t.passed);
}

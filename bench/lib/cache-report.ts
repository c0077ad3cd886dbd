/**
 * The figures of bench/cache.ts and its report: upstream traffic sorted by kind, medians, the results
 * table with PASS/FAIL against the targets of issue 16, and the details behind them.
 */
import type { CounterReport } from './cache-counter.ts';
import type { BenchImage } from './cache-image.ts';
import type { PullReport } from './cache-pull.ts';
import { median } from './load.ts';
import { fixed, markdownTable } from './report.ts';

export const rssLimitMB = 300;
const MiB = 1024 * 1024;

/** Upstream traffic of one phase, as the counting proxy saw it. */
export interface Upstream {
  requests: number;
  /** Body bytes of manifest and blob GETs: the image content fetched. */
  contentBytes: number;
  /** Body bytes of everything else (GET /v2/, errors). */
  otherBytes: number;
  blobGets: number;
  blobHeads: number;
  /** GETs of the most-fetched blob. */
  maxGetsPerBlob: number;
  tagGets: number;
  tagHeads: number;
  digestManifestGets: number;
  digestManifestHeads: number;
  /** GETs of the most-fetched manifest (a GET of the tag counts for the index it names). */
  maxGetsPerManifest: number;
  pings: number;
  other: number;
  non2xx: number;
  upstreamErrors: number;
}

/** Sorts the counted paths into kinds; a GET of `image`'s tag counts as a GET of the index it names. */
export function summarize(report: CounterReport, image: BenchImage): Upstream {
  const up: Upstream = {
    requests: 0,
    contentBytes: 0,
    otherBytes: 0,
    blobGets: 0,
    blobHeads: 0,
    maxGetsPerBlob: 0,
    tagGets: 0,
    tagHeads: 0,
    digestManifestGets: 0,
    digestManifestHeads: 0,
    maxGetsPerManifest: 0,
    pings: 0,
    other: 0,
    non2xx: 0,
    upstreamErrors: report.upstreamErrors,
  };
  const manifestGets = new Map<string, number>();
  for (const path of report.paths) {
    up.requests += path.requests;
    for (const [status, n] of Object.entries(path.statuses)) if (!status.startsWith('2')) up.non2xx += n;
    const match = /^\/v2\/(.+)\/(blobs|manifests)\/([^/]+)$/.exec(path.path);
    const get = path.method === 'GET';
    const head = path.method === 'HEAD';
    if (match && (get || head)) {
      const [, repository = '', kind, reference = ''] = match;
      if (get) up.contentBytes += path.bytes;
      else up.otherBytes += path.bytes;
      if (kind === 'blobs') {
        if (get) {
          up.blobGets += path.requests;
          up.maxGetsPerBlob = Math.max(up.maxGetsPerBlob, path.requests);
        } else up.blobHeads += path.requests;
        continue;
      }
      const byDigest = reference.startsWith('sha256:');
      if (head) {
        if (byDigest) up.digestManifestHeads += path.requests;
        else up.tagHeads += path.requests;
        continue;
      }
      if (byDigest) up.digestManifestGets += path.requests;
      else up.tagGets += path.requests;
      const named = repository === image.repository && reference === image.tag;
      const key = `${repository}@${named ? image.index.digest : reference}`;
      manifestGets.set(key, (manifestGets.get(key) ?? 0) + path.requests);
    } else {
      up.otherBytes += path.bytes;
      if (path.path === '/v2/' || path.path === '/v2') up.pings += path.requests;
      else up.other += path.requests;
    }
  }
  up.maxGetsPerManifest = Math.max(0, ...manifestGets.values());
  return up;
}

/** One pull by one or many clients at once. */
export interface Phase {
  pull: PullReport;
  upstream: Upstream;
  /** CPU seconds of the cache process during the phase. */
  cacheCpu: number;
  /** Cores kept busy by processes outside the benchmark (machine busy minus ours), on average. */
  otherCores: number;
}

export interface RunFigures {
  load: number[];
  cold1?: Phase;
  cold?: Phase;
  /** The warm pulls that follow the cold one on the same cache. */
  warm: Phase[];
  /** VmHWM of the instance that served the cold and warm pulls by many clients, bytes. */
  peakRss?: number;
}

export interface CacheFigures {
  runs: RunFigures[];
  skopeo?: { seconds: number; ok: boolean; detail: string; upstream: Upstream };
  large?: { cold: Phase; warm: Phase; peakRss: number };
}

export interface ReportPlan {
  clients: number;
  largeClients: number;
}

type Kind = 'cold1' | 'cold' | 'warm';

interface Row {
  label: string;
  d: string;
  p: string;
  ratio: string;
  target?: { text: string; pass: boolean | undefined };
}

const mb = (bytes: number): number => bytes / 1e6;
const x = (value: number | undefined): string =>
  value === undefined || !Number.isFinite(value) ? '—' : `${value.toFixed(2)}x`;
const ok = (phase: Phase): boolean => phase.pull.succeeded === phase.pull.clients;
const rate = (phase: Phase): number => mb(phase.pull.bytes) / phase.pull.seconds;

function phasesOf(f: CacheFigures | undefined, kind: Kind): Phase[] {
  if (!f) return [];
  if (kind === 'warm') return f.runs.flatMap((run) => run.warm);
  return f.runs.flatMap((run) => (run[kind] ? [run[kind]] : []));
}

function medianOf(phases: Phase[], pick: (phase: Phase) => number): number | undefined {
  return phases.length ? median(phases.map(pick)) : undefined;
}

function sizeText(bytes: number): string {
  return bytes >= 1024 * MiB ? `${bytes / 1024 / MiB} GiB` : `${bytes / MiB} MiB`;
}

/** Prints the report to stdout; returns true if a target was missed. */
export function printReport(
  plan: ReportPlan,
  image: BenchImage,
  large: BenchImage | undefined,
  d: CacheFigures | undefined,
  p: CacheFigures | undefined,
): boolean {
  const c = plan.clients;
  const samples = (kind: Kind): string =>
    `median of ${Math.max(phasesOf(d, kind).length, phasesOf(p, kind).length)}`;
  const timeRow = (label: string, kind: Kind): Row => {
    const [dPhases, pPhases] = [phasesOf(d, kind), phasesOf(p, kind)];
    const dv = medianOf(dPhases, (phase) => phase.pull.seconds);
    const pv = medianOf(pPhases, (phase) => phase.pull.seconds);
    const ratio = dv !== undefined && pv !== undefined ? dv / pv : undefined;
    const failures = (phases: Phase[]): string => (phases.every(ok) ? '' : ' (failures)');
    return {
      label: `${label} (s, ${samples(kind)})`,
      d: fixed(dv, 2) + failures(dPhases),
      p: fixed(pv, 2) + failures(pPhases),
      ratio: x(ratio),
      target: { text: '≥ 1.0x', pass: ratio === undefined ? undefined : pPhases.every(ok) && ratio >= 1 },
    };
  };
  const colds = [phasesOf(d, 'cold'), phasesOf(p, 'cold')] as const;
  const bytes = colds.map((phases) => medianOf(phases, (phase) => phase.upstream.contentBytes));
  const exact =
    colds[1].length > 0 &&
    colds[1].every((phase) => ok(phase) && phase.upstream.contentBytes === image.totalBytes);
  const manifests = 1 + image.manifests.length;
  const perBlob = (phases: Phase[]): string => {
    const mean = medianOf(phases, (phase) => phase.upstream.blobGets / image.blobs.length);
    const max = medianOf(phases, (phase) => phase.upstream.maxGetsPerBlob);
    return mean === undefined ? '—' : `${fixed(mean, 1)} (max ${fixed(max)})`;
  };
  const perManifest = (phases: Phase[]): string => {
    const mean = medianOf(phases, (ph) => (ph.upstream.tagGets + ph.upstream.digestManifestGets) / manifests);
    const max = medianOf(phases, (phase) => phase.upstream.maxGetsPerManifest);
    return mean === undefined ? '—' : `${fixed(mean, 1)} (max ${fixed(max)})`;
  };
  const warmRates = [medianOf(phasesOf(d, 'warm'), rate), medianOf(phasesOf(p, 'warm'), rate)] as const;
  const warmRatio =
    warmRates[0] !== undefined && warmRates[1] !== undefined ? warmRates[1] / warmRates[0] : undefined;
  const rss = (f: CacheFigures | undefined): number | undefined =>
    f?.runs.length ? mb(Math.max(...f.runs.map((run) => run.peakRss ?? 0))) : undefined;
  const [dRss, pRss] = [rss(d), rss(p)];
  const rows: Row[] = [
    timeRow('Cold pull, 1 client', 'cold1'),
    timeRow(`Cold pull, ${c} concurrent clients`, 'cold'),
    {
      label: `Upstream bytes for the ${c} cold pulls (MB; the image is ${fixed(mb(image.totalBytes), 1)})`,
      d: fixed(bytes[0] === undefined ? undefined : mb(bytes[0]), 1),
      p: fixed(bytes[1] === undefined ? undefined : mb(bytes[1]), 1),
      ratio: `${x(bytes[0] === undefined ? undefined : bytes[0] / image.totalBytes)} / ${x(
        bytes[1] === undefined ? undefined : bytes[1] / image.totalBytes,
      )}`,
      target: { text: 'pullsafe 1.0x of the image', pass: p ? exact : undefined },
    },
    {
      label: `Upstream GETs per blob, ${c} cold pulls (mean, max)`,
      d: perBlob(colds[0]),
      p: perBlob(colds[1]),
      ratio: '',
    },
    {
      label: `Upstream GETs per manifest, ${c} cold pulls (mean, max)`,
      d: perManifest(colds[0]),
      p: perManifest(colds[1]),
      ratio: '',
    },
    timeRow(`Warm pull, ${c} concurrent clients`, 'warm'),
    {
      label: `Warm pull, ${c} concurrent clients (aggregate MB/s, ${samples('warm')})`,
      d: fixed(warmRates[0]),
      p: fixed(warmRates[1]),
      ratio: x(warmRatio),
    },
    {
      label: 'Peak RSS of the cache process, VmHWM (MB, highest of the runs)',
      d: fixed(dRss),
      p: fixed(pRss),
      ratio: x(dRss !== undefined && pRss !== undefined ? pRss / dRss : undefined),
    },
  ];
  if (large) {
    const times = (f: CacheFigures | undefined): string =>
      f?.large ? `${fixed(f.large.cold.pull.seconds, 1)} + ${fixed(f.large.warm.pull.seconds, 1)}` : '—';
    const fetched = (f: CacheFigures | undefined): string =>
      fixed(f?.large ? mb(f.large.cold.upstream.contentBytes) : undefined);
    const largeRss = (f: CacheFigures | undefined): number | undefined =>
      f?.large ? mb(f.large.peakRss) : undefined;
    const pLarge = p?.large;
    rows.push(
      {
        label: `--large: cold + warm pull, ${plan.largeClients} clients, ${sizeText(large.largestLayer)} layer (s)`,
        d: times(d),
        p: times(p),
        ratio: '',
      },
      {
        label: `--large: upstream bytes of the cold pull (MB; the image is ${fixed(mb(large.totalBytes))})`,
        d: fetched(d),
        p: fetched(p),
        ratio: '',
      },
      {
        label: '--large: peak RSS of the cache process, VmHWM (MB)',
        d: fixed(largeRss(d)),
        p: fixed(largeRss(p)),
        ratio: '',
        target: {
          text: `pullsafe < ${rssLimitMB} MB`,
          pass:
            pLarge === undefined
              ? undefined
              : ok(pLarge.cold) && ok(pLarge.warm) && mb(pLarge.peakRss) < rssLimitMB,
        },
      },
    );
  }

  const verdict = (row: Row): string =>
    !row.target ? '' : row.target.pass === undefined ? 'n/a' : row.target.pass ? 'PASS' : 'FAIL';
  console.log('## Results\n');
  console.log(
    markdownTable(
      ['Figure', 'distribution', 'pullsafe', 'ratio', 'target', 'result'],
      rows.map((row) => [row.label, row.d, row.p, row.ratio, row.target?.text ?? '', verdict(row)]),
      [false, true, true, true, false, false],
    ),
  );
  console.log(
    '\nMB = 10^6 bytes. ratio: for times, distribution / pullsafe; for throughput, pullsafe / distribution ' +
      '(above 1 favours pullsafe); for upstream bytes, each cache / the image size; for RSS, pullsafe / ' +
      'distribution.\n',
  );
  console.log('## Targets\n');
  const targets = rows.filter((row) => row.target);
  for (const row of targets) {
    console.log(`${verdict(row).padEnd(4)}  ${row.label}: ${row.target!.text} (${row.ratio || row.p})`);
  }
  if (!large) console.log('n/a   Peak RSS while serving multi-gigabyte layers: run with --large');
  const skopeoFailed = [d, p].some((f) => f?.skopeo !== undefined && !f.skopeo.ok);
  if (skopeoFailed) console.log('FAIL  skopeo copy --all through a cache (see below)');
  console.log('');

  printDetails(plan, image, d, p);
  return targets.some((row) => row.target!.pass === false) || (p?.skopeo !== undefined && !p.skopeo.ok);
}

function printDetails(
  plan: ReportPlan,
  image: BenchImage,
  d: CacheFigures | undefined,
  p: CacheFigures | undefined,
): void {
  const c = plan.clients;
  const named = [
    ['distribution', d],
    ['pullsafe', p],
  ] as const;
  console.log('## Runs\n');
  const seconds = (phase: Phase | undefined): string =>
    phase
      ? `${phase.pull.seconds.toFixed(2)}${ok(phase) ? '' : ` (${phase.pull.clients - phase.pull.succeeded} failed)`}`
      : '—';
  const runRows = named.flatMap(([name, f]) =>
    (f?.runs ?? []).map((run, i) => [
      String(i + 1),
      run.load.map((l) => l.toFixed(2)).join(' '),
      name,
      seconds(run.cold1),
      seconds(run.cold),
      run.warm.map(seconds).join(' / '),
      run.cold ? fixed(mb(run.cold.upstream.contentBytes), 1) : '—',
      run.cold ? String(run.cold.upstream.requests) : '—',
      run.warm.map((phase) => String(phase.upstream.requests)).join(' / '),
      [run.cold1, run.cold, ...run.warm]
        .map((phase) => (phase ? phase.otherCores.toFixed(2) : '—'))
        .join(' / '),
      fixed(run.peakRss === undefined ? undefined : mb(run.peakRss)),
    ]),
  );
  console.log(
    markdownTable(
      [
        'run',
        'load avg (1, 5, 15 min)',
        'cache',
        'cold 1 (s)',
        `cold ${c} (s)`,
        `warm ${c} (s)`,
        'upstream MB, cold',
        'upstream requests, cold',
        'upstream requests, warm',
        'other cores (cold 1 / cold / warm …)',
        'peak RSS MB',
      ],
      runRows,
      [false, false, false, true, true, false, true, true, false, false, true],
    ),
  );
  console.log('');

  console.log(
    `Upstream requests of the ${c} concurrent cold pulls and of the first warm pull (run 1 / run 2 / …):\n`,
  );
  const kinds: [string, (u: Upstream) => number][] = [
    ['GET blob', (u) => u.blobGets],
    ['HEAD blob', (u) => u.blobHeads],
    ['GET manifest by tag', (u) => u.tagGets],
    ['HEAD manifest by tag', (u) => u.tagHeads],
    ['GET manifest by digest', (u) => u.digestManifestGets],
    ['HEAD manifest by digest', (u) => u.digestManifestHeads],
    ['GET /v2/', (u) => u.pings],
    ['other', (u) => u.other],
    ['answered other than 2xx', (u) => u.non2xx],
    ['failed to reach the upstream', (u) => u.upstreamErrors],
  ];
  const series = (f: CacheFigures | undefined, pick: (u: Upstream) => number, warm: boolean): string =>
    f?.runs.length
      ? f.runs
          .map((run) => {
            const phase = warm ? run.warm[0] : run.cold;
            return phase ? String(pick(phase.upstream)) : '—';
          })
          .join(' / ')
      : '—';
  console.log(
    markdownTable(
      ['request', 'distribution, cold', 'pullsafe, cold', 'distribution, warm', 'pullsafe, warm'],
      kinds.map(([label, pick]) => [
        label,
        series(d, pick, false),
        series(p, pick, false),
        series(d, pick, true),
        series(p, pick, true),
      ]),
    ),
  );
  console.log(
    `\nThe image has ${image.blobs.length} blobs (${image.layers} layers, ${image.manifests.length} configs) ` +
      `and ${1 + image.manifests.length} manifests (the index and ${image.manifests.length} platform ` +
      `manifests); one complete pull is ${image.totalBytes.toLocaleString('en-US')} bytes.\n`,
  );

  const cpu = (f: CacheFigures | undefined, kind: Kind, pick: (phase: Phase) => number): string =>
    fixed(medianOf(phasesOf(f, kind), pick), 2);
  console.log('CPU seconds (median): of the cache process, and of the pulling clients\n');
  console.log(
    markdownTable(
      ['cache', 'cold 1', `cold ${c}`, `warm ${c}`, `clients, cold ${c}`, `clients, warm ${c}`],
      named.map(([name, f]) => [
        name,
        cpu(f, 'cold1', (phase) => phase.cacheCpu),
        cpu(f, 'cold', (phase) => phase.cacheCpu),
        cpu(f, 'warm', (phase) => phase.cacheCpu),
        cpu(f, 'cold', (phase) => phase.pull.cpuSeconds),
        cpu(f, 'warm', (phase) => phase.pull.cpuSeconds),
      ]),
      [false, true, true, true, true, true],
    ),
  );
  console.log('');

  console.log('Real client, once per cache on a fresh cache: skopeo copy --all docker://CACHE/… dir:…\n');
  console.log(
    markdownTable(
      ['cache', 'result', 'seconds', 'upstream requests', 'upstream MB'],
      named.flatMap(([name, f]) => {
        const s = f?.skopeo;
        if (!s) return [];
        return [
          [
            name,
            `${s.ok ? 'ok' : 'FAILED'}: ${s.detail}`,
            s.seconds.toFixed(2),
            String(s.upstream.requests),
            fixed(mb(s.upstream.contentBytes), 1),
          ],
        ];
      }),
    ),
  );
  console.log('');
}

/** The report: results table, PASS/FAIL per target, details and method notes. */
import { ociManifestType } from './http.ts';
import { median } from './load.ts';
import { otherLimit, quietLimit, sampleAttempts, type Data, type Figures, type Plan } from './measure.ts';
import { fixed, markdownTable, ratio } from './report.ts';

const MiB = 1024 * 1024;
export const rssLimitMB = 200;

interface Row {
  label: string;
  d?: number;
  p?: number;
  n?: number;
  target: { text: string; pass: boolean };
}

export interface Results {
  distribution: Figures;
  pullsafe: Figures;
  nginx?: Figures;
}

function layerCount(data: Data): number {
  return (JSON.parse(data.manifest.bytes.toString()) as { layers: unknown[] }).layers.length;
}

function size(bytes: number): string {
  return bytes >= 1024 * MiB ? `${bytes / 1024 / MiB} GiB` : `${bytes / MiB} MiB`;
}

/** Prints the report to stdout; returns true if a target was missed. */
export function printReport(plan: Plan, data: Data, results: Results, interleaved: boolean): boolean {
  const { distribution: d, pullsafe: p, nginx: n } = results;
  const mb = (bytes: number | undefined): number | undefined =>
    bytes === undefined ? undefined : bytes / 1e6;
  const atLeast = (factor: number, pv?: number, dv?: number): Row['target'] => ({
    text: `≥ ${factor.toFixed(1)}x`,
    pass: pv !== undefined && dv !== undefined && pv >= factor * dv,
  });
  const clean = (f: Figures): boolean =>
    f.wrk !== undefined && f.wrk.non2xx === 0 && f.wrk.socketErrors === 0;

  const single = [median(d.single), median(p.single), n ? median(n.single) : undefined];
  const concurrent = [median(d.concurrent), median(p.concurrent), n ? median(n.concurrent) : undefined];
  const rps = [d.wrk?.requestsPerSecond, p.wrk?.requestsPerSecond, n?.wrk?.requestsPerSecond];
  const push = [median(d.push), median(p.push)];
  const manifestTarget = atLeast(5, rps[1], rps[0]);
  if (!clean(d) || !clean(p)) manifestTarget.pass = false;
  const rows: Row[] = [
    {
      label: `Blob GET, 1 × ${size(plan.bigBytes)}, 1 client (MB/s, median of ${plan.singleRuns})`,
      d: single[0],
      p: single[1],
      n: single[2],
      target: atLeast(1, single[1], single[0]),
    },
    {
      label: `Blob GET, ${plan.clients} clients × ${size(plan.sliceBytes)} (aggregate MB/s, median of ${plan.concurrentRounds})`,
      d: concurrent[0],
      p: concurrent[1],
      n: concurrent[2],
      target: atLeast(1, concurrent[1], concurrent[0]),
    },
    {
      label: `Manifest GET, ${plan.wrkConnections} keep-alive conns (req/s, wrk ${plan.wrkSeconds} s)`,
      d: rps[0],
      p: rps[1],
      n: rps[2],
      target: manifestTarget,
    },
    {
      label: `Push, ${plan.pushCount} × ${size(plan.pushBytes)}, ${plan.pushConcurrency} concurrent (MB/s, median of ${plan.pushRounds})`,
      d: push[0],
      p: push[1],
      target: atLeast(1, push[1], push[0]),
    },
    {
      label: 'Peak RSS of the server process, VmHWM (MB)',
      d: mb(d.peakRss),
      p: mb(p.peakRss),
      target: { text: `pullsafe < ${rssLimitMB} MB`, pass: (mb(p.peakRss) ?? Infinity) < rssLimitMB },
    },
  ];

  const header = ['Figure', 'distribution', 'pullsafe', 'pullsafe/distribution', 'target', 'result'];
  if (n) header.push('nginx sendfile (ref)');
  const table = rows.map((row) => {
    const cells = [
      row.label,
      fixed(row.d),
      fixed(row.p),
      ratio(row.p, row.d),
      row.target.text,
      row.target.pass ? 'PASS' : 'FAIL',
    ];
    if (n) cells.push(fixed(row.n));
    return cells;
  });
  console.log('## Results\n');
  console.log(markdownTable(header, table, [false, true, true, true, false, false, true]));
  console.log('');
  console.log('MB = 10^6 bytes. A ratio above 1 favours pullsafe, except for RSS (lower is better).\n');

  console.log('## Targets\n');
  for (const row of rows) {
    console.log(
      `${row.target.pass ? 'PASS' : 'FAIL'}  ${row.label}: ${row.target.text} (pullsafe/distribution ${ratio(row.p, row.d)})`,
    );
  }
  console.log('');

  const named: [string, Figures | undefined][] = [
    ['distribution', d],
    ['pullsafe', p],
    ['nginx (ref)', n],
  ];
  const disturbed = named.flatMap(([name, f]) =>
    f
      ? Object.entries(f.phases)
          .filter(([, s]) => s.disturbed > 0)
          .map(([phase, s]) => `${name} ${phase} (${s.disturbed} of ${s.samples} samples)`)
      : [],
  );
  if (disturbed.length) {
    console.log(
      `WARNING: other processes were busy during: ${disturbed.join(', ')}. Rerun on a quiet machine.\n`,
    );
  }

  console.log('## Details\n');
  const runs = (values: number[]): string => (values.length ? values.map((v) => fixed(v)).join(' / ') : '—');
  console.log(
    markdownTable(
      ['server', 'GET 1 blob, runs (MB/s)', 'GET concurrent, runs (MB/s)', 'push, runs (MB/s)'],
      named.flatMap(([name, f]) => (f ? [[name, runs(f.single), runs(f.concurrent), runs(f.push)]] : [])),
    ),
  );
  console.log('');
  console.log(
    markdownTable(
      ['server', 'wrk requests', 'non-2xx', 'socket errors', 'latency avg', 'p50', 'p99'],
      named.flatMap(([name, f]) =>
        f?.wrk
          ? [
              [
                name,
                f.wrk.requests.toLocaleString('en-US'),
                String(f.wrk.non2xx),
                String(f.wrk.socketErrors),
                f.wrk.latencyAvg,
                f.wrk.latencyP50,
                f.wrk.latencyP99,
              ],
            ]
          : [],
      ),
    ),
  );
  console.log('');

  const phaseBytes: Record<string, number> = {
    single: data.big.size,
    concurrent: data.slices.reduce((sum, s) => sum + s.size, 0),
    push: plan.pushCount * plan.pushBytes,
  };
  const cpuRows: string[][] = [];
  for (const [name, f] of named) {
    if (!f) continue;
    for (const phase of ['single', 'concurrent', 'manifest', 'push']) {
      const s = f.phases[phase];
      if (!s) continue;
      const perUnit =
        phase === 'manifest'
          ? f.wrk
            ? `${((s.server / (f.wrk.requests || 1)) * 1e6).toFixed(0)} µs/req`
            : '—'
          : `${(s.server / ((phaseBytes[phase]! * s.samples) / 1e9)).toFixed(2)} s/GB`;
      cpuRows.push([
        name,
        phase,
        (s.server / s.wall).toFixed(2),
        (s.clients / s.wall).toFixed(2),
        (s.other / s.wall).toFixed(2),
        (s.steal / s.wall).toFixed(2),
        perUnit,
        `${s.samples} (${s.repeated} repeated)`,
      ]);
    }
  }
  console.log('CPU, in cores busy on average over the phase:\n');
  console.log(
    markdownTable(
      ['server', 'phase', 'server', 'clients', 'other', 'steal', 'server CPU per unit', 'samples'],
      cpuRows,
      [false, false, true, true, true, true, true, false],
    ),
  );
  console.log('');

  const labels = ['seed', 'warm-up', 'single', 'concurrent', 'manifest', 'push', 'idle'];
  console.log('RSS by phase (highest 50 ms sample, MB; idle = while another server was measured):\n');
  console.log(
    markdownTable(
      ['server', ...labels],
      [
        ['distribution', d],
        ['pullsafe', p],
      ].map(([name, f]) => [name as string, ...labels.map((l) => fixed(mb((f as Figures).rssByPhase[l])))]),
      [false, ...labels.map(() => true)],
    ),
  );
  console.log('');

  console.log(
    [
      'Method:',
      `- Each server has its own fresh storage, seeded with the same blobs through the API. ${
        interleaved
          ? 'All servers stay up, but only one is under load at a time: samples alternate between them (A B C, then C B A).'
          : 'Servers run one after the other (--sequential).'
      }`,
      `- Blob GETs: curl -s -o /dev/null, one process per download; the concurrent figure runs ${data.slices.length} curl processes at`,
      '  once, each on a different blob, and divides all bytes by the wall time from the first start to the last end.',
      '  One unrecorded warm-up download per server first.',
      `- Manifest GETs: wrk -t1 -c${plan.wrkConnections} -d${plan.wrkSeconds}s -H 'Accept: ${ociManifestType}' on the tag,`,
      `  after a ${plan.wrkWarmupSeconds} s warm-up run; the manifest is ${data.manifest.bytes.length} bytes (${layerCount(data)} layers). nginx serves the same bytes as a static file.`,
      '- Pushes: POST /blobs/uploads/ (node:http), then curl -T FILE -X PUT <location>?digest=..., new blobs to a new',
      '  repository each round.',
      '- CPU: server = user + system time of the server process (nginx: master and workers); clients = curl, wrk and',
      '  this script; other = the rest of the machine (user + system; irq/softirq, e.g. loopback packets, left out);',
      '  steal = time the hypervisor gave to other guests.',
      `- Before measuring, the script waits for the machine to be quiet (< ${quietLimit} cores busy). A GET sample during which`,
      `  other processes used > ${otherLimit} cores is discarded and repeated (at most ${sampleAttempts} attempts).`,
      '- Clients and server share the same cores; all data is in the page cache.',
    ].join('\n'),
  );
  return rows.some((row) => !row.target.pass);
}

/**
 * `node bench/sync.ts --profile`: where pullsafe sync's time goes, after the measured runs (never part of
 * the PASS/FAIL figures). Three views, each from extra runs into fresh targets:
 *   - a concurrency sweep (images × blobs), with the CPU of pullsafe and of both registries;
 *   - a timeline from `pullsafe sync --json` events: start-up, per image the time before the first blob
 *     starts (manifest round trips), moving blobs, and after the last blob (manifest PUTs), shutdown;
 *   - a V8 CPU profile of the sync process (main thread), self time by function and by category.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { median } from './load.ts';
import { fixed, markdownTable } from './report.ts';
import type { RunningTarget } from './servers.ts';
import type { Concurrency, ToolContext, ToolName, ToolRun } from './sync-tools.ts';

interface ProfileContext {
  ctx: ToolContext;
  source: RunningTarget;
  log: (message: string) => void;
  out: (text: string) => void;
  measure: (
    tool: ToolName,
    ctx: ToolContext,
    name: string,
  ) => Promise<ToolRun & { ok: boolean; problems: string[]; stored: { bytes: number }; repeated: number }>;
}

const sweep: Concurrency[] = [
  { images: 1, blobs: 1 },
  { images: 1, blobs: 4 },
  { images: 2, blobs: 4 },
  { images: 4, blobs: 8 },
  { images: 8, blobs: 16 },
  { images: 20, blobs: 32 },
];

interface Event {
  event: string;
  time: string;
  image?: string;
  source?: string;
  digest?: string;
  size?: number;
  type?: string;
}

function parseEvents(stdout: string): (Event & { t: number })[] {
  const events: (Event & { t: number })[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const event = JSON.parse(line) as Event;
      if (event.time) events.push({ ...event, t: Date.parse(event.time) });
    } catch {
      // not an event
    }
  }
  return events;
}

/** Reads the node flags the launcher uses (exec node FLAGS "$root/dist/cli/main.js"). */
async function launcherFlags(root: string): Promise<string[]> {
  const text = await readFile(join(root, 'pullsafe'), 'utf8');
  const match = /^exec node (.*?)\s*"\$root\/dist\/cli\/main\.js"/m.exec(text);
  return match?.[1]?.split(/\s+/).filter(Boolean) ?? [];
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function category(node: ProfileNode): string {
  const { functionName, url } = node.callFrame;
  if (functionName === '(idle)') return 'idle (waiting for I/O)';
  if (functionName === '(garbage collector)') return 'garbage collector';
  if (functionName === '(program)') return 'V8/native (program)';
  if (url.includes('/node_modules/undici/')) return 'undici (HTTP client)';
  if (url.includes('/dist/') || url.includes('/src/')) return 'pullsafe code';
  if (url.startsWith('node:')) return 'node internals (streams, net, crypto glue)';
  if (url === '') return 'native';
  return 'other JS';
}

function summarizeProfile(profile: CpuProfile): {
  total: number;
  categories: [string, number][];
  functions: [string, number][];
} {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<number, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    self.set(id, (self.get(id) ?? 0) + delta);
    total += delta;
  });
  const categories = new Map<string, number>();
  const functions = new Map<string, number>();
  for (const [id, time] of self) {
    const node = byId.get(id);
    if (!node) continue;
    categories.set(category(node), (categories.get(category(node)) ?? 0) + time);
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.replace(/^.*\/(node_modules\/[^/]+|dist|src)\//, '$1/');
    const key = `${functionName || '(anonymous)'} ${file ? `${file}:${lineNumber + 1}` : ''}`.trim();
    functions.set(key, (functions.get(key) ?? 0) + time);
  }
  const sorted = (map: Map<string, number>) => [...map.entries()].sort((a, b) => b[1] - a[1]);
  return { total, categories: sorted(categories), functions: sorted(functions).slice(0, 15) };
}

const s = (value: number | undefined, digits = 2): string => fixed(value, digits);

export async function runProfile(p: ProfileContext): Promise<void> {
  const { ctx, out, log } = p;
  out('');
  out('## Profile of pullsafe sync (extra runs, not part of the figures above)');
  out('');

  // 1. Concurrency sweep, and the reference copier (bench/lib/sync-pipe.ts) at the same settings.
  const rows: string[][] = [];
  const cores = availableParallelism();
  const flags = await launcherFlags(ctx.root);
  const dist = join(ctx.root, 'dist', 'cli', 'main.js');
  const runs: { tool: ToolName; concurrency: Concurrency; name: string; command?: string[] }[] = [
    ...sweep.map((concurrency) => ({ tool: 'pullsafe' as const, concurrency, name: 'pullsafe sync' })),
    {
      tool: 'pullsafe',
      concurrency: ctx.concurrency,
      name: 'pullsafe sync, plain node (no launcher flags)',
      command: [process.execPath, dist],
    },
    { tool: 'node-pipe', concurrency: ctx.concurrency, name: 'reference node:http pipe' },
    { tool: 'node-pipe', concurrency: { images: 1, blobs: 1 }, name: 'reference node:http pipe' },
    { tool: 'node-raw', concurrency: ctx.concurrency, name: 'reference raw-socket copier' },
  ];
  for (const { tool, concurrency, name, command } of runs) {
    log(`profile: ${name} with images ${concurrency.images}, blobs ${concurrency.blobs}`);
    const result = await p.measure(
      tool,
      { ...ctx, concurrency, ...(command ? { pullsafeCommand: command } : {}) },
      `profile-${tool}-${concurrency.images}x${concurrency.blobs}${command ? '-plain' : ''}`,
    );
    const all = result.cpu.tool + result.cpu.source + result.cpu.target + result.cpu.other + result.cpu.irq;
    rows.push([
      `${name}, ${concurrency.images} × ${concurrency.blobs}`,
      result.ok ? s(result.wallSeconds) : 'failed',
      s(result.cpu.tool),
      s(result.cpu.source),
      s(result.cpu.target),
      s(result.cpu.irq),
      s(result.cpu.other),
      s(all / result.wallSeconds),
      s(all / cores),
      String(result.repeated),
    ]);
  }
  out('Concurrency sweep and reference copier (one run each; images × blobs):');
  out('');
  out(
    markdownTable(
      [
        'run',
        'wall (s)',
        'client CPU (s)',
        'source CPU (s)',
        'target CPU (s)',
        'irq (s)',
        'other (s)',
        'cores busy',
        `all CPU / ${cores} cores (s)`,
        'repeated',
      ],
      rows,
      [false, true, true, true, true, true, true, true, true, true],
    ),
  );
  out('');
  out(
    'The reference copier (bench/lib/sync-pipe.ts) is the least a Node client does: node:http with keep-alive,',
  );
  out(
    'POST + GET piped through sha256 into a monolithic PUT per blob, then the manifests; no HEADs, retries or events.',
  );
  out(
    `"plain node" runs node dist/cli/main.js sync without the launcher's flags (${flags.join(' ') || 'none'}).`,
  );
  out('');

  // 2. Timeline from --json events.
  log('profile: pullsafe sync --json (timeline)');
  const timed = await p.measure('pullsafe', { ...ctx, pullsafeArgs: ['--json'] }, 'profile-timeline');
  const started = timed.startedAt;
  const ended = started + timed.wallSeconds * 1000;
  const events = parseEvents(timed.stdout);
  if (!timed.ok || events.length === 0) {
    out(`Timeline: run failed or no events (${timed.problems[0] ?? 'no output'})`);
  } else {
    const first = events[0]!.t;
    const last = events[events.length - 1]!.t;
    const perImage = new Map<
      string,
      { start?: number; firstBlob?: number; lastBlob?: number; end?: number }
    >();
    const entry = (label: string) => {
      let value = perImage.get(label);
      if (!value) perImage.set(label, (value = {}));
      return value;
    };
    const blobStarts = new Map<string, number>();
    const blobTimes: number[] = [];
    let inFlight = 0;
    let inFlightArea = 0;
    let previous = first;
    for (const e of events) {
      inFlightArea += inFlight * (e.t - previous);
      previous = e.t;
      const label = e.image ?? e.source ?? '';
      if (e.event === 'image-start') entry(label).start = e.t;
      else if (e.event === 'blob-start') {
        const image = entry(label);
        image.firstBlob ??= e.t;
        blobStarts.set(`${label} ${e.digest}`, e.t);
        inFlight++;
      } else if (e.event === 'blob-done') {
        entry(label).lastBlob = e.t;
        const start = blobStarts.get(`${label} ${e.digest}`);
        if (start !== undefined) blobTimes.push(e.t - start);
        inFlight--;
      } else if (e.event === 'image') entry(label).end = e.t;
    }
    const images = [...perImage.values()].filter((i) => i.start !== undefined && i.end !== undefined);
    const before = images.map((i) => (i.firstBlob ?? i.end!) - i.start!);
    const moving = images.map((i) => (i.lastBlob ?? i.start!) - (i.firstBlob ?? i.start!));
    const after = images.map((i) => i.end! - (i.lastBlob ?? i.start!));
    const total = images.map((i) => i.end! - i.start!);
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    const ms = (value: number | undefined) => fixed(value, 0);
    out(
      `Timeline of one run with --json (images ${ctx.concurrency.images}, blobs ${ctx.concurrency.blobs}); wall ${s(timed.wallSeconds)} s:`,
    );
    out('');
    out(
      markdownTable(
        ['phase', 'time'],
        [
          [
            'process start → first event (node start-up, loading, reading the file)',
            `${ms(first - started)} ms`,
          ],
          ['first event → last event (copying)', `${ms(last - first)} ms`],
          ['last event → process exit (closing connections, exit)', `${ms(ended - last)} ms`],
          [
            'per image: start → first blob starts (HEADs, index and manifest GETs), median / sum',
            `${ms(median(before))} / ${ms(sum(before))} ms`,
          ],
          [
            'per image: first blob starts → last blob done, median / sum',
            `${ms(median(moving))} / ${ms(sum(moving))} ms`,
          ],
          [
            'per image: last blob done → image done (manifest PUTs), median / sum',
            `${ms(median(after))} / ${ms(sum(after))} ms`,
          ],
          ['per image: whole image, median / max', `${ms(median(total))} / ${ms(Math.max(...total))} ms`],
          [
            'one blob: start → done, median / max',
            `${ms(median(blobTimes))} / ${ms(Math.max(...blobTimes))} ms`,
          ],
          ['blobs in flight, average over the copying phase', s(inFlightArea / Math.max(1, last - first))],
        ],
        [false, true],
      ),
    );
    out('');
    out('(Event times have millisecond resolution; the per-image phases overlap across images.)');
    out('');
  }

  // 3. CPU profile of the sync process.
  log('profile: pullsafe sync under node --cpu-prof');
  const dir = join(ctx.work, 'cpu-profile');
  await mkdir(dir, { recursive: true });
  const profiled = await p.measure(
    'pullsafe',
    {
      ...ctx,
      pullsafeCommand: [
        process.execPath,
        ...flags,
        '--cpu-prof',
        '--cpu-prof-dir',
        dir,
        join(ctx.root, 'dist', 'cli', 'main.js'),
      ],
    },
    'profile-cpu',
  );
  const file = (await readdir(dir)).find((name) => name.endsWith('.cpuprofile'));
  if (!profiled.ok || !file) {
    out(`CPU profile: run failed or no profile written (${profiled.problems[0] ?? 'no file'})`);
    return;
  }
  const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
  const summary = summarizeProfile(profile);
  const pct = (value: number) => `${((value / summary.total) * 100).toFixed(1)}%`;
  out(
    `CPU profile of the sync process's main thread (node ${flags.join(' ')} --cpu-prof dist/cli/main.js sync; wall ` +
      `${s(profiled.wallSeconds)} s, process CPU ${s(profiled.cpu.tool)} s, ${(summary.total / 1e6).toFixed(2)} s sampled):`,
  );
  out('');
  out(
    markdownTable(
      ['category', 'share of samples'],
      summary.categories.map(([name, time]) => [name, pct(time)]),
      [false, true],
    ),
  );
  out('');
  out(
    markdownTable(
      ['function (self time)', 'share'],
      summary.functions.map(([name, time]) => [name, pct(time)]),
      [false, true],
    ),
  );
  out('');
}

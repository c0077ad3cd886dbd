/**
 * pullsafe against CNCF distribution (docker-registry 2.8) under clients a registry meets on a bad day:
 * hundreds of keep-alive connections, hundreds of slow readers, and clients that hang up mid-transfer.
 * Same 50 MiB blob, one server under load at a time, on 127.0.0.1.
 *
 *   node bench/clients.ts [--quick] [--only SCENARIO] [--pullsafe-only] [--pullsafe-entry FILE] [--json FILE]
 *
 * Scenarios (each prints, per server: throughput or delivered bytes, the slowest answer to a probe GET
 * /v2/ during the load, peak resident memory, and whether the server still answered afterwards):
 *   keep-alive   wrk -t2 -c200 on the blob (every connection a full download, again and again)
 *   slow-200     200 connections each reading the blob at about 1 MiB/s
 *   slow-400     the same with 400
 *   hang-ups     rounds of wrk -c16 -d2s (ended with transfers in flight), curl --max-time cuts and raw
 *                sockets reset after 0 B to 8 MiB
 * --quick       shorter phases (about a minute in all)
 * --only NAME   one scenario; --pullsafe-only: no distribution (for iterating, not for figures)
 *
 * Targets (issue 12): pullsafe under 200 MB resident in every scenario, alive after every one.
 * See docs/benchmarks.md, section "Hostile and unlucky clients".
 */
import { spawn } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { httpRequest, uploadBlob } from './lib/http.ts';
import { killAllChildren, RssSampler, sleep, stopService } from './lib/proc.ts';
import { fixed, markdownTable, ratio } from './lib/report.ts';
import { startDistribution, startPullsafe, type RunningTarget } from './lib/servers.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;

interface Options {
  quick: boolean;
  entry: string;
  json: string | undefined;
  only: string | undefined;
  servers: ('pullsafe' | 'distribution')[];
}

interface Outcome {
  /** MB/s for keep-alive; MiB delivered for slow readers; rounds survived for hang-ups. */
  figure: number;
  probeMaxMs: number;
  peakRssMiB: number;
  alive: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    quick: false,
    entry: join(root, 'pullsafe'),
    json: undefined,
    only: undefined,
    servers: ['pullsafe', 'distribution'],
  };
  for (let index = 0; index < argv.length; index++) {
    const flag = argv[index];
    if (flag === '--quick') options.quick = true;
    else if (flag === '--pullsafe-entry') options.entry = resolve(argv[++index] ?? '');
    else if (flag === '--json') options.json = argv[++index];
    else if (flag === '--only') options.only = argv[++index];
    else if (flag === '--pullsafe-only') options.servers = ['pullsafe'];
    else throw new Error(`unknown flag ${flag}`);
  }
  return options;
}

function log(message: string): void {
  process.stderr.write(`[clients] ${message}\n`);
}

function runTool(command: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      resolveRun(out);
    });
  });
}

/** GET /v2/ every 250 ms while `during` runs; the slowest answer in ms (Infinity for no answer). */
async function probeWhile<T>(base: string, during: Promise<T>): Promise<{ result: T; maxMs: number }> {
  let maxMs = 0;
  let finished = false;
  const probes = (async () => {
    while (!finished) {
      const started = Date.now();
      try {
        const answer = await httpRequest(`${base}/v2/`, { method: 'GET', timeoutMs: 10_000 });
        maxMs = Math.max(maxMs, answer.status === 200 ? Date.now() - started : Infinity);
      } catch {
        maxMs = Infinity;
      }
      await sleep(250);
    }
  })();
  const result = await during;
  finished = true;
  await probes;
  return { result, maxMs };
}

async function alive(target: RunningTarget): Promise<boolean> {
  if (target.service.hasExited()) return false;
  try {
    return (await httpRequest(`${target.base}/v2/`, { method: 'GET', timeoutMs: 10_000 })).status === 200;
  } catch {
    return false;
  }
}

function address(base: string): { host: string; port: number } {
  const url = new URL(base);
  return { host: url.hostname, port: Number(url.port) };
}

/** `count` connections each reading the blob at about 1 MiB/s for `ms`; resolves with MiB delivered. */
async function slowReaders(base: string, path: string, count: number, ms: number): Promise<number> {
  const sockets: Socket[] = [];
  let delivered = 0;
  for (let index = 0; index < count; index++) {
    const socket = connect(address(base));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      delivered += chunk.length;
      socket.pause();
      setTimeout(() => socket.resume(), Math.max(1, Math.round((chunk.length / MiB) * 1000))).unref();
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${address(base).host}\r\n\r\n`);
    sockets.push(socket);
  }
  await sleep(ms);
  for (const socket of sockets) socket.destroy();
  return delivered / MiB;
}

function hangUp(base: string, path: string, readBytes: number): Promise<void> {
  return new Promise((done) => {
    const socket = connect(address(base));
    let read = 0;
    const cut = (): void => void socket.resetAndDestroy();
    const timer = setTimeout(cut, 3_000);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      done();
    });
    socket.on('connect', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${address(base).host}\r\n\r\n`);
      if (readBytes === 0) setImmediate(cut);
    });
    socket.on('data', (chunk: Buffer) => {
      read += chunk.length;
      if (read >= readBytes) cut();
    });
  });
}

async function scenario(name: string, target: RunningTarget, path: string, quick: boolean): Promise<Outcome> {
  const sampler = new RssSampler(target.service.pid, 50);
  const url = `${target.base}${path}`;
  const seconds = quick ? 4 : 10;
  let figure: number;
  let probeMaxMs: number;
  try {
    if (name === 'keep-alive') {
      const run = await probeWhile(
        target.base,
        runTool('wrk', ['-t2', '-c200', `-d${seconds}s`, '--timeout', '30s', url], (seconds + 40) * 1000),
      );
      probeMaxMs = run.maxMs;
      const transfer = /Transfer\/sec:\s+([\d.]+)([KMG]B)/.exec(run.result);
      const scale = { KB: 1 / 1024, MB: 1, GB: 1024 }[transfer?.[2] ?? 'MB'] ?? 1;
      figure = transfer ? Number(transfer[1]) * scale : 0;
    } else if (name === 'slow-200' || name === 'slow-400') {
      const count = name === 'slow-200' ? 200 : 400;
      const run = await probeWhile(target.base, slowReaders(target.base, path, count, seconds * 1000));
      probeMaxMs = run.maxMs;
      figure = run.result;
    } else {
      const rounds = quick ? 2 : 5;
      const run = await probeWhile(
        target.base,
        (async () => {
          let survived = 0;
          for (let round = 0; round < rounds; round++) {
            await runTool('wrk', ['-t2', '-c16', '-d2s', url], 60_000);
            await Promise.all(
              Array.from({ length: 16 }, (_, index) =>
                runTool(
                  'curl',
                  ['-s', '-o', '/dev/null', '--max-time', `0.0${(index % 9) + 1}`, url],
                  30_000,
                ),
              ),
            );
            await Promise.all(
              [0, 1, 4096, 65536, MiB, 8 * MiB].flatMap((bytes) =>
                [1, 2, 3, 4].map(() => hangUp(target.base, path, bytes)),
              ),
            );
            if (await alive(target)) survived++;
          }
          return survived;
        })(),
      );
      probeMaxMs = run.maxMs;
      figure = run.result;
    }
  } finally {
    sampler.stop();
  }
  const peak = Math.max(0, ...Object.values(sampler.peaks));
  return { figure, probeMaxMs, peakRssMiB: peak / MiB, alive: await alive(target) };
}

const scenarios = ['keep-alive', 'slow-200', 'slow-400', 'hang-ups'] as const;

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  for (const tool of ['wrk', 'curl', 'docker-registry']) {
    const found = await runTool('sh', ['-c', `command -v ${tool}`], 5_000);
    if (!found.trim()) throw new Error(`peer missing: ${tool} (apt-get install ${tool})`);
  }
  const work = await mkdtemp(join(tmpdir(), 'pullsafe-bench-clients-'));
  process.on('exit', () => {
    killAllChildren();
    rmSync(work, { recursive: true, force: true });
  });
  const blob = randomBytes(50 * MiB);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const path = `/v2/bench/clients/blobs/${digest}`;
  const results: Record<string, Record<string, Outcome>> = {};
  for (const server of options.servers) {
    for (const name of scenarios) {
      if (options.only !== undefined && name !== options.only) continue;
      // A fresh server per scenario: peaks and any damage belong to that scenario alone.
      const serverWork = await mkdtemp(join(work, `${server}-${name}-`));
      const target =
        server === 'pullsafe'
          ? await startPullsafe(root, serverWork, options.entry)
          : await startDistribution(serverWork);
      try {
        await uploadBlob(target.base, 'bench/clients', { bytes: blob, digest });
        log(`${server} ${name} (load ${loadavg()[0]!.toFixed(2)})`);
        (results[name] ??= {})[server] = await scenario(name, target, path, options.quick);
        const outcome = results[name][server]!;
        log(
          `  figure ${fixed(outcome.figure, 1)}, probe max ${fixed(outcome.probeMaxMs)} ms, peak RSS ${fixed(outcome.peakRssMiB)} MiB, alive ${outcome.alive}`,
        );
      } finally {
        await stopService(target.service);
      }
    }
  }

  const units: Record<(typeof scenarios)[number], string> = {
    'keep-alive': 'MB/s',
    'slow-200': 'MiB delivered',
    'slow-400': 'MiB delivered',
    'hang-ups': 'rounds survived',
  };
  const rows: string[][] = [];
  let missed = 0;
  for (const name of scenarios) {
    const ours = results[name]?.pullsafe;
    const theirs = results[name]?.distribution;
    if (!ours) continue;
    if (!ours.alive || ours.peakRssMiB >= 200) missed++;
    rows.push(
      [
        name,
        units[name],
        fixed(ours.figure, 1),
        fixed(theirs?.figure, 1),
        ratio(ours.figure, theirs?.figure),
      ],
      ['', 'slowest /v2/ probe (ms)', fixed(ours.probeMaxMs), fixed(theirs?.probeMaxMs), ''],
      ['', 'peak RSS (MiB)', fixed(ours.peakRssMiB), fixed(theirs?.peakRssMiB), ''],
      ['', 'alive after', String(ours.alive), theirs ? String(theirs.alive) : '—', ''],
    );
  }
  process.stdout.write(
    `${markdownTable(['scenario', 'figure', 'pullsafe', 'distribution', 'pullsafe / distribution'], rows, [false, false, true, true, true])}\n\n` +
      `Targets: pullsafe alive after every scenario and under 200 MiB resident: ${missed === 0 ? 'PASS' : `FAIL (${missed} missed)`}\n`,
  );
  if (options.json) await writeFile(options.json, JSON.stringify(results, null, 2));
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);

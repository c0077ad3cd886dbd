/**
 * The measured phases. Several servers may be up at once, but only one is ever under load: each sample
 * (one download, one round of concurrent downloads, one wrk run, one round of pushes) drives a single
 * server, and samples alternate between servers (A B, then B A) so that slow drifts of the machine's
 * speed affect all servers alike. Every sample records the CPU used by the server, by our clients and by
 * everything else; a GET sample disturbed by other processes is discarded and repeated.
 */
import { availableParallelism } from 'node:os';
import type { BlobSource } from './data.ts';
import { ociManifestType } from './http.ts';
import { concurrentGets, curlGet, mbps, pushAll, wrkGet, type WrkResult } from './load.ts';
import {
  busyCores,
  cpuSecondsOf,
  memoryOf,
  RssSampler,
  selfAndChildrenCpuSeconds,
  systemCpu,
  waitForQuiet,
} from './proc.ts';
import type { RunningTarget } from './servers.ts';

export type SubjectName = 'distribution' | 'pullsafe' | 'nginx';

export interface Plan {
  bigBytes: number;
  singleRuns: number;
  clients: number;
  sliceBytes: number;
  concurrentRounds: number;
  wrkConnections: number;
  wrkSeconds: number;
  wrkWarmupSeconds: number;
  pushCount: number;
  pushBytes: number;
  pushConcurrency: number;
  pushRounds: number;
  /** How long to wait for other work on the machine to stop before measuring. */
  quietWaitMs: number;
  deadlineMs: number;
}

export interface Data {
  big: BlobSource;
  slices: BlobSource[];
  /** pushes[round][i]: separate files, each a distinct blob. */
  pushes: BlobSource[][];
  config: { bytes: Buffer; digest: string };
  manifest: { bytes: Buffer; digest: string };
}

export interface Urls {
  big: string;
  slices: string[];
  manifest: string;
  /** Where pushes go; undefined for the static reference. */
  base?: string;
}

/** CPU accounting of one phase, summed over the samples kept. */
export interface PhaseStats {
  wall: number;
  /** CPU seconds of the server process (with its children, for nginx). */
  server: number;
  /** CPU seconds of this script and the clients it ran (curl, wrk). */
  clients: number;
  /** CPU seconds of everything else (user + system, machine-wide), i.e. noise. */
  other: number;
  /** CPU seconds the hypervisor gave to other guests. */
  steal: number;
  samples: number;
  /** Samples thrown away because other processes were busy, then repeated. */
  repeated: number;
  /** Samples kept although other processes were busy (after the last attempt, or for pushes). */
  disturbed: number;
}

export interface Figures {
  single: number[];
  concurrent: number[];
  wrk?: WrkResult;
  push: number[];
  peakRss?: number;
  phases: Record<string, PhaseStats>;
  /** Highest RSS sampled (every 50 ms) per phase, bytes; 'idle' while another server is measured. */
  rssByPhase: Record<string, number>;
}

export interface Subject {
  name: SubjectName;
  target: RunningTarget;
  urls: Urls;
  figures: Figures;
  sampler?: RssSampler;
}

export function newFigures(): Figures {
  return { single: [], concurrent: [], push: [], phases: {}, rssByPhase: {} };
}

export function startRssSampler(subject: Subject): void {
  subject.sampler = new RssSampler(subject.target.service.pid);
}

/** Stops the sampler and copies its per-phase peaks into the figures. */
export function stopRssSampler(subject: Subject): void {
  if (!subject.sampler) return;
  subject.sampler.stop();
  for (const [label, value] of Object.entries(subject.sampler.peaks)) {
    subject.figures.rssByPhase[label] = Math.max(subject.figures.rssByPhase[label] ?? 0, value);
  }
  subject.sampler = undefined;
}

export const otherLimit = 0.3;
export const quietLimit = 0.25;
export const sampleAttempts = 3;
const cores = availableParallelism();

export class Measurement {
  readonly subjects: Subject[];
  private readonly plan: Plan;
  private readonly data: Data;
  private readonly log: (message: string) => void;
  /** Cores busy in the last quiet check. */
  busyBefore: number[] = [];

  constructor(subjects: Subject[], plan: Plan, data: Data, log: (message: string) => void) {
    this.subjects = subjects;
    this.plan = plan;
    this.data = data;
    this.log = log;
  }

  /** Labels RSS samples: `phase` for the active server, 'idle' for the others. */
  private activate(active: Subject, phase: string): void {
    for (const subject of this.subjects) {
      if (subject.sampler) subject.sampler.label = subject === active ? phase : 'idle';
    }
  }

  async settle(): Promise<void> {
    const busy = await waitForQuiet(cores, this.plan.quietWaitMs, quietLimit, (cores) =>
      this.log(`machine busy (${cores.toFixed(2)} cores) with other work; waiting for it to settle`),
    );
    this.busyBefore.push(busy);
    if (busy >= quietLimit) this.log(`WARNING: measuring with ${busy.toFixed(2)} cores busy with other work`);
  }

  /** Runs one sample against `subject`, accounting CPU under `phase`; repeats disturbed GET samples. */
  private async sample<T>(
    subject: Subject,
    phase: string,
    repeatable: boolean,
    body: () => Promise<T>,
  ): Promise<T> {
    const stats = (subject.figures.phases[phase] ??= {
      wall: 0,
      server: 0,
      clients: 0,
      other: 0,
      steal: 0,
      samples: 0,
      repeated: 0,
      disturbed: 0,
    });
    const pid = subject.target.service.pid;
    for (let attempt = 1; ; attempt++) {
      this.activate(subject, phase);
      const serverBefore = await cpuSecondsOf(pid);
      const oursBefore = await selfAndChildrenCpuSeconds();
      const systemBefore = await systemCpu();
      const started = performance.now();
      const result = await body();
      const wall = (performance.now() - started) / 1000;
      const systemAfter = await systemCpu();
      const server = (await cpuSecondsOf(pid)) - serverBefore;
      const ours = (await selfAndChildrenCpuSeconds()) - oursBefore;
      const machine = busyCores(systemBefore, systemAfter, cores) * wall;
      const other = Math.max(0, machine - server - ours);
      const disturbed = other / wall > otherLimit;
      if (disturbed && repeatable && attempt < sampleAttempts) {
        stats.repeated++;
        this.log(
          `${subject.name} ${phase}: other processes used ${(other / wall).toFixed(2)} cores; repeating`,
        );
        await this.settle();
        continue;
      }
      if (disturbed) {
        stats.disturbed++;
        this.log(
          `${subject.name} ${phase}: WARNING: other processes used ${(other / wall).toFixed(2)} cores; kept`,
        );
      }
      stats.wall += wall;
      stats.server += server;
      stats.clients += ours;
      stats.other += other;
      stats.steal += busyCores(systemBefore, systemAfter, cores, 'steal') * wall;
      stats.samples++;
      return result;
    }
  }

  /** Alternating order: A B C, then C B A, ... */
  private order(round: number, subjects = this.subjects): Subject[] {
    return round % 2 === 0 ? subjects : [...subjects].reverse();
  }

  async run(): Promise<void> {
    const { plan, data } = this;
    const timeoutMs = 300_000;
    await this.settle();

    // Warm-up (JIT, connection paths): one slice from each server, not recorded.
    for (const subject of this.subjects) {
      this.activate(subject, 'warm-up');
      await curlGet(subject.urls.slices[0]!, data.slices[0]!.size, timeoutMs);
    }

    for (let run = 0; run < plan.singleRuns; run++) {
      for (const subject of this.order(run)) {
        const transfer = await this.sample(subject, 'single', true, () =>
          curlGet(subject.urls.big, data.big.size, timeoutMs),
        );
        subject.figures.single.push(mbps(transfer));
        this.log(`${subject.name}: GET 1 × ${data.big.size / MiB} MiB: ${fmt(mbps(transfer))} MB/s`);
      }
    }

    for (let round = 0; round < plan.concurrentRounds; round++) {
      for (const subject of this.order(round)) {
        const transfer = await this.sample(subject, 'concurrent', true, () =>
          concurrentGets(
            subject.urls.slices.map((url, i) => ({ url, bytes: data.slices[i]!.size })),
            timeoutMs,
          ),
        );
        subject.figures.concurrent.push(mbps(transfer));
        this.log(
          `${subject.name}: GET ${plan.clients} × ${plan.sliceBytes / MiB} MiB: ${fmt(mbps(transfer))} MB/s`,
        );
      }
    }

    for (const subject of this.subjects) {
      const accept = subject.name === 'nginx' ? '*/*' : ociManifestType;
      const wrk = (seconds: number): Promise<WrkResult> =>
        wrkGet(subject.urls.manifest, { connections: plan.wrkConnections, seconds, accept });
      this.activate(subject, 'warm-up');
      await wrk(plan.wrkWarmupSeconds);
      const result = await this.sample(subject, 'manifest', true, () => wrk(plan.wrkSeconds));
      subject.figures.wrk = result;
      this.log(
        `${subject.name}: manifest GET ${fmt(result.requestsPerSecond)} req/s, ${result.non2xx} non-2xx, ` +
          `${result.socketErrors} socket errors`,
      );
      if (result.non2xx > 0 || result.socketErrors > 0) {
        this.log(`${subject.name}: WARNING: wrk saw non-2xx responses or socket errors`);
      }
    }

    const pushers = this.subjects.filter((s) => s.urls.base !== undefined);
    for (let round = 0; round < plan.pushRounds; round++) {
      for (const subject of this.order(round, pushers)) {
        // Not repeatable: the blobs would already be stored.
        const transfer = await this.sample(subject, 'push', false, () =>
          pushAll(
            subject.urls.base!,
            `bench/push${round}`,
            data.pushes[round]!,
            plan.pushConcurrency,
            timeoutMs,
          ),
        );
        subject.figures.push.push(mbps(transfer));
        this.log(
          `${subject.name}: push ${plan.pushCount} × ${plan.pushBytes / MiB} MiB, ${plan.pushConcurrency} ` +
            `at a time: ${fmt(mbps(transfer))} MB/s`,
        );
      }
    }

    for (const subject of pushers) {
      const memory = await memoryOf(subject.target.service.pid);
      subject.figures.peakRss = memory.peakRss;
      this.log(`${subject.name}: peak RSS ${fmt(memory.peakRss / 1e6)} MB (now ${fmt(memory.rss / 1e6)} MB)`);
    }
  }
}

const MiB = 1024 * 1024;

function fmt(value: number): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: 0 });
}

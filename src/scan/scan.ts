/**
 * Scanning: walk the roots, run every extractor that claims a file, classify what they find.
 *
 * A large folder is scanned on several threads: the main thread lists the top folders, splits the tree into
 * units (a folder's own files, or a whole subtree), and works through them in order; worker threads join
 * once the scan has run for a while, taking batches of units. Each unit's result lands in its slot, so the
 * output is the same as a single-threaded walk, reference for reference and in the same order.
 */
import { performance } from 'node:perf_hooks';
import { statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { classify, type Classification } from './classify.ts';
import { parseReference } from '../reference/index.ts';
import { isSourceFile, sourceNeedles } from './cdk.ts';
import { allExtractors } from './extractors.ts';
import { defaultWorkerCount, releaseSpareWorkers, scanWorkerUrl, takeSpareWorker } from './worker-warmup.ts';
import type { Extractor, FoundReference } from './types.ts';
import {
  defaultMaxBytes,
  defaultMaxFiles,
  listFolder,
  readWalkedFile,
  walkFiles,
  walkFolder,
  type FileToRead,
  type FolderToWalk,
  type WalkOptions,
} from './walk.ts';

export interface ScannedReference extends FoundReference {
  /** The root the file was found under, as given. */
  root: string;
  /** The file's path on disk (for rewriting). */
  path: string;
  /** Absent when the reference could not be resolved or parsed. */
  classification?: Classification;
}

export interface ScanResult {
  references: ScannedReference[];
  filesScanned: number;
  filesRead: number;
  /** Worker threads that scanned part of the tree (0 for a scan done on the calling thread alone). */
  workersUsed: number;
}

export interface ScanOptions extends WalkOptions {
  /**
   * Worker threads that may help with a large scan: a number, or 'auto' (one fewer than the cores). Default 0.
   * Workers run the built-in extractors, so they are used only when `extractors` are built-in ones and no
   * custom `wanted` filter is given.
   */
  workers?: number | 'auto';
  /** How long the main thread scans alone before workers are started (default 40 ms): small scans never start one. */
  workersAfterMs?: number;
}

export async function scanPaths(
  roots: string[],
  extractors: Extractor[],
  options: ScanOptions = {},
): Promise<ScanResult> {
  const result: ScanResult = { references: [], filesScanned: 0, filesRead: 0, workersUsed: 0 };
  for (const root of roots) {
    if (options.wanted !== undefined || statSync(root).isFile()) {
      await scanSequentially(root, extractors, options, result);
      continue;
    }
    const maxFiles = options.maxFiles ?? defaultMaxFiles;
    const { units, workersUsed } = await scanUnits(root, extractors, options);
    result.workersUsed += workersUsed;
    // As in a single walk, the files after the first `maxFiles` of this root are left out.
    let visited = 0;
    units: for (const unit of units) {
      for (const file of unit.files) {
        if (visited + file.ordinal + 1 > maxFiles) break units;
        result.filesScanned++;
        if (file.read) result.filesRead++;
        for (const reference of file.references) result.references.push(reference);
      }
      visited += unit.visited;
    }
  }
  return result;
}

async function scanSequentially(
  root: string,
  extractors: Extractor[],
  options: WalkOptions,
  result: ScanResult,
): Promise<void> {
  for await (const file of walkFiles(root, { wanted: mayBeRead, needles: needlesFor, ...options })) {
    result.filesScanned++;
    const found = scanFile(root, file.path, file.relative, file.head, file.content, extractors);
    if (!found) continue;
    result.filesRead++;
    for (const reference of found) result.references.push(reference);
  }
}

/** The references in one file, or undefined when no extractor claims it. */
function scanFile(
  root: string,
  path: string,
  relative: string,
  head: string,
  content: string,
  extractors: Extractor[],
): ScannedReference[] | undefined {
  const claimed = extractors.filter((extractor) => extractor.matches(relative, head));
  if (claimed.length === 0) return undefined;
  const references: ScannedReference[] = [];
  const seen = new Set<number>();
  for (const extractor of claimed) {
    let found: FoundReference[];
    try {
      found = extractor.extract(relative, content);
    } catch {
      found = [];
    }
    for (const reference of found) {
      // Two extractors may claim one file (a CloudFormation template is also YAML): one report per place.
      if (seen.has(reference.offset)) continue;
      seen.add(reference.offset);
      // The extractor's objects are fresh and its own: they become the scanned references in place.
      const scanned = reference as ScannedReference;
      scanned.root = root;
      scanned.path = path;
      const classification = reference.unresolved
        ? undefined
        : classifyOnce(reference.resolved ?? reference.text, reference.codebuild === true);
      if (classification) scanned.classification = classification;
      // Every reference that is not classified says why: here, the text is not an image reference.
      else if (!reference.unresolved)
        scanned.unresolved = invalidReason(reference.resolved ?? reference.text);
      references.push(scanned);
    }
  }
  return references;
}

function invalidReason(text: string): string {
  try {
    parseReference(text);
    return 'is not an image reference pullsafe can read';
  } catch (error) {
    const why = (error as Error).message.replace(/^invalid image reference "[^"]*": /, '');
    return `is not a valid image reference: ${why}`;
  }
}

/**
 * Classifications by reference text. A tree names the same few base images over and over, and a
 * classification is plain data no caller changes, so one object serves every place that writes the text.
 */
const classified = new Map<string, Classification | undefined>();
const classifiedLimit = 50_000;

function classifyOnce(text: string, codebuild: boolean): Classification | undefined {
  const key = codebuild ? `codebuild:${text}` : text;
  if (classified.has(key)) return classified.get(key);
  if (classified.size >= classifiedLimit) classified.clear();
  const classification = classify(text, { codebuild });
  classified.set(key, classification);
  return classification;
}

/** Part of a tree: one folder's own files, or a whole subtree. Plain data, sent to workers as is. */
export type ScanUnit = { files: FileToRead[] } | { folder: FolderToWalk };

/** What a unit holds: the files it visited (read or not), and for each file scanned, what was found. */
export interface UnitResult {
  visited: number;
  /** `ordinal`: the file's position among the unit's visited files (for `maxFiles`). */
  files: { ordinal: number; read: boolean; references: ScannedReference[] }[];
}

/** Scans one unit on this thread (the worker module calls this too). */
export function scanUnit(
  root: string,
  unit: ScanUnit,
  extractors: Extractor[],
  maxBytes: number,
): UnitResult {
  const result: UnitResult = { visited: 0, files: [] };
  const files = 'files' in unit ? unit.files : walkFolder(unit.folder, mayBeRead);
  for (const file of files) {
    const ordinal = result.visited++;
    const walked = readWalkedFile(file.path, file.relative, maxBytes, needlesFor(file.relative));
    if (!walked) continue;
    const references = scanFile(root, walked.path, walked.relative, walked.head, walked.content, extractors);
    result.files.push({ ordinal, read: references !== undefined, references: references ?? [] });
  }
  return result;
}

/** A plan with this many units is a large scan. */
const largePlan = 64;

/** Units enough to share a tree between threads: the top folders are listed until there are this many subtrees. */
const targetSubtrees = 64;

function planUnits(root: string): ScanUnit[] {
  let plan: ScanUnit[] = [{ folder: { dir: root, base: '', groups: [] } }];
  for (let level = 0; level < 4; level++) {
    const subtrees = plan.filter((unit) => 'folder' in unit).length;
    if (subtrees === 0 || (level > 0 && subtrees >= targetSubtrees)) break;
    const expanded: ScanUnit[] = [];
    for (const unit of plan) {
      if (!('folder' in unit)) {
        expanded.push(unit);
        continue;
      }
      const listing = listFolder(unit.folder, mayBeRead);
      if (listing.files.length > 0) expanded.push({ files: listing.files });
      for (const folder of listing.folders) expanded.push({ folder });
    }
    plan = expanded;
  }
  return plan;
}

function workerCount(option: ScanOptions['workers']): number {
  if (option === 'auto') return defaultWorkerCount();
  return Math.max(0, Math.floor(option ?? 0));
}

/** Built-in extractors are known to workers by kind; anything else keeps the scan on this thread. */
function builtInKinds(extractors: Extractor[]): string[] | undefined {
  const kinds = extractors.map((extractor) => extractor.kind);
  const builtIn = extractors.every((extractor) => allExtractors.includes(extractor));
  return builtIn ? kinds : undefined;
}

export interface WorkerBatch {
  id: number;
  root: string;
  kinds: string[];
  maxBytes: number;
  units: ScanUnit[];
}

async function scanUnits(
  root: string,
  extractors: Extractor[],
  options: ScanOptions,
): Promise<{ units: UnitResult[]; workersUsed: number }> {
  const maxBytes = options.maxBytes ?? defaultMaxBytes;
  const plan = planUnits(root);
  const results: (UnitResult | undefined)[] = new Array<UnitResult | undefined>(plan.length);
  const kinds = builtInKinds(extractors);
  const workers = kinds ? workerCount(options.workers) : 0;
  const startAfter = options.workersAfterMs ?? 40;
  const started = performance.now();
  let next = 0;
  let pool: WorkerPool | undefined;
  let lastYield = started;
  // A tree split into many units is large: workers start at once (they take a while to load); others get
  // them only once the main thread has been busy for `startAfter`.
  let now = started;
  while (next < plan.length) {
    const large = plan.length >= largePlan || now - started >= startAfter;
    if (!pool && workers > 0 && large && plan.length - next >= 8) {
      pool = new WorkerPool(workers, () => {
        // Smaller batches as the end nears, so that no thread is left with a long tail.
        const count = Math.min(64, Math.max(1, Math.ceil((plan.length - next) / (8 * (workers + 1)))));
        const from = next;
        next = Math.min(plan.length, next + count);
        return { from, units: plan.slice(from, next) };
      });
      pool.start({ root, kinds: kinds!, maxBytes }, (from, unitResults) => {
        unitResults.forEach((unitResult, offset) => (results[from + offset] = unitResult));
      });
    }
    const index = next++;
    results[index] = scanUnit(root, plan[index]!, extractors, maxBytes);
    now = performance.now();
    if (pool && now - lastYield > 3) {
      // Let worker messages in: finished batches are stored and workers get their next batch.
      await new Promise((resolve) => setImmediate(resolve));
      lastYield = performance.now();
    }
  }
  if (pool) await pool.finish();
  releaseSpareWorkers();
  // Units a failed worker did not return are scanned here.
  const units = results.map((result, index) => result ?? scanUnit(root, plan[index]!, extractors, maxBytes));
  return { units, workersUsed: pool?.answered.size ?? 0 };
}

/** Worker threads fed batches of units; each worker keeps two batches in hand so it never waits for the main thread. */
class WorkerPool {
  private readonly size: number;
  private readonly take: () => { from: number; units: ScanUnit[] };
  private readonly workers: Worker[] = [];
  private readonly inFlight = new Map<number, { worker: Worker; from: number }>();
  private batchId = 0;
  private settled: (() => void) | undefined;
  /** The workers that returned results. */
  readonly answered = new Set<Worker>();

  constructor(size: number, take: () => { from: number; units: ScanUnit[] }) {
    this.size = size;
    this.take = take;
  }

  start(
    job: { root: string; kinds: string[]; maxBytes: number },
    store: (from: number, results: UnitResult[]) => void,
  ): void {
    for (let n = 0; n < this.size; n++) {
      let worker: Worker;
      try {
        worker = takeSpareWorker() ?? new Worker(scanWorkerUrl());
      } catch {
        continue;
      }
      this.workers.push(worker);
      const send = (): void => {
        const { from, units } = this.take();
        if (units.length === 0) return;
        const id = this.batchId++;
        this.inFlight.set(id, { worker, from });
        const batch: WorkerBatch = { id, ...job, units };
        worker.postMessage(batch);
      };
      worker.on('message', (message: { id: number; results: string }) => {
        const batch = this.inFlight.get(message.id);
        this.inFlight.delete(message.id);
        if (batch) store(batch.from, JSON.parse(message.results) as UnitResult[]);
        this.answered.add(worker);
        send();
        this.checkSettled();
      });
      const fail = (): void => {
        // Its batches stay unanswered: the caller scans those units itself.
        for (const [id, batch] of this.inFlight) if (batch.worker === worker) this.inFlight.delete(id);
        this.checkSettled();
      };
      worker.on('error', fail);
      worker.on('exit', fail);
      send();
      send();
    }
  }

  private checkSettled(): void {
    if (this.inFlight.size === 0) this.settled?.();
  }

  /** Waits for every batch in flight, then stops the workers. */
  async finish(): Promise<void> {
    if (this.inFlight.size > 0) await new Promise<void>((resolve) => (this.settled = resolve));
    for (const worker of this.workers) {
      worker.removeAllListeners();
      void worker.terminate();
    }
  }
}

/**
 * Every format an extractor reads has one of these names, is source code (CDK apps) or has no extension
 * (Kubernetes manifests are found by content); nothing else is opened.
 */
const readableNames =
  /(?:^|\/)(?:[^/]*dockerfile[^/]*|containerfile[^/]*|[^/]*\.(?:ya?ml|json|tf|template)|[^/.]+)$/i;

/**
 * JSON files whose well-known names say what they are (package manifests, lock files, compiler and linter
 * settings): never a task definition or a template, and common enough in monorepos to be worth not opening.
 */
const knownOtherJson =
  /(?:^|\/)(?:package(?:-lock)?|composer(?:\.lock)?|tsconfig[^/]*|jsconfig|\.eslintrc|\.babelrc|\.prettierrc|lerna|nx|turbo|tslint|angular)\.json$/i;

export function mayBeRead(relative: string): boolean {
  return (readableNames.test(relative) && !knownOtherJson.test(relative)) || isSourceFile(relative);
}

const sourceNeedleBytes = sourceNeedles.map((needle) => Buffer.from(needle));
const manifestNeedleBytes = [Buffer.from('apiVersion')];

/**
 * The cheap look at a file's bytes before it is decoded: source code must name a CDK image API, and a file
 * without an extension (other than a Dockerfile) must say `apiVersion`, or it is not read further.
 */
export function needlesFor(relative: string): readonly Buffer[] | undefined {
  if (isSourceFile(relative)) return sourceNeedleBytes;
  const base = relative.slice(relative.lastIndexOf('/') + 1);
  if (!base.includes('.') && !/dockerfile|containerfile/i.test(base)) return manifestNeedleBytes;
  return undefined;
}

export type RiskClass = 'docker-hub' | 'floating' | 'unpinned' | 'unresolved' | 'any';

/** Risks of pulling: a reference of kind `built` names what a build produces, and carries none but `any`. */
export function hasRisk(reference: ScannedReference, risk: RiskClass): boolean {
  const classification = reference.classification;
  if (reference.kind === 'built' && risk !== 'any') return false;
  switch (risk) {
    case 'any':
      return true;
    case 'unresolved':
      return classification === undefined;
    case 'docker-hub':
      return classification?.registryKind === 'docker-hub';
    case 'floating':
      return classification?.floating === true;
    case 'unpinned':
      return classification !== undefined && !classification.pinned;
  }
}

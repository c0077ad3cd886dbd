/**
 * The files a scan reads: every file under the given roots, minus what `.gitignore` files exclude (read
 * per folder and matched as git matches them, by the `ignore` package), `.git`, `node_modules`, binary files
 * (a NUL byte in the first 8 KiB) and files over `maxBytes`. Paths come back relative to their root,
 * `/`-separated, in a stable order.
 *
 * The I/O is synchronous on purpose: a scan is a batch job in its own process, and a thread-pool round trip
 * per open, stat, read and close made it ten times slower than grep over a large tree.
 */
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import ignore, { type Ignore } from 'ignore';

export interface WalkOptions {
  maxBytes?: number;
  /** Bound on files visited, against runaway trees. */
  maxFiles?: number;
  /** Files whose path (relative, `/`-separated) no reader wants are skipped without being opened. */
  wanted?: (relative: string) => boolean;
  /**
   * Strings one of which a file must hold to be worth decoding (undefined: every file is). A file without
   * any is skipped as a binary file is, after one read of its bytes.
   */
  needles?: (relative: string) => readonly Buffer[] | undefined;
}

export interface WalkedFile {
  /** Absolute path. */
  path: string;
  /** Relative to the root, `/`-separated. */
  relative: string;
  /** The first 4 KiB, for extractors that decide by content. */
  head: string;
  /** The whole file as UTF-8 (files are small: at most `maxBytes`). */
  content: string;
}

/**
 * The patterns of one `.gitignore`, and the folder (relative to the root) they apply under. Plain text, so
 * that it can be sent to a worker; each thread compiles it once (`matcherFor`).
 */
export interface IgnoreGroup {
  base: string;
  patterns: string;
  /**
   * Folders (relative to `base`) these patterns exclude but a deeper `.gitignore` re-includes. Inside them
   * git matches each path against the patterns on its own, without the exclusion of the folder.
   */
  reincluded: string[];
}

/** A folder to walk, with the `.gitignore` rules of its ancestors. Plain data: it can be sent to a worker. */
export interface FolderToWalk {
  dir: string;
  /** The folder relative to the root, `/`-separated; empty for the root. */
  base: string;
  groups: IgnoreGroup[];
}

/** A file the walk visits: absolute path and path relative to the root. */
export interface FileToRead {
  path: string;
  relative: string;
}

const alwaysSkipped = new Set(['.git', 'node_modules', '.hg', '.svn']);

export const defaultMaxBytes = 2 * 1024 * 1024;
export const defaultMaxFiles = 1_000_000;

// eslint-disable-next-line @typescript-eslint/require-await -- reads synchronously (faster for many small files) behind the async iteration scan consumes
export async function* walkFiles(root: string, options: WalkOptions = {}): AsyncGenerator<WalkedFile> {
  const maxBytes = options.maxBytes ?? defaultMaxBytes;
  const maxFiles = options.maxFiles ?? defaultMaxFiles;
  const wanted = options.wanted ?? (() => true);
  const needles = options.needles ?? (() => undefined);
  let visited = 0;
  const info = statSync(root);
  if (info.isFile()) {
    const name = root.split(sep).pop() ?? root;
    const file = wanted(name) ? readWalkedFile(root, name, maxBytes, needles(name)) : undefined;
    if (file) yield file;
    return;
  }
  for (const entry of walkFolder({ dir: root, base: '', groups: [] }, wanted)) {
    if (++visited > maxFiles) return;
    const file = readWalkedFile(entry.path, entry.relative, maxBytes, needles(entry.relative));
    if (file) yield file;
  }
}

/**
 * Every wanted file under a folder, in walk order: a folder's own files first (in descending name order),
 * then each subfolder's files, subfolders in ascending name order. The order is part of the output contract
 * (references are reported in it), and a folder's part of it depends only on that folder, so subtrees can
 * be walked separately and their results concatenated.
 */
export function* walkFolder(
  start: FolderToWalk,
  wanted: (relative: string) => boolean,
): Generator<FileToRead> {
  const stack: FolderToWalk[] = [start];
  while (stack.length > 0) {
    const listing = listFolder(stack.pop()!, wanted);
    yield* listing.files;
    for (let index = listing.folders.length - 1; index >= 0; index--) stack.push(listing.folders[index]!);
  }
}

/** One folder: its wanted files (in walk order) and its subfolders (in the order they are walked). */
export function listFolder(
  folder: FolderToWalk,
  wanted: (relative: string) => boolean,
): { files: FileToRead[]; folders: FolderToWalk[] } {
  const { dir, base, groups } = folder;
  const files: FileToRead[] = [];
  const folders: FolderToWalk[] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return { files, folders };
  }
  const own = entries.some((entry) => entry.name === '.gitignore')
    ? readIgnoreFile(join(dir, '.gitignore'))
    : undefined;
  const active = own === undefined ? groups : [...groups, { base, patterns: own, reincluded: [] }];
  entries.sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
  // Below the root, folder paths are already normalised: plain concatenation gives what `join` would.
  const pathOf = base === '' ? (name: string) => join(dir, name) : (name: string) => dir + sep + name;
  for (const entry of entries) {
    const name = entry.name;
    if (alwaysSkipped.has(name)) continue;
    const rel = base ? `${base}/${name}` : name;
    if (entry.isDirectory()) {
      if (!ignored(active, rel, true)) {
        folders.push({ dir: pathOf(name), base: rel, groups: reincludeIn(active, rel) });
      }
      continue;
    }
    if (!entry.isFile() || !wanted(rel) || ignored(active, rel, false)) continue;
    files.push({ path: pathOf(name), relative: rel });
  }
  folders.reverse();
  return { files, folders };
}

/** Most files a scan reads are small: they are read into this buffer, which is reused. */
const sharedBuffer = Buffer.allocUnsafe(64 * 1024);

/**
 * One open and reads until the end: binary check, head and content together. Undefined for files that
 * cannot be read, are larger than `maxBytes` (read no further than 64 KiB), have a NUL byte in their first
 * 8 KiB, or hold none of `needles` (when given).
 */
export function readWalkedFile(
  path: string,
  rel: string,
  maxBytes: number,
  needles?: readonly Buffer[],
): WalkedFile | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    let buffer = sharedBuffer;
    let filled = 0;
    for (;;) {
      if (filled === buffer.length) {
        // A large file: its size says whether it is worth reading on (most files never get here, and
        // are not asked). One byte more than the size, so that the next short read ends the loop.
        const size = fstatSync(fd).size;
        if (filled > maxBytes || size > maxBytes) return undefined;
        const larger = Buffer.allocUnsafe(Math.min(Math.max(size + 1, buffer.length * 2), maxBytes + 1));
        buffer.copy(larger, 0, 0, filled);
        buffer = larger;
      }
      const wanted = buffer.length - filled;
      const bytesRead = readSync(fd, buffer, filled, wanted, null);
      filled += bytesRead;
      // A regular file answers short only at its end: no second read just to see 0.
      if (bytesRead < wanted) break;
    }
    if (filled > maxBytes) return undefined;
    if (needles) {
      const bytes = buffer.subarray(0, filled);
      if (!needles.some((needle) => bytes.includes(needle))) return undefined;
    }
    const content = buffer.toString('utf8', 0, filled);
    // A NUL byte decodes to U+0000 and nothing else does: only then is the byte-exact check needed.
    if (content.includes('\0') && buffer.subarray(0, Math.min(filled, 8192)).includes(0)) return undefined;
    return { path, relative: rel, head: content.slice(0, 4096), content };
  } finally {
    closeSync(fd);
  }
}

/** The text of a `.gitignore`, or undefined when it cannot be read. */
function readIgnoreFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

const matchers = new WeakMap<IgnoreGroup, Ignore>();

/** The compiled patterns of a group, built once per thread. */
function matcherFor(group: IgnoreGroup): Ignore {
  let matcher = matchers.get(group);
  if (matcher === undefined) {
    // git matches case-sensitively unless core.ignoreCase is set; `ignore` defaults to ignoring case.
    matcher = ignore({ ignorecase: false, allowRelativePaths: true })
      .add(group.patterns)
      .add(group.reincluded.map((folder) => `!/${escapePattern(folder)}/`));
    matchers.set(group, matcher);
  }
  return matcher;
}

/** A path as a pattern that matches exactly it. */
function escapePattern(path: string): string {
  return path.replace(/[\\*?[\]!#]/g, '\\$&').replace(/ $/, '\\ ');
}

/** `rel` relative to the group's folder, or undefined when it lies outside it. */
function localPath(group: IgnoreGroup, rel: string): string | undefined {
  if (group.base === '') return rel;
  return rel.startsWith(`${group.base}/`) ? rel.slice(group.base.length + 1) : undefined;
}

/**
 * Whether git ignores `rel`: the patterns of every `.gitignore` from the root down apply, relative to their
 * folder, and a deeper file's match overrides a higher one's (as the last match within one file does).
 * Called only for paths whose folders are not ignored.
 */
function ignored(groups: readonly IgnoreGroup[], rel: string, isDirectory: boolean): boolean {
  let result = false;
  for (const group of groups) {
    const local = localPath(group, rel);
    if (local === undefined) continue;
    const outcome = matcherFor(group).test(isDirectory ? `${local}/` : local);
    if (outcome.ignored) result = true;
    else if (outcome.unignored) result = false;
  }
  return result;
}

/**
 * The groups for the inside of folder `rel`, which is not ignored: a group that excludes the folder (a
 * deeper `.gitignore` re-included it) gets it as re-included, so that it does not exclude what is inside.
 */
function reincludeIn(groups: IgnoreGroup[], rel: string): IgnoreGroup[] {
  let result = groups;
  groups.forEach((group, index) => {
    const local = localPath(group, rel);
    if (local === undefined || !matcherFor(group).test(`${local}/`).ignored) return;
    if (result === groups) result = [...groups];
    result[index] = { ...group, reincluded: [...group.reincluded, local] };
  });
  return result;
}

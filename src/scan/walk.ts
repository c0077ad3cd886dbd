/**
 * The files a scan reads: every file under the given roots, minus what `.gitignore` files exclude (read
 * per folder, as git does), `.git`, `node_modules`, binary files (a NUL byte in the first 8 KiB) and files
 * over `maxBytes`. Paths come back relative to their root, `/`-separated, in a stable order.
 *
 * The I/O is synchronous on purpose: a scan is a batch job in its own process, and a thread-pool round trip
 * per open, stat, read and close made it ten times slower than grep over a large tree.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';

export interface WalkOptions {
  maxBytes?: number;
  /** Bound on files visited, against runaway trees. */
  maxFiles?: number;
  /** Files whose path (relative, `/`-separated) no reader wants are skipped without being opened. */
  wanted?: (relative: string) => boolean;
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

export interface IgnoreRule {
  pattern: RegExp;
  negate: boolean;
  directoryOnly: boolean;
}

/** The rules of one `.gitignore`, and the folder (relative to the root) they apply under. */
export interface IgnoreGroup {
  base: string;
  rules: IgnoreRule[];
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

export async function* walkFiles(root: string, options: WalkOptions = {}): AsyncGenerator<WalkedFile> {
  const maxBytes = options.maxBytes ?? defaultMaxBytes;
  const maxFiles = options.maxFiles ?? defaultMaxFiles;
  const wanted = options.wanted ?? (() => true);
  let visited = 0;
  const info = statSync(root);
  if (info.isFile()) {
    const name = root.split(sep).pop() ?? root;
    const file = wanted(name) ? readWalkedFile(root, name, maxBytes) : undefined;
    if (file) yield file;
    return;
  }
  for (const entry of walkFolder({ dir: root, base: '', groups: [] }, wanted)) {
    if (++visited > maxFiles) return;
    const file = readWalkedFile(entry.path, entry.relative, maxBytes);
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
    : [];
  const active = own.length ? [...groups, { base, rules: own }] : groups;
  entries.sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
  // Below the root, folder paths are already normalised: plain concatenation gives what `join` would.
  const pathOf = base === '' ? (name: string) => join(dir, name) : (name: string) => dir + sep + name;
  for (const entry of entries) {
    const name = entry.name;
    if (alwaysSkipped.has(name)) continue;
    const rel = base ? `${base}/${name}` : name;
    if (entry.isDirectory()) {
      if (!ignored(active, rel, true)) folders.push({ dir: pathOf(name), base: rel, groups: active });
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
 * cannot be read, are larger than `maxBytes`, or have a NUL byte in their first 8 KiB.
 */
export function readWalkedFile(path: string, rel: string, maxBytes: number): WalkedFile | undefined {
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
        if (filled > maxBytes) return undefined;
        const larger = Buffer.allocUnsafe(Math.min(buffer.length * 4, maxBytes + 1));
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
    const content = buffer.toString('utf8', 0, filled);
    // A NUL byte decodes to U+0000 and nothing else does: only then is the byte-exact check needed.
    if (content.includes('\0') && buffer.subarray(0, Math.min(filled, 8192)).includes(0)) return undefined;
    return { path, relative: rel, head: content.slice(0, 4096), content };
  } finally {
    closeSync(fd);
  }
}

function readIgnoreFile(path: string): IgnoreRule[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  const rules: IgnoreRule[] = [];
  for (const rawLine of text.split(/\r?\n/)) {
    let line = rawLine.replace(/(?<!\\)\s+$/, '');
    if (!line || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    if (negate) line = line.slice(1);
    const directoryOnly = line.endsWith('/');
    if (directoryOnly) line = line.slice(0, -1);
    const anchored = line.includes('/');
    if (line.startsWith('/')) line = line.slice(1);
    rules.push({ pattern: globToRegExp(line, anchored), negate, directoryOnly });
  }
  return rules;
}

function globToRegExp(glob: string, anchored: boolean): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i]!;
    if (char === '*') {
      if (glob[i + 1] === '*') {
        i++;
        if (glob[i + 1] === '/') {
          i++;
          source += '(?:.*/)?';
        } else {
          source += '.*';
        }
      } else {
        source += '[^/]*';
      }
    } else if (char === '?') {
      source += '[^/]';
    } else if (char === '\\' && i + 1 < glob.length) {
      source += glob[++i]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    } else {
      source += char.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(anchored ? `^${source}(?:/.*)?$` : `(?:^|/)${source}(?:/.*)?$`);
}

/** The last matching rule decides, as in git; rules apply to paths relative to their .gitignore's folder. */
function ignored(groups: IgnoreGroup[], rel: string, isDirectory: boolean): boolean {
  let result = false;
  for (const { base, rules } of groups) {
    const local = base ? (rel.startsWith(`${base}/`) ? rel.slice(base.length + 1) : undefined) : rel;
    if (local === undefined) continue;
    for (const rule of rules) {
      if (rule.directoryOnly && !isDirectory && !rule.pattern.test(local.split('/').slice(0, -1).join('/')))
        continue;
      if (rule.pattern.test(local)) result = !rule.negate;
    }
  }
  return result;
}

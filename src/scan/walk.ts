/**
 * The files a scan reads: every file under the given roots, minus what `.gitignore` files exclude (read
 * per folder, as git does), `.git`, `node_modules`, binary files (a NUL byte in the first 8 KiB) and files
 * over `maxBytes`. Paths come back relative to their root, `/`-separated, in a stable order.
 *
 * The I/O is synchronous on purpose: a scan is a batch job in its own process, and a thread-pool round trip
 * per open, stat, read and close made it ten times slower than grep over a large tree.
 */
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

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

interface IgnoreRule {
  pattern: RegExp;
  negate: boolean;
  directoryOnly: boolean;
}

const alwaysSkipped = new Set(['.git', 'node_modules', '.hg', '.svn']);

export async function* walkFiles(root: string, options: WalkOptions = {}): AsyncGenerator<WalkedFile> {
  const maxBytes = options.maxBytes ?? 2 * 1024 * 1024;
  const maxFiles = options.maxFiles ?? 1_000_000;
  const wanted = options.wanted ?? (() => true);
  let visited = 0;
  const info = statSync(root);
  if (info.isFile()) {
    const name = root.split(sep).pop() ?? root;
    const file = wanted(name) ? describe(root, name, maxBytes) : undefined;
    if (file) yield file;
    return;
  }
  const stack: { dir: string; rules: { base: string; rules: IgnoreRule[] }[] }[] = [{ dir: root, rules: [] }];
  while (stack.length > 0) {
    const { dir, rules } = stack.pop()!;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    const base = dir === root ? '' : relative(root, dir).split(sep).join('/');
    const own = entries.some((entry) => entry.name === '.gitignore')
      ? readIgnoreFile(join(dir, '.gitignore'))
      : [];
    const active = own.length ? [...rules, { base, rules: own }] : rules;
    entries.sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
    for (const entry of entries) {
      if (alwaysSkipped.has(entry.name)) continue;
      const absolute = join(dir, entry.name);
      const rel = base ? `${base}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (!ignored(active, rel, true)) stack.push({ dir: absolute, rules: active });
        continue;
      }
      if (!entry.isFile() || !wanted(rel) || ignored(active, rel, false)) continue;
      if (++visited > maxFiles) return;
      const file = describe(absolute, rel, maxBytes);
      if (file) yield file;
    }
  }
}

/** One open, one read: binary check, head and content together. */
function describe(path: string, rel: string, maxBytes: number): WalkedFile | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const { size } = fstatSync(fd);
    if (size > maxBytes) return undefined;
    const buffer = Buffer.allocUnsafe(size);
    let filled = 0;
    while (filled < size) {
      const bytesRead = readSync(fd, buffer, filled, size - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    const bytes = buffer.subarray(0, filled);
    if (bytes.subarray(0, 8192).includes(0)) return undefined;
    const content = bytes.toString('utf8');
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
function ignored(
  groups: { base: string; rules: IgnoreRule[] }[],
  rel: string,
  isDirectory: boolean,
): boolean {
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

/**
 * The files a scan reads: every file under the given roots, minus what `.gitignore` files exclude (read
 * per folder, as git does), `.git`, `node_modules`, binary files (a NUL byte in the first 8 KiB) and files
 * over `maxBytes`. Paths come back relative to their root, `/`-separated, in a stable order.
 */
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

export interface WalkOptions {
  maxBytes?: number;
  /** Bound on files visited, against runaway trees. */
  maxFiles?: number;
}

export interface WalkedFile {
  /** Absolute path. */
  path: string;
  /** Relative to the root, `/`-separated. */
  relative: string;
  /** The first 4 KiB, for extractors that decide by content. */
  head: string;
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
  let visited = 0;
  const info = await stat(root);
  if (info.isFile()) {
    const file = await describe(root, root.split(sep).pop() ?? root, maxBytes);
    if (file) yield file;
    return;
  }
  const stack: { dir: string; rules: { base: string; rules: IgnoreRule[] }[] }[] = [{ dir: root, rules: [] }];
  while (stack.length > 0) {
    const { dir, rules } = stack.pop()!;
    const own = await readIgnoreFile(join(dir, '.gitignore'));
    const base = relative(root, dir).split(sep).join('/');
    const active = own.length ? [...rules, { base, rules: own }] : rules;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    entries.sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
    for (const entry of entries) {
      if (alwaysSkipped.has(entry.name)) continue;
      const absolute = join(dir, entry.name);
      const rel = relative(root, absolute).split(sep).join('/');
      if (entry.isDirectory()) {
        if (!ignored(active, rel, true)) stack.push({ dir: absolute, rules: active });
        continue;
      }
      if (!entry.isFile() || ignored(active, rel, false)) continue;
      if (++visited > maxFiles) return;
      const file = await describe(absolute, rel, maxBytes);
      if (file) yield file;
    }
  }
}

async function describe(path: string, rel: string, maxBytes: number): Promise<WalkedFile | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) return undefined;
    const buffer = Buffer.alloc(Math.min(size, 8192));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const sample = buffer.subarray(0, bytesRead);
    if (sample.includes(0)) return undefined;
    return { path, relative: rel, head: sample.subarray(0, 4096).toString('utf8') };
  } finally {
    await handle.close();
  }
}

async function readIgnoreFile(path: string): Promise<IgnoreRule[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
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

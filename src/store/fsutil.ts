/** File primitives for the filesystem driver: nothing is ever visible under its final name half-written. */
import { randomBytes } from 'node:crypto';
import { open, rename, mkdir, unlink, readFile, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { TemporaryFile, TemporaryFiles } from './types.ts';

/**
 * How old a temporary must be before it is taken for dead. A write holds its temporary for milliseconds
 * (write, fsync, rename); the margin spares a second process that is writing right now.
 */
export const staleTemporaryMs = 60_000;

/** The one folder small-file temporaries live in: on the storage's filesystem, outside every listed folder. */
export function temporaryDirectory(root: string): string {
  return join(root, 'tmp');
}

/**
 * Writes `data` to a new file in `temporaryDir` (same filesystem as `path`), fsyncs it, renames it over
 * `path`, and fsyncs `path`'s folder. Until the rename nothing exists under `path`'s folder, so a failed or
 * killed write never leaves a name there that a listing could take for a key.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  temporaryDir: string,
): Promise<void> {
  const dir = dirname(path);
  await makeDirectoryDurable(dir);
  const temp = join(temporaryDir, randomBytes(12).toString('hex'));
  const handle = await open(temp, 'wx', 0o644).catch(async (error: unknown) => {
    if (!isMissing(error)) throw error;
    await mkdir(temporaryDir, { recursive: true });
    return open(temp, 'wx', 0o644);
  });
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await syncDirectory(dir);
}

/** Creates `dir` and its missing parents, and fsyncs the folder holding each one it created. */
async function makeDirectoryDurable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  for (let created = dir; ; created = dirname(created)) {
    await syncDirectory(dirname(created));
    if (created === first || dirname(created) === created) return;
  }
}

export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // some filesystems refuse fsync on directories; the rename itself is still atomic
  } finally {
    await handle.close();
  }
}

/** The temporaries folder of a filesystem storage: what interrupted writes left there. */
export class FsTemporaryFiles implements TemporaryFiles {
  private readonly root: string;
  private readonly dir: string;

  constructor(root: string) {
    this.root = root;
    this.dir = temporaryDirectory(root);
  }

  async list(): Promise<TemporaryFile[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if (isMissing(error)) return [];
      throw error;
    }
    const files: TemporaryFile[] = [];
    for (const name of names.sort()) {
      const path = join(this.dir, name);
      try {
        const info = await stat(path);
        files.push({ path: relative(this.root, path), size: info.size, modified: info.mtime });
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
    }
    return files;
  }

  async remove(olderThanMs: number, now: Date = new Date()): Promise<TemporaryFile[]> {
    const removed: TemporaryFile[] = [];
    for (const file of await this.list()) {
      if (now.getTime() - file.modified.getTime() < olderThanMs) continue;
      await rm(join(this.root, file.path), { recursive: true, force: true });
      removed.push(file);
    }
    return removed;
  }
}

/**
 * Serialises tasks per key: a task starts once every earlier task of its key has settled. The store runs
 * each write of a cached key together with its cache update under the key's lock, and each cache fill
 * together with the read it fills from, so memory and disk cannot disagree in any interleaving.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    const result = previous ? previous.then(task) : task();
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    try {
      return await result;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

export function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export async function removeIfExists(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

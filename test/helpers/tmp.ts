/** Temporary folders for tests: created under os.tmpdir(), removed recursively when the test is done. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Creates a fresh, empty folder under os.tmpdir() whose name starts with `prefix`. */
export async function makeTempDir(prefix = 'pullsafe-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Removes a folder and everything in it; a folder that is already gone is not an error. */
export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

export interface TempDir extends AsyncDisposable {
  readonly path: string;
  remove(): Promise<void>;
}

/**
 * A temporary folder that removes itself: call `remove()` explicitly, or hold it with
 * `await using dir = await tempDir('x-')` and it is removed when the scope ends.
 */
export async function tempDir(prefix = 'pullsafe-test-'): Promise<TempDir> {
  const path = await makeTempDir(prefix);
  const remove = () => removeTempDir(path);
  return { path, remove, [Symbol.asyncDispose]: remove };
}

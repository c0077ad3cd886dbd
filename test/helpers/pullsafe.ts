/** Starts pullsafe's registry in this process on 127.0.0.1:0, on a fresh temporary storage folder. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessControl, type AuthOptions } from '../../src/server/auth.ts';
import { startServer, type Logger, type RunningServer } from '../../src/server/app.ts';
import type { RegistryOptions } from '../../src/server/registry.ts';
import { openFsStorage, type Storage } from '../../src/store/index.ts';

export interface TestRegistry extends RunningServer {
  storageDir: string;
  storage: Storage;
  /** Lines the server logged, for assertions (e.g. that no secret was logged). */
  logs: object[];
  stop(): Promise<void>;
}

export async function startPullsafe(
  options: { auth?: Partial<AuthOptions>; registry?: Partial<RegistryOptions>; storageDir?: string } = {},
): Promise<TestRegistry> {
  const storageDir = options.storageDir ?? (await mkdtemp(join(tmpdir(), 'pullsafe-test-')));
  const storage = await openFsStorage(storageDir);
  const access = await AccessControl.load({
    realm: 'pullsafe',
    anonymousPull: true,
    anonymousPush: true,
    ...options.auth,
  });
  const logs: object[] = [];
  const logger: Logger = {
    info: (fields) => logs.push(fields),
    warn: (fields) => logs.push(fields),
    error: (fields) => logs.push(fields),
  };
  const running = await startServer({
    storage,
    access,
    logger,
    host: '127.0.0.1',
    port: 0,
    logRequests: true,
    ...(options.registry ? { registry: options.registry } : {}),
  });
  return {
    ...running,
    storageDir,
    storage,
    logs,
    async stop() {
      await running.close();
      if (!options.storageDir) await rm(storageDir, { recursive: true, force: true });
    },
  };
}

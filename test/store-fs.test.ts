import { after } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFsStorage } from '../src/store/index.ts';
import { storageContract } from './store-contract.ts';

const folders: string[] = [];
after(async () => {
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

storageContract('filesystem', async () => {
  const folder = await mkdtemp(join(tmpdir(), 'pullsafe-store-'));
  folders.push(folder);
  return openFsStorage(folder);
});

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
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

test('filesystem: an upload keeps its owner across a restart', async () => {
  const folder = await mkdtemp(join(tmpdir(), 'pullsafe-store-'));
  folders.push(folder);
  const first = await openFsStorage(folder);
  const upload = await first.blobs.startUpload('team/app');
  const second = await openFsStorage(folder);
  const found = await second.blobs.findUpload(upload.id);
  assert.equal(found?.owner, 'team/app');
});

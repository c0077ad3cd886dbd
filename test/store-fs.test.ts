import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf } from '../src/oci/digest.ts';
import { openFsStorage } from '../src/store/index.ts';
import { storageContract } from './store-contract.ts';

const folders: string[] = [];
after(async () => {
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

storageContract(
  'filesystem',
  async () => {
    const folder = await mkdtemp(join(tmpdir(), 'pullsafe-store-'));
    folders.push(folder);
    return openFsStorage(folder);
  },
  { reopen: (storage) => openFsStorage(storage.location) },
);

test('filesystem: small files are written through <root>/tmp/, and tag folders hold only tags', async () => {
  const folder = await mkdtemp(join(tmpdir(), 'pullsafe-store-'));
  folders.push(folder);
  const { repositories, temporaries } = await openFsStorage(folder);
  const digest = digestOf('m');
  await Promise.all(
    Array.from({ length: 20 }, (_, index) => repositories.setTag('app', `v${index % 4}`, digest)),
  );
  await repositories.linkManifest('app', { digest, mediaType: 'm', size: 1, subject: digestOf('s') });
  await repositories.linkBlob('app', digest);
  assert.deepEqual((await readdir(join(folder, 'repositories', 'app', '_tags'))).sort(), [
    'v0',
    'v1',
    'v2',
    'v3',
  ]);
  assert.deepEqual(await readdir(join(folder, 'tmp')), [], 'no temporary outlives its write');
  assert.deepEqual(await temporaries?.list(), []);
});

test('filesystem: a write that fails leaves no temporary and nothing listable', async () => {
  const folder = await mkdtemp(join(tmpdir(), 'pullsafe-store-'));
  folders.push(folder);
  const { repositories } = await openFsStorage(folder);
  // A folder where the tag file should go: the rename fails.
  await mkdir(join(folder, 'repositories', 'app', '_tags', 'v1', 'x'), { recursive: true });
  await assert.rejects(repositories.setTag('app', 'v1', digestOf('m')));
  assert.deepEqual(await readdir(join(folder, 'tmp')), []);
  assert.deepEqual(
    await readdir(join(folder, 'repositories', 'app', '_tags')),
    ['v1'],
    'only the folder that was in the way',
  );
});

test('filesystem: opening removes temporaries older than a minute, keeps younger ones until then', async () => {
  const folder = await mkdtemp(join(tmpdir(), 'pullsafe-store-'));
  folders.push(folder);
  await mkdir(join(folder, 'tmp'), { recursive: true });
  const old = join(folder, 'tmp', 'old');
  const young = join(folder, 'tmp', 'young');
  await writeFile(old, 'sha256:');
  await writeFile(young, 'sha256:');
  const twoMinutesAgo = new Date(Date.now() - 120_000);
  await utimes(old, twoMinutesAgo, twoMinutesAgo);
  const readOnly = await openFsStorage(folder, { removeStaleTemporaries: false });
  assert.deepEqual(
    (await readOnly.temporaries?.list())?.map((file) => file.path),
    ['tmp/old', 'tmp/young'],
  );
  const storage = await openFsStorage(folder);
  assert.deepEqual(
    (await storage.temporaries?.list())?.map((file) => file.path),
    ['tmp/young'],
  );
  assert.deepEqual(await storage.repositories.listRepositories(), []);
});

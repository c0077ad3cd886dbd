/**
 * The record of where registries hold blobs: bounded, merged with what other runs wrote, tolerant of a
 * damaged or foreign file, private to the user, and never blocking a copy when it cannot be written.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from '../../test/helpers/tmp.ts';
import { BlobLocations } from './blob-locations.ts';

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

async function entriesOf(file: string): Promise<string[][]> {
  return (JSON.parse(await readFile(file, 'utf8')) as { entries: string[][] }).entries;
}

describe('BlobLocations', () => {
  let work: string;
  let count = 0;
  const fresh = () => join(work, `case-${++count}`, 'pullsafe', 'blob-locations.json');
  before(async () => {
    work = await makeTempDir('pullsafe-blob-locations-');
  });
  after(async () => removeTempDir(work));

  it('keeps the most recently used entries up to its bound, and a few repositories per blob', async () => {
    const file = fresh();
    const locations = await BlobLocations.open({ file, maxEntries: 5 });
    for (let n = 1; n <= 8; n++) locations.record('r.example', 'team/app', digest(n));
    locations.record('r.example', 'team/app', digest(5)); // used again: kept over 4
    await locations.save();
    assert.deepEqual(
      (await entriesOf(file)).map((entry) => entry[2]),
      [4, 6, 7, 8, 5].map(digest),
    );

    const many = await BlobLocations.open({ file: fresh() });
    for (const repository of ['a/x', 'b/x', 'c/x', 'd/x', 'e/x'])
      many.record('r.example', repository, digest(1));
    assert.deepEqual(many.candidates('r.example', digest(1), 'z/x'), ['e/x', 'd/x']);
    assert.deepEqual(many.candidates('r.example', digest(1), 'e/x'), ['d/x', 'c/x']);
    assert.deepEqual(many.candidates('other.example', digest(1), 'z/x'), []);
    many.forget('r.example', 'e/x', digest(1));
    assert.deepEqual(many.candidates('r.example', digest(1), 'z/x'), ['d/x', 'c/x']);
  });

  it('merges its records into what another run saved meanwhile; forgotten entries stay gone', async () => {
    const file = fresh();
    const first = await BlobLocations.open({ file });
    first.record('r.example', 'a/app', digest(1));
    await first.save();
    const mine = await BlobLocations.open({ file });
    const theirs = await BlobLocations.open({ file });
    theirs.record('r.example', 'b/app', digest(2));
    await theirs.save();
    mine.forget('r.example', 'a/app', digest(1));
    mine.record('r.example', 'c/app', digest(3));
    await mine.save();
    assert.deepEqual(await entriesOf(file), [
      ['r.example', 'b/app', digest(2)],
      ['r.example', 'c/app', digest(3)],
    ]);
    const later = await BlobLocations.open({ file });
    assert.deepEqual(later.candidates('r.example', digest(2), 'z/app'), ['b/app']);
  });

  it('saves without parsing the file again when no other run wrote it since it was read', async () => {
    const file = fresh();
    const seed = await BlobLocations.open({ file });
    for (let n = 1; n <= 500; n++) seed.record('r.example', `team/app${n % 7}`, digest(n));
    await seed.save();
    const before = await entriesOf(file);

    const locations = await BlobLocations.open({ file });
    locations.record('r.example', 'team/new', digest(1));
    locations.forget('r.example', 'team/app2', digest(2));
    const parse = JSON.parse;
    let parsed = 0;
    JSON.parse = (...args: Parameters<typeof JSON.parse>): unknown => {
      parsed++;
      return parse(...args);
    };
    try {
      await locations.save();
    } finally {
      JSON.parse = parse;
    }
    assert.equal(parsed, 0);
    const expected = before.filter(
      ([, repository, blob]) => !(repository === 'team/app2' && blob === digest(2)),
    );
    expected.push(['r.example', 'team/new', digest(1)]);
    assert.deepEqual(await entriesOf(file), expected);
  });

  it('merges into a file another run created after this one found none', async () => {
    const file = fresh();
    const mine = await BlobLocations.open({ file });
    const theirs = await BlobLocations.open({ file });
    theirs.record('r.example', 'b/app', digest(2));
    await theirs.save();
    mine.record('r.example', 'a/app', digest(1));
    await mine.save();
    assert.deepEqual(await entriesOf(file), [
      ['r.example', 'b/app', digest(2)],
      ['r.example', 'a/app', digest(1)],
    ]);
  });

  it('reads a damaged, foreign or hostile file as empty or drops its bad entries, and replaces it', async () => {
    const bad = ['not json', '{"version": 2, "entries": []}', '{"version": 1, "entries": {}}', 'null'];
    for (const text of bad) {
      const file = fresh();
      await mkdir(join(file, '..'), { recursive: true });
      await writeFile(file, text);
      const locations = await BlobLocations.open({ file });
      assert.deepEqual(locations.candidates('r.example', digest(1), 'z'), [], text);
      locations.record('r.example', 'a/app', digest(1));
      await locations.save();
      assert.deepEqual(await entriesOf(file), [['r.example', 'a/app', digest(1)]], text);
    }
    const file = fresh();
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(
      file,
      JSON.stringify({
        version: 1,
        entries: [
          ['r.example', 'ok/app', digest(1)],
          ['r.example', 'ok/app', 'sha256:short'],
          ['r.example/path', 'ok/app', digest(1)],
          ['r.example', 'with space', digest(1)],
          ['r.example', 'ok/app', digest(2), 'extra'],
          ['user:secret@r.example', 'ok/app', digest(1)],
          [1, 'ok/app', digest(1)],
          'r.example ok/app',
        ],
      }),
    );
    const locations = await BlobLocations.open({ file });
    assert.deepEqual(locations.candidates('r.example', digest(1), 'z'), ['ok/app']);
    assert.deepEqual(locations.candidates('r.example', digest(2), 'z'), []);
  });

  it('is readable by its owner only, and a folder that cannot be written leaves the copy alone', async () => {
    const file = fresh();
    const locations = await BlobLocations.open({ file });
    locations.record('r.example', 'a/app', digest(1));
    await locations.save();
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(join(file, '..'))).mode & 0o777, 0o700);

    const blocked = join(work, 'a-file');
    await writeFile(blocked, '');
    const unwritable = await BlobLocations.open({ file: join(blocked, 'pullsafe', 'blob-locations.json') });
    unwritable.record('r.example', 'a/app', digest(1));
    await unwritable.save();
    assert.deepEqual(unwritable.candidates('r.example', digest(1), 'z'), ['a/app']);
  });

  it('tells other copies of the run about an upload in flight, and records where it ended', async () => {
    const locations = await BlobLocations.open();
    assert.equal(locations.uploading('r.example', digest(1)), undefined);
    const done = locations.startUpload('r.example', 'a/app', digest(1));
    const pending = locations.uploading('r.example', digest(1));
    assert.equal(pending?.repository, 'a/app');
    done(true);
    assert.equal(await pending?.done, true);
    assert.equal(locations.uploading('r.example', digest(1)), undefined);
    assert.deepEqual(locations.candidates('r.example', digest(1), 'b/app'), ['a/app']);

    const failed = locations.startUpload('r.example', 'b/app', digest(2));
    const waiting = locations.uploading('r.example', digest(2));
    failed(false);
    assert.equal(await waiting?.done, false);
    assert.deepEqual(locations.candidates('r.example', digest(2), 'c/app'), []);
  });
});

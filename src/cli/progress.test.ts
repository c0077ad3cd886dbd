import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { Progress, renderBar } from './progress.ts';
import type { Digest } from '../oci/digest.ts';

const digest = `sha256:${'a'.repeat(64)}` as Digest;

describe('progress', () => {
  it('renders a bar with bytes done and total', () => {
    assert.equal(
      renderBar('img', 512 * 1024, 1024 * 1024, false),
      `${'img'.padEnd(40)} ${'█'.repeat(12)}${'░'.repeat(12)} 512.0 KiB/1.0 MiB`,
    );
    assert.match(renderBar('x'.repeat(60), 0, 0, true), /^…x{39} █{24} 0 B\/0 B done$/);
  });

  it('draws bars on a TTY and clears them', () => {
    const out = new PassThrough() as unknown as NodeJS.WriteStream;
    let written = '';
    (out as unknown as PassThrough).on('data', (chunk: Buffer) => (written += chunk.toString()));
    const progress = new Progress('tty', out);
    progress.imageStart('app:1');
    progress.copyEvent('app:1', { type: 'blob-start', digest, size: 2048 });
    progress.copyEvent('app:1', { type: 'blob-done', digest, size: 2048 });
    progress.imageDone('app:1', {});
    progress.clear();
    assert.match(written, /app:1 .* 2\.0 KiB\/2\.0 KiB done/);
    assert.match(written, /total /);
    assert.ok(written.includes(`${String.fromCharCode(27)}[J`), 'the bars are cleared with an ANSI erase');
  });

  it('stays silent when quiet, and picks the mode from the terminal and CI', () => {
    const out = new PassThrough() as unknown as NodeJS.WriteStream;
    let written = '';
    (out as unknown as PassThrough).on('data', (chunk: Buffer) => (written += chunk.toString()));
    const progress = new Progress('quiet', out);
    progress.imageStart('app:1');
    progress.copyEvent('app:1', { type: 'blob-start', digest, size: 10 });
    progress.imageDone('app:1', {});
    assert.equal(written, '');
    const tty = { isTTY: true } as NodeJS.WriteStream;
    assert.equal(Progress.detect({ stream: tty }), 'tty');
    assert.equal(Progress.detect({ stream: tty, ci: true }), 'quiet');
    assert.equal(Progress.detect({ json: true, stream: tty }), 'json');
  });
});

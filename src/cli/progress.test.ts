import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Progress, renderBar } from './progress.ts';
import type { Digest } from '../oci/digest.ts';

const digest = `sha256:${'a'.repeat(64)}` as Digest;

/** A stream that keeps what is written to it. */
function capture(isTTY = false): { isTTY: boolean; text: string; write(chunk: string | Uint8Array): void } {
  return {
    isTTY,
    text: '',
    write(chunk) {
      this.text += chunk.toString();
    },
  };
}

describe('progress', () => {
  it('renders a bar with bytes done and total', () => {
    assert.equal(
      renderBar('img', 512 * 1024, 1024 * 1024, false),
      `${'img'.padEnd(40)} ${'█'.repeat(12)}${'░'.repeat(12)} 512.0 KiB/1.0 MiB`,
    );
    assert.match(renderBar('x'.repeat(60), 0, 0, true), /^…x{39} █{24} 0 B\/0 B done$/);
  });

  it('draws bars on a TTY and clears them', () => {
    const stdout = capture();
    const stderr = capture(true);
    const progress = new Progress('tty', { stdout, stderr });
    progress.imageStart('app:1');
    progress.copyEvent('app:1', { type: 'blob-start', digest, size: 2048 });
    progress.copyEvent('app:1', { type: 'blob-done', digest, size: 2048 });
    progress.imageDone('app:1', {});
    progress.clear();
    const written = stderr.text;
    assert.equal(stdout.text, '', 'bars go to stderr only');
    assert.match(written, /app:1 .* 2\.0 KiB\/2\.0 KiB done/);
    assert.match(written, /total /);
    assert.ok(written.includes(`${String.fromCharCode(27)}[J`), 'the bars are cleared with an ANSI erase');
  });

  it('stays silent when quiet, and picks the mode from the terminal and CI', () => {
    const stdout = capture();
    const stderr = capture(true);
    const progress = new Progress('quiet', { stdout, stderr });
    progress.imageStart('app:1');
    progress.copyEvent('app:1', { type: 'blob-start', digest, size: 10 });
    progress.imageDone('app:1', {});
    assert.equal(stdout.text + stderr.text, '');
    const tty = capture(true);
    assert.equal(Progress.detect({ stream: tty }), 'tty');
    assert.equal(Progress.detect({ stream: tty, ci: true }), 'quiet');
    assert.equal(Progress.detect({ json: true, stream: tty }), 'json');
    assert.equal(Progress.detect({ stream: capture() }), 'quiet');
  });

  it('writes --json events to stdout, one line each, and nothing to stderr', () => {
    const stdout = capture();
    const stderr = capture(true);
    const progress = new Progress('json', { stdout, stderr });
    progress.imageStart('app:1');
    progress.copyEvent('app:1', { type: 'blob-start', digest, size: 10 });
    progress.copyEvent('app:1', { type: 'blob-progress', digest, bytes: 5, size: 10 });
    progress.imageDone('app:1', { blobs: 1 });
    const events = stdout.text
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(
      events.map((event) => event.event),
      ['image-start', 'blob-start', 'image-done'],
    );
    assert.equal(events[2]!.blobs, 1);
    assert.match(String(events[0]!.time), /^\d{4}-\d\d-\d\dT/);
    assert.equal(stderr.text, '');
  });
});

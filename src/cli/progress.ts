/**
 * Progress for long copies: bars on a TTY (per image and total: bytes, rate, ETA), one JSON event per line
 * with --json, and nothing but the final summary otherwise (CI logs stay short).
 */
import type { CopyEvent } from '../copy/copy.ts';
import { formatBytes, type CommandIo, type OutputStream } from './output.ts';

export type ProgressMode = 'tty' | 'json' | 'quiet';

interface ImageState {
  label: string;
  total: number;
  done: number;
  finished: boolean;
  inFlight: Map<string, number>;
}

const redrawIntervalMs = 100;
const barWidth = 24;

export class Progress {
  private readonly mode: ProgressMode;
  /** Bars go to stderr, JSON events to stdout. */
  private readonly out: OutputStream;
  private readonly events: OutputStream;
  private readonly images = new Map<string, ImageState>();
  private readonly started = Date.now();
  private linesDrawn = 0;
  private lastDraw = 0;
  private totalBytes = 0;

  constructor(mode: ProgressMode, io: Pick<CommandIo, 'stdout' | 'stderr'>) {
    this.mode = mode;
    this.out = io.stderr;
    this.events = io.stdout;
  }

  /** JSON events for --json, bars on a terminal's stderr outside CI, else nothing but the summary. */
  static detect(options: { json?: boolean; stream: OutputStream; ci?: boolean }): ProgressMode {
    if (options.json) return 'json';
    return options.stream.isTTY && !options.ci ? 'tty' : 'quiet';
  }

  /** Emits a JSON event (json mode only): `{"event": …, "time": …, …fields}`. */
  emit(event: string, fields: Record<string, unknown>): void {
    if (this.mode === 'json') this.events.write(eventLine(event, fields));
  }

  imageStart(label: string): void {
    this.images.set(label, { label, total: 0, done: 0, finished: false, inFlight: new Map() });
    this.emit('image-start', { image: label });
    this.draw();
  }

  copyEvent(label: string, event: CopyEvent): void {
    const image = this.images.get(label);
    if (image) {
      switch (event.type) {
        case 'blob-start':
          image.total += event.size;
          image.inFlight.set(event.digest, 0);
          break;
        case 'blob-progress': {
          const before = image.inFlight.get(event.digest) ?? 0;
          image.inFlight.set(event.digest, event.bytes);
          this.totalBytes += event.bytes - before;
          break;
        }
        case 'blob-done':
          image.inFlight.delete(event.digest);
          image.done += event.size;
          break;
        default:
          break;
      }
    }
    if (event.type !== 'blob-progress') this.emit(event.type, { image: label, ...event });
    this.draw();
  }

  imageDone(label: string, fields: Record<string, unknown>): void {
    const image = this.images.get(label);
    if (image) image.finished = true;
    this.emit('image-done', { image: label, ...fields });
    this.draw(true);
    if (image) this.images.delete(label);
  }

  /** Clears the bars before a summary or an error is printed. */
  clear(): void {
    if (this.mode !== 'tty' || this.linesDrawn === 0) return;
    this.out.write(`\x1b[${this.linesDrawn}A\x1b[J`);
    this.linesDrawn = 0;
  }

  private draw(force = false): void {
    if (this.mode !== 'tty') return;
    const now = Date.now();
    if (!force && now - this.lastDraw < redrawIntervalMs) return;
    this.lastDraw = now;
    const seconds = Math.max(0.001, (now - this.started) / 1000);
    const rate = this.totalBytes / seconds;
    const lines: string[] = [];
    for (const image of this.images.values()) {
      const current = image.done + [...image.inFlight.values()].reduce((sum, bytes) => sum + bytes, 0);
      lines.push(renderBar(image.label, current, image.total, image.finished));
    }
    const pending = [...this.images.values()].reduce(
      (sum, image) =>
        sum + image.total - image.done - [...image.inFlight.values()].reduce((a, b) => a + b, 0),
      0,
    );
    const eta = rate > 0 && pending > 0 ? ` ETA ${Math.ceil(pending / rate)}s` : '';
    lines.push(`total ${formatBytes(this.totalBytes)} at ${formatBytes(rate)}/s${eta}`);
    this.clear();
    this.out.write(`${lines.join('\n')}\n`);
    this.linesDrawn = lines.length;
  }
}

/** One `--json` event line: `{"event": …, "time": …, …fields}`. */
export function eventLine(event: string, fields: Record<string, unknown>): string {
  return `${JSON.stringify({ event, time: new Date().toISOString(), ...fields })}\n`;
}

export function renderBar(label: string, current: number, total: number, finished: boolean): string {
  const fraction = total > 0 ? Math.min(1, current / total) : finished ? 1 : 0;
  const filled = Math.round(fraction * barWidth);
  const bar = `${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}`;
  const name = label.length > 40 ? `…${label.slice(-39)}` : label.padEnd(40);
  return `${name} ${bar} ${formatBytes(current)}/${formatBytes(total)}${finished ? ' done' : ''}`;
}

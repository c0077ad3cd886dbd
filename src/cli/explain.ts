/** `pullsafe explain`: why a pull failed, read from the error text alone (no AWS calls). */
import { readFile } from 'node:fs/promises';
import { PullsafeError } from '../errors/index.ts';
import {
  explain,
  s3RangesFromIpRanges,
  type Cause,
  type ExplainResult,
  type S3Range,
} from '../explain/index.ts';
import {
  exitCodes,
  writeJson,
  writeLines,
  type CommandIo,
  type InputStream,
  type OutputStream,
} from './output.ts';

export interface ExplainFlags {
  json?: boolean;
  ipRanges?: string;
}

/** Reads all of stdin, or returns undefined when stdin is a terminal (nothing is being piped). */
async function readStdin(stdin: InputStream): Promise<string | undefined> {
  if (stdin.isTTY) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

async function loadIpRanges(file: string): Promise<S3Range[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new PullsafeError(
      'USAGE',
      `--ip-ranges ${file}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      {
        hint: 'download it from https://ip-ranges.amazonaws.com/ip-ranges.json',
      },
    );
  }
  try {
    return s3RangesFromIpRanges(JSON.parse(text));
  } catch (error) {
    throw new PullsafeError('USAGE', `--ip-ranges ${file}: ${(error as Error).message}`, {
      hint: 'give the JSON file published at https://ip-ranges.amazonaws.com/ip-ranges.json',
    });
  }
}

export async function runExplain(words: string[], flags: ExplainFlags, io: CommandIo): Promise<number> {
  const result = await explainMessage(words, flags, io.stdin);
  printExplain(result, flags, io.stdout);
  return explainExitCode(result);
}

/** The causes of the message given as words, or else read from stdin. */
export async function explainMessage(
  words: string[],
  flags: ExplainFlags,
  stdin: InputStream,
): Promise<ExplainResult> {
  const s3Ranges = flags.ipRanges !== undefined ? await loadIpRanges(flags.ipRanges) : undefined;
  const text = words.length ? words.join(' ') : await readStdin(stdin);
  if (text === undefined || !text.trim()) {
    throw new PullsafeError('USAGE', 'no message to explain', {
      hint: 'pass the error text as an argument (quoted) or pipe it in: `aws ecs describe-tasks … | pullsafe explain`',
    });
  }
  return explain(text, s3Ranges ? { s3Ranges } : {});
}

/** 1 when no cause is known, so that scripts can tell. */
export function explainExitCode(result: ExplainResult): number {
  return result.causes[0]?.id === 'unknown' ? exitCodes.findings : exitCodes.ok;
}

export function printExplain(result: ExplainResult, flags: ExplainFlags, out: OutputStream): void {
  if (flags.json) {
    const { causes, extracted, message, lines, inputLines } = result;
    writeJson(out, { causes, extracted, message, lines, inputLines });
  } else writeLines(out, render(result));
}

function formatValue(value: unknown): string {
  return Array.isArray(value) ? value.join(', ') : String(value);
}

function renderCause(cause: Cause, position: number, total: number): string[] {
  const lines = [`${total > 1 ? `${position}. ` : ''}${cause.id}: ${cause.summary}`, `   ${cause.meaning}`];
  if (total > 1) lines.push(`   (${cause.confidence} confidence: ${cause.rationale})`);
  const evidence = Object.entries(cause.evidence);
  if (evidence.length) {
    lines.push('   evidence:');
    for (const [key, value] of evidence) lines.push(`     ${key}: ${formatValue(value)}`);
  }
  lines.push('   fixes:');
  cause.fixes.forEach((fix, index) => lines.push(`     ${index + 1}. ${fix}`));
  return lines;
}

/** A one-line message is shown as its core; of a longer input, only the lines the causes were read from. */
function render(result: ExplainResult): string[] {
  const lines =
    result.inputLines <= 1
      ? [`message: ${result.message}`, '']
      : [
          `from the input (${result.lines.length} of ${result.inputLines} lines):`,
          ...result.lines.map((line) => `  ${line}`),
          '',
        ];
  result.causes.forEach((cause, index) => {
    if (index) lines.push('');
    lines.push(...renderCause(cause, index + 1, result.causes.length));
  });
  return lines;
}

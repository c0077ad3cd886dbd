/** The FROM lines a build's log shows `docker build` pulling, tied to the commands that ran them. */
import { tryParseReference } from '../../reference/index.ts';
import type { BuildCommand, BuildPull } from '../build-plan.ts';
import { canonicalReference } from '../images.ts';
import type { Walk } from './commands.ts';

const runningCommand = /Running command (.+)$/;
const classicFrom = /Step \d+\/\d+ : FROM\s+(.+?)\s*$/i;
const buildkitFrom = /\[internal\] load metadata for (\S+)/;
/** BuildKit quotes the failing Dockerfile line: `Dockerfile:3`, then `   3 | >>> FROM node:20`. */
const buildkitFile = /^([^\s:]*Dockerfile[^\s:]*):\d+$/;
const buildkitQuote = /^\s*(\d+) \|\s*>>> (FROM\s+.+?)\s*$/i;

/**
 * FROM lines `docker build` printed, each tied to the buildspec command the log says was running; the
 * line BuildKit quotes from the Dockerfile when a FROM fails names the file and line number too.
 */
export function logPulls(lines: readonly string[], walk: Walk): BuildPull[] {
  const pulls: BuildPull[] = [];
  const stages = new Set<string>();
  let running: BuildCommand | undefined;
  let quotedFile: string | undefined;
  for (const line of lines) {
    const file = buildkitFile.exec(line.trim())?.[1];
    if (file !== undefined) {
      quotedFile = file;
      continue;
    }
    const quote = buildkitQuote.exec(line);
    if (quote && quotedFile !== undefined) {
      const written = quote[2]!;
      const image = written.split(/\s+/).filter((word) => !word.startsWith('--'))[1];
      const seen = pulls.find(
        (pull) => image !== undefined && canonicalReference(pull.reference) === canonicalReference(image),
      );
      if (seen && image !== undefined) {
        seen.reference = image;
        seen.file = quotedFile;
        seen.lineNumber = Number(quote[1]);
        seen.line = written;
        seen.where = `${quotedFile} line ${quote[1]}, as the build log quotes it`;
      }
      continue;
    }
    const started = runningCommand.exec(line)?.[1]?.trim();
    if (started !== undefined) {
      running = walk.commands.find((command) => {
        const first = command.text.trim().split('\n')[0]?.trim();
        return command.text.trim() === started || (first !== undefined && started.startsWith(first));
      });
      continue;
    }
    const classic = classicFrom.exec(line)?.[1];
    let reference: string | undefined;
    if (classic !== undefined) {
      const operands = classic.split(/\s+/).filter((word) => !word.startsWith('--'));
      reference = operands[0];
      const isStage = reference !== undefined && stages.has(reference.toLowerCase());
      if (operands[1]?.toUpperCase() === 'AS' && operands[2]) stages.add(operands[2].toLowerCase());
      if (isStage) continue;
    } else {
      reference = buildkitFrom.exec(line)?.[1];
    }
    if (reference === undefined || reference.includes('$') || reference === 'scratch') continue;
    if (tryParseReference(reference) === undefined) continue;
    const command = running ?? walk.firstBuild;
    pulls.push({
      reference,
      how: 'FROM',
      where: 'the build log',
      ...(command ? { command } : {}),
      line: classic !== undefined ? `FROM ${classic}` : `FROM ${reference}`,
    });
  }
  return pulls;
}

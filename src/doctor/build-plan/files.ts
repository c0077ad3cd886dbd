/** Dockerfiles and compose files of a build's source: the images they pull, the Dockerfiles compose builds. */
import { posix } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { tryParseReference } from '../../reference/index.ts';
import { normalizePath } from './commands.ts';
import { expand, type Scope } from './shell.ts';

export interface DockerfilePull {
  reference: string;
  how: 'FROM' | 'COPY --from';
  lineNumber: number;
  line: string;
}

/**
 * The images a Dockerfile pulls: each FROM that is not an earlier stage (or `scratch`), and each
 * `COPY --from=<image>`. `ARG` defaults before the first FROM, and `--build-arg` values over them,
 * resolve variables in FROM lines; a reference that stays unresolved is left out.
 */
export function dockerfilePulls(
  text: string,
  buildArgs: ReadonlyMap<string, string> = new Map(),
): DockerfilePull[] {
  const pulls: DockerfilePull[] = [];
  const stages = new Set<string>();
  const args = new Map<string, string>();
  let seenFrom = false;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNumber = i + 1;
    let line = lines[i]!;
    if (/^\s*#/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      i++;
      const next = lines[i]!;
      if (/^\s*#/.test(next)) continue;
      line = `${line.replace(/\\\s*$/, ' ')}${next}`;
    }
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const instruction = match[1]!.toUpperCase();
    const words = match[2]!.trim().split(/\s+/);
    const scope: Scope = { values: new Map([...args, ...buildArgs]), secret: new Set(), region: '' };
    if (instruction === 'ARG' && !seenFrom) {
      for (const word of words) {
        const equals = word.indexOf('=');
        const name = equals > 0 ? word.slice(0, equals) : word;
        const value = equals > 0 ? word.slice(equals + 1).replace(/^["']|["']$/g, '') : undefined;
        if (value !== undefined) args.set(name, value);
      }
      continue;
    }
    if (instruction === 'FROM') {
      seenFrom = true;
      const operands = words.filter((word) => !word.startsWith('--'));
      const alias = operands[1]?.toUpperCase() === 'AS' ? operands[2]?.toLowerCase() : undefined;
      const image = operands[0];
      if (image !== undefined) {
        const { text: reference, unresolved } = expand(image, scope);
        const pulled =
          unresolved.length === 0 &&
          reference !== 'scratch' &&
          !stages.has(reference.toLowerCase()) &&
          tryParseReference(reference) !== undefined;
        if (pulled) pulls.push({ reference, how: 'FROM', lineNumber, line: line.trim() });
      }
      if (alias !== undefined) stages.add(alias);
      continue;
    }
    if (instruction === 'COPY' || instruction === 'ADD') {
      for (const word of words) {
        const from = /^--from=(.+)$/.exec(word)?.[1];
        if (from === undefined || /^\d+$/.test(from) || stages.has(from.toLowerCase())) continue;
        const { text: reference, unresolved } = expand(from, scope);
        if (unresolved.length > 0 || tryParseReference(reference) === undefined) continue;
        pulls.push({ reference, how: 'COPY --from', lineNumber, line: line.trim() });
      }
    }
  }
  return pulls;
}

interface ComposeService {
  image?: unknown;
  build?: unknown;
}

/** Images a compose file pulls, and the Dockerfiles of the services it builds. */
export function composeContents(
  text: string,
  directory: string,
): { images: { reference: string; service: string }[]; dockerfiles: { path: string; service: string }[] } {
  const images: { reference: string; service: string }[] = [];
  const dockerfiles: { path: string; service: string }[] = [];
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch {
    return { images, dockerfiles };
  }
  const services = (parsed as { services?: Record<string, ComposeService | null> } | null)?.services;
  if (!services || typeof services !== 'object') return { images, dockerfiles };
  for (const [service, definition] of Object.entries(services)) {
    if (!definition || typeof definition !== 'object') continue;
    const build = definition.build;
    if (typeof build === 'string' || (build && typeof build === 'object')) {
      const given = typeof build === 'string' ? build : ((build as { context?: unknown }).context ?? '.');
      // A mapping or a list is no folder (compose refuses it): no Dockerfile to read.
      if (typeof given !== 'string' && typeof given !== 'number' && typeof given !== 'boolean') continue;
      const context = String(given);
      const file = typeof build === 'object' ? (build as { dockerfile?: unknown }).dockerfile : undefined;
      const path = normalizePath(
        directory,
        posix.join(context, typeof file === 'string' ? file : 'Dockerfile'),
      );
      if (path !== undefined) dockerfiles.push({ path, service });
      continue;
    }
    if (typeof definition.image === 'string') images.push({ reference: definition.image, service });
  }
  return { images, dockerfiles };
}

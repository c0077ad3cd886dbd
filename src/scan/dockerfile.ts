/**
 * Dockerfile / Containerfile: the images a build pulls. `FROM` (after `--platform=…`, before `AS name`),
 * `COPY --from=<image>` and `RUN --mount=…,from=<image>`; stage names and stage indexes are not images, nor
 * is `scratch`. `ARG` defaults are substituted (global ARGs, before the first FROM, for FROM; the stage's
 * ARGs, and global ARGs it redeclares, inside a stage). Parser directives (`# escape=`` ` ``), comments,
 * line continuations and heredocs are understood. Never throws.
 */
import { positionOf } from './types.ts';
import type { Extractor, FoundReference } from './types.ts';

const DOCKERFILE_NAME = /^(?:dockerfile|containerfile)(?:[.-].+)?$|\.(?:dockerfile|containerfile)$/i;

interface Token {
  text: string;
  offset: number;
}

interface Instruction {
  keyword: string;
  /** The instruction's arguments split on whitespace, each with its offset in the content. */
  args: Token[];
  /** The logical line after the keyword, continuations joined (for ARG values with quotes). */
  rest: string;
}

interface Line {
  text: string;
  start: number;
}

/** The content's lines without their `\n` or `\r\n`, each with the offset where it starts. */
function splitLines(content: string): Line[] {
  const lines: Line[] = [];
  let start = 0;
  while (start <= content.length) {
    let end = content.indexOf('\n', start);
    if (end === -1) end = content.length;
    let text = content.slice(start, end);
    if (text.endsWith('\r')) text = text.slice(0, -1);
    lines.push({ text, start });
    if (end === content.length) break;
    start = end + 1;
  }
  return lines;
}

/** The escape character set by the parser directives (`# key=value` lines at the very top); `\` by default. */
function escapeDirective(lines: Line[]): string {
  let escape = '\\';
  for (let lineIndex = 0; lineIndex < lines.length; lineIndex++) {
    const line = lines[lineIndex];
    if (!line) break;
    const directive = /^\s*#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$/.exec(line.text);
    if (!directive) break;
    if (directive[1]?.toLowerCase() === 'escape' && (directive[2] === '`' || directive[2] === '\\')) {
      escape = directive[2];
    }
  }
  return escape;
}

/** Removes the escape character's line continuations and comment lines, keeping each character's offset. */
function parseInstructions(content: string): Instruction[] {
  const lines = splitLines(content);
  const escape = escapeDirective(lines);
  let lineIndex = 0;

  const instructions: Instruction[] = [];
  while (lineIndex < lines.length) {
    const line = lines[lineIndex];
    lineIndex++;
    if (!line) break;
    if (/^\s*$/.test(line.text) || /^\s*#/.test(line.text)) continue;
    // Join continuation lines, remembering where each character came from.
    let chars = '';
    const offsets: number[] = [];
    let current = line;
    for (;;) {
      let text = current.text;
      const continued = new RegExp(`${escape === '\\' ? '\\\\' : '`'}\\s*$`).exec(text);
      if (continued) text = text.slice(0, continued.index);
      for (let index = 0; index < text.length; index++) {
        chars += text[index];
        offsets.push(current.start + index);
      }
      if (!continued) break;
      // Skip comment and empty lines inside a continuation.
      let next = lines[lineIndex];
      while (next && (/^\s*#/.test(next.text) || /^\s*$/.test(next.text))) {
        lineIndex++;
        next = lines[lineIndex];
      }
      if (!next) break;
      lineIndex++;
      // A space stands for the line break, with an offset that cannot join tokens across lines.
      chars += ' ';
      offsets.push(-1);
      current = next;
    }
    const tokens: Token[] = [];
    const pattern = /\S+/g;
    for (let match = pattern.exec(chars); match; match = pattern.exec(chars)) {
      const start = offsets[match.index] ?? -1;
      tokens.push({ text: match[0], offset: start });
    }
    const head = tokens.shift();
    if (!head) continue;
    const keyword = head.text.toUpperCase();
    const restStart = chars.indexOf(head.text) + head.text.length;
    instructions.push({ keyword, args: tokens, rest: chars.slice(restStart).trim() });
    if (keyword === 'RUN' || keyword === 'COPY' || keyword === 'ADD') {
      lineIndex = skipHeredocBodies(chars, lines, lineIndex);
    }
  }
  return instructions;
}

/**
 * Heredocs (`RUN <<EOF`, `COPY <<-"EOF" /x`) opened on an instruction's logical line: the index of the first
 * line after their bodies, which start at `lineIndex`.
 */
function skipHeredocBodies(chars: string, lines: Line[], lineIndex: number): number {
  const delimiters: { word: string; strip: boolean }[] = [];
  const heredoc = /<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2/g;
  for (let match = heredoc.exec(chars); match; match = heredoc.exec(chars)) {
    delimiters.push({ word: match[3] ?? '', strip: match[1] === '-' });
  }
  let index = lineIndex;
  for (const delimiter of delimiters) {
    while (index < lines.length) {
      const body = lines[index];
      index++;
      if (!body) break;
      const candidate = delimiter.strip ? body.text.replace(/^\t+/, '') : body.text;
      if (candidate === delimiter.word) break;
    }
  }
  return index;
}

function unquote(value: string): string {
  if (value.length >= 2) {
    const first = value[0];
    if ((first === '"' || first === "'") && value.endsWith(first)) return value.slice(1, -1);
  }
  return value;
}

/** Parses `ARG A=1 B "C=2"` into names and defaults (undefined when there is none). */
function parseArg(rest: string): [string, string | undefined][] {
  const out: [string, string | undefined][] = [];
  const pattern = /([A-Za-z_][A-Za-z0-9_]*)(?:=("(?:[^"\\]|\\.)*"|'[^']*'|\S*))?/g;
  for (let match = pattern.exec(rest); match; match = pattern.exec(rest)) {
    const name = match[1];
    if (!name) continue;
    out.push([name, match[2] === undefined ? undefined : unquote(match[2])]);
  }
  return out;
}

interface Substitution {
  value?: string;
  reason?: string;
}

/** Dockerfile variable substitution: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}`, `\$`. */
function substitute(text: string, scope: Map<string, string | undefined>, escape = '\\'): Substitution {
  let out = '';
  let reason: string | undefined;
  let index = 0;
  while (index < text.length) {
    const char = text[index];
    if (char === escape && text[index + 1] === '$') {
      out += '$';
      index += 2;
      continue;
    }
    if (char !== '$') {
      out += char;
      index++;
      continue;
    }
    let name: string | undefined;
    let operator: string | undefined;
    let argument = '';
    if (text[index + 1] === '{') {
      const close = text.indexOf('}', index + 2);
      if (close === -1) return { reason: 'has an unterminated ${…}' };
      const body = text.slice(index + 2, close);
      const match = /^([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([\s\S]*))?$/.exec(body);
      index = close + 1;
      if (!match) {
        reason ??= `uses \${${body}}, which cannot be resolved`;
        continue;
      }
      name = match[1];
      operator = match[2];
      argument = match[3] ?? '';
    } else {
      const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(index + 1));
      if (!match) {
        out += '$';
        index++;
        continue;
      }
      name = match[0];
      index += 1 + name.length;
    }
    if (name === undefined) continue;
    const declared = scope.has(name);
    const value = scope.get(name);
    const isSet = value !== undefined && value !== '';
    if (operator === '-') {
      if (isSet) out += value;
      else {
        const inner = substitute(argument, scope, escape);
        if (inner.reason !== undefined) reason ??= inner.reason;
        out += inner.value ?? '';
      }
    } else if (operator === '+') {
      if (isSet) {
        const inner = substitute(argument, scope, escape);
        if (inner.reason !== undefined) reason ??= inner.reason;
        out += inner.value ?? '';
      }
    } else if (!declared) {
      reason ??= `uses $${name}, which is not declared by an ARG`;
    } else if (value === undefined) {
      reason ??= `uses $${name}, which has no default`;
    } else if (value === '') {
      reason ??= `uses $${name}, whose default is empty`;
    } else {
      out += value;
    }
  }
  if (reason !== undefined) return { reason };
  return { value: out };
}

type Scope = Map<string, string | undefined>;
type Report = (text: string, offset: number, variables: Scope, context: string) => void;

/** Records an ARG's names: into the globals before the first FROM, else into the stage's scope. */
function declareArgs(rest: string, sawFrom: boolean, scope: Scope, globals: Scope): void {
  for (const [name, value] of parseArg(rest)) {
    const target = sawFrom ? scope : globals;
    if (value !== undefined) {
      const resolved = substitute(value, sawFrom ? scope : globals);
      target.set(name, resolved.value ?? undefined);
    } else if (sawFrom && globals.has(name)) {
      target.set(name, globals.get(name));
    } else {
      target.set(name, undefined);
    }
  }
}

/** `COPY --from=<image>` among the flags that lead the arguments. */
function reportCopyFrom(args: Token[], scope: Scope, stageLabel: string, report: Report): void {
  for (const token of args) {
    if (!token.text.startsWith('--')) break;
    const match = /^--from=/i.exec(token.text);
    if (!match) continue;
    const raw = token.text.slice(match[0].length);
    const value = unquote(raw);
    const offset = token.offset + match[0].length + (value === raw ? 0 : 1);
    report(value, offset, scope, `${stageLabel}, COPY --from`);
  }
}

/** `RUN --mount=…,from=<image>` among the flags that lead the arguments. */
function reportRunMountFrom(args: Token[], scope: Scope, stageLabel: string, report: Report): void {
  for (const token of args) {
    if (!token.text.startsWith('--')) break;
    const match = /^--mount=/i.exec(token.text);
    if (!match) continue;
    let position = match[0].length;
    for (const part of token.text.slice(position).split(',')) {
      const pair = /^from=/i.exec(part);
      if (pair) {
        const raw = part.slice(pair[0].length);
        const value = unquote(raw);
        const offset = token.offset + position + pair[0].length + (value === raw ? 0 : 1);
        report(value, offset, scope, `${stageLabel}, RUN --mount from`);
      }
      position += part.length + 1;
    }
  }
}

export function extractDockerfile(file: string, content: string): FoundReference[] {
  const found: FoundReference[] = [];
  let instructions: Instruction[];
  try {
    instructions = parseInstructions(content);
  } catch {
    return [];
  }
  const globals: Scope = new Map();
  const stages: string[] = [];
  let stageCount = 0;
  let scope: Scope = new Map();
  let sawFrom = false;
  let stageLabel = '';

  const isStage = (value: string): boolean => /^\d+$/.test(value) || stages.includes(value.toLowerCase());

  const report: Report = (text, offset, variables, context) => {
    if (offset < 0 || text === '' || content.slice(offset, offset + text.length) !== text) return;
    const substitution = text.includes('$') ? substitute(text, variables) : { value: text };
    const resolved = substitution.value;
    if (resolved !== undefined && (resolved.toLowerCase() === 'scratch' || isStage(resolved))) {
      return;
    }
    const { line, column } = positionOf(content, offset);
    const reference: FoundReference = { file, line, column, offset, text, kind: 'dockerfile' };
    if (resolved !== undefined && resolved !== text) reference.resolved = resolved;
    if (substitution.reason !== undefined) reference.unresolved = substitution.reason;
    reference.context = context;
    found.push(reference);
  };

  for (const instruction of instructions) {
    try {
      const { keyword, args } = instruction;
      if (keyword === 'ARG') {
        declareArgs(instruction.rest, sawFrom, scope, globals);
        continue;
      }
      if (keyword === 'FROM') {
        sawFrom = true;
        const positional = args.filter((token) => !token.text.startsWith('--'));
        const image = positional[0];
        const asWord = positional[1];
        const name =
          asWord && asWord.text.toUpperCase() === 'AS' ? positional[2]?.text.toLowerCase() : undefined;
        stageLabel = name !== undefined ? `stage ${name}` : `stage ${stageCount}`;
        if (image) report(image.text, image.offset, globals, stageLabel);
        if (name !== undefined) stages.push(name);
        stageCount++;
        scope = new Map();
        continue;
      }
      if (!sawFrom) continue;
      if (keyword === 'COPY') {
        reportCopyFrom(args, scope, stageLabel, report);
        continue;
      }
      if (keyword === 'RUN') reportRunMountFrom(args, scope, stageLabel, report);
    } catch {
      // Keep going: one odd instruction must not hide the others.
    }
  }
  return found;
}

export const dockerfileExtractor: Extractor = {
  kind: 'dockerfile',
  matches(path: string): boolean {
    const base = path.slice(path.lastIndexOf('/') + 1);
    if (/\.(?:ya?ml|json|md|txt|sh|ts|js|py|go|rs|java|rb|lock|dockerignore)$/i.test(base)) {
      return /\.(?:dockerfile|containerfile)$/i.test(base);
    }
    return DOCKERFILE_NAME.test(base);
  },
  extract(path: string, content: string): FoundReference[] {
    return extractDockerfile(path, content);
  },
};

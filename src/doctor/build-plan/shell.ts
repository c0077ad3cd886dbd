/** Shell words as a POSIX shell reads them, and the variables the build's commands set and use. */

type Separator = 'start' | '|' | '&&' | '||' | ';';

export interface Segment {
  words: string[];
  /** How this segment is joined to the one before it. */
  after: Separator;
}

/**
 * Splits a command into simple commands and words, as a POSIX shell would for what doctor needs: quotes
 * removed, `$(…)` and backquotes kept whole, line continuations joined, comments dropped. Variables stay
 * as written (`expand` resolves them).
 */
export function splitCommand(text: string): Segment[] {
  const reader = new CommandReader();
  for (let i = 0; i < text.length; i++) i = reader.read(text, i);
  reader.endSegment(';');
  return reader.segments;
}

/** The words and simple commands of one command line, read a character at a time. */
class CommandReader {
  readonly segments: Segment[] = [];
  private words: string[] = [];
  private word = '';
  private inWord = false;
  private quote: '"' | "'" | undefined;
  /** How deep inside `$(…)` the current word is. */
  private depth = 0;
  private after: Separator = 'start';

  /** Reads the character at `i`, and returns the index of the last character it took. */
  read(text: string, i: number): number {
    const ch = text[i]!;
    const next = text[i + 1];
    if (this.quote === "'") {
      if (ch === "'") this.quote = undefined;
      else this.word += ch;
      return i;
    }
    if (ch === '\\' && next === '\n') return i + 1;
    if (ch === '\\' && next !== undefined) {
      this.word += this.quote === '"' && !'"\\$`'.includes(next) ? `\\${next}` : next;
      this.inWord = true;
      return i + 1;
    }
    if (this.quote === '"') {
      if (ch === '"') this.quote = undefined;
      else this.word += ch;
      return i;
    }
    if (this.depth > 0) {
      this.word += ch;
      if (ch === '(') this.depth++;
      else if (ch === ')') this.depth--;
      return i;
    }
    return this.readUnquoted(text, i);
  }

  private readUnquoted(text: string, i: number): number {
    const ch = text[i]!;
    const next = text[i + 1];
    if (ch === '$' && next === '(') {
      this.word += '$(';
      this.inWord = true;
      this.depth = 1;
      return i + 1;
    }
    if (ch === '`') {
      const end = text.indexOf('`', i + 1);
      const body = end === -1 ? text.slice(i + 1) : text.slice(i + 1, end);
      this.word += `$(${body})`;
      this.inWord = true;
      return end === -1 ? text.length : end;
    }
    if (ch === "'" || ch === '"') {
      this.quote = ch;
      this.inWord = true;
      return i;
    }
    if (ch === '#' && !this.inWord) {
      const end = text.indexOf('\n', i);
      return end === -1 ? text.length : end - 1;
    }
    const operator = operatorAt(ch, next);
    if (operator) {
      this.endSegment(operator.separator);
      return i + operator.length - 1;
    }
    if (/\s/.test(ch)) {
      this.endWord();
      return i;
    }
    this.word += ch;
    this.inWord = true;
    return i;
  }

  private endWord(): void {
    if (this.inWord) this.words.push(this.word);
    this.word = '';
    this.inWord = false;
  }

  endSegment(next: Separator): void {
    this.endWord();
    if (this.words.length > 0) this.segments.push({ words: this.words, after: this.after });
    this.words = [];
    this.after = next;
  }
}

/** The control operator at a character: `&&`, `||`, `|`, and `;`, a newline or `&` (run on, for doctor). */
function operatorAt(
  ch: string,
  next: string | undefined,
): { separator: Separator; length: number } | undefined {
  if (ch === '&' && next === '&') return { separator: '&&', length: 2 };
  if (ch === '|' && next === '|') return { separator: '||', length: 2 };
  if (ch === '|') return { separator: '|', length: 1 };
  if (ch === ';' || ch === '\n' || ch === '&') return { separator: ';', length: 1 };
  return undefined;
}

/** What the shell knows while the build's commands run. */
export interface Scope {
  /** Known values. */
  values: Map<string, string>;
  /** Variables whose value is a secret or parameter: set at run time, unknown here. */
  secret: Set<string>;
  region: string;
  accountId?: string;
}

/** The caller's account, as commands commonly compute it. */
const accountCommand = /^\$\(\s*aws\s+sts\s+get-caller-identity\b[^)]*Account[^)]*\)$/;

/**
 * Resolves `$NAME`, `${NAME}`, `${NAME:-default}` (and `:=`) and the account id command substitution;
 * what stays unknown is left as written and named in `unresolved`.
 */
export function expand(word: string, scope: Scope, depth = 0): { text: string; unresolved: string[] } {
  const unresolved: string[] = [];
  if (accountCommand.test(word.trim()) && scope.accountId) return { text: scope.accountId, unresolved };
  const text = word.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-=]([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (whole, braced: string | undefined, fallback: string | undefined, bare: string | undefined) => {
      const name = braced ?? bare ?? '';
      const value = scope.values.get(name);
      if (value !== undefined) {
        if (depth < 4 && value.includes('$')) {
          const inner = expand(value, scope, depth + 1);
          unresolved.push(...inner.unresolved);
          return inner.text;
        }
        return value;
      }
      if (fallback !== undefined) return fallback;
      unresolved.push(name);
      return whole;
    },
  );
  if (/\$\(/.test(text)) unresolved.push(text.slice(text.indexOf('$(')));
  return { text, unresolved: [...new Set(unresolved)] };
}

export function isAssignment(word: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*=/.test(word);
}

/**
 * A fast reader for the plain shapes most configuration files are written in: block mappings and sequences
 * of single-line plain or quoted scalars (YAML), and JSON. For those it builds the same tree the `yaml`
 * package builds (its node classes, values resolved by the YAML 1.2 core schema, scalar styles, and scalar
 * source ranges), several times faster. For anything else (anchors, aliases, tags, merge keys, flow
 * collections in YAML, block scalars, multi-line or escaped YAML scalars, empty values, tabs, CR, directives,
 * `...`) it returns undefined, and the caller uses the full parser: the fast path never guesses.
 *
 * Scalar ranges are `[start, valueEnd, valueEnd]`: the first two match the `yaml` package (what extractors
 * use); collection ranges are approximate and no extractor that takes this path reads them.
 */
import { Pair, Scalar, YAMLMap, YAMLSeq } from 'yaml';
import type { Node } from 'yaml';

/**
 * Nodes are made from prototypes that already carry the mark the `yaml` package's own constructors add to
 * every node (its registered `yaml.node.type` symbol, which `isMap`, `isScalar`, ... read), so a node costs
 * a few property stores instead of a constructor with `Object.defineProperty` calls: about six times less
 * per node. They are still instances of the package's classes, with all their methods.
 */
const nodeTypeMark = Symbol.for('yaml.node.type');

function markedPrototype<T extends object>(prototype: T, type: string, collection: boolean): T {
  const properties: PropertyDescriptorMap = { [nodeTypeMark]: { value: Symbol.for(type) } };
  if (collection) properties.schema = { value: undefined, writable: true, configurable: true };
  return Object.create(prototype, properties) as T;
}

const scalarPrototype = markedPrototype(Scalar.prototype, 'yaml.scalar', false);
const mapPrototype = markedPrototype(YAMLMap.prototype, 'yaml.map', true);
const seqPrototype = markedPrototype(YAMLSeq.prototype, 'yaml.seq', true);
const pairPrototype = markedPrototype(Pair.prototype, 'yaml.pair', false);

function newMap(): YAMLMap<unknown, unknown> {
  const map = Object.create(mapPrototype) as YAMLMap<unknown, unknown>;
  map.items = [];
  return map;
}

function newSeq(): YAMLSeq<unknown> {
  const seq = Object.create(seqPrototype) as YAMLSeq<unknown>;
  seq.items = [];
  return seq;
}

function newPair(key: Node, value: Node): Pair<Node, Node> {
  const pair = Object.create(pairPrototype) as Pair<Node, Node>;
  pair.key = key;
  pair.value = value;
  return pair;
}

/**
 * Thrown inside the reader when the input leaves the supported subset; never escapes this module. Made once,
 * so a throw records no stack: leaving the fast path costs no more than returning.
 */
const notSimple = new Error('outside the subset the fast YAML reader handles');

/** Characters the fast path does not handle anywhere (tabs, CR, controls, BOM, line separators, surrogates). */
// eslint-disable-next-line no-control-regex -- control characters are exactly what this must find
const unsupportedCharacter = /[\t\r\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\u2028\u2029\ud800-\udfff]/;

/** The `yaml` package reports implicit keys longer than this as errors; such files take the full parser. */
const maxKeyLength = 1000;

/**
 * The root node of every document, or undefined when the content is outside the supported subset (or has
 * no document, or an empty one).
 */
export function parseSimpleYaml(content: string): Node[] | undefined {
  if (unsupportedCharacter.test(content)) return undefined;
  try {
    let first = 0;
    while (first < content.length && (content[first] === ' ' || content[first] === '\n')) first++;
    const head = content[first];
    if (head === '{' || head === '[') return [new JsonReader(content).document(first)];
    return new BlockReader(content).documents();
  } catch (error) {
    if (error === notSimple) return undefined;
    throw error;
  }
}

const code0 = 48;
const code9 = 57;

/** A plain scalar's value under the YAML 1.2 core schema (null, booleans, ints, floats, else the string). */
export function resolvePlain(text: string): string | number | boolean | null {
  const length = text.length;
  if (length === 0) return null;
  const first = text.charCodeAt(0);
  if (length <= 5) {
    switch (text) {
      case '~':
      case 'null':
      case 'Null':
      case 'NULL':
        return null;
      case 'true':
      case 'True':
      case 'TRUE':
        return true;
      case 'false':
      case 'False':
      case 'FALSE':
        return false;
    }
  }
  // Every number form starts with a digit, a sign or a dot.
  if (!((first >= code0 && first <= code9) || first === 43 || first === 45 || first === 46)) return text;
  if (/^0o[0-7]+$/.test(text)) return parseInt(text.slice(2), 8);
  if (/^[-+]?[0-9]+$/.test(text)) return parseInt(text, 10);
  if (/^0x[0-9a-fA-F]+$/.test(text)) return parseInt(text.slice(2), 16);
  if (/^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/.test(text)) {
    if (text.endsWith('nan') || text.endsWith('NaN') || text.endsWith('NAN')) return NaN;
    return text.startsWith('-') ? -Infinity : Infinity;
  }
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/.test(text)) return parseFloat(text);
  if (/^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/.test(text)) return parseFloat(text);
  return text;
}

function scalarNode(
  value: unknown,
  source: string,
  type: Scalar.Type,
  start: number,
  end: number,
): Scalar<unknown> {
  const node = Object.create(scalarPrototype) as Scalar<unknown>;
  node.value = value;
  node.range = [start, end, end];
  node.source = source;
  node.type = type;
  return node;
}

function plainNode(source: string, start: number, end: number): Scalar<unknown> {
  return scalarNode(resolvePlain(source), source, 'PLAIN', start, end);
}

/** An empty value (`key:` with nothing after it, `- ` alone): a null plain scalar where the value would start. */
function nullNode(at: number): Scalar<unknown> {
  return scalarNode(null, '', 'PLAIN', at, at);
}

/** Characters that end a plain scalar inside a flow collection. */
const flowIndicators = ',[]{}';

// ---------------------------------------------------------------------------------------------------------
// JSON

class JsonReader {
  readonly content: string;
  index = 0;

  constructor(content: string) {
    this.content = content;
  }

  document(start: number): Node {
    this.index = start;
    const root = this.value();
    this.skipSpace();
    if (this.index !== this.content.length) throw notSimple;
    return root;
  }

  skipSpace(): void {
    const content = this.content;
    let index = this.index;
    while (index < content.length) {
      const char = content.charCodeAt(index);
      if (char !== 32 && char !== 10) break;
      index++;
    }
    this.index = index;
  }

  value(): Node {
    this.skipSpace();
    const content = this.content;
    const start = this.index;
    const char = content[start];
    if (char === '{') return this.object(start);
    if (char === '[') return this.array(start);
    if (char === '"') {
      const { end, value, source } = this.string(start);
      return scalarNode(value, source, 'QUOTE_DOUBLE', start, end);
    }
    const literal = /^(?:true|false|null|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)/.exec(
      content.slice(start, start + 64),
    );
    if (!literal) throw notSimple;
    const text = literal[0];
    const end = start + text.length;
    // A literal must end at a delimiter, as in JSON.
    const after = content[end];
    if (after !== undefined && !' \n,]}'.includes(after)) throw notSimple;
    this.index = end;
    return plainNode(text, start, end);
  }

  string(start: number): { end: number; value: string; source: string } {
    const content = this.content;
    let index = start + 1;
    let escaped = false;
    for (;;) {
      const char = content.charCodeAt(index);
      if (Number.isNaN(char) || char === 10) throw notSimple;
      if (char === 92) {
        escaped = true;
        index += 2;
        continue;
      }
      if (char === 34) break;
      index++;
    }
    const end = index + 1;
    this.index = end;
    if (!escaped) {
      const value = content.slice(start + 1, index);
      return { end, value, source: value };
    }
    let value: unknown;
    try {
      value = JSON.parse(content.slice(start, end));
    } catch {
      throw notSimple;
    }
    if (typeof value !== 'string') throw notSimple;
    return { end, value, source: value };
  }

  object(start: number): Node {
    const map = newMap();
    map.flow = true;
    this.index = start + 1;
    this.skipSpace();
    const content = this.content;
    if (content[this.index] === '}') {
      this.index++;
    } else {
      for (;;) {
        this.skipSpace();
        const keyStart = this.index;
        if (content[keyStart] !== '"') throw notSimple;
        const key = this.string(keyStart);
        if (key.end - keyStart > maxKeyLength) throw notSimple;
        // The colon must follow on the same line: YAML does not allow a line break inside an implicit key.
        while (content[this.index] === ' ') this.index++;
        if (content[this.index] !== ':') throw notSimple;
        this.index++;
        const keyNode = scalarNode(key.value, key.source, 'QUOTE_DOUBLE', keyStart, key.end);
        map.items.push(newPair(keyNode, this.value()));
        this.skipSpace();
        const next = content[this.index];
        this.index++;
        if (next === ',') continue;
        if (next === '}') break;
        throw notSimple;
      }
    }
    map.range = [start, this.index, this.index];
    return map;
  }

  array(start: number): Node {
    const seq = newSeq();
    seq.flow = true;
    this.index = start + 1;
    this.skipSpace();
    const content = this.content;
    if (content[this.index] === ']') {
      this.index++;
    } else {
      for (;;) {
        seq.items.push(this.value());
        this.skipSpace();
        const next = content[this.index];
        this.index++;
        if (next === ',') continue;
        if (next === ']') break;
        throw notSimple;
      }
    }
    seq.range = [start, this.index, this.index];
    return seq;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Block YAML

/** Characters that cannot start a plain scalar (YAML indicators), besides `-`, `?` and `:` followed by a space. */
const indicatorStart = new Set([',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '%', '@', '`']);

class BlockReader {
  readonly content: string;
  /** Per line: offset of its first character, offset of its end (the `\n` or the content end), indentation. */
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  readonly indents: number[] = [];
  /** Per line: 0 content, 1 blank or comment, 2 document start marker (`---`). */
  readonly kinds: number[] = [];
  /** The next line to read. */
  line = 0;

  constructor(content: string) {
    this.content = content;
    let start = 0;
    while (start <= content.length) {
      let end = content.indexOf('\n', start);
      if (end === -1) end = content.length;
      let indent = start;
      while (indent < end && content.charCodeAt(indent) === 32) indent++;
      let kind = 0;
      if (indent === end || content.charCodeAt(indent) === 35) kind = 1;
      else if (indent === start && (content.startsWith('---', start) || content.startsWith('...', start))) {
        // Only a bare `---` is supported; `--- value`, `...` and `----` take the full parser.
        if (end !== start + 3 || content[start] !== '-') throw notSimple;
        kind = 2;
      } else if (indent === start && content.charCodeAt(start) === 37) {
        throw notSimple; // a directive (`%YAML`, `%TAG`)
      }
      this.starts.push(start);
      this.ends.push(end);
      this.indents.push(indent - start);
      this.kinds.push(kind);
      if (end === content.length) break;
      start = end + 1;
    }
  }

  /** Skips blank and comment lines; returns the next content line, or -1 at a document marker or the end. */
  nextContent(): number {
    const count = this.kinds.length;
    while (this.line < count) {
      const kind = this.kinds[this.line];
      if (kind === 0) return this.line;
      if (kind === 2) return -1;
      this.line++;
    }
    return -1;
  }

  documents(): Node[] {
    const roots: Node[] = [];
    const count = this.kinds.length;
    // One leading `---` opens the first document; every later one must be followed by a document.
    if (this.nextContent() === -1 && this.line < count) this.line++;
    for (;;) {
      const line = this.nextContent();
      if (line === -1) throw notSimple; // an empty document
      roots.push(this.node(line, this.indents[line]!, -1));
      // After a document's root only a marker or the end may follow.
      if (this.nextContent() !== -1) throw notSimple;
      if (this.line >= count) return roots;
      this.line++;
    }
  }

  /** A node starting at column `column` of `line` (its first line's content may start mid-line, after `- `). */
  node(line: number, column: number, parentIndent: number): Node {
    const start = this.starts[line]! + column;
    const content = this.content;
    const char = content[start];
    if (char === '-' && this.isBlank(start + 1)) return this.sequence(line, column);
    if (char === '|' || char === '>') return this.blockScalar(line, start, parentIndent);
    if (char === '[' || char === '{') return this.flowOnLine(line, start, parentIndent);
    if (this.keyColon(start, this.ends[line]!) !== -1) return this.mapping(line, column);
    const scalar = this.inlineScalar(start, this.ends[line]!);
    this.line = line + 1;
    this.endOfNode(parentIndent);
    return scalar;
  }

  /** After a single-line value: the next content line must not be indented deeper (a continuation). */
  endOfNode(indent: number): void {
    const next = this.nextContent();
    if (next !== -1 && this.indents[next]! > indent) throw notSimple;
  }

  /** Whether the character at `index` is a space, a line end or the content end. */
  isBlank(index: number): boolean {
    const char = this.content[index];
    return char === undefined || char === ' ' || char === '\n';
  }

  sequence(firstLine: number, column: number): Node {
    const seq = newSeq();
    const start = this.starts[firstLine]! + column;
    let line = firstLine;
    let itemColumn = column;
    for (;;) {
      const dash = this.starts[line]! + itemColumn;
      let after = dash + 1;
      const end = this.ends[line]!;
      while (after < end && this.content[after] === ' ') after++;
      if (after === end || (this.content[after] === '#' && after > dash + 1)) {
        this.line = line + 1;
        const next = this.nextContent();
        if (next !== -1 && this.indents[next]! > column) {
          seq.items.push(this.node(next, this.indents[next]!, column));
        } else seq.items.push(nullNode(after)); // an empty item
      } else {
        seq.items.push(this.node(line, after - this.starts[line]!, column));
      }
      const next = this.nextContent();
      if (next === -1) break;
      const indent = this.indents[next]!;
      if (indent > column) throw notSimple;
      if (indent < column) break;
      const first = this.starts[next]! + indent;
      if (!(this.content[first] === '-' && this.isBlank(first + 1))) break;
      line = next;
      itemColumn = indent;
    }
    const last = seq.items[seq.items.length - 1] as Node;
    const end = last.range?.[1] ?? start;
    seq.range = [start, end, end];
    return seq;
  }

  mapping(firstLine: number, column: number): Node {
    const map = newMap();
    const content = this.content;
    const start = this.starts[firstLine]! + column;
    let line = firstLine;
    let keyColumn = column;
    for (;;) {
      const lineEnd = this.ends[line]!;
      const keyStart = this.starts[line]! + keyColumn;
      const colon = this.keyColon(keyStart, lineEnd);
      if (colon === -1 || colon - keyStart > maxKeyLength) throw notSimple;
      const key = this.keyScalar(keyStart, colon);
      let valueStart = colon + 1;
      while (valueStart < lineEnd && content[valueStart] === ' ') valueStart++;
      let value: Node;
      if (valueStart === lineEnd || content[valueStart] === '#') {
        this.line = line + 1;
        const next = this.nextContent();
        const indent = next === -1 ? -1 : this.indents[next]!;
        const first = next === -1 ? -1 : this.starts[next]! + indent;
        if (next !== -1 && indent > column) value = this.node(next, indent, column);
        else if (indent === column && content[first] === '-' && this.isBlank(first + 1)) {
          value = this.sequence(next, indent);
        } else value = nullNode(valueStart); // an empty value
      } else {
        const char = content[valueStart];
        if ((char === '-' || char === '?' || char === ':') && this.isBlank(valueStart + 1)) throw notSimple;
        if (char === '|' || char === '>') value = this.blockScalar(line, valueStart, column);
        else if (char === '[' || char === '{') value = this.flowOnLine(line, valueStart, column);
        else {
          if (this.keyColon(valueStart, lineEnd) !== -1) throw notSimple; // `a: b: c`
          value = this.inlineScalar(valueStart, lineEnd);
          this.line = line + 1;
          this.endOfNode(column);
        }
      }
      map.items.push(newPair(key, value));
      const next = this.nextContent();
      if (next === -1) break;
      const indent = this.indents[next]!;
      if (indent > column) throw notSimple;
      if (indent < column) break;
      line = next;
      keyColumn = indent;
    }
    const last = map.items[map.items.length - 1]?.value as Node;
    const end = last.range?.[1] ?? start;
    map.range = [start, end, end];
    return map;
  }

  /**
   * The offset of the `:` that ends an implicit key starting at `start`, or -1 when the text there is not a
   * key. Quoted keys must be followed directly by the colon.
   */
  keyColon(start: number, end: number): number {
    const content = this.content;
    const char = content[start];
    if (char === '"' || char === "'") {
      const close = this.closingQuote(start, end);
      if (close === -1) return -1;
      return content[close + 1] === ':' && this.isBlank(close + 2) ? close + 1 : -1;
    }
    for (let index = start; index < end; index++) {
      const at = content[index];
      if (at === ':' && this.isBlank(index + 1)) return index;
      if (at === '#' && index > start && content[index - 1] === ' ') return -1;
    }
    return -1;
  }

  /** The offset of the quote closing the one at `start` on this line, or -1. */
  closingQuote(start: number, end: number): number {
    const content = this.content;
    const quote = content[start];
    for (let index = start + 1; index < end; index++) {
      const at = content[index];
      if (quote === '"' && at === '\\') throw notSimple; // escapes take the full parser
      if (at !== quote) continue;
      if (quote === "'" && content[index + 1] === "'") {
        index++;
        continue;
      }
      return index;
    }
    return -1;
  }

  keyScalar(start: number, colon: number): Scalar<unknown> {
    const content = this.content;
    const char = content[start]!;
    if (char === '"' || char === "'") return this.quoted(start, colon - 1);
    if (colon === start || content[colon - 1] === ' ') throw notSimple; // empty key, or space before `:`
    this.checkPlainStart(start);
    const source = content.slice(start, colon);
    if (source === '<<') throw notSimple; // merge keys
    return plainNode(source, start, colon);
  }

  /** A quoted scalar whose quotes are at `start` and `close`. */
  quoted(start: number, close: number): Scalar<unknown> {
    const inner = this.content.slice(start + 1, close);
    if (this.content[start] === '"') return scalarNode(inner, inner, 'QUOTE_DOUBLE', start, close + 1);
    const value = inner.includes("''") ? inner.replaceAll("''", "'") : inner;
    return scalarNode(value, value, 'QUOTE_SINGLE', start, close + 1);
  }

  /** A scalar that must end its line (a comment may follow). */
  inlineScalar(start: number, end: number): Scalar<unknown> {
    const content = this.content;
    const char = content[start];
    if (char === '"' || char === "'") {
      const close = this.closingQuote(start, end);
      if (close === -1) throw notSimple; // continues on the next line
      let after = close + 1;
      while (after < end && content[after] === ' ') after++;
      if (after < end && !(content[after] === '#' && after > close + 1)) throw notSimple;
      return this.quoted(start, close);
    }
    this.checkPlainStart(start);
    let stop = end;
    for (let index = start + 1; index < end; index++) {
      const at = content[index];
      if (at === '#' && content[index - 1] === ' ') {
        stop = index;
        break;
      }
      if (at === ':' && this.isBlank(index + 1)) throw notSimple;
    }
    while (stop > start && content[stop - 1] === ' ') stop--;
    return plainNode(content.slice(start, stop), start, stop);
  }

  /**
   * A literal (`|`) or folded (`>`) block scalar whose header is at `start`, inside a node indented
   * `parentIndent`. Taken: clip and strip chomping, the indentation found from the first line, and for folded
   * scalars only lines at that indentation. Keep chomping (`+`), indentation indicators, lines with more
   * spaces than the indentation where it matters, and a block scalar as a document's root take the full parser.
   */
  blockScalar(line: number, start: number, parentIndent: number): Scalar<unknown> {
    if (parentIndent < 0) throw notSimple;
    const content = this.content;
    const headerEnd = this.ends[line]!;
    const folded = content[start] === '>';
    let index = start + 1;
    let strip = false;
    if (content[index] === '-') {
      strip = true;
      index++;
    }
    let after = index;
    while (after < headerEnd && content[after] === ' ') after++;
    if (after < headerEnd && !(content[after] === '#' && after > index)) throw notSimple;
    const count = this.starts.length;
    let indent = -1;
    /** The value's lines (blank ones included) up to its last non-blank line. */
    const body: number[] = [];
    let pendingBlank = 0;
    let next = line + 1;
    for (; next < count; next++) {
      const lead = this.indents[next]!;
      if (lead === this.ends[next]! - this.starts[next]!) {
        // Whitespace beyond the indentation would be content: rare, and left to the full parser.
        if (lead > 0 && (indent === -1 || lead > indent)) throw notSimple;
        pendingBlank++;
        continue;
      }
      if (indent === -1) {
        if (lead <= parentIndent) break;
        indent = lead;
      } else if (lead < indent) break;
      if (folded && (lead > indent || (body.length === 0 && pendingBlank > 0))) throw notSimple;
      for (; pendingBlank > 0; pendingBlank--) body.push(-1);
      body.push(next);
    }
    this.line = next;
    if (indent === -1 && pendingBlank > 0) throw notSimple;
    let value = '';
    let blanks = 0;
    let first = true;
    for (const bodyLine of body) {
      if (bodyLine === -1) {
        if (!folded) value += '\n';
        blanks++;
        continue;
      }
      const text = content.slice(this.starts[bodyLine]! + indent, this.ends[bodyLine]);
      if (first) value += text;
      else if (!folded) value += `\n${text}`;
      else value += (blanks === 0 ? ' ' : '\n'.repeat(blanks)) + text;
      first = false;
      blanks = 0;
    }
    if (body.length > 0 && !strip) value += '\n';
    const lastLine = body.length > 0 ? body[body.length - 1]! : line;
    const end = Math.min(this.ends[lastLine]! + 1, content.length);
    return scalarNode(value, value, folded ? 'BLOCK_FOLDED' : 'BLOCK_LITERAL', start, end);
  }

  /** A flow collection that opens at `start` and closes on the same line, where a comment may follow it. */
  flowOnLine(line: number, start: number, parentIndent: number): Node {
    const content = this.content;
    const end = this.ends[line]!;
    const { node, next } = this.flowCollection(start, end);
    let after = next;
    while (after < end && content[after] === ' ') after++;
    if (after < end && !(content[after] === '#' && after > next)) throw notSimple;
    this.line = line + 1;
    this.endOfNode(parentIndent);
    return node;
  }

  /** `[a, "b", {c: d}]` or `{a: b}` on one line: plain scalars without `:` or `#`, quoted ones without escapes. */
  flowCollection(start: number, end: number): { node: Node; next: number } {
    const content = this.content;
    const isSeq = content[start] === '[';
    const close = isSeq ? ']' : '}';
    const collection = isSeq ? newSeq() : newMap();
    collection.flow = true;
    let index = this.skipSpaces(start + 1, end);
    if (content[index] === close) index++;
    else {
      for (;;) {
        if (isSeq) {
          const item = this.flowItem(index, end, false);
          (collection as YAMLSeq<unknown>).items.push(item.node);
          index = item.next;
        } else {
          const key = this.flowItem(index, end, true);
          if (content[key.next] !== ':' || content[key.next + 1] !== ' ') throw notSimple;
          const value = this.flowItem(this.skipSpaces(key.next + 1, end), end, false);
          (collection as YAMLMap<unknown, unknown>).items.push(newPair(key.node, value.node));
          index = value.next;
        }
        index = this.skipSpaces(index, end);
        const char = content[index];
        index++;
        if (char === close) break;
        if (char !== ',') throw notSimple;
        index = this.skipSpaces(index, end);
        if (content[index] === close) throw notSimple; // a trailing comma
      }
    }
    collection.range = [start, index, index];
    return { node: collection, next: index };
  }

  /** One entry of a flow collection: a nested collection (not as a key), a quoted or a plain scalar. */
  flowItem(start: number, end: number, isKey: boolean): { node: Node; next: number } {
    const content = this.content;
    const char = content[start];
    if (start >= end) throw notSimple;
    if (char === '[' || char === '{') {
      if (isKey) throw notSimple;
      return this.flowCollection(start, end);
    }
    if (char === '"' || char === "'") {
      const close = this.closingQuote(start, end);
      if (close === -1) throw notSimple;
      return { node: this.quoted(start, close), next: close + 1 };
    }
    this.checkPlainStart(start);
    if ((char === '-' || char === '?' || char === ':') && flowIndicators.includes(content[start + 1] ?? '')) {
      throw notSimple;
    }
    let index = start;
    for (; index < end; index++) {
      const at = content[index]!;
      if (flowIndicators.includes(at)) break;
      if (at === ':' && isKey) break;
      if (at === ':' || at === '#') throw notSimple;
    }
    let stop = index;
    while (stop > start && content[stop - 1] === ' ') stop--;
    if (stop === start) throw notSimple;
    return { node: plainNode(content.slice(start, stop), start, stop), next: index };
  }

  skipSpaces(index: number, end: number): number {
    while (index < end && this.content[index] === ' ') index++;
    return index;
  }

  checkPlainStart(start: number): void {
    const content = this.content;
    const char = content[start]!;
    if (indicatorStart.has(char)) throw notSimple;
    if ((char === '-' || char === '?' || char === ':') && this.isBlank(start + 1)) throw notSimple;
  }
}

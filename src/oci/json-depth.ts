/**
 * A bound on how deeply JSON text nests, checked before `JSON.parse` sees it. Parsing millions of nested
 * arrays takes the parser seconds on one thread, while counting brackets takes one pass over the bytes.
 */

const quote = 0x22;
const backslash = 0x5c;
const openBracket = 0x5b;
const closeBracket = 0x5d;
const openBrace = 0x7b;
const closeBrace = 0x7d;

/**
 * Whether `bytes` (JSON as UTF-8) opens more than `limit` arrays or objects inside one another. One pass,
 * no allocation: brackets inside strings (escapes included) do not count, and the scan stops at the first
 * bracket past the limit. Text that is not JSON is left for the parser to refuse.
 */
export function jsonNestsDeeperThan(bytes: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < bytes.length; index++) {
    const byte = bytes[index];
    if (inString) {
      // A multi-byte UTF-8 sequence never contains an ASCII byte, so `"` and `\` here are the characters.
      if (byte === backslash) index++;
      else if (byte === quote) inString = false;
    } else if (byte === quote) {
      inString = true;
    } else if (byte === openBracket || byte === openBrace) {
      depth++;
      if (depth > limit) return true;
    } else if (byte === closeBracket || byte === closeBrace) {
      depth--;
    }
  }
  return false;
}

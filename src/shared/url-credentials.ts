/**
 * Removes the credentials of URLs written into text (`https://user:password@host/...`), wherever the URL
 * stands in the text. The userinfo is found by parsing, as a browser's URL parser finds it: it runs from
 * after `://` to the LAST `@` that is followed by a host (`name.example`, `[v6]`, an optional `:port`, then
 * the end of the authority). So a user or password may hold any character, `@ : / ? # [ ] % '` and spaces
 * included, and is still removed whole. The cost is that a line such as `https://host/x see bob@example.com`
 * loses its middle too (`https://[redacted]@example.com`), which never reveals a credential.
 *
 * A URL's text ends at a line break, a double quote, `<`, `>` or a backtick (which wrap URLs in messages),
 * or where another URL starts after white space. The work is linear in the length of the text.
 */

const schemeChar = /[A-Za-z0-9+.-]/;
/** The characters that end a URL's text, and `@`. */
const urlEndOrAt = /[\n\r"<>`@]/g;
const openers = new Set(['(', '[', '{', "'", '"']);
const label = '[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?';
/** What may follow the `@` that ends a userinfo: a host, an optional port, then the end of the authority. */
const hostAfterAt = new RegExp(
  `(?:${label}(?:\\.${label})*|\\[[0-9A-Fa-f:.]+(?:%[^\\]\\s]*)?\\])(?::[0-9]{1,5})?(?=$|[^A-Za-z0-9_@:%-])`,
  'y',
);

/** `text` with the userinfo of every URL replaced by `[redacted]`. */
export function redactUrlCredentials(text: string): string {
  if (!text.includes('://') || !text.includes('@')) return text;
  const authorities: number[] = [];
  const limits: number[] = [];
  const hostAts: number[] = [];
  for (let index = text.indexOf('://'); index !== -1; index = text.indexOf('://', index + 3)) {
    authorities.push(index + 3);
    let schemeStart = index;
    while (schemeStart > 0 && schemeChar.test(text[schemeStart - 1]!)) schemeStart--;
    if (schemeStart === index) continue;
    const before = schemeStart - 1;
    if (isSpace(text[before])) limits.push(before);
    else if (openers.has(text[before] ?? '') && isSpace(text[before - 1])) limits.push(before - 1);
  }
  urlEndOrAt.lastIndex = 0;
  for (let found = urlEndOrAt.exec(text); found !== null; found = urlEndOrAt.exec(text)) {
    if (found[0] !== '@') {
      limits.push(found.index);
      continue;
    }
    hostAfterAt.lastIndex = found.index + 1;
    if (hostAfterAt.test(text)) hostAts.push(found.index);
  }
  limits.sort((a, b) => a - b);

  let result = '';
  let copied = 0;
  for (const start of authorities) {
    // A `://` inside a userinfo already removed is part of that userinfo.
    if (start < copied) continue;
    const limit = limits[firstAbove(limits, start)] ?? text.length;
    const at = hostAts[firstAbove(hostAts, limit - 1) - 1];
    if (at === undefined || at <= start) continue;
    result += `${text.slice(copied, start)}[redacted]`;
    copied = at;
  }
  return copied === 0 ? text : result + text.slice(copied);
}

function isSpace(char: string | undefined): boolean {
  return char !== undefined && /\s/.test(char);
}

/** The index of the first element of the ascending `values` greater than `value` (`values.length` if none). */
function firstAbove(values: readonly number[], value: number): number {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (values[middle]! > value) high = middle;
    else low = middle + 1;
  }
  return low;
}

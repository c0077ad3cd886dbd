/**
 * Terraform, with a light lexical scan rather than an HCL parser: `image` in container definitions wherever
 * they are written (`container_definitions`, `container_properties`: `jsonencode(...)`, heredoc or JSON
 * string), in `aws_ecs_task_definition`, `aws_batch_job_definition`, `kubernetes_*`, Docker provider, Cloud
 * Run and Azure container resources; `aws_codebuild_project` environment images (marked as run by
 * CodeBuild); `image_uri` of `aws_lambda_function`, `image_identifier` of App Runner; module inputs named
 * `image` or `..._image`; and the `set` entries and heredoc values of `helm_release`.
 */
import { build } from './found.ts';
import { helmImageReferences } from './helm.ts';
import { parseDocuments } from './json-util.ts';
import type { Extractor, FoundReference, ReferenceParts } from './types.ts';

/** Index just past the end of a `"..."` string starting at `start` (HCL or JSON escapes, `${...}` nesting). */
function skipString(content: string, start: number): number {
  let index = start + 1;
  let interpolation = 0;
  while (index < content.length) {
    const char = content[index];
    if (char === '\\') {
      index += 2;
      continue;
    }
    if (char === '\n' && interpolation === 0) return index;
    if (char === '$' && content[index + 1] === '{') {
      interpolation++;
      index += 2;
      continue;
    }
    if (char === '}' && interpolation > 0) interpolation--;
    else if (char === '"' && interpolation === 0) return index + 1;
    index++;
  }
  return index;
}

/** Index just past the end of a heredoc whose `<<` is at `start`, or undefined when it is not one. */
function skipHeredoc(content: string, start: number): number | undefined {
  const match = /^<<-?([A-Za-z_][\w-]*)[ \t]*\r?\n/.exec(content.slice(start, start + 200));
  if (!match) return undefined;
  const marker = match[1] ?? '';
  const terminator = new RegExp(`^[ \\t]*${marker}[ \\t]*\\r?$`, 'm');
  const bodyStart = start + match[0].length;
  const rest = content.slice(bodyStart);
  const end = terminator.exec(rest);
  return end ? bodyStart + end.index + end[0].length : content.length;
}

/** Index of the bracket closing the one at `open`, skipping strings, comments and heredocs. */
function matchClose(content: string, open: number): number {
  const pairs: Record<string, string> = { '{': '}', '[': ']', '(': ')' };
  const stack: string[] = [];
  let index = open;
  while (index < content.length) {
    const char = content[index] ?? '';
    if (char === '"') {
      index = skipString(content, index);
      continue;
    }
    if (char === '#' || (char === '/' && content[index + 1] === '/')) {
      const end = content.indexOf('\n', index);
      index = end === -1 ? content.length : end + 1;
      continue;
    }
    if (char === '/' && content[index + 1] === '*') {
      const end = content.indexOf('*/', index + 2);
      index = end === -1 ? content.length : end + 2;
      continue;
    }
    if (char === '<' && content[index + 1] === '<') {
      const end = skipHeredoc(content, index);
      if (end !== undefined) {
        index = end;
        continue;
      }
    }
    const closer = pairs[char];
    if (closer !== undefined) stack.push(closer);
    else if (char === stack[stack.length - 1]) {
      stack.pop();
      if (stack.length === 0) return index;
    }
    index++;
  }
  return content.length;
}

/** What an image attribute is called in a block, and whether CodeBuild runs the image. */
interface BlockImages {
  key: string;
  codebuild?: boolean;
}

/** Resource and data source types whose attributes name images, and the attribute. */
const RESOURCE_IMAGES: { type: RegExp; images: BlockImages }[] = [
  { type: /^aws_ecs_task_definition$/, images: { key: 'image' } },
  { type: /^aws_batch_job_definition$/, images: { key: 'image' } },
  { type: /^kubernetes_/, images: { key: 'image' } },
  { type: /^aws_codebuild_project$/, images: { key: 'image', codebuild: true } },
  { type: /^aws_lambda_function$/, images: { key: 'image_uri' } },
  { type: /^aws_apprunner_service$/, images: { key: 'image_identifier' } },
  { type: /^docker_(?:registry_)?image$/, images: { key: 'name' } },
  { type: /^docker_(?:container|service)$/, images: { key: 'image' } },
  {
    type: /^(?:google_cloud_run_(?:v2_)?(?:service|job)|azurerm_container_(?:group|app|app_job))$/,
    images: { key: 'image' },
  },
];

/** Module inputs that name images: `image`, `container_image`, `sidecar_image`, ... (never `image_id`). */
const MODULE_IMAGE_KEY = '(?:[a-z0-9]+_)*image';

/** Module sources whose image inputs are container images whatever their text looks like. */
const CONTAINER_MODULE =
  /ecs|container|fargate|kubernetes|k8s|eks|helm|docker|lambda|batch|app-?runner|cloud-?run/i;

interface Region {
  start: number;
  end: number;
  label: string;
  key: string;
  codebuild?: boolean;
  /** Set for module blocks: the module's source, which says whether its image inputs are container images. */
  moduleSource?: string;
}

/**
 * `key = "value"` (or `"key": "value"`, escaped inside a JSON string) with the value as written: group 1 an
 * escaped string, group 2 a string, group 3 an expression (a reference such as `var.image`, or a function
 * call such as `nonsensitive(data.aws_ssm_parameter.image.value)`, three parentheses deep at most).
 */
function attributePattern(key: string): RegExp {
  const call = '[a-z_][\\w]*\\((?:[^()\\n]|\\((?:[^()\\n]|\\([^()\\n]*\\))*\\))*\\)';
  return new RegExp(
    `(?:"(?:${key})"|\\\\"(?:${key})\\\\"|\\b(?:${key}))\\s*[:=]\\s*(?:\\\\"((?:[^"\\\\\\n]|\\\\[^"])*)\\\\"|"((?:[^"\\\\\\n]|\\\\.)*)"|((?:var|local|module|data)\\.[\\w.[\\]-]+|${call}))`,
    'g',
  );
}

const patterns = new Map<string, RegExp>();

function patternFor(key: string): RegExp {
  let pattern = patterns.get(key);
  if (!pattern) patterns.set(key, (pattern = attributePattern(key)));
  pattern.lastIndex = 0;
  return pattern;
}

/**
 * Source regions that hold images: resources and data sources of the types above, container definitions
 * wherever they are written (`container_definitions`, `container_properties`), and module blocks.
 */
function terraformRegions(content: string): { regions: Region[]; helmReleases: Region[] } {
  const regions: Region[] = [];
  const modules: Region[] = [];
  const helmReleases: Region[] = [];
  const block = /\b(resource|data)[ \t]+"([\w-]+)"[ \t]+"([^"]+)"\s*\{|\bmodule[ \t]+"([^"]+)"\s*\{/g;
  for (let match = block.exec(content); match; match = block.exec(content)) {
    if (lineIsComment(content, match.index)) continue;
    const open = match.index + match[0].length - 1;
    const end = matchClose(content, open);
    const type = match[2];
    if (type === undefined) {
      const source = /\bsource\s*=\s*"([^"]*)"/.exec(content.slice(open, end))?.[1] ?? '';
      modules.push({
        start: open,
        end,
        label: `module.${match[4] ?? ''}`,
        key: MODULE_IMAGE_KEY,
        moduleSource: source,
      });
      continue;
    }
    const label = `${match[1] === 'data' ? 'data.' : ''}${type}.${match[3] ?? ''}`;
    if (type === 'helm_release') {
      helmReleases.push({ start: open, end, label, key: 'image' });
      continue;
    }
    const images = RESOURCE_IMAGES.find((entry) => entry.type.test(type))?.images;
    if (images) regions.push({ start: open, end, label, ...images });
  }
  const attribute = /\b(container_definitions|container_properties)\s*=\s*/g;
  for (let match = attribute.exec(content); match; match = attribute.exec(content)) {
    const start = match.index + match[0].length;
    let end: number;
    if (content.startsWith('<<', start)) end = skipHeredoc(content, start) ?? start;
    else if (content[start] === '"') end = skipString(content, start);
    else {
      const open = content.slice(start, start + 400).search(/[([{]/);
      const lineEnd = content.indexOf('\n', start);
      end =
        open !== -1 && (lineEnd === -1 || start + open < lineEnd)
          ? matchClose(content, start + open)
          : lineEnd === -1
            ? content.length
            : lineEnd;
    }
    if (!regions.some((region) => region.start <= start && end <= region.end)) {
      regions.push({ start, end, label: match[1] ?? 'container_definitions', key: 'image' });
    }
  }
  return { regions: [...regions, ...modules], helmReleases };
}

function terraformReason(text: string, bare: boolean): string | undefined {
  if (bare) return `comes from the Terraform expression ${text}`;
  const interpolations = text.match(/\$\{[^}]*\}|%\{[^}]*\}/g);
  if (interpolations && interpolations.length > 0)
    return `uses ${interpolations.join(', ')}, known only at plan time`;
  return undefined;
}

function lineIsComment(content: string, offset: number): boolean {
  const lineStart = content.lastIndexOf('\n', offset - 1) + 1;
  const before = content.slice(lineStart, offset).trimStart();
  return before.startsWith('#') || before.startsWith('//');
}

/**
 * A module input's value is a container image when the module is one that runs containers, or when the
 * value says so itself: a tag, a digest or a registry host. (Modules also take machine images, which look
 * like `debian-cloud/debian-12` or `ami-0abc...`.)
 */
function moduleImage(text: string, source: string): boolean {
  if (CONTAINER_MODULE.test(source)) return true;
  if (text.includes('${')) return /[:@]/.test(text.replace(/\$\{[^}]*\}/g, ''));
  const host = text.split('/')[0] ?? '';
  return (
    /@sha256:/.test(text) ||
    /:[\w][\w.-]*$/.test(text.split('/').pop() ?? '') ||
    (text.includes('/') && /[.:]/.test(host))
  );
}

function extractTerraform(path: string, content: string): FoundReference[] {
  const found: FoundReference[] = [];
  const seen = new Set<number>();
  const { regions, helmReleases } = terraformRegions(content);
  for (const region of regions) {
    const slice = content.slice(region.start, region.end + 1);
    const pattern = patternFor(region.key);
    for (let match = pattern.exec(slice); match; match = pattern.exec(slice)) {
      const escaped = match[1];
      const quoted = match[2];
      const bare = match[3];
      const text = escaped ?? quoted ?? bare;
      if (text === undefined || text.length === 0) continue;
      const within = bare !== undefined ? match[0].lastIndexOf(bare) : match[0].lastIndexOf(text);
      const offset = region.start + match.index + within;
      if (seen.has(offset) || lineIsComment(content, region.start + match.index)) continue;
      if (region.moduleSource !== undefined) {
        const container = CONTAINER_MODULE.test(region.moduleSource);
        if (bare !== undefined ? !container : !moduleImage(text, region.moduleSource)) continue;
      }
      seen.add(offset);
      const unresolved = terraformReason(text, bare !== undefined);
      const reference = build(
        path,
        content,
        'terraform',
        { offset, text },
        unresolved ? { context: region.label, unresolved } : { context: region.label },
      );
      if (region.codebuild) reference.codebuild = true;
      found.push(reference);
    }
  }
  for (const release of helmReleases) {
    for (const reference of helmReleaseImages(path, content, release)) {
      if (seen.has(reference.offset)) continue;
      seen.add(reference.offset);
      found.push(reference);
    }
  }
  return found.sort((a, b) => a.offset - b.offset);
}

// ---------------------------------------------------------------------------------------------------------
// helm_release

/** One `set` entry of a `helm_release`: its name, and its value as written (a string or an expression). */
interface SetEntry {
  name: string;
  value?: { offset: number; text: string; bare: boolean };
}

/** The `set` and `set_sensitive` entries of a release: blocks (`set { ... }`) and lists (`set = [{ ... }]`). */
function setEntries(content: string, release: Region): SetEntry[] {
  const entries: SetEntry[] = [];
  const text = content.slice(release.start, release.end + 1);
  const bodies: { start: number; end: number }[] = [];
  const block = /\bset(?:_sensitive)?\s*(=\s*\[|\{)/g;
  for (let match = block.exec(text); match; match = block.exec(text)) {
    if (lineIsComment(content, release.start + match.index)) continue;
    const open = match.index + match[0].length - 1;
    const close = matchClose(text, open);
    if (match[1] === '{') {
      bodies.push({ start: open, end: close });
      continue;
    }
    const objects = /\{[^{}]*\}/g;
    const list = text.slice(open, close);
    for (let object = objects.exec(list); object; object = objects.exec(list)) {
      bodies.push({ start: open + object.index, end: open + object.index + object[0].length });
    }
    block.lastIndex = close;
  }
  for (const body of bodies) {
    const inner = text.slice(body.start, body.end);
    const name = /\bname\s*=\s*"([^"\\\n]*)"/.exec(inner)?.[1];
    if (name === undefined) continue;
    const value = /\bvalue\s*=\s*(?:"((?:[^"\\\n]|\\.)*)"|((?:var|local|module|data)\.[\w.[\]-]+))/.exec(
      inner,
    );
    const entry: SetEntry = { name };
    if (value) {
      const written = value[1] ?? value[2] ?? '';
      const within = value[0].lastIndexOf(written);
      entry.value = {
        offset: release.start + body.start + value.index + within,
        text: written,
        bare: value[2] !== undefined,
      };
    }
    entries.push(entry);
  }
  return entries;
}

/**
 * The images a `helm_release` sets: `<prefix>.repository` with its `registry`, `tag` and `digest` siblings is
 * one reference (at the repository value, like a values file's image map); `image` and `<prefix>.image`
 * strings are references; heredoc YAML in `values` is read as a values file.
 */
function helmReleaseImages(path: string, content: string, release: Region): FoundReference[] {
  const found: FoundReference[] = [];
  const entries = setEntries(content, release);
  const byName = new Map(entries.map((entry) => [entry.name, entry]));
  const literal = (name: string): string | undefined => {
    const value = byName.get(name)?.value;
    return value && !value.bare ? value.text : undefined;
  };
  for (const entry of entries) {
    const value = entry.value;
    if (!value || value.text === '') continue;
    const repository = /^(?:(.*)\.)?repository$/.exec(entry.name);
    const imageName = /^(?:(.*)\.)?image$/.exec(entry.name);
    const prefix = repository
      ? (repository[1] ?? '')
      : imageName && byName.has(`${imageName[1] ?? ''}.registry`)
        ? (imageName[1] ?? '')
        : undefined;
    const context = `${release.label} set ${entry.name}`;
    if (prefix === undefined) {
      if (!imageName && !/[a-z]Image$/.test(entry.name)) continue;
      const unresolved = terraformReason(value.text, value.bare);
      found.push(
        build(path, content, 'terraform', value, unresolved ? { context, unresolved } : { context }),
      );
      continue;
    }
    const key = (part: string): string => (prefix === '' ? part : `${prefix}.${part}`);
    const registry = literal(key('registry'));
    const tag = literal(key('tag'));
    const digest = literal(key('digest'));
    let composed = registry ? `${registry}/${value.text}` : value.text;
    if (tag) composed += `:${tag}`;
    if (digest) composed += `@${digest}`;
    const named = [entry.name, ...['registry', 'tag', 'digest'].map(key).filter((name) => literal(name))];
    const unresolved =
      terraformReason(value.text, value.bare) ??
      (['registry', 'tag', 'digest'].some((part) => byName.get(key(part))?.value?.bare)
        ? `uses a Terraform expression in ${['registry', 'tag', 'digest'].map(key).find((name) => byName.get(name)?.value?.bare) ?? ''}`
        : undefined);
    const reference = build(path, content, 'terraform', value, {
      context: `${context}: composed reference (${named.join(' + ')})`,
      resolved: composed,
      ...(unresolved ? { unresolved } : {}),
    });
    const parts: ReferenceParts = {
      path: prefix,
      repository: { offset: value.offset, text: value.text },
      chart: 'remote',
    };
    const registryValue = byName.get(key('registry'))?.value;
    if (registryValue && !registryValue.bare)
      parts.registry = { offset: registryValue.offset, text: registryValue.text };
    else if (registryValue) parts.registryUnwritable = true;
    reference.parts = parts;
    found.push(reference);
  }
  found.push(...heredocValues(path, content, release));
  return found;
}

/** Image maps in `values = [<<EOT ... EOT]`: the heredoc is a values file. */
function heredocValues(path: string, content: string, release: Region): FoundReference[] {
  const found: FoundReference[] = [];
  const text = content.slice(release.start, release.end + 1);
  const heredoc = /\bvalues\s*=\s*\[\s*(<<-?[A-Za-z_][\w-]*[ \t]*\r?\n)/g;
  for (let match = heredoc.exec(text); match; match = heredoc.exec(text)) {
    const opener = release.start + match.index + match[0].length - (match[1] ?? '').length;
    const end = skipHeredoc(content, opener);
    if (end === undefined) continue;
    const bodyStart = opener + (match[1] ?? '').length;
    const bodyEnd = content.lastIndexOf('\n', end - 1) + 1;
    const body = content.slice(bodyStart, Math.max(bodyStart, bodyEnd));
    for (const { doc, root } of parseDocuments(body)) {
      for (const reference of helmImageReferences(path, body, doc, root, {
        kind: 'terraform',
        chart: 'remote',
        base: bodyStart,
        file: content,
      })) {
        reference.context = `${release.label} values: ${reference.context ?? ''}`;
        found.push(reference);
      }
    }
  }
  return found;
}

export const terraformExtractor: Extractor = {
  kind: 'terraform',
  matches(path) {
    return /\.tf$/i.test(path);
  },
  extract(path, content) {
    try {
      return extractTerraform(path, content);
    } catch {
      return [];
    }
  },
};

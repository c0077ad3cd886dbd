/**
 * Docker image references: `[registry/]repository[:tag][@digest]`, parsed and normalised the way
 * `docker pull` reads them (distribution/reference's grammar plus ParseNormalizedNamed's rules).
 *
 * Promises of `parseReference`:
 * - it returns a fully-qualified reference or throws `InvalidReferenceError`, for every string input;
 * - `registry` is a valid host with optional port, lowercased, IPv6 in brackets, `docker.io` for Docker Hub
 *   (never `index.docker.io`);
 * - `repository` is path components of `[a-z0-9]` joined by `.`, `_`, `__` or dashes, separated by `/`,
 *   so it never contains `..`, empty components or a leading/trailing `/`; Docker Hub single-component
 *   names get the `library/` prefix;
 * - `registry/repository` is at most 255 characters; `tag`, when present, is at most 128;
 * - `digest`, when present, is `algorithm:hex`; sha256 and sha512 digests have lowercase hex of exact length.
 */

/** Docker Hub as it appears in normalised references. */
export const DOCKER_HUB_REGISTRY = 'docker.io';
/** The host that actually serves Docker Hub's registry API. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
/** Docker Hub's legacy name, normalised to `docker.io`. */
export const LEGACY_DOCKER_HUB_REGISTRY = 'index.docker.io';
/** The namespace of Docker Hub's official images. */
export const OFFICIAL_REPOSITORY_PREFIX = 'library/';
/** The tag Docker pulls when a reference has neither tag nor digest. */
export const DEFAULT_TAG = 'latest';
/** Maximum length of the normalised name `registry/repository`. */
export const MAX_NAME_LENGTH = 255;
/** Maximum length of a tag. */
export const MAX_TAG_LENGTH = 128;

export interface ImageReference {
  /** Normalised host with optional `:port`; `docker.io` for Docker Hub. */
  registry: string;
  /** Normalised repository path, e.g. `library/nginx`. */
  repository: string;
  tag?: string;
  /** `algorithm:hex`. */
  digest?: string;
  /** The text that was parsed, unchanged. */
  original: string;
}

export type ReferenceErrorCode =
  'REFERENCE_INVALID' | 'REFERENCE_NAME_TOO_LONG' | 'REFERENCE_UPPERCASE' | 'REFERENCE_EMPTY';

/** A string that is not a valid image reference. `code` is stable; `hint` tells the user what to change. */
export class InvalidReferenceError extends Error {
  readonly code: ReferenceErrorCode;
  readonly hint: string;
  /** The rejected input, shortened to at most 120 characters. */
  readonly input: string;

  constructor(code: ReferenceErrorCode, input: string, reason: string, hint: string) {
    const shown = shorten(input);
    super(`invalid image reference ${JSON.stringify(shown)}: ${reason}`);
    this.name = 'InvalidReferenceError';
    this.code = code;
    this.hint = hint;
    this.input = shown;
  }
}

export function isInvalidReferenceError(value: unknown): value is InvalidReferenceError {
  return value instanceof InvalidReferenceError;
}

const domainComponent = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';
const domainName = `${domainComponent}(?:\\.${domainComponent})*`;
const ipv6Address = '\\[[a-fA-F0-9:]+\\]';
const hostPattern = new RegExp(`^(?:${domainName}|${ipv6Address})(?::[0-9]+)?$`);
const pathComponentPattern = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagPattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const digestPattern = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const knownDigestHexLength: Readonly<Record<string, number>> = { sha256: 64, sha512: 128 };
const imageIdPattern = /^[a-f0-9]{64}$/;

/**
 * Parses and normalises an image reference as `docker pull` would: `nginx` is
 * `docker.io/library/nginx`, `user/app` is `docker.io/user/app`, `index.docker.io/x` is
 * `docker.io/library/x`. The first path component is a registry when it contains `.` or `:` or is
 * `localhost`. Both a tag and a digest may be given (`name:tag@sha256:…`); no default tag is added.
 */
export function parseReference(text: string): ImageReference {
  if (typeof text !== 'string') {
    throw new InvalidReferenceError(
      'REFERENCE_INVALID',
      String(text),
      'not a string',
      'pass the image reference as text, e.g. "nginx:1.25"',
    );
  }
  rejectNonReferences(text);

  const at = text.indexOf('@');
  const nameAndTag = at === -1 ? text : text.slice(0, at);
  const digest = at === -1 ? undefined : text.slice(at + 1);
  if (digest !== undefined) checkDigest(text, digest);

  const lastSlash = nameAndTag.lastIndexOf('/');
  const colon = nameAndTag.indexOf(':', lastSlash + 1);
  const name = colon === -1 ? nameAndTag : nameAndTag.slice(0, colon);
  const tag = colon === -1 ? undefined : nameAndTag.slice(colon + 1);

  if (name === '') {
    throw invalid(
      text,
      'the repository name is missing',
      `put the image name before "${colon === -1 ? '@' : ':'}", e.g. "nginx${shorten(text)}"`,
    );
  }
  if (tag !== undefined) checkTag(text, tag);
  if (
    /^sha(?:256|512)$/.test(name) &&
    tag !== undefined &&
    digest === undefined &&
    /^[a-fA-F0-9]{32,}$/.test(tag)
  ) {
    throw invalid(
      text,
      'a bare digest is not an image reference',
      'name the repository the digest belongs to: "name@sha256:<hex>"',
    );
  }

  const { registry, repository } = splitName(text, name);
  const fullName = `${registry}/${repository}`;
  if (fullName.length > MAX_NAME_LENGTH) {
    throw new InvalidReferenceError(
      'REFERENCE_NAME_TOO_LONG',
      text,
      `the name "${shorten(fullName)}" is ${fullName.length} characters; at most ${MAX_NAME_LENGTH} are allowed`,
      `shorten the repository path so that "registry/repository" fits in ${MAX_NAME_LENGTH} characters`,
    );
  }

  const reference: ImageReference = { registry, repository, original: text };
  if (tag !== undefined) reference.tag = tag;
  if (digest !== undefined) reference.digest = digest;
  return reference;
}

/**
 * Refuses the texts that are not image references at all (empty, a layout, a URL, an image ID, stray
 * characters), each with its own hint, before the reference's parts are looked at.
 */
function rejectNonReferences(text: string): void {
  // `oci:1.0` is Docker Hub's library/oci; a path after `oci:` (as copy takes it) can only be a layout.
  if (/^oci:(?:[./~]|[^:@]*\/)/i.test(text)) {
    throw invalid(
      text,
      'an OCI image layout (oci:DIR) is not a registry image',
      'OCI layouts work with pullsafe copy and inspect; name a registry image here',
    );
  }
  if (text === '') {
    throw new InvalidReferenceError(
      'REFERENCE_EMPTY',
      text,
      'the reference is empty',
      'give an image name, e.g. "nginx" or "registry.example.com/team/app:1.0"',
    );
  }
  checkCharacters(text);
  if (text.includes('://')) {
    throw invalid(
      text,
      'a URL scheme is not part of an image reference',
      'drop the scheme: write "registry.example.com/app", not "https://registry.example.com/app"',
    );
  }
  if (imageIdPattern.test(text)) {
    throw invalid(
      text,
      'a 64-character hex string is an image ID, not a repository name',
      'to pin content, name the repository too: "name@sha256:<hex>"',
    );
  }
}

/** Like `parseReference`, but returns `undefined` instead of throwing. */
export function tryParseReference(text: string): ImageReference | undefined {
  try {
    return parseReference(text);
  } catch (error) {
    if (error instanceof InvalidReferenceError) return undefined;
    throw error;
  }
}

/** The fully-qualified form, e.g. `docker.io/library/nginx:1.25`. Parsing it gives back the same fields. */
export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${suffix(ref)}`;
}

/** The short form Docker shows: `nginx:1.25`, `user/app`; other registries keep their host. */
export function familiarName(ref: ImageReference): string {
  let name = `${ref.registry}/${ref.repository}`;
  if (isDockerHub(ref)) {
    name = ref.repository;
    if (name.startsWith(OFFICIAL_REPOSITORY_PREFIX)) {
      const rest = name.slice(OFFICIAL_REPOSITORY_PREFIX.length);
      if (!rest.includes('/')) name = rest;
    }
  }
  return `${name}${suffix(ref)}`;
}

/** The reference with tag `latest` when it has neither tag nor digest; otherwise an unchanged copy. */
export function withDefaultTag(ref: ImageReference): ImageReference {
  if (ref.tag !== undefined || ref.digest !== undefined) return { ...ref };
  return { ...ref, tag: DEFAULT_TAG };
}

/** The host to send registry API requests to: Docker Hub's is `registry-1.docker.io`. */
export function registryApiHost(registry: string): string {
  const lower = registry.toLowerCase();
  return lower === DOCKER_HUB_REGISTRY || lower === LEGACY_DOCKER_HUB_REGISTRY
    ? DOCKER_HUB_API_HOST
    : registry;
}

export function isDockerHub(ref: Pick<ImageReference, 'registry'>): boolean {
  return ref.registry === DOCKER_HUB_REGISTRY;
}

function suffix(ref: ImageReference): string {
  return `${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

function checkCharacters(text: string): void {
  const bad = /[^\x21-\x7e]/.exec(text);
  if (!bad) return;
  if (/\s/.test(bad[0])) {
    throw invalid(
      text,
      'it contains whitespace',
      'remove spaces, tabs and line breaks (a trailing newline often comes from a file or a shell variable)',
    );
  }
  throw invalid(
    text,
    `it contains the character ${JSON.stringify(bad[0])}`,
    'use only ASCII letters, digits and . _ - / : @ [ ]',
  );
}

function checkDigest(text: string, digest: string): void {
  if (digest === '') {
    throw invalid(
      text,
      'the digest after "@" is empty',
      'remove the "@" or give a digest: "name@sha256:<64 hex>"',
    );
  }
  const sep = digest.indexOf(':');
  const algorithm = sep === -1 ? digest : digest.slice(0, sep);
  const hex = sep === -1 ? '' : digest.slice(sep + 1);
  if (sep === -1) {
    throw invalid(
      text,
      `"${shorten(digest)}" after "@" is not a digest`,
      'a digest looks like "sha256:<64 hex>"; to give a tag, use ":" instead of "@"',
    );
  }
  const lowerAlgorithm = algorithm.toLowerCase();
  const expected = knownDigestHexLength[lowerAlgorithm];
  if (expected !== undefined) {
    if (algorithm !== lowerAlgorithm) {
      throw invalid(text, `digest algorithm "${algorithm}" must be lowercase`, `write "${lowerAlgorithm}:"`);
    }
    if (/^[a-fA-F0-9]+$/.test(hex) && /[A-F]/.test(hex)) {
      throw invalid(
        text,
        `the ${algorithm} digest has uppercase hex`,
        `${algorithm} digests are written in lowercase hex`,
      );
    }
    if (!/^[a-f0-9]*$/.test(hex) || hex.length !== expected) {
      throw invalid(
        text,
        `"${shorten(digest)}" is not a valid ${algorithm} digest`,
        `a ${algorithm} digest is "${algorithm}:" followed by exactly ${expected} lowercase hex characters`,
      );
    }
    return;
  }
  if (!digestPattern.test(digest)) {
    throw invalid(
      text,
      `"${shorten(digest)}" is not a valid digest`,
      'a digest is "algorithm:hex" with at least 32 hex characters, e.g. "sha256:<64 hex>"',
    );
  }
}

function checkTag(text: string, tag: string): void {
  if (tag === '') {
    throw invalid(
      text,
      'the tag after ":" is empty',
      'remove the trailing ":" or give a tag, e.g. ":latest"',
    );
  }
  if (tag.length > MAX_TAG_LENGTH) {
    throw invalid(
      text,
      `the tag is ${tag.length} characters; at most ${MAX_TAG_LENGTH} are allowed`,
      `use a tag of at most ${MAX_TAG_LENGTH} characters`,
    );
  }
  if (!tagPattern.test(tag)) {
    const extra = tag.includes(':') ? '; only one ":" may separate name and tag' : '';
    throw invalid(
      text,
      `"${shorten(tag)}" is not a valid tag`,
      `a tag starts with a letter, digit or "_" and continues with letters, digits, "_", "." or "-"${extra}`,
    );
  }
}

/** Splits `name` into normalised registry and repository, validating both. */
function splitName(text: string, name: string): { registry: string; repository: string } {
  if (name.split('/').some((part) => part === '.' || part === '..')) {
    throw invalid(text, '"." and ".." are not allowed in a name', 'remove the "." or ".." path segments');
  }
  const slash = name.indexOf('/');
  const first = slash === -1 ? name : name.slice(0, slash);
  let registry = DOCKER_HUB_REGISTRY;
  let path = name;
  const looksLikeHost = first === 'localhost' || first.includes('.') || first.includes(':');
  // A first component starting with "[" is never a valid path component, so reporting it as a host
  // changes no outcome and gives a better hint.
  if (slash !== -1 && (looksLikeHost || first.startsWith('['))) {
    registry = normaliseHost(text, first);
    path = name.slice(slash + 1);
  }
  checkPath(text, path);
  if (registry === DOCKER_HUB_REGISTRY && !path.includes('/')) path = OFFICIAL_REPOSITORY_PREFIX + path;
  return { registry, repository: path };
}

function normaliseHost(text: string, host: string): string {
  if (!hostPattern.test(host)) {
    let hint =
      'a registry is a host name or IP address with an optional numeric port, e.g. "registry.example.com:5000"';
    if (/^\[(?![a-fA-F0-9:]+\](?::|$))/.test(host)) {
      hint =
        'an IPv6 registry is "[address]" or "[address]:port", with only hex digits and ":" inside the brackets';
    } else if (/^[a-fA-F0-9]*:[a-fA-F0-9]*:/.test(host)) {
      hint = 'put IPv6 addresses in brackets, e.g. "[::1]:5000/app"';
    } else if (/:(?![0-9]+$)/.test(host.replace(/^\[[^\]]*\]/, ''))) {
      hint = 'the port after ":" must be digits only';
    }
    throw invalid(text, `"${shorten(host)}" is not a valid registry host`, hint);
  }
  const port = /:([0-9]+)$/.exec(host.replace(/^\[[^\]]*\]/, ''))?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    throw invalid(
      text,
      `"${shorten(host)}" is not a valid registry host`,
      'a port is a number from 1 to 65535',
    );
  }
  // Names that end in a number are IP addresses to every HTTP client (the URL standard), so they must be one
  // written in full: `127.1` or `2130706433` would silently become another spelling of an address.
  const name = host.startsWith('[') ? undefined : host.replace(/:[0-9]+$/, '').toLowerCase();
  if (
    !URL.canParse(`http://${host}/`) ||
    (name !== undefined && new URL(`http://${host}/`).hostname !== name)
  ) {
    throw invalid(
      text,
      `"${shorten(host)}" is not a valid registry host`,
      'an IPv4 address is four numbers from 0 to 255 without leading zeros (e.g. "10.0.0.5:5000"); an IPv6 address goes in brackets',
    );
  }
  const lower = host.toLowerCase();
  return lower === LEGACY_DOCKER_HUB_REGISTRY ? DOCKER_HUB_REGISTRY : lower;
}

function checkPath(text: string, path: string): void {
  const components = path.split('/');
  if (components.some((component) => component === '')) {
    throw invalid(
      text,
      'the repository path has an empty component',
      'remove doubled, leading or trailing "/" from the repository path',
    );
  }
  for (const component of components) {
    if (pathComponentPattern.test(component)) continue;
    if (pathComponentPattern.test(component.toLowerCase())) {
      throw new InvalidReferenceError(
        'REFERENCE_UPPERCASE',
        text,
        'repository name must be lowercase',
        `write "${shorten(path.toLowerCase())}"; only the registry host and the tag may contain uppercase letters`,
      );
    }
    throw invalid(
      text,
      `"${shorten(component)}" is not a valid repository path component`,
      'repository path components are lowercase letters and digits, joined by ".", "_", "__" or "-" ' +
        '(never at the start or end)',
    );
  }
}

function invalid(text: string, reason: string, hint: string): InvalidReferenceError {
  return new InvalidReferenceError('REFERENCE_INVALID', text, reason, hint);
}

function shorten(text: string): string {
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

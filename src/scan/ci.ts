/**
 * CI configuration files: the images their jobs run in.
 *
 * - GitHub Actions (`.github/workflows/*.yml`): `jobs.<id>.container` (string or `{image}`),
 *   `jobs.<id>.services.<name>` (string or `{image}`), `steps[].uses: docker://image` (the text after
 *   `docker://`); action metadata (`action.yml`): `runs.image: docker://image`.
 * - GitLab CI (`.gitlab-ci.yml`, `*.gitlab-ci.yml`, YAML under `.gitlab/`): `image` and `services` (strings
 *   or `{name}`), at the top level, under `default:` and in jobs (hidden `.template` jobs included).
 * - CodeBuild (`buildspec*.yml`): `docker pull <ref>` and `docker run [flags] <ref>` in `phases.*.commands`,
 *   and `FROM <ref>` that a command writes into a Dockerfile.
 * - Bitbucket Pipelines (`bitbucket-pipelines.yml`): `image` (string or `{name}`) at the top level and in
 *   steps, `definitions.services.<name>.image`.
 * - CircleCI (`.circleci/config.yml`): `jobs.<id>.docker[].image`, `executors.<id>.docker[].image`.
 *
 * Expressions and variables that only the CI system knows (`${{ matrix.image }}`, `$CI_REGISTRY_IMAGE`,
 * `<< parameters.tag >>`) make a reference unresolved, with the reason.
 */
import type { Extractor, FoundReference } from './types.ts';
import {
  collectReferences,
  formatYamlPath,
  interpolate,
  isImageScalar,
  pathMatches,
  yamlScalars,
} from './yaml-util.ts';
import type { ScalarDecision, YamlPath, YamlScalar } from './yaml-util.ts';

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function anyPattern(path: YamlPath, patterns: readonly (readonly (string | number)[])[]): boolean {
  return patterns.some((pattern) => pathMatches(path, pattern));
}

// ---------------------------------------------------------------------------------------------------------
// GitHub Actions

function githubDecision(text: string): ScalarDecision {
  if (/\$\{\{/.test(text)) return { unresolved: 'uses a GitHub Actions expression (${{ … }})' };
  return {};
}

const ACTION_METADATA = /(?:^|\/)action\.ya?ml$/i;

export const githubActionsExtractor: Extractor = {
  kind: 'github-actions',
  matches(path: string): boolean {
    return /(?:^|\/)\.github\/workflows\/[^/]+\.ya?ml$/i.test(path) || ACTION_METADATA.test(path);
  },
  extract(path: string, content: string): FoundReference[] {
    const action = ACTION_METADATA.test(path);
    return collectReferences(path, content, 'github-actions', (scalar) => {
      if (!isImageScalar(scalar)) return undefined;
      if (action) {
        // A Docker container action runs `runs.image`: a `docker://` image, or a Dockerfile it builds.
        if (!pathMatches(scalar.path, ['runs', 'image'])) return undefined;
        const match = /^docker:\/\//i.exec(scalar.text);
        if (!match) return undefined;
        const text = scalar.text.slice(match[0].length);
        return { ...githubDecision(text), offset: scalar.offset + match[0].length, text };
      }
      if (
        anyPattern(scalar.path, [
          ['jobs', '*', 'container'],
          ['jobs', '*', 'container', 'image'],
          ['jobs', '*', 'services', '*'],
          ['jobs', '*', 'services', '*', 'image'],
        ])
      ) {
        return githubDecision(scalar.text);
      }
      if (pathMatches(scalar.path, ['jobs', '*', 'steps', '#', 'uses'])) {
        const match = /^docker:\/\//i.exec(scalar.text);
        if (!match) return undefined;
        const text = scalar.text.slice(match[0].length);
        return { ...githubDecision(text), offset: scalar.offset + match[0].length, text };
      }
      return undefined;
    });
  },
};

// ---------------------------------------------------------------------------------------------------------
// GitLab CI

/** Top-level keys of .gitlab-ci.yml that are not jobs. */
const GITLAB_RESERVED = new Set([
  'stages',
  'variables',
  'include',
  'workflow',
  'default',
  'image',
  'services',
  'cache',
  'before_script',
  'after_script',
  'spec',
]);

/** Variables declared at the top level and in each job (`KEY: value` or `KEY: {value: …}`). */
function gitlabVariables(content: string): Map<string, Map<string, string>> {
  const scopes = new Map<string, Map<string, string>>();
  for (const scalar of yamlScalars(content)) {
    const path = scalar.path;
    let scope: string | undefined;
    let name: string | undefined;
    if (pathMatches(path, ['variables', '*']) || pathMatches(path, ['variables', '*', 'value'])) {
      scope = '';
      name = String(path[1]);
    } else if (
      pathMatches(path, ['*', 'variables', '*']) ||
      pathMatches(path, ['*', 'variables', '*', 'value'])
    ) {
      scope = String(path[0]);
      name = String(path[2]);
    }
    if (scope === undefined || name === undefined || scalar.value === undefined) continue;
    let map = scopes.get(scope);
    if (!map) scopes.set(scope, (map = new Map<string, string>()));
    if (!map.has(name)) map.set(name, scalar.value);
  }
  return scopes;
}

export const gitlabCiExtractor: Extractor = {
  kind: 'gitlab-ci',
  matches(path: string): boolean {
    // Pipelines split into files that `.gitlab-ci.yml` includes live under `.gitlab/` (agents' settings do not).
    return (
      /\.gitlab-ci\.ya?ml$/i.test(baseName(path)) ||
      /(?:^|\/)\.gitlab\/(?!agents\/)(?:[^/]+\/)*[^/]+\.ya?ml$/i.test(path)
    );
  },
  extract(path: string, content: string): FoundReference[] {
    let variables: Map<string, Map<string, string>>;
    try {
      variables = gitlabVariables(content);
    } catch {
      variables = new Map();
    }
    return collectReferences(path, content, 'gitlab-ci', (scalar) => {
      if (!isImageScalar(scalar)) return undefined;
      const path0 = scalar.path[0];
      if (typeof path0 !== 'string') return undefined;
      const inJob = !GITLAB_RESERVED.has(path0);
      const rest = inJob || path0 === 'default' ? scalar.path.slice(1) : scalar.path;
      if (!inJob && path0 !== 'default' && path0 !== 'image' && path0 !== 'services') return undefined;
      if (!anyPattern(rest, [['image'], ['image', 'name'], ['services', '#'], ['services', '#', 'name']])) {
        return undefined;
      }
      const text = scalar.value ?? scalar.text;
      if (!text.includes('$')) return {};
      const job = inJob ? variables.get(path0) : undefined;
      const global = variables.get('');
      const result = interpolate(
        text,
        (name) => job?.get(name) ?? global?.get(name),
        (name) => `uses $${name}, which is only known when the pipeline runs`,
      );
      return result.unresolved !== undefined
        ? { unresolved: result.unresolved }
        : { resolved: result.resolved ?? text };
    });
  },
};

// ---------------------------------------------------------------------------------------------------------
// CodeBuild buildspec

/** `docker run` flags that take no value (others without `=` take the next word). */
const DOCKER_BOOLEAN_FLAGS = new Set([
  '-d',
  '--detach',
  '-i',
  '--interactive',
  '-t',
  '--tty',
  '--rm',
  '--privileged',
  '--init',
  '-P',
  '--publish-all',
  '--read-only',
  '--no-healthcheck',
  '--oom-kill-disable',
  '-q',
  '--quiet',
  '-a',
  '--all-tags',
  '--disable-content-trust',
]);

function isBooleanFlag(flag: string): boolean {
  if (DOCKER_BOOLEAN_FLAGS.has(flag)) return true;
  // Combined short flags: -it, -dit, -itd.
  return /^-[dit]+$/.test(flag);
}

/** Finds `docker pull|run … <image>` in the raw text of a command and returns the image tokens. */
function dockerCommandImages(raw: string, base: number): { offset: number; text: string }[] {
  const out: { offset: number; text: string }[] = [];
  const command = /(?:^|[\s;&|(`])docker\s+(?:image\s+pull|container\s+run|pull|run)\b/g;
  for (let match = command.exec(raw); match; match = command.exec(raw)) {
    const words = /[^\s;&|`]+/g;
    words.lastIndex = match.index + match[0].length;
    let expectValue = false;
    for (let word = words.exec(raw); word; word = words.exec(raw)) {
      // Stop at a line break not continued with `\`.
      const between = raw.slice(match.index + match[0].length, word.index);
      if (/(?<!\\)\r?\n/.test(between.replace(/\\\r?\n/g, ''))) break;
      const token = word[0];
      if (token === '\\') continue;
      if (expectValue) {
        expectValue = false;
        continue;
      }
      if (token.startsWith('-')) {
        if (!token.includes('=') && !isBooleanFlag(token)) expectValue = true;
        continue;
      }
      let text = token;
      let offset = word.index;
      const quote = text[0];
      if ((quote === '"' || quote === "'") && text.length > 2 && text.endsWith(quote)) {
        text = text.slice(1, -1);
        offset += 1;
      }
      if (!text.startsWith('$') && /^[A-Za-z0-9][\w.\-/:@${}]*$/.test(text)) {
        out.push({ offset: base + offset, text });
      }
      break;
    }
  }
  return out;
}

/**
 * `FROM <image>` written into a Dockerfile by a command (`echo "FROM node:20" > Dockerfile`, `printf 'FROM
 * %s\n'`, a heredoc): the image after `FROM` (and `--platform=...`), uppercase as Dockerfiles write it.
 */
function writtenFromImages(raw: string, base: number): { offset: number; text: string }[] {
  const out: { offset: number; text: string }[] = [];
  const from = /(?:^|[\s"'`;(]|\\n)FROM[ \t]+(?:--platform=\S+[ \t]+)?([^\s"'`;\\]+)/g;
  for (let match = from.exec(raw); match; match = from.exec(raw)) {
    const text = match[1] ?? '';
    if (text.toLowerCase() === 'scratch' || !/^[A-Za-z0-9$][\w.\-/:@${}]*$/.test(text)) continue;
    out.push({ offset: base + match.index + match[0].length - text.length, text });
  }
  return out;
}

export const buildspecExtractor: Extractor = {
  kind: 'buildspec',
  matches(path: string): boolean {
    return /^buildspec[^/]*\.ya?ml$/i.test(baseName(path));
  },
  extract(path: string, content: string): FoundReference[] {
    return collectReferences(path, content, 'buildspec', (scalar: YamlScalar) => {
      if (
        !anyPattern(scalar.path, [
          ['phases', '*', 'commands', '#'],
          ['phases', '*', 'finally', '#'],
        ])
      ) {
        return undefined;
      }
      const raw = content.slice(scalar.sourceStart, scalar.sourceEnd);
      const decisions: ScalarDecision[] = [];
      const found = [
        ...dockerCommandImages(raw, scalar.sourceStart).map((image) => ({ ...image, how: 'docker command' })),
        ...writtenFromImages(raw, scalar.sourceStart).map((image) => ({
          ...image,
          how: 'FROM written by a command',
        })),
      ];
      for (const image of found) {
        const decision: ScalarDecision = {
          offset: image.offset,
          text: image.text,
          context: `${formatYamlPath(scalar.path)}: ${image.how}`,
        };
        if (image.text.includes('$')) decision.unresolved = 'uses a shell variable';
        decisions.push(decision);
      }
      return decisions;
    });
  },
};

// ---------------------------------------------------------------------------------------------------------
// Bitbucket Pipelines

function ciVariableDecision(text: string, system: string): ScalarDecision {
  if (/<<\s*[\w.-]+\s*>>/.test(text)) return { unresolved: `uses a ${system} parameter (<< … >>)` };
  if (!text.includes('$')) return {};
  const result = interpolate(
    text,
    () => undefined,
    (name) => `uses $${name}, which is only known when the pipeline runs`,
  );
  return result.unresolved !== undefined ? { unresolved: result.unresolved } : {};
}

export const bitbucketPipelinesExtractor: Extractor = {
  kind: 'bitbucket-pipelines',
  matches(path: string): boolean {
    return /^bitbucket-pipelines\.ya?ml$/i.test(baseName(path));
  },
  extract(path: string, content: string): FoundReference[] {
    return collectReferences(path, content, 'bitbucket-pipelines', (scalar) => {
      if (!isImageScalar(scalar)) return undefined;
      const ok = anyPattern(scalar.path, [
        ['image'],
        ['image', 'name'],
        ['pipelines', '**', 'step', 'image'],
        ['pipelines', '**', 'step', 'image', 'name'],
        ['definitions', 'steps', '#', 'step', 'image'],
        ['definitions', 'steps', '#', 'step', 'image', 'name'],
        ['definitions', '**', 'step', 'image'],
        ['definitions', '**', 'step', 'image', 'name'],
        ['definitions', 'services', '*', 'image'],
        ['definitions', 'services', '*', 'image', 'name'],
      ]);
      return ok ? ciVariableDecision(scalar.value ?? scalar.text, 'Bitbucket') : undefined;
    });
  },
};

// ---------------------------------------------------------------------------------------------------------
// CircleCI

export const circleciExtractor: Extractor = {
  kind: 'circleci',
  matches(path: string): boolean {
    return /(?:^|\/)\.circleci\/(?:config|continue[^/]*)\.ya?ml$/i.test(path);
  },
  extract(path: string, content: string): FoundReference[] {
    return collectReferences(path, content, 'circleci', (scalar) => {
      if (!isImageScalar(scalar)) return undefined;
      const ok = anyPattern(scalar.path, [
        ['jobs', '*', 'docker', '#', 'image'],
        ['executors', '*', 'docker', '#', 'image'],
      ]);
      return ok ? ciVariableDecision(scalar.value ?? scalar.text, 'CircleCI') : undefined;
    });
  },
};

export const ciExtractors: Extractor[] = [
  githubActionsExtractor,
  gitlabCiExtractor,
  buildspecExtractor,
  bitbucketPipelinesExtractor,
  circleciExtractor,
];

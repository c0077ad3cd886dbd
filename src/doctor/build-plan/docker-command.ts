/** docker command lines: options and arguments after the verb, and where a `docker login` logs in to. */
import type { BuildLogin } from '../build-plan.ts';
import { ECR_PUBLIC_REGISTRY, ecrRegistryHost, parseEcrHost } from '../images.ts';
import { expand, type Scope } from './shell.ts';

/** Options of each docker verb that take no value; every other option takes one (unless written `--o=v`). */
export const flagOptions: Record<string, ReadonlySet<string>> = {
  login: new Set(['--password-stdin']),
  pull: new Set(['-a', '--all-tags', '-q', '--quiet', '--disable-content-trust']),
  run: new Set([
    '--rm',
    '-d',
    '--detach',
    '-i',
    '--interactive',
    '-t',
    '--tty',
    '--privileged',
    '--init',
    '-P',
    '--publish-all',
    '--read-only',
    '-q',
    '--quiet',
    '--no-healthcheck',
    '--oom-kill-disable',
    '--disable-content-trust',
  ]),
  build: new Set([
    '--pull',
    '--no-cache',
    '-q',
    '--quiet',
    '--rm',
    '--force-rm',
    '--push',
    '--load',
    '--squash',
    '--compress',
    '--disable-content-trust',
  ]),
  compose: new Set(['--compatibility', '--dry-run', '--verbose', '--no-ansi']),
};

/** Options and positional arguments of a docker command line, after its verb. */
export function parseArguments(
  words: readonly string[],
  flags: ReadonlySet<string>,
): { options: Map<string, string[]>; positional: string[] } {
  const options = new Map<string, string[]>();
  const positional: string[] = [];
  const add = (name: string, value: string) => options.set(name, [...(options.get(name) ?? []), value]);
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (positional.length > 0) {
      positional.push(word);
      continue;
    }
    if (word === '--') {
      positional.push(...words.slice(i + 1));
      break;
    }
    if (!word.startsWith('-') || word === '-') {
      positional.push(word);
      continue;
    }
    const equals = word.indexOf('=');
    if (equals > 0) {
      add(word.slice(0, equals), word.slice(equals + 1));
      continue;
    }
    // Combined short flags (`-it`, `-dit`) take no value.
    if (flags.has(word) || /^-[ditPq]{2,}$/.test(word)) {
      add(word, '');
      continue;
    }
    add(word, words[i + 1] ?? '');
    i++;
  }
  return { options, positional };
}

/** Every value given to any of the option's names. */
export function option(options: Map<string, string[]>, ...names: string[]): string[] {
  return names.flatMap((name) => options.get(name) ?? []);
}

/** A registry host from a `docker login` server argument: `https://host/v1/` gives `host`. */
function hostOf(server: string): string {
  const host = server.replace(/^[a-z]+:\/\//i, '').split('/')[0]!;
  // Host names are case-insensitive; variable names are not.
  return host.replace(
    /(\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)|([^$]+)/g,
    (_, name: string | undefined, rest: string) => (name === undefined ? rest.toLowerCase() : name),
  );
}

const dockerHubHosts = new Set([
  'docker.io',
  'index.docker.io',
  'registry-1.docker.io',
  'registry.hub.docker.com',
  'hub.docker.com',
]);

/** `<account>.dkr.ecr.<region>.amazonaws.com` with either part still a variable. */
const ecrShape =
  /^([0-9]{12}|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)\.dkr\.ecr(-fips)?\.([a-z0-9-]+|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)\.amazonaws\.com(\.cn)?$/;

/** Which registry a `docker login` logs in to, and how that was decided. */
export function classifyLogin(
  written: string | undefined,
  username: string | undefined,
  pipedFrom: readonly string[] | undefined,
  scope: Scope,
): Pick<BuildLogin, 'registry' | 'target' | 'reason'> {
  const fromEcr = pipedFrom?.[0] === 'aws' && pipedFrom[1] === 'ecr';
  const fromEcrPublic = pipedFrom?.[0] === 'aws' && pipedFrom[1] === 'ecr-public';
  if (written === undefined) {
    return { registry: 'docker.io', target: 'docker-hub', reason: 'no server given: Docker Hub' };
  }
  const { text, unresolved } = expand(written, scope);
  const host = hostOf(text);
  if (unresolved.length === 0) {
    if (dockerHubHosts.has(host))
      return { registry: 'docker.io', target: 'docker-hub', reason: 'Docker Hub' };
    if (host === ECR_PUBLIC_REGISTRY) return { registry: host, target: 'ecr-public', reason: 'ECR Public' };
    if (parseEcrHost(host)) return { registry: host, target: 'ecr', reason: resolvedFrom(written, host) };
    return { registry: host, target: 'other', reason: resolvedFrom(written, host) };
  }
  const shape = ecrShape.exec(host);
  if (shape) {
    const account = /^[0-9]{12}$/.test(shape[1] ?? '') ? shape[1]! : scope.accountId;
    const region = shape[3]?.startsWith('$') ? scope.region : (shape[3] ?? scope.region);
    const assumed = [
      ...(shape[1]?.startsWith('$') ? [`${shape[1]} taken as this account`] : []),
      ...(shape[3]?.startsWith('$') ? [`${shape[3]} as ${scope.region}`] : []),
    ];
    return {
      ...(account ? { registry: ecrRegistryHost(account, region) } : {}),
      target: 'ecr',
      reason:
        `${written === host ? host : `${written} is ${host}`}, an ECR registry` +
        (assumed.length > 0 ? ` (${assumed.join(', ')}: not set in the buildspec or the project)` : ''),
    };
  }
  const why = `${unresolved.map((name) => (name.startsWith('$(') ? name : `$${name}`)).join(', ')} ${unresolved.length === 1 ? 'is' : 'are'} not set in the buildspec's env.variables, the project's environment variables or an earlier command${unresolved.some((name) => scope.secret.has(name)) ? ' (a secret or parameter, read at run time)' : ''}`;
  if (fromEcrPublic) {
    return {
      target: 'ecr-public',
      reason: `the password comes from aws ecr-public get-login-password; ${why}`,
    };
  }
  if (fromEcr || username === 'AWS') {
    return {
      target: 'ecr',
      reason: `${fromEcr ? 'the password comes from aws ecr get-login-password' : 'user AWS is how ECR logins are made'}; ${why}`,
    };
  }
  return { target: 'unresolved', reason: why };
}

function resolvedFrom(written: string, host: string): string {
  return written === host ? host : `${written} is ${host}`;
}

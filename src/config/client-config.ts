/**
 * What each container runtime needs to pull through a pullsafe cache, made from the cache's upstreams:
 * containerd's hosts.toml per registry, Docker's registry-mirrors, registries.conf for podman and CRI-O, and
 * the rewritten image references for runtimes that have no mirror setting (ECS on Fargate, CodeBuild).
 * Pure: the CLI prints or writes what this returns.
 *
 * Promises: every file routes a registry's pulls to the cache the way the cache's routing expects them
 * (containerd adds `?ns=REGISTRY`, Docker sends bare names to the default upstream, containers/image uses the
 * host-named prefix `HOST/NAMESPACE`), and every runtime that can fall back to the upstream is told where it
 * is. Settings that weaken TLS are never written silently: a plain-HTTP endpoint gets what the runtime
 * cannot work without (podman's `insecure = true`), with a comment saying why, and everything else is a note.
 */
import { PullsafeError } from '../errors/index.ts';
import { isLoopback, upstreamNamespace, upstreamUrl } from './serve.ts';

export const clientRuntimes = ['containerd', 'docker', 'podman', 'ecs'] as const;
export type ClientRuntime = (typeof clientRuntimes)[number];

/** An upstream as the serve config names it; `default` marks the upstream bare names go to. */
export interface ClientUpstream {
  name: string;
  url?: string | undefined;
  prefixes?: string[] | undefined;
  default?: boolean | undefined;
}

export interface CacheEndpoint {
  /** `scheme://host[:port]`, as containerd's `[host."…"]` and Docker's registry-mirrors name it. */
  origin: string;
  /** `host[:port]`, as image references spell it. */
  host: string;
  plainHttp: boolean;
}

export interface ClientConfigFile {
  /** Where `--out DIR` writes it, relative to DIR. */
  outPath: string;
  /** Where the runtime reads it. */
  installPath: string;
  content: string;
}

export interface ReferenceRewrite {
  registry: string;
  /** `REGISTRY/REPOSITORY:TAG` pattern of the references to change. */
  from: string;
  to: string;
  /** A concrete pair, where a short name makes it clearer (docker.io). */
  example?: { from: string; to: string };
}

export interface ClientConfigSection {
  runtime: ClientRuntime;
  title: string;
  files: ClientConfigFile[];
  references: ReferenceRewrite[];
  /** Sentences for the person installing the files. */
  notes: string[];
}

/** `https://cache.example.com`, `http://10.0.0.5:5000`: scheme, host and port only. */
export function parseCacheEndpoint(value: string): CacheEndpoint {
  const example = 'for example --endpoint https://cache.example.com or --endpoint http://10.0.0.5:5000';
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value.trim())) {
    throw new PullsafeError(
      'USAGE',
      `--endpoint ${value}: give the scheme, https:// or http:// (runtimes need to know which)`,
      { hint: example },
    );
  }
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new PullsafeError('USAGE', `--endpoint ${value}: not a URL`, { hint: example });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new PullsafeError('USAGE', `--endpoint ${value}: only https:// or http://, not ${url.protocol}`, {
      hint: example,
    });
  }
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username || url.password) {
    throw new PullsafeError(
      'USAGE',
      `--endpoint ${value}: scheme, host and port only (no path, query or credentials)`,
      {
        hint: `the cache routes by the path itself; ${example}`,
      },
    );
  }
  return { origin: url.origin, host: url.host, plainHttp: url.protocol === 'http:' };
}

/** The upstream bare names (`/v2/library/nginx/...`) go to: the one marked default, else docker.io. */
export function defaultUpstream(upstreams: readonly ClientUpstream[]): ClientUpstream | undefined {
  return upstreams.find((upstream) => upstream.default) ?? upstreams.find((u) => u.name === 'docker.io');
}

export function clientConfig(options: {
  endpoint: CacheEndpoint;
  upstreams: readonly ClientUpstream[];
  runtimes: readonly ClientRuntime[];
}): ClientConfigSection[] {
  const { endpoint, upstreams } = options;
  if (upstreams.length === 0) {
    throw new PullsafeError('USAGE', 'the cache has no upstreams, so there is nothing to point clients at', {
      hint: 'give --proxy NAME[=URL] (as serve was started with) or --config FILE with a proxy.upstreams section',
    });
  }
  const makers: Record<ClientRuntime, () => ClientConfigSection> = {
    containerd: () => containerdSection(endpoint, upstreams),
    docker: () => dockerSection(endpoint, upstreams),
    podman: () => podmanSection(endpoint, upstreams),
    ecs: () => ecsSection(endpoint, upstreams),
  };
  return clientRuntimes.filter((runtime) => options.runtimes.includes(runtime)).map((r) => makers[r]());
}

function loopbackUpstreams(upstreams: readonly ClientUpstream[]): string[] {
  return upstreams
    .filter((upstream) => isLoopback(upstreamUrl(upstream).hostname.replace(/^\[|\]$/g, '')))
    .map((upstream) => `${upstream.name} (${upstreamUrl(upstream).origin})`);
}

function containerdSection(
  endpoint: CacheEndpoint,
  upstreams: readonly ClientUpstream[],
): ClientConfigSection {
  const files = upstreams.map((upstream): ClientConfigFile => {
    const server = upstreamUrl(upstream).origin;
    return {
      outPath: `certs.d/${upstream.name}/hosts.toml`,
      installPath: `/etc/containerd/certs.d/${upstream.name}/hosts.toml`,
      content: [
        `# ${upstream.name} through the pullsafe cache at ${endpoint.origin}: containerd asks the cache first`,
        `# (adding ?ns=${upstream.name} to each request) and ${server} when the cache fails.`,
        `server = "${server}"`,
        '',
        `[host."${endpoint.origin}"]`,
        '  capabilities = ["pull", "resolve"]',
        '',
      ].join('\n'),
    };
  });
  const notes = [
    'containerd reads these files at every pull: no restart. Its CRI plugin must have config_path = "/etc/containerd/certs.d" in [plugins."io.containerd.grpc.v1.cri".registry] (check with `containerd config dump | grep config_path`); ctr and nerdctl take --hosts-dir /etc/containerd/certs.d.',
    endpoint.plainHttp
      ? `The cache is plain HTTP: the http:// in [host."${endpoint.origin}"] is all containerd needs (skip_verify is for HTTPS certificates it cannot verify). Over plain HTTP anyone on the network path can see what nodes pull, and change which manifest a tag names.`
      : `If the cache's certificate comes from a private CA, add ca = "/etc/containerd/certs.d/REGISTRY/ca.crt" under [host."${endpoint.origin}"] and put the CA there; skip_verify = true would turn certificate checks off altogether, so it is not written here.`,
  ];
  const loopback = loopbackUpstreams(upstreams);
  if (loopback.length > 0) {
    notes.push(
      `server is the upstream as the cache reaches it, a loopback address for ${loopback.join(', ')}: a node falls back to its own loopback, where that upstream is not unless the node runs it.`,
    );
  }
  return {
    runtime: 'containerd',
    title: 'containerd: EKS and other Kubernetes nodes, nerdctl, ctr',
    files,
    references: [],
    notes,
  };
}

function dockerSection(endpoint: CacheEndpoint, upstreams: readonly ClientUpstream[]): ClientConfigSection {
  const section: ClientConfigSection = {
    runtime: 'docker',
    title: 'Docker: dockerd on ECS container instances and other hosts (Docker Hub images only)',
    files: [],
    references: [],
    notes: [],
  };
  const others = upstreams.filter((upstream) => upstream.name !== 'docker.io').map((u) => u.name);
  const bareNames = defaultUpstream(upstreams);
  if (!upstreams.some((upstream) => upstream.name === 'docker.io')) {
    section.notes.push(
      "Docker's registry-mirrors carries Docker Hub pulls only, and this cache has no docker.io upstream: there is nothing to set. Pull images of other registries by rewritten references (see the ecs section).",
    );
    return section;
  }
  if (bareNames?.name !== 'docker.io') {
    section.notes.push(
      `Docker sends Docker Hub pulls to a mirror as bare names (/v2/library/nginx/...), and this cache sends bare names to ${bareNames?.name} (default: true), not to docker.io: no registry-mirrors, or Docker would get ${bareNames?.name}'s images. Make docker.io the default upstream, or use rewritten references (see the ecs section).`,
    );
    return section;
  }
  section.files.push({
    outPath: 'daemon.json',
    installPath: '/etc/docker/daemon.json',
    content: `${JSON.stringify({ 'registry-mirrors': [endpoint.origin] }, null, 2)}\n`,
  });
  section.notes.push(
    'Merge the key into /etc/docker/daemon.json (keep its other keys), then restart dockerd or `systemctl reload docker` (registry-mirrors is reread on SIGHUP). dockerd sends Docker Hub pulls to the mirror as bare names, which the cache sends to docker.io; when the mirror fails, dockerd pulls from Docker Hub itself.',
  );
  if (others.length > 0) {
    section.notes.push(
      `registry-mirrors is for Docker Hub only: images of ${others.join(', ')} are pulled from those registries directly unless their references are rewritten (see the ecs section).`,
    );
  }
  section.notes.push(
    endpoint.plainHttp
      ? `The cache is plain HTTP: the http:// in registry-mirrors is all dockerd needs for the mirror. A rewritten reference to ${endpoint.host} would also need "insecure-registries": ["${endpoint.host}"], which turns TLS off for that host, so it is not written here.`
      : `If the cache's certificate comes from a private CA, put the CA in /etc/docker/certs.d/${endpoint.host}/ca.crt.`,
  );
  return section;
}

/** Where containers/image goes for an upstream when the mirror fails: the registry itself, or its configured URL. */
function podmanLocation(upstream: ClientUpstream): string {
  return upstream.url === undefined ? upstream.name : upstreamUrl(upstream).host;
}

function podmanSection(endpoint: CacheEndpoint, upstreams: readonly ClientUpstream[]): ClientConfigSection {
  const lines = [
    `# Pulls through the pullsafe cache at ${endpoint.origin}: podman, buildah, skopeo`,
    "# and CRI-O try the mirror first and the registry's own location when the mirror fails.",
  ];
  for (const upstream of upstreams) {
    lines.push('', '[[registry]]', `prefix = "${upstream.name}"`, `location = "${podmanLocation(upstream)}"`);
    if (upstreamUrl(upstream).protocol === 'http:') {
      lines.push(
        '# The upstream is plain HTTP (a loopback address), which containers/image only speaks to',
        '# an insecure location.',
        'insecure = true',
      );
    }
    lines.push(
      '',
      '[[registry.mirror]]',
      `location = "${endpoint.host}/${upstreamNamespace(upstream.name)}"`,
    );
    if (endpoint.plainHttp) {
      lines.push(
        '# The cache is plain HTTP, which containers/image only speaks to an insecure location (this also',
        '# turns certificate checks off for it).',
        'insecure = true',
      );
    }
  }
  const notes = [
    'Install as a drop-in, /etc/containers/registries.conf.d/pullsafe.conf, or merge it into /etc/containers/registries.conf (version 2 format). podman, buildah and skopeo read it at every command; CRI-O rereads it on `systemctl reload crio`.',
    `Each mirror location is the cache's host followed by the registry's namespace (${endpoint.host}/${upstreamNamespace(upstreams[0]!.name)}/...), which the cache routes to that upstream.`,
  ];
  if (endpoint.plainHttp) {
    notes.push(
      'The cache is plain HTTP: each mirror has insecure = true, without which podman and CRI-O would skip the mirror and pull from the registry directly.',
    );
  } else {
    notes.push(
      `If the cache's certificate comes from a private CA, put the CA in /etc/containers/certs.d/${endpoint.host}/ca.crt.`,
    );
  }
  return {
    runtime: 'podman',
    title: 'podman, buildah, skopeo and CRI-O: registries.conf',
    files: [
      {
        outPath: 'registries.conf',
        installPath: '/etc/containers/registries.conf.d/pullsafe.conf',
        content: `${lines.join('\n')}\n`,
      },
    ],
    references: [],
    notes,
  };
}

function ecsSection(endpoint: CacheEndpoint, upstreams: readonly ClientUpstream[]): ClientConfigSection {
  const references = upstreams.map((upstream): ReferenceRewrite => {
    const namespace = upstreamNamespace(upstream.name);
    const rewrite: ReferenceRewrite = {
      registry: upstream.name,
      from: `${upstream.name}/REPOSITORY:TAG`,
      to: `${endpoint.host}/${namespace}/REPOSITORY:TAG`,
    };
    if (upstream.name === 'docker.io') {
      rewrite.example = { from: 'nginx:1.27', to: `${endpoint.host}/docker.io/library/nginx:1.27` };
    }
    return rewrite;
  });
  const notes = [
    `ECS on Fargate and CodeBuild have no mirror setting: each image reference names the cache instead (task definitions, buildspecs, Dockerfiles' FROM lines). A digest stays as it is (@sha256:...). \`pullsafe rewrite --to-cache ${endpoint.origin}\` makes these edits in files.`,
    "ECS on EC2 pulls with the instance's Docker, so the docker section's registry-mirrors also works there for Docker Hub images.",
    'A rewritten reference has no fallback: while the cache is down, these pulls fail. Run more than one replica behind the endpoint (docs/cache.md, "When the cache is down").',
    "If the cache requires credentials, give them as the task definition's repositoryCredentials or the CodeBuild project's registryCredential (a Secrets Manager secret with username and password).",
  ];
  if (endpoint.plainHttp) {
    notes.push(
      `The cache is plain HTTP: Fargate cannot pull from it. dockerd (ECS on EC2, a build's own Docker) pulls a reference to ${endpoint.host} over HTTP only with "insecure-registries": ["${endpoint.host}"] in its daemon.json, which turns TLS off for that host.`,
    );
  }
  return {
    runtime: 'ecs',
    title: 'ECS on Fargate, CodeBuild and other clients without a mirror setting: rewritten references',
    files: [],
    references,
    notes,
  };
}

/**
 * The sections as text for a terminal: each file under a `## PATH` line, ready to copy, and each note
 * wrapped. `written` names the files as written under an `--out` folder instead of printing them.
 */
export function renderClientConfig(
  endpoint: CacheEndpoint,
  sections: readonly ClientConfigSection[],
  written?: { outDir: string },
): string {
  const out: string[] = [`# What clients need to pull through the pullsafe cache at ${endpoint.origin}.`];
  for (const section of sections) {
    out.push('', `== ${section.title} ==`);
    for (const file of section.files) {
      if (written) out.push(`wrote ${written.outDir}/${file.outPath}: install as ${file.installPath}`);
      else out.push('', `## ${file.installPath}`, file.content.trimEnd());
    }
    if (section.references.length > 0) {
      out.push('');
      const width = Math.max(...section.references.map((rewrite) => rewrite.from.length));
      for (const rewrite of section.references) {
        out.push(`${rewrite.from.padEnd(width)}  ->  ${rewrite.to}`);
        if (rewrite.example) out.push(`  e.g. ${rewrite.example.from}  ->  ${rewrite.example.to}`);
      }
    }
    if (section.notes.length > 0) out.push('');
    for (const note of section.notes) out.push(...wrap(`- ${note}`, 100, '  '));
  }
  return `${out.join('\n')}\n`;
}

function wrap(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = `${indent}${word}`;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

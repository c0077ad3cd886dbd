/**
 * Registry authentication: `WWW-Authenticate` parsing, Docker's token protocol (anonymous or with
 * credentials), Basic auth, and a token cache.
 *
 * Promises:
 * - challenges are parsed per RFC 7235: several per header, quoted strings with `\` escapes, token68;
 * - a token is fetched once per registry host and scope set and reused until 30 s (or 10 % of its
 *   lifetime, whichever is less) before it expires; concurrent requests for the same token share one fetch;
 * - once a registry has challenged, later requests carry credentials up front (no 401 round trip);
 * - credentials are asked of the `CredentialSource` once per registry;
 * - tokens, passwords and Authorization values never appear in errors.
 */
import { z } from 'zod';
import { redact } from '../errors/index.ts';
import { ExpiringMap } from '../shared/bounded.ts';
import type { CredentialSource, Credentials } from './credentials.ts';
import { RegistryError } from './errors.ts';
import {
  parseRetryAfter,
  TransportError,
  type Transport,
  type TransportRequest,
  type TransportResponse,
} from './transport.ts';
import { parseRateLimit } from './ratelimit.ts';

/** How the CLI takes credentials, for hints: every command has --creds, `copy` its own pair. */
export const credentialFlags = '--creds user:password, or --src-creds/--dest-creds for copy';

export interface Challenge {
  /** Lowercased, e.g. `bearer`, `basic`. */
  scheme: string;
  /** Parameter names lowercased; values unquoted and unescaped. */
  params: Record<string, string>;
  token68?: string;
}

const tchar = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;
const token68Pattern = /^[A-Za-z0-9._~+/-]+=*/;

/** Parses a `WWW-Authenticate` value (or several joined with ", ") into its challenges. */
export function parseChallenges(header: string | readonly string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const text = typeof header === 'string' ? header : header.join(', ');
  const challenges: Challenge[] = [];
  let i = 0;
  const skipSpace = (): void => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < text.length && tchar.test(text[i]!)) i++;
    return text.slice(start, i);
  };
  // Lenient for unquoted values: a URL realm is not a token, but registries send it unquoted.
  const readBare = (): string => {
    const start = i;
    while (i < text.length && text[i] !== ',' && text[i] !== ' ' && text[i] !== '\t') i++;
    return text.slice(start, i);
  };
  const readQuoted = (): string => {
    let value = '';
    i++; // opening quote
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\' && i + 1 < text.length) i++;
      value += text[i];
      i++;
    }
    i++; // closing quote
    return value;
  };
  while (i < text.length) {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === ',')) i++;
    if (i >= text.length) break;
    const scheme = readToken();
    if (scheme === '') {
      // Not a challenge: skip to the next comma.
      while (i < text.length && text[i] !== ',') i++;
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    skipSpace();
    const rest = text.slice(i);
    const token68 = token68Pattern.exec(rest);
    if (token68 && /^\s*(?:,|$)/.test(rest.slice(token68[0].length)) && /^[^=]+=*$/.test(token68[0])) {
      challenge.token68 = token68[0];
      i += token68[0].length;
      challenges.push(challenge);
      continue;
    }
    for (;;) {
      skipSpace();
      const nameStart = i;
      const name = readToken();
      if (name === '') break;
      skipSpace();
      if (text[i] !== '=') {
        i = nameStart; // the next challenge's scheme
        break;
      }
      i++;
      skipSpace();
      const value = text[i] === '"' ? readQuoted() : readBare();
      challenge.params[name.toLowerCase()] = value;
      skipSpace();
      if (text[i] !== ',') break;
      while (i < text.length && (text[i] === ',' || text[i] === ' ' || text[i] === '\t')) i++;
    }
    challenges.push(challenge);
  }
  return challenges;
}

export interface BearerChallenge {
  realm: string;
  service?: string;
  /** The scopes the `scope` parameter names (space-separated in one parameter). */
  scopes: string[];
  /** e.g. `insufficient_scope`, `invalid_token`. */
  error?: string;
}

/** The first Bearer challenge with a realm, or undefined. */
export function bearerChallenge(challenges: readonly Challenge[]): BearerChallenge | undefined {
  const found = challenges.find((challenge) => challenge.scheme === 'bearer' && challenge.params.realm);
  if (!found) return undefined;
  const result: BearerChallenge = {
    realm: found.params.realm!,
    scopes: (found.params.scope ?? '').split(' ').filter((scope) => scope !== ''),
  };
  if (found.params.service !== undefined) result.service = found.params.service;
  if (found.params.error !== undefined) result.error = found.params.error;
  return result;
}

export type RepositoryAction = 'pull' | 'push' | 'delete' | '*';

/** `repository:<name>:<actions>`. */
export function repositoryScope(repository: string, actions: readonly RepositoryAction[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}

/**
 * Merges scopes on the same resource (`repository:a:pull` + `repository:a:push` →
 * `repository:a:pull,push`) and sorts them, so equal needs give equal cache keys.
 */
export function normaliseScopes(scopes: Iterable<string>): string[] {
  const merged = new Map<string, Set<string>>();
  for (const scope of scopes) {
    const first = scope.indexOf(':');
    const last = scope.lastIndexOf(':');
    if (first === -1 || last === first) {
      merged.set(scope, merged.get(scope) ?? new Set());
      continue;
    }
    const resource = scope.slice(0, last);
    const actions = merged.get(resource) ?? new Set<string>();
    for (const action of scope.slice(last + 1).split(',')) if (action) actions.add(action);
    merged.set(resource, actions);
  }
  const order = ['pull', 'push', 'delete', '*'];
  const rank = (action: string): number => (order.includes(action) ? order.indexOf(action) : order.length);
  return [...merged.entries()]
    .map(([resource, actions]) =>
      actions.size === 0
        ? resource
        : `${resource}:${[...actions].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b)).join(',')}`,
    )
    .sort();
}

/** How long before expiry a token stops being used: 30 s, or 10 % of its lifetime when that is less. */
export function tokenRefreshMargin(lifetimeMs: number): number {
  return Math.min(30_000, lifetimeMs * 0.1);
}

/** Tokens by key, each valid until its refresh margin before expiry. Bounded; the oldest entry goes first. */
export class TokenCache {
  private readonly entries: ExpiringMap<string, string>;
  constructor(options: { now?: () => number; maxEntries?: number } = {}) {
    this.entries = new ExpiringMap({ maxEntries: options.maxEntries ?? 1000, now: options.now });
  }
  get(key: string): string | undefined {
    return this.entries.get(key);
  }
  set(key: string, token: string, expiresInSeconds: number): void {
    const lifetime = expiresInSeconds * 1000;
    this.entries.set(key, token, lifetime - tokenRefreshMargin(lifetime));
  }
  /** Forgets `key`, or only when it still holds `token`. */
  delete(key: string, token?: string): void {
    if (token === undefined || this.entries.get(key) === token) this.entries.delete(key);
  }
  get size(): number {
    return this.entries.size;
  }
}

/** Lifetime assumed when a token answer has no `expires_in`. */
export const DEFAULT_TOKEN_SECONDS = 60;

const tokenAnswerSchema = z.object({
  token: z.string().optional(),
  access_token: z.string().optional(),
  expires_in: z.number().optional(),
});

/** The token and lifetime from a token service's JSON answer; undefined when it has no token. */
export function parseTokenAnswer(body: string): { token: string; expiresIn: number } | undefined {
  let document: unknown;
  try {
    document = JSON.parse(body);
  } catch {
    return undefined;
  }
  const parsed = tokenAnswerSchema.safeParse(document);
  if (!parsed.success) return undefined;
  const token = parsed.data.token || parsed.data.access_token;
  if (!token) return undefined;
  const expiresIn =
    parsed.data.expires_in !== undefined && parsed.data.expires_in > 0
      ? parsed.data.expires_in
      : DEFAULT_TOKEN_SECONDS;
  return { token, expiresIn };
}

/** What a registry host asked for when it last challenged. */
type HostScheme = { kind: 'bearer'; realm: string; service: string | undefined } | { kind: 'basic' };

export interface AuthTarget {
  /** Registry as in image references (`docker.io`): the key for credentials and messages. */
  registry: string;
  /** The API host (`registry-1.docker.io`): the key for schemes and tokens. */
  host: string;
}

export interface AuthenticatorOptions {
  transport: Transport;
  credentials?: CredentialSource;
  /** Milliseconds since the epoch; injected for tests. */
  now?: () => number;
}

export interface AuthStats {
  /** Token answers received from token services. */
  tokensFetched: number;
}

const TOKEN_BODY_LIMIT = 1024 * 1024;

export class Authenticator {
  readonly stats: AuthStats = { tokensFetched: 0 };
  private readonly transport: Transport;
  private readonly credentialSource: CredentialSource | undefined;
  private readonly cache: TokenCache;
  private readonly schemes = new Map<string, HostScheme>();
  private readonly credentials = new Map<string, Promise<Credentials | undefined>>();
  private readonly pending = new Map<string, Promise<string>>();

  constructor(options: AuthenticatorOptions) {
    this.transport = options.transport;
    this.credentialSource = options.credentials;
    this.cache = new TokenCache(options.now ? { now: options.now } : {});
  }

  /** The Authorization value to send up front, from what this host's earlier challenges asked for. */
  async authorization(target: AuthTarget, scopes: readonly string[]): Promise<string | undefined> {
    const scheme = this.schemes.get(target.host);
    if (!scheme) return undefined;
    if (scheme.kind === 'basic') return this.basicHeader(target);
    return `Bearer ${await this.token(target, scheme, normaliseScopes(scopes))}`;
  }

  /**
   * Learns from a 401's `WWW-Authenticate` and returns the Authorization value to retry with, or
   * undefined when there is nothing new to try (no usable challenge, no credentials for Basic, or the
   * same Basic credentials were just refused).
   */
  async challenged(
    target: AuthTarget,
    scopes: readonly string[],
    wwwAuthenticate: string | undefined,
    sent: string | undefined,
  ): Promise<string | undefined> {
    const challenges = parseChallenges(wwwAuthenticate);
    const bearer = bearerChallenge(challenges);
    if (bearer) {
      const scheme: HostScheme = { kind: 'bearer', realm: bearer.realm, service: bearer.service };
      this.schemes.set(target.host, scheme);
      const wanted = normaliseScopes(scopes);
      const needed = normaliseScopes([...wanted, ...bearer.scopes]);
      if (sent?.startsWith('Bearer ')) {
        const used = sent.slice('Bearer '.length);
        this.cache.delete(this.cacheKey(target, needed), used);
        this.cache.delete(this.cacheKey(target, wanted), used);
      }
      const token = await this.token(target, scheme, needed);
      if (needed.join(' ') !== wanted.join(' ')) {
        // The registry asked for more than the caller named: let later requests of the same need use it.
        this.cache.set(this.cacheKey(target, wanted), token, DEFAULT_TOKEN_SECONDS);
      }
      return `Bearer ${token}`;
    }
    if (challenges.some((challenge) => challenge.scheme === 'basic')) {
      this.schemes.set(target.host, { kind: 'basic' });
      const header = await this.basicHeader(target);
      return header === sent ? undefined : header;
    }
    return undefined;
  }

  /** Whether credentials are known for a registry (for messages and hints). */
  async hasCredentials(registry: string): Promise<boolean> {
    return (await this.credentialsFor(registry)) !== undefined;
  }

  private credentialsFor(registry: string): Promise<Credentials | undefined> {
    let found = this.credentials.get(registry);
    if (!found) {
      found = this.credentialSource ? this.credentialSource.get(registry) : Promise.resolve(undefined);
      this.credentials.set(registry, found);
      found.catch(() => this.credentials.delete(registry));
    }
    return found;
  }

  private async basicHeader(target: AuthTarget): Promise<string | undefined> {
    const credentials = await this.credentialsFor(target.registry);
    if (!credentials || !('password' in credentials)) return undefined;
    return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
  }

  private cacheKey(target: AuthTarget, scopes: readonly string[]): string {
    return `${target.host}\n${scopes.join(' ')}`;
  }

  private async token(
    target: AuthTarget,
    scheme: Extract<HostScheme, { kind: 'bearer' }>,
    scopes: string[],
  ): Promise<string> {
    const key = this.cacheKey(target, scopes);
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached;
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.fetchToken(target, scheme, scopes)
        .then(({ token, expiresIn }) => {
          this.cache.set(key, token, expiresIn);
          return token;
        })
        .finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    return pending;
  }

  private async fetchToken(
    target: AuthTarget,
    scheme: Extract<HostScheme, { kind: 'bearer' }>,
    scopes: string[],
  ): Promise<{ token: string; expiresIn: number }> {
    const realm = tokenRealm(target, scheme.realm, this.transport);
    const details = tokenErrorDetails(target, realm);
    const credentials = await this.credentialsFor(target.registry);
    let response: TransportResponse;
    try {
      response = await this.transport.request(tokenRequest(realm, scheme, scopes, credentials));
    } catch (error) {
      if (error instanceof TransportError) {
        throw new RegistryError(
          'REGISTRY_UNAVAILABLE',
          `cannot get a token for ${target.registry} from ${realm.host}: ${error.message}`,
          details,
          {
            hint: error.hint ?? 'check the network path to the token service; pullsafe retried already',
            cause: error,
          },
        );
      }
      throw error;
    }
    const status = response.status;
    const refusal = this.tokenRefusal(target, realm, response, credentials);
    if (refusal) throw refusal;
    this.stats.tokensFetched++;
    const answer = parseTokenAnswer((response.bytes ?? Buffer.alloc(0)).toString('utf8'));
    if (!answer) {
      throw new RegistryError(
        'REGISTRY_UNAVAILABLE',
        `the token service ${realm.host} answered without a token for ${target.registry} (HTTP ${status})`,
        { ...details, status },
        { hint: 'the token service is misbehaving; retry later' },
      );
    }
    return answer;
  }

  /** The error for a token service's answer that is not a 2xx (refused, rate-limited, failing); else undefined. */
  private tokenRefusal(
    target: AuthTarget,
    realm: URL,
    response: TransportResponse,
    credentials: Credentials | undefined,
  ): RegistryError | undefined {
    const status = response.status;
    const details = { ...tokenErrorDetails(target, realm), status };
    if (status === 401 || status === 403) {
      const who = credentials
        ? `with the credentials from ${this.credentialSource?.description ?? 'the caller'}`
        : 'anonymously';
      return new RegistryError(
        'REGISTRY_UNAUTHORIZED',
        `the token service ${realm.host} refused a token for ${target.registry} ${who} (HTTP ${status})`,
        details,
        {
          hint: credentials
            ? `check the user name and password or token for ${target.registry} (docker login ${target.registry})`
            : `log in: pass credentials for ${target.registry} (docker login, or ${credentialFlags})`,
        },
      );
    }
    if (status === 429) {
      const retryAfter = parseRetryAfter(response.header('retry-after'));
      const rateLimit = parseRateLimit(response.headers);
      return new RegistryError(
        'RATE_LIMITED',
        `the token service ${realm.host} rate-limited token requests for ${target.registry} (HTTP 429)`,
        {
          ...details,
          ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
          ...(rateLimit ? { rateLimit } : {}),
        },
        { hint: 'wait and retry; tokens are cached, so this usually means many separate processes' },
      );
    }
    if (status < 200 || status >= 300) {
      return new RegistryError(
        status >= 500 ? 'REGISTRY_UNAVAILABLE' : 'REGISTRY_REJECTED',
        `the token service ${realm.host} answered HTTP ${status} to a token request for ${target.registry}`,
        details,
        { hint: status >= 500 ? 'the token service is failing; retry later' : 'check the registry address' },
      );
    }
    return undefined;
  }
}

/** The token service's URL, resolved against the registry's; one that is not http(s) is refused. */
function tokenRealm(target: AuthTarget, written: string, transport: Transport): URL {
  let realm: URL;
  try {
    realm = new URL(written, transport.url(target.host, '/v2/'));
  } catch {
    realm = new URL('invalid:');
  }
  if (realm.protocol !== 'https:' && realm.protocol !== 'http:') {
    throw new RegistryError(
      'REGISTRY_REJECTED',
      `${target.host} named an unusable token service realm ${JSON.stringify(redact(written).slice(0, 200))}`,
      tokenErrorDetails(target, realm),
      { hint: 'the registry is misconfigured: its Bearer realm must be an http(s) URL' },
    );
  }
  return realm;
}

function tokenErrorDetails(target: AuthTarget, realm: URL): { registry: string; host: string } {
  return { registry: target.registry, host: realm.host || target.host };
}

/**
 * The token request Docker's protocol asks for: with an identity token, an OAuth2 refresh-token POST;
 * otherwise a GET, anonymous or with Basic credentials.
 */
function tokenRequest(
  realm: URL,
  scheme: Extract<HostScheme, { kind: 'bearer' }>,
  scopes: string[],
  credentials: Credentials | undefined,
): TransportRequest {
  if (credentials && 'identityToken' in credentials) {
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: credentials.identityToken,
      client_id: 'pullsafe',
    });
    if (scheme.service !== undefined) form.set('service', scheme.service);
    if (scopes.length > 0) form.set('scope', scopes.join(' '));
    return {
      method: 'POST',
      url: realm,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
      retrySafe: true,
      bufferLimit: TOKEN_BODY_LIMIT,
    };
  }
  const url = new URL(realm);
  if (scheme.service !== undefined) url.searchParams.append('service', scheme.service);
  for (const scope of scopes) url.searchParams.append('scope', scope);
  const headers: Record<string, string> = {};
  if (credentials) {
    url.searchParams.append('account', credentials.username);
    headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
  }
  return { method: 'GET', url, headers, bufferLimit: TOKEN_BODY_LIMIT };
}

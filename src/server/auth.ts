/**
 * Client access control for the registry server: HTTP Basic authentication against an htpasswd file
 * (bcrypt entries only) and per-repository rules over users and actions.
 *
 * Rules are checked in order; the first rule whose repository glob and user list both match the request
 * decides which actions are allowed. No matching rule means no access. Without explicit rules, defaults
 * derived from `anonymousPull` / `anonymousPush` apply (see `defaultRules`).
 *
 * Passwords and hashes never appear in errors, logs or memory beyond the request that carries them:
 * the verification cache is keyed by sha256(`user\0password`).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { OciError } from '../oci/errors.ts';
import { ExpiringMap } from '../shared/bounded.ts';
import { compileRepositoryGlob } from '../shared/glob.ts';

export type Action = 'pull' | 'push' | 'delete';

export const actions: readonly Action[] = ['pull', 'push', 'delete'];

export interface AccessRule {
  /** Glob over repository names: `*` matches within one path component, `**` matches across `/`. */
  repositories: string;
  /** User names; `*` = any authenticated user; `anonymous` = clients without credentials. */
  users: string[];
  /** Allowed actions; an empty list makes the rule an explicit deny. */
  actions: Action[];
}

export interface AuthOptions {
  /** Shown in the Basic challenge, e.g. `pullsafe`. */
  realm: string;
  /** Path to an htpasswd file (bcrypt entries only: `$2y$`, `$2a$`, `$2b$`). */
  htpasswd?: string;
  /** First matching rule (repository + user) decides; no match = no access. */
  rules?: AccessRule[];
  /** Used only when `rules` is not given. */
  anonymousPull: boolean;
  /** Used only when `rules` is not given; push implies delete. */
  anonymousPush: boolean;
}

/** An authenticated user, or anonymous when `user` is undefined. */
export interface Principal {
  user?: string;
}

export type Decision = 'allow' | 'unauthenticated' | 'denied';

export interface AccessControlHooks {
  /** Checks a password against a bcrypt hash. Defaults to bcryptjs `compare`. */
  verify?: (password: string, hash: string) => Promise<boolean>;
  /** Millisecond clock for cache expiry. Defaults to `Date.now`. */
  now?: () => number;
  /** Bound on each verification cache (successes and failures). Defaults to `authCacheDefaults.maxEntries`. */
  cacheEntries?: number;
}

export const authCacheDefaults = {
  /** How long a successful verification is remembered. */
  successTtlMs: 5 * 60_000,
  /** How long a failed verification is remembered, so a retrying client does not burn CPU. */
  failureTtlMs: 5_000,
  maxEntries: 1000,
} as const;

export type AuthConfigErrorCode =
  'AUTH_HTPASSWD_INVALID' | 'AUTH_HTPASSWD_UNREADABLE' | 'AUTH_RULES_INVALID' | 'AUTH_REALM_INVALID';

/** A configuration problem found by `AccessControl.load`. Messages name files and line numbers, never hashes. */
export class AuthConfigError extends Error {
  readonly code: AuthConfigErrorCode;
  /** 1-based line in the htpasswd file, when the problem is on a line. */
  readonly line: number | undefined;
  constructor(code: AuthConfigErrorCode, message: string, options?: { line?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AuthConfigError';
    this.code = code;
    this.line = options?.line;
  }
}

const anonymousUser = 'anonymous';
const anyUser = '*';

/** bcrypt as htpasswd -B and other tools write it: `$2y$`, `$2a$` or `$2b$`, cost 04..31, 53 characters of salt+hash. */
const bcryptPattern = /^\$2[aby]\$(?:0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$/;
// eslint-disable-next-line no-control-regex
const controlPattern = /[\u0000-\u001f\u007f]/;

/**
 * Parses htpasswd text into user → bcrypt hash. Blank lines and lines starting with `#` are skipped.
 * Any other line must be `user:hash` with a non-empty user and a bcrypt hash; otherwise throws
 * `AuthConfigError('AUTH_HTPASSWD_INVALID')` naming `source` and the line number.
 */
export function parseHtpasswd(text: string, source: string): Map<string, string> {
  const users = new Map<string, string>();
  const firstLine = new Map<string, number>();
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = (lines[index] ?? '').trim();
    const lineNumber = index + 1;
    if (line === '' || line.startsWith('#')) continue;
    const fail = (why: string): never => {
      throw new AuthConfigError('AUTH_HTPASSWD_INVALID', `htpasswd ${source} line ${lineNumber}: ${why}`, {
        line: lineNumber,
      });
    };
    const colon = line.indexOf(':');
    if (colon < 0) fail('expected user:bcrypt-hash');
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (user === '') fail('empty user name');
    if (controlPattern.test(user)) fail('user name contains control characters');
    if (user === anonymousUser || user === anyUser) {
      fail(`user name "${user}" is reserved for access rules`);
    }
    if (!bcryptPattern.test(hash)) fail(`${describeHash(hash)}; recreate the entry with \`htpasswd -B\``);
    const previous = firstLine.get(user);
    if (previous !== undefined) fail(`duplicate user "${user}" (first on line ${previous})`);
    users.set(user, hash);
    firstLine.set(user, lineNumber);
  }
  return users;
}

/** Names the kind of an unsupported hash without revealing it. */
function describeHash(hash: string): string {
  if (hash.startsWith('$apr1$')) return 'MD5 ($apr1$) hashes are not supported, only bcrypt';
  if (hash.startsWith('{SHA}')) return 'SHA-1 ({SHA}) hashes are not supported, only bcrypt';
  if (hash.startsWith('$1$') || hash.startsWith('$5$') || hash.startsWith('$6$')) {
    return 'crypt(3) hashes are not supported, only bcrypt';
  }
  if (/^\$2[aby]\$/.test(hash)) return 'malformed bcrypt hash';
  if (hash === '') return 'empty password hash';
  return 'not a bcrypt hash (plain-text passwords are not supported)';
}

interface CompiledRule {
  pattern: RegExp;
  users: ReadonlySet<string>;
  actions: ReadonlySet<Action>;
}

/**
 * The rules used when none are configured. With users: authenticated users may pull, push and delete
 * everywhere; anonymous clients get pull / push+delete per the flags. Without users every client is
 * anonymous and gets pull / push+delete per the flags.
 */
export function defaultRules(options: AuthOptions, usersConfigured: boolean): AccessRule[] {
  const anonymousActions: Action[] = [];
  if (options.anonymousPull) anonymousActions.push('pull');
  if (options.anonymousPush) anonymousActions.push('push', 'delete');
  if (!usersConfigured) {
    return [{ repositories: '**', users: [anonymousUser, anyUser], actions: anonymousActions }];
  }
  return [
    { repositories: '**', users: [anyUser], actions: ['pull', 'push', 'delete'] },
    { repositories: '**', users: [anonymousUser], actions: anonymousActions },
  ];
}

function compileRules(rules: AccessRule[]): CompiledRule[] {
  return rules.map((rule, index) => {
    const fail = (why: string): never => {
      throw new AuthConfigError('AUTH_RULES_INVALID', `access rule ${index + 1}: ${why}`);
    };
    if (typeof rule.repositories !== 'string' || rule.repositories === '')
      fail('repositories must be a glob');
    let pattern: RegExp | undefined;
    try {
      pattern = compileRepositoryGlob(rule.repositories);
    } catch (error) {
      fail((error as Error).message);
    }
    if (!Array.isArray(rule.users) || rule.users.length === 0) fail('users must list at least one user');
    for (const user of rule.users) {
      if (typeof user !== 'string' || user === '') fail('user names must be non-empty strings');
    }
    if (!Array.isArray(rule.actions)) fail('actions must be a list');
    for (const action of rule.actions) {
      if (!actions.includes(action))
        fail(`unknown action "${String(action)}" (expected pull, push or delete)`);
    }
    return { pattern: pattern as RegExp, users: new Set(rule.users), actions: new Set(rule.actions) };
  });
}

function unauthorized(detail?: string): OciError {
  return new OciError('UNAUTHORIZED', 'authentication required', detail);
}

const base64Pattern = /^[A-Za-z0-9+/]+={0,2}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export class AccessControl {
  readonly realm: string;
  private readonly users: ReadonlyMap<string, string>;
  private readonly rules: readonly CompiledRule[];
  private readonly verify: (password: string, hash: string) => Promise<boolean>;
  /** Credential hashes recently found right, and recently found wrong. */
  private readonly verified: ExpiringMap<string, true>;
  private readonly rejected: ExpiringMap<string, true>;
  private readonly inflight = new Map<string, Promise<boolean>>();
  /** The file's hashes in file order; an unknown user is checked against one of them (see `decoyFor`). */
  private readonly decoyHashes: readonly string[];

  private constructor(
    realm: string,
    users: ReadonlyMap<string, string>,
    rules: readonly CompiledRule[],
    hooks: AccessControlHooks,
  ) {
    this.realm = realm;
    this.users = users;
    this.rules = rules;
    this.verify = hooks.verify ?? ((password, hash) => bcrypt.compare(password, hash));
    const now = hooks.now ?? Date.now;
    const maxEntries = hooks.cacheEntries ?? authCacheDefaults.maxEntries;
    this.verified = new ExpiringMap({ maxEntries, now });
    this.rejected = new ExpiringMap({ maxEntries, now });
    this.decoyHashes = [...users.values()];
  }

  /**
   * Reads and validates the htpasswd file (if any) and the rules. Throws `AuthConfigError` on an
   * unreadable or invalid file (with the line number), an htpasswd file without users, invalid rules
   * or a realm containing control characters.
   */
  static async load(options: AuthOptions, hooks: AccessControlHooks = {}): Promise<AccessControl> {
    if (controlPattern.test(options.realm)) {
      throw new AuthConfigError('AUTH_REALM_INVALID', 'auth realm may not contain control characters');
    }
    let users = new Map<string, string>();
    if (options.htpasswd !== undefined) {
      let text: string;
      try {
        text = await readFile(options.htpasswd, 'utf8');
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'error';
        throw new AuthConfigError(
          'AUTH_HTPASSWD_UNREADABLE',
          `cannot read htpasswd ${options.htpasswd} (${code})`,
          {
            cause: error,
          },
        );
      }
      users = parseHtpasswd(text, options.htpasswd);
      if (users.size === 0) {
        throw new AuthConfigError('AUTH_HTPASSWD_INVALID', `htpasswd ${options.htpasswd} defines no users`);
      }
    }
    const rules = compileRules(options.rules ?? defaultRules(options, users.size > 0));
    return new AccessControl(options.realm, users, rules, hooks);
  }

  /** True when an htpasswd file with at least one user is configured. */
  get usersConfigured(): boolean {
    return this.users.size > 0;
  }

  /**
   * Parses an Authorization header. Missing header → anonymous, and so are empty Basic credentials
   * (`Basic Og==`, what containers/image clients such as skopeo, podman and CRI-O send after a challenge
   * when they have none). Only `Basic` is accepted; another scheme or a malformed value throws
   * `OciError('UNAUTHORIZED')`, as do an unknown user or a wrong password. Without configured users the
   * header is ignored and every client is anonymous.
   */
  async authenticate(authorization: string | undefined): Promise<Principal> {
    if (authorization === undefined || !this.usersConfigured) return {};
    const match = /^([A-Za-z]+) +(\S+) *$/.exec(authorization);
    if (!match) throw unauthorized('malformed Authorization header');
    const [, scheme = '', token = ''] = match;
    if (scheme.toLowerCase() !== 'basic') throw unauthorized('only Basic authentication is supported');
    if (!base64Pattern.test(token) || token.length % 4 === 1)
      throw unauthorized('malformed Basic credentials');
    let decoded: string;
    try {
      decoded = utf8.decode(Buffer.from(token, 'base64'));
    } catch {
      throw unauthorized('malformed Basic credentials');
    }
    const colon = decoded.indexOf(':');
    if (colon < 0) throw unauthorized('malformed Basic credentials');
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    if (user === '' && password === '') return {};
    if (user === '' || controlPattern.test(user)) throw unauthorized('malformed Basic credentials');
    if (!(await this.check(user, password))) throw unauthorized();
    return { user };
  }

  /** Whether `user`/`password` match the htpasswd file, consulting and filling the caches. */
  private async check(user: string, password: string): Promise<boolean> {
    const key = createHash('sha256').update(`${user}\0${password}`).digest('hex');
    if (this.verified.has(key)) return true;
    if (this.rejected.has(key)) return false;
    let pending = this.inflight.get(key);
    if (pending === undefined) {
      pending = this.verifyUncached(user, password).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    const ok = await pending;
    if (ok) {
      this.verified.set(key, true, authCacheDefaults.successTtlMs);
      this.rejected.delete(key);
    } else {
      this.rejected.set(key, true, authCacheDefaults.failureTtlMs);
    }
    return ok;
  }

  private async verifyUncached(user: string, password: string): Promise<boolean> {
    const hash = this.users.get(user);
    if (hash === undefined) {
      const decoy = this.decoyFor(user);
      if (decoy !== undefined) await this.verify(password, decoy).catch(() => false);
      return false;
    }
    try {
      return await this.verify(password, hash);
    } catch {
      return false;
    }
  }

  /**
   * The hash an unknown user's password is checked against, whose result is then ignored: the entry at a
   * position derived from the name. Costs can differ between entries, so each unknown name costs what
   * some real entry costs, the same on every attempt and across restarts, and over many names the costs
   * are spread as they are over the file's users: timing does not tell which names exist.
   */
  private decoyFor(user: string): string | undefined {
    if (this.decoyHashes.length === 0) return undefined;
    const position = createHash('sha256').update(user).digest().readUInt32BE(0) % this.decoyHashes.length;
    return this.decoyHashes[position];
  }

  /**
   * Decides whether `principal` may perform `action` on `repository` (undefined = registry-level
   * endpoints: the `/v2/` base check and `_catalog`, allowed when some rule for the principal grants
   * the action). Not allowed → 'unauthenticated' for anonymous clients when users are configured
   * (answer 401 with `challenge()`), otherwise 'denied' (403).
   */
  authorize(principal: Principal, repository: string | undefined, action: Action): Decision {
    if (this.allowed(principal, repository, action)) return 'allow';
    if (principal.user === undefined && this.usersConfigured) return 'unauthenticated';
    return 'denied';
  }

  /** Whether `repository` belongs in the principal's `_catalog` listing (it may pull it). */
  canList(principal: Principal, repository: string): boolean {
    return this.allowed(principal, repository, 'pull');
  }

  /** The WWW-Authenticate header value for 401 responses. */
  challenge(): string {
    return `Basic realm="${this.realm.replace(/["\\]/g, '\\$&')}"`;
  }

  private allowed(principal: Principal, repository: string | undefined, action: Action): boolean {
    if (repository === undefined) {
      return this.rules.some((rule) => matchesUser(rule, principal) && rule.actions.has(action));
    }
    const rule = this.rules.find(
      (candidate) => matchesUser(candidate, principal) && candidate.pattern.test(repository),
    );
    return rule !== undefined && rule.actions.has(action);
  }
}

function matchesUser(rule: CompiledRule, principal: Principal): boolean {
  if (principal.user === undefined) return rule.users.has(anonymousUser);
  return rule.users.has(anyUser) || rule.users.has(principal.user);
}

/** Authentication as Docker Hub does it: `token` (Bearer tokens from `/token`), `basic`, or `none`. */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { send, sendError, type Context, type FakeUrls } from './http.ts';
import type { FakeUpstreamOptions, IssuedToken } from './types.ts';

/** The `service` of the token flow: challenges carry it and the token endpoint requires it. */
export const FAKE_SERVICE = 'fake.registry';

export type Action = 'pull' | 'push';

interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

interface TokenClaims {
  sub?: string;
  access: AccessEntry[];
  iat: number;
  exp: number;
  jti: string;
}

export interface Principal {
  user?: string;
  access?: AccessEntry[];
}

/** Checks credentials and tokens, answers challenges, and issues tokens at `/token`. */
export class FakeAuth {
  readonly tokensIssued: IssuedToken[] = [];
  private readonly authMode: 'token' | 'basic' | 'none';
  private readonly users: Record<string, string>;
  private readonly anonymousPull: boolean;
  private readonly tokenTtlSeconds: number;
  private readonly secret = randomBytes(32);
  private readonly urls: FakeUrls;

  constructor(options: FakeUpstreamOptions, urls: FakeUrls) {
    this.authMode = options.auth ?? 'token';
    this.users = options.users ?? {};
    this.anonymousPull = options.anonymousPull ?? true;
    this.tokenTtlSeconds = options.tokenTtlSeconds ?? 300;
    this.urls = urls;
  }

  private basicUser(header: string | undefined): string | undefined {
    const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
    if (!m) return undefined;
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    return Object.hasOwn(this.users, user) && this.users[user] === password ? user : undefined;
  }

  sign(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url');
  }

  private issueToken(claims: TokenClaims): string {
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${payload}.${this.sign(payload)}`;
  }

  private verifyToken(token: string): TokenClaims | undefined {
    const [payload, signature, extra] = token.split('.');
    if (!payload || !signature || extra !== undefined) return undefined;
    const expected = Buffer.from(this.sign(payload));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TokenClaims;
    return claims.exp > Date.now() ? claims : undefined;
  }

  private covers(access: AccessEntry[] | undefined, name: string, action: Action): boolean {
    return (access ?? []).some(
      (a) =>
        a.type === 'repository' && a.name === name && (a.actions.includes(action) || a.actions.includes('*')),
    );
  }

  private authDetail(need?: { name: string; actions: Action[] }): unknown {
    return need
      ? need.actions.map((a) => ({ Type: 'repository', Class: '', Name: need.name, Action: a }))
      : null;
  }

  private challenge(
    ctx: Context,
    need: { name: string; actions: Action[] } | undefined,
    error?: string,
  ): void {
    let value = `Bearer realm="${this.urls.base}/token",service="${FAKE_SERVICE}"`;
    if (need) value += `,scope="repository:${need.name}:${need.actions.join(',')}"`;
    if (error) value += `,error="${error}"`;
    const message =
      error === 'insufficient_scope'
        ? 'insufficient scope'
        : error === 'invalid_token'
          ? 'invalid or expired token'
          : 'authentication required';
    sendError(ctx, 401, 'UNAUTHORIZED', message, this.authDetail(need), { 'WWW-Authenticate': value });
  }

  /** The caller, or undefined after answering 401. */
  authorize(ctx: Context, need?: { name: string; actions: Action[] }): Principal | undefined {
    if (this.authMode === 'none') return {};
    const header = ctx.req.headers.authorization;
    if (this.authMode === 'basic') {
      const user = this.basicUser(header);
      if (user !== undefined) return { user };
      sendError(ctx, 401, 'UNAUTHORIZED', 'authentication required', this.authDetail(need), {
        'WWW-Authenticate': `Basic realm="${FAKE_SERVICE}"`,
      });
      return undefined;
    }
    const bearer = /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
    if (!bearer) {
      this.challenge(ctx, need);
      return undefined;
    }
    let claims: TokenClaims | undefined;
    try {
      claims = this.verifyToken(bearer);
    } catch {
      claims = undefined;
    }
    if (!claims) {
      this.challenge(ctx, need, 'invalid_token');
      return undefined;
    }
    if (need && !need.actions.every((action) => this.covers(claims.access, need.name, action))) {
      this.challenge(ctx, need, 'insufficient_scope');
      return undefined;
    }
    return { ...(claims.sub !== undefined ? { user: claims.sub } : {}), access: claims.access };
  }

  canPull(principal: Principal, name: string): boolean {
    if (this.authMode !== 'token') return true;
    return this.covers(principal.access, name, 'pull');
  }

  handleToken(ctx: Context): void {
    if (this.authMode !== 'token') return sendError(ctx, 404, 'NOT_FOUND', 'no token endpoint');
    if (ctx.req.method !== 'GET') {
      return send(ctx, 405, { Allow: 'GET', 'Content-Type': 'application/json' }, '{"details":"use GET"}');
    }
    const service = ctx.url.searchParams.get('service') ?? '';
    if (service !== FAKE_SERVICE) {
      return send(ctx, 400, { 'Content-Type': 'application/json' }, '{"details":"invalid service"}');
    }
    let user: string | undefined;
    if (ctx.req.headers.authorization?.toLowerCase().startsWith('basic ')) {
      user = this.basicUser(ctx.req.headers.authorization);
      if (user === undefined) {
        return send(
          ctx,
          401,
          { 'Content-Type': 'application/json' },
          '{"details":"incorrect username or password"}',
        );
      }
    }
    const requested = ctx.url.searchParams
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .filter((s) => s !== '');
    const allowed: string[] = user !== undefined ? ['pull', 'push'] : this.anonymousPull ? ['pull'] : [];
    const access: AccessEntry[] = [];
    for (const scope of requested) {
      const parts = scope.split(':');
      if (parts.length < 3 || parts[0] !== 'repository') continue;
      const name = parts.slice(1, -1).join(':');
      const wanted = parts[parts.length - 1]!.split(',');
      const actions = wanted.includes('*') ? allowed : allowed.filter((a) => wanted.includes(a));
      const existing = access.find((a) => a.name === name);
      if (existing) existing.actions = [...new Set([...existing.actions, ...actions])];
      else access.push({ type: 'repository', name, actions });
    }
    const now = Date.now();
    const claims: TokenClaims = {
      ...(user !== undefined ? { sub: user } : {}),
      access,
      iat: now,
      exp: now + this.tokenTtlSeconds * 1000,
      jti: randomUUID(),
    };
    const token = this.issueToken(claims);
    this.tokensIssued.push({
      scope: requested.join(' '),
      service,
      ...(user !== undefined ? { user } : {}),
      granted: access.flatMap((a) => a.actions.map((action) => `repository:${a.name}:${action}`)),
    });
    send(
      ctx,
      200,
      { 'Content-Type': 'application/json' },
      JSON.stringify({
        token,
        access_token: token,
        expires_in: this.tokenTtlSeconds,
        issued_at: new Date(now).toISOString(),
      }),
    );
  }
}

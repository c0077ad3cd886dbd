/** Docker Hub's pull rate limit: manifest GETs counted per source (the user, or the client's address). */
import type { Principal } from './auth.ts';
import type { Context } from './http.ts';
import type { RateLimitOptions } from './types.ts';

/** What each source has used of its quota in the current window. */
export class FakeQuota {
  private readonly rateLimit: RateLimitOptions | undefined;
  private readonly quota = new Map<string, { used: number; windowStart: number }>();

  constructor(rateLimit: RateLimitOptions | undefined) {
    this.rateLimit = rateLimit;
  }

  rateSource(ctx: Context, principal: Principal): string {
    return principal.user ?? (ctx.req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  }

  quotaOf(source: string): { used: number; windowStart: number } {
    const now = Date.now();
    let state = this.quota.get(source);
    if (!state || !this.rateLimit || now - state.windowStart >= this.rateLimit.windowSeconds * 1000) {
      state = { used: 0, windowStart: now };
      this.quota.set(source, state);
    }
    return state;
  }

  rateHeaders(source: string): Record<string, string> {
    if (!this.rateLimit) return {};
    const state = this.quotaOf(source);
    const prefix = this.rateLimit.headerStyle === 'x' ? 'X-' : '';
    const w = `;w=${this.rateLimit.windowSeconds}`;
    return {
      [`${prefix}RateLimit-Limit`]: `${this.rateLimit.limit}${w}`,
      [`${prefix}RateLimit-Remaining`]: `${Math.max(0, this.rateLimit.limit - state.used)}${w}`,
      'docker-ratelimit-source': source,
    };
  }
}

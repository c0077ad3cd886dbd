/**
 * The pull-quota guard of `sync` and `warm`: per registry that announces a quota (`RateLimit-Remaining`, as
 * Docker Hub sends, or a pullsafe cache passes on), manifest GETs stop before the remaining budget falls
 * below the reserve. An image starts only when its whole cost fits: the top manifest GET is admitted alone
 * while the budget is known, and the child manifests an index announces are reserved together before the
 * first of them is fetched, or the image is deferred with only that one GET spent.
 */
import { RegistryError, type RateLimit } from '../client/index.ts';
import { PullsafeError } from '../errors/index.ts';

/**
 * One registry's quota, shared by every image from it: counted down locally, corrected by headers.
 * Images spend it through an `ImageBudget`. While the budget is known, images take their first GET one at
 * a time, so each one's reservation is made knowing what the images before it need.
 */
export class QuotaGuard {
  private readonly reserve: number;
  remaining: number | undefined;
  /** GETs promised to images in flight and not yet spent. */
  private reserved = 0;
  /** The quota header with the fewest pulls left. */
  last: RateLimit | undefined;
  stopped = false;
  /** Resolves when the image now between its first GET and its reservation has made it (or ended). */
  private admitting: Promise<void> = Promise.resolve();

  constructor(reserve: number) {
    this.reserve = reserve;
  }

  /** Every quota header seen, HEADs included, as it arrives: the lowest figure is the one that counts. */
  observe(rate: RateLimit): void {
    if (rate.remaining === undefined) return;
    if (this.last?.remaining === undefined || rate.remaining <= this.last.remaining) this.last = rate;
    this.remaining = this.remaining === undefined ? rate.remaining : Math.min(this.remaining, rate.remaining);
  }

  budget(): ImageBudget {
    return new ImageBudget(this);
  }

  /**
   * Whether `error` defers its image rather than failing it: this guard stopped it, or `registry` refused
   * for its quota (429), which stops the guard as reaching the reserve would.
   */
  defers(error: unknown, registry: string): boolean {
    if (error instanceof RegistryError && error.code === 'RATE_LIMITED' && error.registry === registry) {
      if (error.rateLimit) this.observe(error.rateLimit);
      this.stopped = true;
      return true;
    }
    return error instanceof PullsafeError && error.code === 'QUOTA_RESERVE_REACHED';
  }

  /** Waits until no other image is between its first GET and its reservation; returns the release. */
  async admit(): Promise<() => void> {
    const before = this.admitting;
    let release!: () => void;
    this.admitting = new Promise<void>((resolve) => (release = resolve));
    await before;
    return release;
  }

  /** Spends one GET: `held` when the image reserved it, else it must fit beside every reservation. */
  spend(held: boolean): void {
    if (this.remaining !== undefined) {
      const room = this.remaining - (held ? 0 : this.reserved) - 1;
      if ((!held && this.stopped) || room < this.reserve) throw this.refuse();
      this.remaining--;
    } else if (!held && this.stopped) {
      throw this.refuse();
    }
    if (held) this.reserved--;
  }

  /** Gives back one spent GET that cost nothing (a cache answered it from its storage). */
  refund(): void {
    if (this.remaining !== undefined) this.remaining++;
  }

  /** Reserves `count` more GETs for one image, or stops the registry's images (nothing spent). */
  hold(count: number): void {
    if (this.remaining !== undefined && this.remaining - this.reserved - count < this.reserve) {
      throw this.refuse();
    }
    this.reserved += count;
  }

  /** Gives back GETs an image reserved and did not spend (children the target already had). */
  unhold(count: number): void {
    this.reserved -= count;
  }

  private refuse(): PullsafeError {
    this.stopped = true;
    return new PullsafeError(
      'QUOTA_RESERVE_REACHED',
      `stopped before the pull quota falls below the reserve of ${this.reserve} (${this.remaining} left)`,
      {
        hint: 'run the same command again after the quota window; images already done are not fetched again',
      },
    );
  }
}

/**
 * One image's manifest GETs against its registry's quota: the top manifest (admitted alone while the budget
 * is known), then the children it announces, reserved together before the first of them.
 */
export class ImageBudget {
  private readonly guard: QuotaGuard;
  private held = 0;
  private started = false;
  private release: (() => void) | undefined;

  constructor(guard: QuotaGuard) {
    this.guard = guard;
  }

  async beforeGet(): Promise<void> {
    if (!this.started) {
      this.started = true;
      if (this.guard.remaining !== undefined) this.release = await this.guard.admit();
      try {
        this.guard.spend(false);
      } catch (error) {
        this.end();
        throw error;
      }
      return;
    }
    const held = this.held > 0;
    this.guard.spend(held);
    if (held) this.held--;
  }

  /** The copy will make up to `count` more manifest GETs (an index's children): all fit, or none is made. */
  expect(count: number): void {
    try {
      this.guard.hold(count);
      this.held += count;
    } finally {
      this.admitted();
    }
  }

  end(): void {
    this.guard.unhold(this.held);
    this.held = 0;
    this.admitted();
  }

  private admitted(): void {
    this.release?.();
    this.release = undefined;
  }
}

/** The guards of one run, one per registry (all with the run's reserve). */
export class QuotaGuards {
  private readonly reserve: number;
  private readonly guards = new Map<string, QuotaGuard>();

  constructor(reserve: number) {
    this.reserve = reserve;
  }

  for(registry: string): QuotaGuard {
    let guard = this.guards.get(registry);
    if (!guard) {
      guard = new QuotaGuard(this.reserve);
      this.guards.set(registry, guard);
    }
    return guard;
  }

  get stopped(): boolean {
    return [...this.guards.values()].some((guard) => guard.stopped);
  }

  /** Each registry's quota as last seen, for registries that announced one. */
  lastSeen(): Record<string, RateLimit> {
    const quotas: Record<string, RateLimit> = {};
    for (const [registry, guard] of this.guards) if (guard.last) quotas[registry] = guard.last;
    return quotas;
  }
}

/**
 * Memory that cannot grow without bound: maps that forget their oldest entries past a count, and entries
 * that expire. Every cache a long-running process keeps on behalf of its callers is one of these.
 */

/**
 * A Map that holds at most `maxEntries`: adding a new key to a full map first forgets the key added
 * longest ago. Setting a key that is present changes its value and keeps its place.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  readonly maxEntries: number;

  constructor(maxEntries: number) {
    super();
    this.maxEntries = maxEntries;
  }

  override set(key: K, value: V): this {
    if (!this.has(key) && this.size >= this.maxEntries) {
      const oldest = this.keys().next();
      if (!oldest.done) this.delete(oldest.value);
    }
    return super.set(key, value);
  }
}

export interface ExpiringMapOptions {
  maxEntries: number;
  /** Milliseconds since the epoch; injected for tests. */
  now?: () => number;
}

/**
 * Values by key, each until its own deadline, at most `maxEntries` of them. Writing a key makes it the
 * newest, so a full map forgets the key written longest ago. An entry is absent from its deadline on (it
 * is dropped when next read); `size` counts entries not yet dropped, expired or not.
 */
export class ExpiringMap<K, V> {
  private readonly entries: BoundedMap<K, { value: V; expiresAt: number }>;
  private readonly now: () => number;

  constructor(options: ExpiringMapOptions) {
    this.entries = new BoundedMap(options.maxEntries);
    this.now = options.now ?? Date.now;
  }

  get(key: K): V | undefined {
    return this.live(key)?.value;
  }

  has(key: K): boolean {
    return this.live(key) !== undefined;
  }

  /** Keeps `value` under `key` for `ttlMs` from now, as the newest entry. */
  set(key: K, value: V, ttlMs: number): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.now() + ttlMs });
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }

  private live(key: K): { value: V; expiresAt: number } | undefined {
    const entry = this.entries.get(key);
    if (entry !== undefined && this.now() >= entry.expiresAt) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }
}

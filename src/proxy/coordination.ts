/**
 * What replicas of the cache share so that they act as one: leases (one fill per blob and one fetch per
 * manifest across replicas, taken over when their holder dies), remembered 404s, the upstream quota, and
 * when each tag was last confirmed, with a compare-and-set so that a slow replica never moves a tag back.
 * `LocalCoordinator` is one process's view (the default); `RedisCoordinator` shares it through Redis or
 * Valkey (ElastiCache).
 */
import { randomUUID } from 'node:crypto';
import { MemoryFenceStore, type FenceLease, type FenceStore } from '../store/index.ts';

export interface Lease extends FenceLease {
  /** Extends the lease by its TTL; false when it was lost (expired and taken by another holder). */
  renew(): Promise<boolean>;
}

/** The gc fence's store (leases, values with a TTL), and what only the cache needs on top. */
export interface Coordinator extends FenceStore {
  acquire(key: string, ttlMs: number): Promise<Lease | undefined>;
  /** Sets `key` to `value` when no larger number is there yet; returns whether it did. */
  advance(key: string, value: number, ttlMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * The coordinator of a single process: leases always granted to the first asker, values in memory (the gc
 * fence's own in-process store), at most 100,000 of them (the oldest written goes first).
 */
export class LocalCoordinator extends MemoryFenceStore implements Coordinator {
  override async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.values.delete(key);
    await super.set(key, value, ttlMs);
    if (this.values.size > 100_000) {
      const oldest = this.values.keys().next();
      if (!oldest.done) this.values.delete(oldest.value);
    }
  }

  async advance(key: string, value: number, ttlMs: number): Promise<boolean> {
    const current = Number(await this.get(key));
    if (Number.isFinite(current) && current >= value) return false;
    await this.set(key, String(value), ttlMs);
    return true;
  }

  async close(): Promise<void> {}
}

/** The part of a node-redis client this module uses. */
export interface RedisLike {
  set(key: string, value: string, options: { PX: number; NX?: boolean }): Promise<string | null>;
  get(key: string): Promise<string | null>;
  exists(key: string): Promise<number>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  quit?(): Promise<unknown>;
  close?(): Promise<unknown>;
}

const renewScript =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
const releaseScript =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
const advanceScript =
  "local current = tonumber(redis.call('get', KEYS[1]) or '-1') if current < tonumber(ARGV[1]) then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 else return 0 end";

/** Shared through Redis: every key under `prefix`, so several registries can share one Redis. */
export class RedisCoordinator implements Coordinator {
  private readonly redis: RedisLike;
  private readonly prefix: string;

  constructor(redis: RedisLike, prefix = 'pullsafe:') {
    this.redis = redis;
    this.prefix = prefix;
  }

  async acquire(key: string, ttlMs: number): Promise<Lease | undefined> {
    const name = this.prefix + key;
    const token = randomUUID();
    const taken = await this.redis.set(name, token, { PX: ttlMs, NX: true });
    if (taken === null) return undefined;
    return {
      renew: async () =>
        Number(await this.redis.eval(renewScript, { keys: [name], arguments: [token, String(ttlMs)] })) === 1,
      release: async () => {
        await this.redis.eval(releaseScript, { keys: [name], arguments: [token] });
      },
    };
  }

  async held(key: string): Promise<boolean> {
    return (await this.redis.exists(this.prefix + key)) > 0;
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.redis.get(this.prefix + key)) ?? undefined;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.prefix + key, value, { PX: Math.max(1, Math.round(ttlMs)) });
  }

  async advance(key: string, value: number, ttlMs: number): Promise<boolean> {
    const result = await this.redis.eval(advanceScript, {
      keys: [this.prefix + key],
      arguments: [String(value), String(Math.max(1, Math.round(ttlMs)))],
    });
    return Number(result) === 1;
  }

  async close(): Promise<void> {
    await (this.redis.close?.() ?? this.redis.quit?.());
  }
}

/**
 * The fence between gc's sweep and the writes that make a stored blob needed. Each side writes its own flag,
 * then reads the other's:
 * - a writer marks D in use, then waits while "deleting: D" is held; once it is not, whether D is in the
 *   storage is the truth, and stays so while the mark counts;
 * - gc takes "deleting: D", then reads D's marks: while one counts, it keeps D; otherwise no writer can
 *   start relying on D before gc releases it, so gc may remove D's links and D.
 * On a store whose operations are linearizable (one process's memory, one Redis) one side always sees the
 * other's flag, so gc never deletes a blob that a writer was told is there.
 *
 * Two marks, by what the write needs:
 * - `protect` (a manifest PUT, which names D from then on): counts for `protectMs`, which outlasts any gc
 *   run that marked before the manifest was linked (a run stops sweeping when half as old);
 * - `hold` (a mount, a HEAD that lets a client skip an upload, an upload's commit, a cache fill or link):
 *   counts for gc's grace period from the moment of the write, as if the blob had been written then, so
 *   the push has `--min-age` to name it in a manifest, as it has for the blobs it uploads.
 */
import { randomUUID } from 'node:crypto';
import type { Digest } from '../oci/digest.ts';

export interface FenceLease {
  release(): Promise<void>;
}

/**
 * Where the flags live. This is the shape of the replicas' coordinator (src/proxy/coordination.ts), so the
 * one shared through Redis serves as it is; `MemoryFenceStore` is one process's.
 */
export interface FenceStore {
  /** Takes `key` for `ttlMs`, or undefined when another holder has it. */
  acquire(key: string, ttlMs: number): Promise<FenceLease | undefined>;
  held(key: string): Promise<boolean>;
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
}

export interface GcFenceOptions {
  /** How long a `protect` counts: longer than a gc run, which stops sweeping at half of it. Default 1 h. */
  protectMs?: number;
  /** The longest a `hold` counts, whatever gc's grace period. Default one day. */
  holdMs?: number;
  /**
   * How long gc's claim on a digest lasts unreleased, so writers go on when a gc dies mid-sweep; gc deletes
   * under a claim only in its first half. Default one minute.
   */
  claimMs?: number;
  /** How often a writer looks again while gc holds a digest it needs. Default 50 ms. */
  pollMs?: number;
}

export interface GcClaim {
  /** Digests no write marked: gc may remove them and their links, before `deleteBefore`. */
  deletable: Digest[];
  /** Digests a write marked: gc keeps them. */
  protected: Digest[];
  /** Digests another gc run holds: left to it. */
  busy: Digest[];
  /** The time (Date.now()) from which the claim may have expired: nothing may be deleted under it then. */
  deleteBefore: number;
  /** Lets writers waiting on the deletable digests go on. */
  release(): Promise<void>;
}

const protectedKey = (digest: Digest): string => `gc-protected:${digest}`;
const heldKey = (digest: Digest): string => `gc-held:${digest}`;
const deletingKey = (digest: Digest): string => `gc-deleting:${digest}`;

export class GcFence {
  readonly protectMs: number;
  readonly holdMs: number;
  readonly claimMs: number;
  private readonly pollMs: number;
  private readonly store: FenceStore;

  constructor(store: FenceStore, options: GcFenceOptions = {}) {
    this.store = store;
    this.protectMs = options.protectMs ?? 60 * 60_000;
    this.holdMs = options.holdMs ?? 24 * 60 * 60_000;
    this.claimMs = options.claimMs ?? 60_000;
    this.pollMs = options.pollMs ?? 50;
  }

  /**
   * For a manifest PUT, before it looks whether what it names is stored: resolves once gc deletes none of
   * the digests; a digest found stored then stays so for `protectMs`.
   */
  protect(digests: Iterable<Digest>): Promise<void> {
    return this.mark(digests, protectedKey, this.protectMs);
  }

  /**
   * For a write that makes a stored blob needed before a manifest names it (a mount, a HEAD, a commit, a
   * cache fill or link), before it looks whether the blob is stored: resolves once gc deletes none of the
   * digests; a digest found stored then stays so for gc's grace period.
   */
  hold(digests: Iterable<Digest>): Promise<void> {
    return this.mark(digests, heldKey, this.holdMs);
  }

  private async mark(
    digests: Iterable<Digest>,
    key: (digest: Digest) => string,
    ttlMs: number,
  ): Promise<void> {
    const unique = [...new Set(digests)];
    if (unique.length === 0) return;
    const value = String(Date.now());
    await Promise.all(unique.map((digest) => this.store.set(key(digest), value, ttlMs)));
    // A claim expires by itself after claimMs: a gc that died holding one lets writers go on.
    const until = Date.now() + this.claimMs + this.pollMs;
    let waiting = unique;
    while (Date.now() < until) {
      const held = await Promise.all(waiting.map((digest) => this.store.held(deletingKey(digest))));
      waiting = waiting.filter((_, index) => held[index]);
      if (waiting.length === 0) return;
      await new Promise((resolve) => setTimeout(resolve, this.pollMs));
    }
  }

  /**
   * gc side: call before removing any link of the digests, and release once they are removed. A `hold`
   * counts when it is younger than `minAgeMs`, gc's grace period.
   */
  async claim(digests: readonly Digest[], minAgeMs: number): Promise<GcClaim> {
    const unique = [...new Set(digests)];
    const deleteBefore = Date.now() + this.claimMs / 2;
    const leases = await Promise.all(
      unique.map((digest) => this.store.acquire(deletingKey(digest), this.claimMs)),
    );
    const marks = await Promise.all(
      unique.map(async (digest, index) => {
        if (!leases[index]) return false;
        const [protection, hold] = await Promise.all([
          this.store.get(protectedKey(digest)),
          this.store.get(heldKey(digest)),
        ]);
        return protection !== undefined || (hold !== undefined && Date.now() - Number(hold) < minAgeMs);
      }),
    );
    const claim: GcClaim = { deletable: [], protected: [], busy: [], deleteBefore, release: async () => {} };
    const held: FenceLease[] = [];
    const letGo: Promise<void>[] = [];
    unique.forEach((digest, index) => {
      const lease = leases[index];
      if (!lease) claim.busy.push(digest);
      else if (marks[index]) {
        claim.protected.push(digest);
        letGo.push(lease.release());
      } else {
        claim.deletable.push(digest);
        held.push(lease);
      }
    });
    await Promise.all(letGo);
    claim.release = async () => {
      await Promise.all(held.splice(0).map((lease) => lease.release()));
    };
    return claim;
  }
}

/**
 * The flags of one process: enough when the writers and gc share it (serve without Redis). Leases can be
 * renewed (the cache's in-process coordinator builds on this store); expired leases and values are
 * dropped once a minute, so memory follows what is held now.
 */
/* eslint-disable @typescript-eslint/require-await -- in memory there is nothing to wait for; the methods stay
   async as the FenceStore's are, so the fence meets the same promises as with Redis. */
export class MemoryFenceStore implements FenceStore {
  protected readonly values = new Map<string, { value: string; until: number }>();
  private readonly leases = new Map<string, { token: string; until: number }>();
  private prunedAt = Date.now();

  async acquire(
    key: string,
    ttlMs: number,
  ): Promise<(FenceLease & { renew(): Promise<boolean> }) | undefined> {
    if (await this.held(key)) return undefined;
    const token = randomUUID();
    this.leases.set(key, { token, until: Date.now() + ttlMs });
    return {
      renew: async () => {
        const lease = this.leases.get(key);
        if (lease?.token !== token) return false;
        lease.until = Date.now() + ttlMs;
        return true;
      },
      release: async () => {
        if (this.leases.get(key)?.token === token) this.leases.delete(key);
      },
    };
  }

  async held(key: string): Promise<boolean> {
    const lease = this.leases.get(key);
    return lease !== undefined && lease.until > Date.now();
  }

  async get(key: string): Promise<string | undefined> {
    const entry = this.values.get(key);
    return entry !== undefined && entry.until > Date.now() ? entry.value : undefined;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.values.set(key, { value, until: Date.now() + ttlMs });
    this.prune();
  }

  private prune(): void {
    const now = Date.now();
    if (now - this.prunedAt < 60_000) return;
    this.prunedAt = now;
    for (const [key, entry] of this.values) if (entry.until <= now) this.values.delete(key);
    for (const [key, lease] of this.leases) if (lease.until <= now) this.leases.delete(key);
  }
}
/* eslint-enable @typescript-eslint/require-await */

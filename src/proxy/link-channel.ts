/**
 * The LinkRemovalChannel of replicas sharing a Redis (or Valkey): a removed link's key is published on one
 * pub/sub channel, `<prefix>links`, with the key prefix RedisCoordinator uses, and every replica subscribed
 * forgets it. Pub/sub keeps nothing for a subscriber that is disconnected, so from the moment the subscriber
 * starts reconnecting until it is subscribed again the listeners are told they hear nothing, and they drop
 * what they remember (storage/link-removals.ts).
 */
import type { LinkRemovalChannel, LinkRemovalListener } from '../store/index.ts';

/** The part of a node-redis client that publishes. */
export interface RedisPublisherLike {
  publish(channel: string, message: string): Promise<number>;
  close?(): Promise<unknown>;
}

/** The part of a node-redis client on its own connection, for subscribing, this module uses. */
export interface RedisSubscriberLike {
  /** Connected, and (after a reconnect) subscribed again to what it was subscribed to. */
  readonly isReady: boolean;
  subscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
  on(event: 'ready' | 'reconnecting' | 'end', listener: () => void): unknown;
  close?(): Promise<unknown>;
}

export interface RedisLinkRemovalOptions {
  /** Prefix of the channel's name, as RedisCoordinator's of its keys (default `pullsafe:`). */
  prefix?: string;
  /** How long `announce` waits for Redis before it gives up (default 2 s). */
  announceTimeoutMs?: number;
}

/** Longer messages are not link keys (a repository name is at most 255 characters): ignored. */
const maxMessageLength = 1024;

export class RedisLinkRemovals implements LinkRemovalChannel {
  private readonly publisher: RedisPublisherLike;
  private readonly subscriber: RedisSubscriberLike | undefined;
  private readonly channel: string;
  private readonly announceTimeoutMs: number;
  private readonly listeners = new Set<LinkRemovalListener>();
  private hearing = false;

  /** Without a subscriber the channel only announces (a gc run); its listeners never hear. */
  constructor(
    publisher: RedisPublisherLike,
    subscriber: RedisSubscriberLike | undefined,
    options: RedisLinkRemovalOptions = {},
  ) {
    this.publisher = publisher;
    this.subscriber = subscriber;
    this.channel = `${options.prefix ?? 'pullsafe:'}links`;
    this.announceTimeoutMs = options.announceTimeoutMs ?? 2_000;
  }

  /** Subscribes; resolves once removals elsewhere are heard. */
  async start(): Promise<void> {
    const subscriber = this.subscriber;
    if (!subscriber) return;
    subscriber.on('reconnecting', () => this.setHearing(false));
    subscriber.on('end', () => this.setHearing(false));
    subscriber.on('ready', () => this.setHearing(true));
    await subscriber.subscribe(this.channel, (message) => {
      if (message.length > maxMessageLength) return;
      for (const listener of this.listeners) listener.removed(message);
    });
    this.setHearing(subscriber.isReady);
  }

  async announce(key: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.announceTimeoutMs);
    });
    try {
      await Promise.race([this.publisher.publish(this.channel, key), timeout]);
    } catch {
      // Redis is unreachable: the subscribers are cut off too, and forget everything when they are back.
    } finally {
      clearTimeout(timer);
    }
  }

  listen(listener: LinkRemovalListener): () => void {
    this.listeners.add(listener);
    listener.hearing(this.hearing);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    this.setHearing(false);
    await Promise.all([this.publisher.close?.(), this.subscriber?.close?.()]);
  }

  /** Tells the listeners of every change, and of every (re)connection even without a change seen before it. */
  private setHearing(connected: boolean): void {
    if (!connected && !this.hearing) return;
    this.hearing = connected;
    for (const listener of this.listeners) listener.hearing(connected);
  }
}

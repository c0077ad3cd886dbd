/** The channel on which replicas sharing a Redis tell each other which repository links they removed. */
import { PullsafeError, redact } from '../errors/index.ts';
import { RedisLinkRemovals } from '../proxy/index.ts';

const connectTimeoutMs = 5_000;
/** A subscriber pings this often, so a connection that died silently is noticed and its gap closed. */
const subscriberPingMs = 5_000;

/**
 * Connects to the Redis at `url`: one connection publishes and, with `listen`, a second one subscribes (a
 * subscribed connection takes no other command). Both reconnect by themselves after a drop.
 */
export async function connectLinkRemovals(
  url: string,
  options: { listen: boolean },
): Promise<RedisLinkRemovals> {
  const { createClient } = await import('redis');
  const socket = {
    connectTimeout: connectTimeoutMs,
    reconnectStrategy: (tries: number) => Math.min(tries * 200, 5_000),
  };
  const publisher = createClient({ url, socket });
  const subscriber = options.listen
    ? createClient({ url, socket, pingInterval: subscriberPingMs })
    : undefined;
  for (const client of [publisher, subscriber]) client?.on('error', () => undefined);
  const channel = new RedisLinkRemovals(publisher, subscriber);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.all([publisher.connect(), subscriber?.connect()]).then(() => channel.start()),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${connectTimeoutMs / 1000} s`)),
          connectTimeoutMs,
        );
      }),
    ]);
  } catch (error) {
    publisher.destroy();
    subscriber?.destroy();
    throw new PullsafeError(
      'CONFIG_INVALID',
      `cannot reach Redis at ${redact(url)} for the links channel: ${(error as Error).message}`,
      { hint: 'check --redis / redis.url (redis://HOST:PORT) and that the server answers from here' },
    );
  } finally {
    clearTimeout(timer);
  }
  return channel;
}

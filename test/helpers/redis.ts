/** redis-server (Debian's package, installed by scripts/setup.sh) for the tests of what replicas share. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { requirePeer } from './peers.ts';

export interface RedisPeer {
  /** redis://127.0.0.1:PORT */
  url: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** redis-server on a loopback port, nothing saved; waits until it answers (bounded). */
export async function startRedis(): Promise<RedisPeer> {
  const binary = requirePeer('redis-server', 'redis-server');
  const port = await freePort();
  const child: ChildProcess = spawn(
    binary,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  const client = createClient({ url, socket: { reconnectStrategy: false } });
  client.on('error', () => undefined);
  for (let attempt = 0; ; attempt++) {
    try {
      await client.connect();
      await client.ping();
      await client.quit();
      break;
    } catch (error) {
      if (attempt > 50) throw new Error(`redis-server did not answer on ${url}`, { cause: error });
      await sleep(100);
    }
  }
  return {
    url,
    async stop() {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

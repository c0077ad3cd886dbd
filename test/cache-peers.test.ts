/**
 * Fills streamed between replicas: three `pullsafe serve` processes on one S3 bucket (s3rver) and one Redis
 * (redis-server) with a shared `--secret-file`, in front of a slow upstream. A client of a replica that is
 * not filling a blob gets its first bytes while the filling replica still downloads it, instead of after
 * the commit; the upstream is still asked once; and the replicas' endpoint opens to nobody without the key.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServeProcess } from './helpers/cli.ts';
import { startCacheReplicas, type CacheReplicas } from './helpers/cache-replicas.ts';
import type { FakeUpstream } from './helpers/fake-upstream.ts';
import { request } from './helpers/http.ts';

interface Timed {
  status: number;
  digest: string;
  /** Milliseconds from the request to its first body byte, and to its end. */
  firstByteMs: number;
  totalMs: number;
}

/** A GET that notes when its first body byte and its end arrive (bounded by `timeoutMs`). */
function timedGet(url: string, timeoutMs = 30_000): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let firstByteMs = -1;
    const hash = createHash('sha256');
    const req = get(url, { timeout: timeoutMs }, (res) => {
      res.on('data', (chunk: Buffer) => {
        if (firstByteMs < 0) firstByteMs = Date.now() - started;
        hash.update(chunk);
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          digest: `sha256:${hash.digest('hex')}`,
          firstByteMs,
          totalMs: Date.now() - started,
        }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

describe('fills streamed between replicas', () => {
  let cluster: CacheReplicas;
  let upstream: FakeUpstream;
  let replicas: ServeProcess[] = [];

  before(async () => {
    cluster = await startCacheReplicas('peers', async (folder) => {
      const key = join(folder, 'shared.key');
      await writeFile(key, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
      return ['--secret-file', key];
    });
    ({ upstream, replicas } = cluster);
  });
  after(async () => {
    await cluster?.stop();
  });

  it('a client of another replica gets the bytes while the fill runs, and the upstream is asked once', async () => {
    const blob = randomBytes(4 * 1024 * 1024);
    const digest = upstream.addBlob('library/slow', blob);
    upstream.inject({ match: { kind: 'blob', server: 'cdn' }, times: 1, action: { trickleMs: 4_000 } });
    const [filler, other, third] = [replicas[0]!, replicas[1]!, replicas[2]!];
    for (const replica of replicas) {
      // Listening on a given address, a replica advertises that address to the others.
      const listening = replica
        .logs()
        .split('\n')
        .find((line) => line.includes('"msg":"listening"'));
      assert.ok(listening?.includes(`"peer":"${replica.url}"`), listening);
    }
    const first = timedGet(`${filler.url}/v2/library/slow/blobs/${digest}`);
    await sleep(600);
    const [second, last, answered] = await Promise.all([
      timedGet(`${other.url}/v2/library/slow/blobs/${digest}`),
      timedGet(`${third.url}/v2/library/slow/blobs/${digest}`),
      first,
    ]);
    for (const result of [answered, second, last]) {
      assert.equal(result.status, 200);
      assert.equal(result.digest, digest);
    }
    // The fill takes about 4 s: a relayed client starts within a fraction of it, not at the commit.
    assert.ok(answered.totalMs >= 3_000, `the trickled fill took ${answered.totalMs} ms`);
    for (const relayed of [second, last]) {
      assert.ok(
        relayed.firstByteMs < 2_000 && relayed.firstByteMs < answered.totalMs - 1_500,
        `first byte after ${relayed.firstByteMs} ms; the fill took ${answered.totalMs} ms`,
      );
    }
    const fetched = upstream.requests.filter(
      (entry) => entry.server === 'cdn' && entry.path.includes(digest.slice(7)) && entry.status === 200,
    );
    assert.equal(fetched.length, 1, 'one upstream GET of the blob');
    // Each replica says what it did, in its metrics.
    const metricsOf = async (replica: ServeProcess): Promise<string> =>
      (await request(`${replica.url}/metrics`)).text();
    const served = /^pullsafe_cache_peer_fills_total\{upstream="docker\.io",direction="served"\} (\d+)$/m;
    const relayedFills = /^pullsafe_cache_peer_fills_total\{upstream="docker\.io",direction="relayed"\} 1$/m;
    const relayedBytes = /^pullsafe_cache_peer_relayed_bytes_total\{upstream="docker\.io"\} (\d+)$/m;
    assert.equal(Number(served.exec(await metricsOf(filler))?.[1]), 2, 'the filler served two replicas');
    for (const replica of [other, third]) {
      const text = await metricsOf(replica);
      assert.match(text, relayedFills);
      assert.equal(Number(relayedBytes.exec(text)?.[1]), blob.length);
    }
  });

  it('opens a fill to no one without a token signed with the shared key', async () => {
    const blob = randomBytes(1024 * 1024);
    const digest = upstream.addBlob('library/guarded', blob);
    upstream.inject({ match: { kind: 'blob', server: 'cdn' }, times: 1, action: { trickleMs: 2_000 } });
    const filler = replicas[0]!;
    const filling = timedGet(`${filler.url}/v2/library/guarded/blobs/${digest}`);
    await sleep(400);
    const path = `${filler.url}/_pullsafe/peer/fills/docker.io/${digest}`;
    const forged = `${Date.now() + 30_000}.${randomBytes(32).toString('base64url')}`;
    for (const headers of [{}, { 'x-pullsafe-peer': forged }, { 'x-pullsafe-peer': 'nonsense' }]) {
      const answer = await request(path, { headers });
      assert.equal(answer.status, 404, JSON.stringify(headers));
      assert.equal(answer.body.includes(blob.subarray(0, 64)), false);
    }
    const done = await filling;
    assert.equal(done.digest, digest);
  });

  it('when the filling replica dies, a relayed client sees its transfer end, and asking again gets the blob', async () => {
    const blob = randomBytes(2 * 1024 * 1024);
    const digest = upstream.addBlob('library/orphaned', blob);
    upstream.inject({ match: { kind: 'blob', server: 'cdn' }, times: 1, action: { trickleMs: 6_000 } });
    const [other, doomed] = [replicas[1]!, replicas[2]!];
    const lost = timedGet(`${doomed.url}/v2/library/orphaned/blobs/${digest}`).catch((error: Error) => error);
    await sleep(600);
    const relayed = timedGet(`${other.url}/v2/library/orphaned/blobs/${digest}`).catch(
      (error: Error) => error,
    );
    await sleep(1_000);
    doomed.child.kill('SIGKILL');
    await doomed.exited;
    for (const outcome of [await lost, await relayed]) {
      // Cut short: an error, or an end whose bytes do not make the blob.
      assert.ok(outcome instanceof Error || outcome.digest !== digest, 'the transfer did not complete');
    }
    const started = Date.now();
    const again = await timedGet(`${other.url}/v2/library/orphaned/blobs/${digest}`);
    assert.equal(again.status, 200);
    assert.equal(again.digest, digest);
    assert.ok(Date.now() - started < 15_000, `answered after ${Date.now() - started} ms`);
  });
});

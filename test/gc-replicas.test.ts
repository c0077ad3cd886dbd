/**
 * Three `pullsafe serve` processes on one S3 bucket (s3rver) and one Redis (redis-server), each running gc
 * online every few hundred milliseconds with a three-second grace period, while pushes and pulls go round
 * robin over them. Old unreferenced blobs (written straight into the bucket, as if pushed long ago and
 * their manifests deleted) keep appearing, and the pushes reuse some of them just as they become old
 * enough for gc: by a mount (HTTP) and by a HEAD that finds them (skopeo). gc must sweep the rest and break
 * none of the pushes and pulls.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Digest } from '../src/oci/digest.ts';
import { openS3Storage, type Storage } from '../src/store/index.ts';
import { runCli, startServeProcess, type ServeProcess } from './helpers/cli.ts';
import { OCI_CONFIG, OCI_LAYER, makeLayer, serializeManifest } from './helpers/fixtures.ts';
import { OCI_INDEX, OCI_MANIFEST, pushBlob, pushManifest, request, sha256 } from './helpers/http.ts';
import { requirePeer, skopeoOk } from './helpers/peers.ts';
import { startRedis, type RedisPeer } from './helpers/redis.ts';
import { startS3rver, type S3rverPeer } from './helpers/s3rver.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';

const insecure = ['--src-tls-verify=false', '--dest-tls-verify=false'];
/** gc's grace period on every replica, and how often each replica tries to run gc. */
const minAgeMs = 3_000;
const gcIntervalMs = 300;
/** How long pushes and pulls go on, and at most how many of each kind. */
const workloadMs = 12_000;
const seedRepository = 'seed/base';

interface Seeded {
  digest: Digest;
  data: Buffer;
  writtenAt: number;
  /** Every third seed is never reused: gc must sweep those. */
  reusable: boolean;
  reused: boolean;
}

interface Pushed {
  repository: string;
  tag: string;
  manifest: Buffer;
  blobs: Buffer[];
}

/** An image manifest naming `config` and `layers`. */
function imageManifest(config: Buffer, layers: Buffer[]): Buffer {
  return serializeManifest({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length },
    layers: layers.map((layer) => ({ mediaType: OCI_LAYER, digest: sha256(layer), size: layer.length })),
  });
}

function uniqueConfig(label: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Labels: { push: label, nonce: randomBytes(8).toString('hex') } },
      rootfs: { type: 'layers', diff_ids: [] },
    }),
  );
}

/** An OCI layout of one image manifest, tagged `tag`, for skopeo to push. */
async function writeLayout(dir: string, manifest: Buffer, blobs: Buffer[], tag: string): Promise<void> {
  const blobsDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobsDir, { recursive: true });
  for (const blob of [manifest, ...blobs]) {
    await writeFile(join(blobsDir, sha256(blob).slice('sha256:'.length)), blob);
  }
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          mediaType: OCI_MANIFEST,
          digest: sha256(manifest),
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
}

describe('gc on three replicas during pushes and pulls', () => {
  let s3rver: S3rverPeer;
  let redis: RedisPeer;
  let folder: string;
  let storage: Storage;
  const replicas: ServeProcess[] = [];
  let turn = 0;
  /** The next replica, round robin, as a load balancer would choose. */
  const next = (): string => replicas[turn++ % replicas.length]!.url;
  const storageUrl = (): string => `s3://${s3rver.bucket}/gc-replicas`;

  before(async () => {
    requirePeer('skopeo', 'skopeo');
    redis = await startRedis();
    s3rver = await startS3rver();
    Object.assign(process.env, s3rver.env);
    folder = await makeTempDir('pullsafe-gc-replicas-');
    const config = join(folder, 'serve.yaml');
    await writeFile(
      config,
      `redis:\n  url: ${redis.url}\ngc:\n  interval: ${gcIntervalMs}ms\n  minAge: ${minAgeMs}ms\nlog:\n  requests: false\n`,
    );
    for (let index = 0; index < 3; index++) {
      replicas.push(await startServeProcess(['--config', config, '--storage', storageUrl()]));
    }
    storage = await openS3Storage({
      bucket: s3rver.bucket,
      prefix: 'gc-replicas/',
      endpoint: s3rver.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
    });
  });
  after(async () => {
    for (const replica of replicas) {
      if (replica.child.exitCode === null) replica.child.kill('SIGKILL');
      await replica.exited;
    }
    await s3rver?.stop();
    await redis?.stop();
    if (folder) await removeTempDir(folder);
  });

  it('gc during pushes and pulls breaks none of them, and sweeps what nothing needs', async (t) => {
    const seeded: Seeded[] = [];
    const pushed: Pushed[] = [];
    const failures: string[] = [];
    const counts = { mounted: 0, mountFellBack: 0, skopeoPushes: 0, pulls: 0 };
    const started = Date.now();
    const until = started + workloadMs;

    /** Old unreferenced content, one blob every 150 ms, linked in the seed repository only. */
    const seed = async (): Promise<void> => {
      for (let index = 0; index < 80 && Date.now() < until; index++) {
        const { data } = await makeLayer(`gc-replicas seed ${index} ${randomBytes(4).toString('hex')}`, 4096);
        const { digest } = await storage.blobs.put(data);
        await storage.repositories.linkBlob(seedRepository, digest);
        seeded.push({ digest, data, writtenAt: Date.now(), reusable: index % 3 !== 0, reused: false });
        await sleep(150);
      }
    };

    /**
     * A seeded blob about to become old enough for gc, or just so, that no push reused yet: reused then,
     * it is what gc is sweeping while the push that needs it goes on.
     */
    const ripeSeed = (): Seeded | undefined => {
      const now = Date.now();
      const chosen = seeded.find(
        (entry) =>
          entry.reusable && !entry.reused && Math.abs(now - entry.writtenAt - minAgeMs) < gcIntervalMs,
      );
      if (chosen) chosen.reused = true;
      return chosen;
    };

    /** A push over HTTP: a fresh layer and config, a mount of a ripe seed, then the manifest. */
    const pushOverHttp = async (worker: number, index: number): Promise<void> => {
      const repository = `app/w${worker}`;
      const tag = `t${index}`;
      const fresh = randomBytes(32 * 1024 + index);
      const config = uniqueConfig(`${repository}:${tag}`);
      await pushBlob(next(), repository, fresh);
      await pushBlob(next(), repository, config);
      const layers: Buffer[] = [fresh];
      const reused = ripeSeed();
      if (reused) {
        const mount = await request(
          `${next()}/v2/${repository}/blobs/uploads/?mount=${reused.digest}&from=${seedRepository}`,
          { method: 'POST', headers: { 'Content-Length': 0 } },
        );
        if (mount.status === 201) counts.mounted++;
        else if (mount.status === 202) {
          counts.mountFellBack++;
          const target = new URL(String(mount.headers.location), next());
          target.searchParams.set('digest', reused.digest);
          const put = await request(target, { method: 'PUT', body: reused.data });
          assert.equal(put.status, 201, `upload after a mount fell back: ${put.text()}`);
        } else assert.fail(`mount answered ${mount.status}: ${mount.text()}`);
        layers.push(reused.data);
        // A client pushes its other layers between a mount and the manifest: gc gets its chance.
        await sleep(Math.floor(Math.random() * 400));
      }
      const manifest = imageManifest(config, layers);
      const put = await pushManifest(next(), repository, tag, OCI_MANIFEST, manifest);
      assert.equal(put.status, 201, `PUT ${repository}:${tag}: ${put.response.text()}`);
      pushed.push({ repository, tag, manifest, blobs: [config, ...layers] });
    };

    /** A push by skopeo into the seed repository: it HEADs a ripe seed there, finds it, and skips it. */
    const pushWithSkopeo = async (index: number): Promise<void> => {
      const reused = ripeSeed();
      const fresh = await makeLayer(`gc-replicas skopeo ${index} ${randomBytes(4).toString('hex')}`, 8192);
      const config = uniqueConfig(`skopeo ${index}`);
      const layers = reused ? [fresh.data, reused.data] : [fresh.data];
      const manifest = imageManifest(config, layers);
      const layout = join(folder, `layout-${index}`);
      const tag = `sk${index}`;
      await writeLayout(layout, manifest, [config, ...layers], tag);
      const host = new URL(next()).host;
      await skopeoOk([
        'copy',
        ...insecure,
        `oci:${layout}:${tag}`,
        `docker://${host}/${seedRepository}:${tag}`,
      ]);
      counts.skopeoPushes++;
      pushed.push({ repository: seedRepository, tag, manifest, blobs: [config, ...layers] });
    };

    /** Pulls a pushed tag through the replicas and checks every byte. */
    const pull = async (entry: Pushed): Promise<void> => {
      const got = await request(`${next()}/v2/${entry.repository}/manifests/${entry.tag}`, {
        headers: { Accept: OCI_MANIFEST },
      });
      assert.equal(got.status, 200, `GET ${entry.repository}:${entry.tag}: ${got.text()}`);
      assert.equal(sha256(got.body), sha256(entry.manifest));
      for (const blob of entry.blobs) {
        const answer = await request(`${next()}/v2/${entry.repository}/blobs/${sha256(blob)}`);
        assert.equal(
          answer.status,
          200,
          `GET ${entry.repository}@${sha256(blob)}: ${answer.text().slice(0, 300)}`,
        );
        assert.equal(sha256(answer.body), sha256(blob));
      }
      counts.pulls++;
    };

    const loop = async (
      label: string,
      most: number,
      step: (index: number) => Promise<void>,
    ): Promise<void> => {
      for (let index = 0; index < most && Date.now() < until; index++) {
        try {
          await step(index);
        } catch (error) {
          failures.push(`${label} ${index}: ${(error as Error).message}`);
        }
      }
    };
    await Promise.all([
      seed(),
      ...[0, 1, 2].map((worker) => loop(`push w${worker}`, 25, (index) => pushOverHttp(worker, index))),
      loop('skopeo push', 6, async (index) => {
        await sleep(minAgeMs);
        await pushWithSkopeo(index);
      }),
      ...[0, 1].map((worker) =>
        loop(`pull ${worker}`, 200, async () => {
          const entry = pushed[Math.floor(Math.random() * pushed.length)];
          if (entry) await pull(entry);
          else await sleep(100);
        }),
      ),
    ]);
    // gc goes on a while longer: what it wrongly removed would be gone by now.
    await sleep(4 * gcIntervalMs + minAgeMs);
    assert.deepEqual(failures, []);

    for (const entry of pushed) await pull(entry);
    const skopeoPushed = pushed.filter((entry) => entry.repository === seedRepository);
    assert.ok(skopeoPushed.length > 0 && counts.mounted + counts.mountFellBack > 0, JSON.stringify(counts));
    for (const entry of skopeoPushed) {
      const out = join(folder, `pulled-${entry.tag}`);
      const host = new URL(next()).host;
      await skopeoOk([
        'copy',
        ...insecure,
        `docker://${host}/${seedRepository}:${entry.tag}`,
        `oci:${out}:${entry.tag}`,
      ]);
      const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as {
        manifests: { digest: string }[];
      };
      assert.equal(index.manifests[0]?.digest, sha256(entry.manifest));
    }

    const fsck = await runCli(['fsck', '--storage', storageUrl(), '--json'], { timeoutMs: 120_000 });
    const problems = (JSON.parse(fsck.stdout) as { problems: { kind: string; digest?: string }[] }).problems;
    assert.deepEqual(problems, [], fsck.stderr);
    assert.equal(fsck.code, 0);

    // gc did run and sweep: seeds nothing reused are gone, and the replicas said so.
    const unused = seeded.filter((entry) => !entry.reusable && entry.writtenAt < until - 2 * minAgeMs);
    const gone = [];
    for (const entry of unused) if (!(await storage.blobs.stat(entry.digest))) gone.push(entry);
    assert.ok(gone.length > 0, `${gone.length} of ${unused.length} unused seeds swept`);
    const runs = replicas
      .flatMap((replica) => replica.logs().split('\n'))
      .filter((line) => line.includes('"msg":"gc"'))
      .map((line) => JSON.parse(line) as { blobsSwept: number; blobsProtected: number });
    const swept = runs.reduce((sum, run) => sum + run.blobsSwept, 0);
    const protectedBlobs = runs.reduce((sum, run) => sum + run.blobsProtected, 0);
    assert.ok(swept >= gone.length, `the replicas' gc runs swept ${swept} blobs`);
    t.diagnostic(
      `${runs.length} gc runs swept ${swept} blobs and kept ${protectedBlobs} protected; ` +
        `${pushed.length} pushes (${counts.mounted} mounts, ${counts.mountFellBack} fell back to an upload, ` +
        `${counts.skopeoPushes} by skopeo), ${counts.pulls} pulls, ${seeded.length} seeds, ` +
        `${gone.length} of ${unused.length} unused seeds swept`,
    );
  });
});

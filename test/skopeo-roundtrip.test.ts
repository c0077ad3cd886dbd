/**
 * skopeo, the independent client, against pullsafe and CNCF distribution side by side: what goes in and
 * comes back out must carry the same digests through both, for OCI and Docker multi-arch images.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeImage, pushImage, writeOciLayout, type TestImage } from './helpers/fixtures.ts';
import { getManifest, sha256 } from './helpers/http.ts';
import { skopeo, skopeoOk, startDistribution, type Distribution } from './helpers/peers.ts';
import { startPullsafe, type TestRegistry } from './helpers/pullsafe.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';

const PLATFORMS = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
];
const insecure = ['--src-tls-verify=false', '--dest-tls-verify=false'];

let distribution: Distribution;
let pullsafe: TestRegistry;
let pullsafeHost: string;
let work: string;
let ociImage: TestImage;
let dockerImage: TestImage;

async function rawDigest(ref: string): Promise<string> {
  const result = await skopeoOk(['inspect', '--raw', '--tls-verify=false', ref]);
  return sha256(Buffer.from(result.stdout));
}

before(async () => {
  distribution = await startDistribution();
  pullsafe = await startPullsafe();
  pullsafeHost = new URL(pullsafe.url).host;
  work = await makeTempDir('pullsafe-skopeo-');
  ociImage = await makeImage({
    format: 'oci',
    platforms: PLATFORMS,
    seed: 'oci-rt',
    layers: 2,
    layerSize: 200_000,
  });
  dockerImage = await makeImage({
    format: 'docker',
    platforms: PLATFORMS,
    seed: 'docker-rt',
    layers: 2,
    layerSize: 200_000,
  });
  await writeOciLayout(join(work, 'oci-src'), ociImage, 'v1');
  await pushImage(distribution.url, 'src/docker', 'v1', dockerImage);
});

after(async () => {
  await pullsafe?.stop();
  await distribution?.stop();
  if (work) await removeTempDir(work);
});

describe('skopeo copy --all round trips', () => {
  it('an OCI multi-arch image: into both registries and back out, same digests', async () => {
    for (const host of [pullsafeHost, distribution.host]) {
      await skopeoOk([
        'copy',
        '--all',
        ...insecure,
        `oci:${join(work, 'oci-src')}:v1`,
        `docker://${host}/rt/oci:v1`,
      ]);
    }
    const intoPullsafe = await rawDigest(`docker://${pullsafeHost}/rt/oci:v1`);
    const intoDistribution = await rawDigest(`docker://${distribution.host}/rt/oci:v1`);
    assert.equal(intoPullsafe, ociImage.index.digest);
    assert.equal(intoDistribution, ociImage.index.digest);

    for (const [name, host] of [
      ['pullsafe', pullsafeHost],
      ['distribution', distribution.host],
    ] as const) {
      await skopeoOk([
        'copy',
        '--all',
        ...insecure,
        `docker://${host}/rt/oci:v1`,
        `oci:${join(work, `out-${name}`)}:v1`,
      ]);
    }
    const outPullsafe = JSON.parse(await readFile(join(work, 'out-pullsafe', 'index.json'), 'utf8')) as {
      manifests: { digest: string }[];
    };
    const outDistribution = JSON.parse(
      await readFile(join(work, 'out-distribution', 'index.json'), 'utf8'),
    ) as { manifests: { digest: string }[] };
    assert.equal(outPullsafe.manifests[0]!.digest, ociImage.index.digest);
    assert.equal(outPullsafe.manifests[0]!.digest, outDistribution.manifests[0]!.digest);
  });

  it('a Docker manifest list: distribution → pullsafe → distribution keeps every digest', async () => {
    await skopeoOk([
      'copy',
      '--all',
      ...insecure,
      `docker://${distribution.host}/src/docker:v1`,
      `docker://${pullsafeHost}/rt/docker:v1`,
    ]);
    await skopeoOk([
      'copy',
      '--all',
      ...insecure,
      `docker://${pullsafeHost}/rt/docker:v1`,
      `docker://${distribution.host}/back/docker:v1`,
    ]);
    assert.equal(await rawDigest(`docker://${pullsafeHost}/rt/docker:v1`), dockerImage.index.digest);
    assert.equal(await rawDigest(`docker://${distribution.host}/back/docker:v1`), dockerImage.index.digest);
    for (const manifest of dockerImage.manifests) {
      const fromPullsafe = await getManifest(pullsafe.url, 'rt/docker', manifest.digest);
      assert.equal(fromPullsafe.status, 200);
      assert.deepEqual(fromPullsafe.body, manifest.bytes, 'child manifests byte-exact');
    }
  });

  it('skopeo inspect reads the same image from both registries', async () => {
    const fromPullsafe = JSON.parse(
      (await skopeoOk(['inspect', '--tls-verify=false', `docker://${pullsafeHost}/rt/docker:v1`])).stdout,
    ) as Record<string, unknown>;
    const fromDistribution = JSON.parse(
      (await skopeoOk(['inspect', '--tls-verify=false', `docker://${distribution.host}/src/docker:v1`]))
        .stdout,
    ) as Record<string, unknown>;
    for (const key of ['Digest', 'Architecture', 'Os', 'Layers', 'Created']) {
      assert.deepEqual(fromPullsafe[key], fromDistribution[key], key);
    }
    assert.deepEqual(fromPullsafe.RepoTags, ['v1']);
  });

  it('skopeo sync from pullsafe, to a directory and to distribution', async () => {
    await skopeoOk([
      'sync',
      '--all',
      '--src',
      'docker',
      '--dest',
      'docker',
      ...insecure,
      `${pullsafeHost}/rt/oci`,
      `${distribution.host}/synced`,
    ]);
    assert.equal(await rawDigest(`docker://${distribution.host}/synced/oci:v1`), ociImage.index.digest);
    await skopeoOk([
      'sync',
      '--all',
      '--src',
      'docker',
      '--dest',
      'dir',
      '--src-tls-verify=false',
      `${pullsafeHost}/rt/docker`,
      join(work, 'sync-dir'),
    ]);
    const manifest = await readFile(join(work, 'sync-dir', 'docker:v1', 'manifest.json'));
    assert.equal(sha256(manifest), dockerImage.index.digest);
  });

  it('skopeo delete removes the image from pullsafe as from distribution', async () => {
    for (const host of [pullsafeHost, distribution.host]) {
      await skopeoOk([
        'copy',
        '--all',
        ...insecure,
        `oci:${join(work, 'oci-src')}:v1`,
        `docker://${host}/rt/delete:v1`,
      ]);
      await skopeoOk(['delete', '--tls-verify=false', `docker://${host}/rt/delete:v1`]);
      const gone = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${host}/rt/delete:v1`]);
      assert.notEqual(gone.code, 0, host);
      assert.match(gone.stderr, /manifest unknown/i, host);
    }
  });
});

/**
 * The test helpers against the real peers: images made by fixtures.ts and pushed by http.ts are accepted
 * by CNCF distribution byte for byte, and skopeo reads, copies and imports them without changing a digest.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { makeImage, makeLayer, pushImage, writeOciLayout, type TestImage } from './helpers/fixtures.ts';
import { DOCKER_LIST, OCI_INDEX, getBlob, getManifest, sha256 } from './helpers/http.ts';
import { requirePeer, skopeoOk, startDistribution, type Distribution } from './helpers/peers.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';

const PLATFORMS = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
];

describe('test helpers', () => {
  it('requirePeer names a missing peer and its package', () => {
    assert.throws(
      () => requirePeer('definitely-not-installed-xyz', 'xyz'),
      /peer missing: definitely-not-installed-xyz \(apt-get install xyz\)/,
    );
  });

  it('makeLayer is deterministic and is a gzip of a valid tar', async () => {
    const a = await makeLayer('seed-1', 3000);
    const b = await makeLayer('seed-1', 3000);
    const c = await makeLayer('seed-2', 3000);
    assert.equal(a.digest, b.digest);
    assert.notEqual(a.digest, c.digest);
    const tar = gunzipSync(a.data);
    assert.equal(a.diffId, `sha256:${createHash('sha256').update(tar).digest('hex')}`);
    assert.equal(tar.length % 512, 0);
    assert.equal(tar.subarray(257, 263).toString('latin1'), 'ustar\0');
    assert.equal(parseInt(tar.subarray(124, 135).toString('ascii'), 8), 3000);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : tar[i]!;
    assert.equal(parseInt(tar.subarray(148, 154).toString('ascii'), 8), sum);
    assert.ok(tar.subarray(tar.length - 1024).every((byte) => byte === 0));
  });
});

describe('peers: docker-registry and skopeo', () => {
  let registry: Distribution;
  let dockerImage: TestImage;
  let ociImage: TestImage;
  const layoutDirs: string[] = [];

  before(async () => {
    registry = await startDistribution();
    dockerImage = await makeImage({
      format: 'docker',
      platforms: PLATFORMS,
      seed: 'peers-docker',
      layers: 2,
    });
    ociImage = await makeImage({ format: 'oci', platforms: PLATFORMS, seed: 'peers-oci', layerSize: 4096 });
  });

  after(async () => {
    await registry?.stop();
    for (const dir of layoutDirs) await removeTempDir(dir);
  });

  for (const format of ['docker', 'oci'] as const) {
    describe(`${format} image`, () => {
      const image = () => (format === 'docker' ? dockerImage : ociImage);
      const repo = `peers/${format}`;

      it('pushImage stores the exact bytes of every manifest and blob', async () => {
        const digest = await pushImage(registry.url, repo, 'v1', image());
        assert.equal(digest, image().index.digest);

        const index = await getManifest(registry.url, repo, 'v1');
        assert.equal(index.status, 200);
        assert.equal(index.headers['content-type'], format === 'docker' ? DOCKER_LIST : OCI_INDEX);
        assert.equal(index.headers['docker-content-digest'], image().index.digest);
        assert.deepEqual(index.body, image().index.bytes);

        for (const manifest of image().manifests) {
          const child = await getManifest(registry.url, repo, manifest.digest);
          assert.equal(child.status, 200);
          assert.equal(child.headers['content-type'], manifest.mediaType);
          assert.deepEqual(child.body, manifest.bytes);
          const config = await getBlob(registry.url, repo, manifest.config.digest);
          assert.equal(config.status, 200);
          assert.deepEqual(config.body, manifest.config.bytes);
          for (const layer of manifest.layers) {
            const blob = await getBlob(registry.url, repo, layer.digest);
            assert.equal(blob.status, 200);
            assert.equal(sha256(blob.body), layer.digest);
          }
        }
      });

      it('skopeo inspect --raw returns the exact index bytes', async () => {
        const result = await skopeoOk([
          'inspect',
          '--raw',
          '--tls-verify=false',
          `docker://${registry.host}/${repo}:v1`,
        ]);
        assert.equal(result.stdout, image().index.bytes.toString('utf8'));
      });

      it('skopeo inspect resolves the index to the platform asked for', async () => {
        const result = await skopeoOk([
          '--override-os',
          'linux',
          '--override-arch',
          'arm64',
          'inspect',
          '--tls-verify=false',
          `docker://${registry.host}/${repo}:v1`,
        ]);
        const info = JSON.parse(result.stdout) as { Digest: string; Architecture: string; Layers: string[] };
        const arm = image().manifests[1]!;
        // skopeo reports the digest of what the reference names (the index), the rest from the arm64 child.
        assert.equal(info.Digest, image().index.digest);
        assert.equal(info.Architecture, 'arm64');
        assert.deepEqual(
          info.Layers,
          arm.layers.map((layer) => layer.digest),
        );
      });

      it('skopeo copy --all between repositories keeps the index digest', async () => {
        await skopeoOk([
          'copy',
          '--all',
          '--src-tls-verify=false',
          '--dest-tls-verify=false',
          `docker://${registry.host}/${repo}:v1`,
          `docker://${registry.host}/${repo}-copy:v1`,
        ]);
        const copied = await getManifest(registry.url, `${repo}-copy`, 'v1');
        assert.equal(copied.status, 200);
        assert.equal(sha256(copied.body), image().index.digest);
        for (const manifest of image().manifests) {
          const child = await getManifest(registry.url, `${repo}-copy`, manifest.digest);
          assert.equal(child.status, 200);
          assert.deepEqual(child.body, manifest.bytes);
        }
      });
    });
  }

  it('skopeo copy --all from an OCI layout written by writeOciLayout keeps the index digest', async () => {
    const dir = await makeTempDir('pullsafe-oci-layout-');
    layoutDirs.push(dir);
    await writeOciLayout(dir, ociImage, 'v1');
    await skopeoOk([
      'copy',
      '--all',
      '--dest-tls-verify=false',
      `oci:${dir}:v1`,
      `docker://${registry.host}/peers/from-layout:v1`,
    ]);
    const copied = await getManifest(registry.url, 'peers/from-layout', 'v1');
    assert.equal(copied.status, 200);
    assert.equal(copied.headers['content-type'], OCI_INDEX);
    assert.deepEqual(copied.body, ociImage.index.bytes);
    for (const manifest of ociImage.manifests) {
      const child = await getManifest(registry.url, 'peers/from-layout', manifest.digest);
      assert.deepEqual(child.body, manifest.bytes);
    }
  });

  it('writeOciLayout refuses a Docker-format image', async () => {
    await assert.rejects(writeOciLayout('/nonexistent-never-written', dockerImage, 'v1'), /only OCI-format/);
  });
});

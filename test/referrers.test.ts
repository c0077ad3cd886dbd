/**
 * `pullsafe copy --referrers` against registries without the referrers API (CNCF distribution 2.8), where
 * referrers live in the referrers tag schema (`sha256-<hex>`); `--platform` on single-platform images; and
 * targets named by a digest. Every registry is a real one started on 127.0.0.1; pullsafe runs in process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { RegistryClient } from '../src/client/index.ts';
import type { Digest } from '../src/oci/digest.ts';
import { runCliInProcess } from './helpers/cli.ts';
import { makeImage, pushImage, serializeManifest, type TestImage } from './helpers/fixtures.ts';
import {
  OCI_INDEX,
  OCI_MANIFEST,
  getManifest,
  pushBlob,
  pushManifest,
  request,
  sha256,
} from './helpers/http.ts';
import { startDistribution, type Distribution } from './helpers/peers.ts';
import { startPullsafe, type TestRegistry } from './helpers/pullsafe.ts';

const EMPTY_CONFIG = 'application/vnd.oci.empty.v1+json';
const SIGNATURE = 'application/vnd.example.signature.v1';
const SBOM = 'application/vnd.example.sbom.v1';

interface Referrer {
  bytes: Buffer;
  digest: string;
  blobs: Buffer[];
  /** The descriptor the spec asks for in a referrers list. */
  descriptor: {
    mediaType: string;
    digest: string;
    size: number;
    artifactType: string;
    annotations: Record<string, string>;
  };
}

interface Subject {
  mediaType: string;
  digest: string;
  size: number;
}

function subjectOf(blob: { mediaType: string; digest: string; bytes: Buffer }): Subject {
  return { mediaType: blob.mediaType, digest: blob.digest, size: blob.bytes.length };
}

/** A signature-like artifact: empty config, one layer, `artifactType`, annotations, and `subject`. */
function makeReferrer(subject: Subject, artifactType: string, seed: string): Referrer {
  const config = Buffer.from('{}');
  const layer = Buffer.from(`payload ${seed}`);
  const annotations = { 'org.example.seed': seed };
  const bytes = serializeManifest({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType,
    config: { mediaType: EMPTY_CONFIG, digest: sha256(config), size: config.length },
    layers: [{ mediaType: `${artifactType}.layer`, digest: sha256(layer), size: layer.length }],
    subject,
    annotations,
  });
  const digest = sha256(bytes);
  return {
    bytes,
    digest,
    blobs: [config, layer],
    descriptor: { mediaType: OCI_MANIFEST, digest, size: bytes.length, artifactType, annotations },
  };
}

function fallbackTag(digest: string): string {
  return digest.replace(':', '-');
}

/** The manifests listed under the subject's referrers tag; undefined when the tag does not exist. */
async function referrersTag(base: string, repo: string, subject: string): Promise<unknown[] | undefined> {
  const response = await getManifest(base, repo, fallbackTag(subject), [OCI_INDEX]);
  if (response.status === 404) return undefined;
  assert.equal(response.status, 200, response.text());
  const index = response.json<{ mediaType: string; manifests: unknown[] }>();
  assert.equal(index.mediaType, OCI_INDEX);
  return index.manifests;
}

/** Pushes a referrer by digest and, when `tagged`, lists it under its subject's referrers tag. */
async function pushReferrer(
  base: string,
  repo: string,
  subject: string,
  referrer: Referrer,
  tagged: boolean,
): Promise<void> {
  for (const blob of referrer.blobs) await pushBlob(base, repo, blob);
  const put = await pushManifest(base, repo, referrer.digest, OCI_MANIFEST, referrer.bytes);
  assert.equal(put.status, 201, put.response.text());
  if (!tagged) return;
  const manifests = [...((await referrersTag(base, repo, subject)) ?? []), referrer.descriptor];
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
  const tag = await pushManifest(base, repo, fallbackTag(subject), OCI_INDEX, index);
  assert.equal(tag.status, 201, tag.response.text());
}

/** Whether distribution stored anything (blob links, manifests, tags) for `repo`. */
async function repositoryExists(registry: Distribution, repo: string): Promise<boolean> {
  const dir = join(registry.storageDir, 'docker', 'registry', 'v2', 'repositories', repo);
  return (await stat(dir).catch(() => undefined)) !== undefined;
}

function summaryOf(stdout: string): Record<string, unknown> {
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .find((event) => event.event === 'summary')!;
}

let source: Distribution;
let target: Distribution;
let image: TestImage;
let signature: Referrer;

before(async () => {
  [source, target] = await Promise.all([startDistribution(), startDistribution()]);
  image = await makeImage({
    format: 'oci',
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ],
    seed: 'referrers-tests',
  });
  await pushImage(source.url, 'team/app', 'v1', image);
  // How distribution 2.8 users store a signature: by digest, listed under the referrers tag.
  signature = makeReferrer(subjectOf(image.index), SIGNATURE, 'signature');
  await pushReferrer(source.url, 'team/app', image.index.digest, signature, true);
});

after(async () => {
  await Promise.all([source?.stop(), target?.stop()]);
});

describe('copy --referrers to a registry without the referrers API', () => {
  it('lists the referrer under the referrers tag on the target, and a second hop finds it', async () => {
    assert.equal(
      (await request(`${target.url}/v2/mirror/app/referrers/${image.index.digest}`)).status,
      404,
      'the peer has no referrers API',
    );
    const first = await runCliInProcess([
      'copy',
      '--referrers',
      `${source.host}/team/app:v1`,
      `${target.host}/mirror/app:v1`,
    ]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /1 referrer$/m);
    assert.deepEqual(await referrersTag(target.url, 'mirror/app', image.index.digest), [
      signature.descriptor,
    ]);

    const hop = await runCliInProcess([
      'copy',
      '--referrers',
      '--json',
      `${target.host}/mirror/app:v1`,
      `${target.host}/second/app:v1`,
    ]);
    assert.equal(hop.code, 0, hop.stderr);
    assert.equal(summaryOf(hop.stdout).referrersCopied, 1);
    assert.equal((await getManifest(target.url, 'second/app', signature.digest)).status, 200);
    assert.deepEqual(await referrersTag(target.url, 'second/app', image.index.digest), [
      signature.descriptor,
    ]);
  });

  it('keeps entries the target already lists, and a second copy adds nothing', async () => {
    const sbom = makeReferrer(subjectOf(image.index), SBOM, 'sbom');
    await pushReferrer(target.url, 'kept/app', image.index.digest, sbom, true);
    const args = ['copy', '--referrers', `${source.host}/team/app:v1`, `${target.host}/kept/app:v1`];
    const first = await runCliInProcess(args);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(await referrersTag(target.url, 'kept/app', image.index.digest), [
      sbom.descriptor,
      signature.descriptor,
    ]);
    const again = await runCliInProcess(args);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /up to date/);
    assert.deepEqual(await referrersTag(target.url, 'kept/app', image.index.digest), [
      sbom.descriptor,
      signature.descriptor,
    ]);
  });

  it('lists a referrer the target already held but no referrers tag named', async () => {
    // What an earlier pullsafe left behind: the signature stored, the tag never written.
    await pushReferrer(target.url, 'legacy/app', image.index.digest, signature, false);
    const result = await runCliInProcess([
      'copy',
      '--referrers',
      `${source.host}/team/app:v1`,
      `${target.host}/legacy/app:v1`,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(await referrersTag(target.url, 'legacy/app', image.index.digest), [
      signature.descriptor,
    ]);
  });

  it('putManifest keeps one entry per referrer, also when the same referrer is pushed twice at once', async () => {
    const client = new RegistryClient();
    try {
      const repo = { registry: target.host, repository: 'client/app' };
      const other = makeReferrer(subjectOf(image.index), SBOM, 'client-sbom');
      for (const referrer of [signature, other]) {
        for (const blob of referrer.blobs) await pushBlob(target.url, 'client/app', blob);
      }
      await Promise.all([
        client.putManifest(repo, signature.digest, signature.bytes, OCI_MANIFEST),
        client.putManifest(repo, signature.digest, signature.bytes, OCI_MANIFEST),
        client.putManifest(repo, other.digest, other.bytes, OCI_MANIFEST),
      ]);
      await client.putManifest(repo, signature.digest, signature.bytes, OCI_MANIFEST);
      const listed = (await referrersTag(target.url, 'client/app', image.index.digest)) as {
        digest: string;
      }[];
      assert.deepEqual(listed.map((entry) => entry.digest).sort(), [signature.digest, other.digest].sort());
      const found = await client.listReferrers(repo, image.index.digest as Digest);
      assert.equal(found.length, 2);
    } finally {
      await client.close();
    }
  });

  it('refuses to overwrite a referrers tag that holds something other than an index', async () => {
    const client = new RegistryClient();
    try {
      const repo = { registry: target.host, repository: 'clobber/app' };
      // A single-platform manifest already sits under the subject's referrers tag.
      const single = image.manifests[0]!;
      for (const blob of [single.config.bytes, ...single.layers.map((layer) => layer.data)]) {
        await pushBlob(target.url, 'clobber/app', blob);
      }
      const tag = fallbackTag(image.index.digest);
      assert.equal(
        (await pushManifest(target.url, 'clobber/app', tag, single.mediaType, single.bytes)).status,
        201,
      );
      for (const blob of signature.blobs) await pushBlob(target.url, 'clobber/app', blob);
      await assert.rejects(
        client.putManifest(repo, signature.digest, signature.bytes, OCI_MANIFEST),
        (error: Error) => error.message.includes(tag) && /not an image index/.test(error.message),
      );
      assert.equal(sha256((await getManifest(target.url, 'clobber/app', tag)).body), single.digest);
    } finally {
      await client.close();
    }
  });

  it('writes no referrers tag on a registry that announces OCI-Subject', async () => {
    const pullsafe: TestRegistry = await startPullsafe();
    try {
      const host = new URL(pullsafe.url).host;
      const result = await runCliInProcess([
        'copy',
        '--referrers',
        `${source.host}/team/app:v1`,
        `${host}/ps/app:v1`,
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /1 referrer$/m);
      const listed = await request(`${pullsafe.url}/v2/ps/app/referrers/${image.index.digest}`);
      assert.deepEqual(listed.json<{ manifests: unknown[] }>().manifests, [signature.descriptor]);
      assert.equal(await referrersTag(pullsafe.url, 'ps/app', image.index.digest), undefined);
    } finally {
      await pullsafe.stop();
    }
  });
});

describe('--platform on a single-platform image', () => {
  let arm: TestImage['manifests'][number];
  before(async () => {
    arm = image.manifests.find((manifest) => manifest.platform.architecture === 'arm64')!;
    for (const blob of [arm.config.bytes, ...arm.layers.map((layer) => layer.data)]) {
      await pushBlob(source.url, 'single/app', blob);
    }
    assert.equal((await pushManifest(source.url, 'single/app', 'arm', arm.mediaType, arm.bytes)).status, 201);
  });

  it('refuses an image of another platform and uploads nothing', async () => {
    const result = await runCliInProcess([
      'copy',
      '--platform',
      'linux/amd64',
      `${source.host}/single/app:arm`,
      `${target.host}/platform-no/app:arm`,
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /no manifest for the requested platforms/);
    assert.match(result.stderr, /linux\/arm64\/v8/);
    assert.equal(await repositoryExists(target, 'platform-no/app'), false);
  });

  it('copies an image of the requested platform unchanged', async () => {
    const result = await runCliInProcess([
      'copy',
      '--json',
      '--platform',
      'linux/arm64,windows/amd64',
      `${source.host}/single/app:arm`,
      `${target.host}/platform-yes/app:arm`,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const summary = summaryOf(result.stdout);
    assert.equal(summary.targetDigest, arm.digest);
    assert.equal(summary.digestChanged, false);
    assert.deepEqual(summary.platforms, ['linux/arm64/v8']);
    assert.equal(sha256((await getManifest(target.url, 'platform-yes/app', 'arm')).body), arm.digest);
  });

  it('refuses an artifact whose config names no platform', async () => {
    const result = await runCliInProcess([
      'copy',
      '--platform',
      'linux/amd64',
      `${source.host}/team/app@${signature.digest}`,
      `${target.host}/platform-artifact/app:sig`,
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /no manifest for the requested platforms/);
    assert.match(result.stderr, /no platform information/);
    assert.equal(await repositoryExists(target, 'platform-artifact/app'), false);
  });
});

describe('a target named by a digest', () => {
  const zero = `sha256:${'0'.repeat(64)}`;

  it('refuses a digest other than the one to be written, before uploading anything', async () => {
    const result = await runCliInProcess([
      'copy',
      `${source.host}/team/app:v1`,
      `${target.host}/by-digest/app@${zero}`,
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.ok(result.stderr.includes(zero), result.stderr);
    assert.ok(result.stderr.includes(image.index.digest), result.stderr);
    assert.match(result.stderr, /by tag/);
    assert.equal(await repositoryExists(target, 'by-digest/app'), false);
  });

  it('names the filtered digest when --platform changes what is written', async () => {
    const arm = image.manifests.find((manifest) => manifest.platform.architecture === 'arm64')!;
    // Named without a tag, the target takes the source's digest: the index's, not the arm64 manifest's.
    const result = await runCliInProcess([
      'copy',
      '--platform',
      'linux/arm64',
      `${source.host}/team/app@${image.index.digest}`,
      `${target.host}/by-digest-filtered/app`,
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.ok(result.stderr.includes(arm.digest), result.stderr);
    assert.ok(result.stderr.includes(image.index.digest), result.stderr);
    assert.equal(await repositoryExists(target, 'by-digest-filtered/app'), false);
  });

  it('copies to the digest of what is written', async () => {
    const result = await runCliInProcess([
      'copy',
      `${source.host}/team/app:v1`,
      `${target.host}/by-digest-ok/app@${image.index.digest}`,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      sha256((await getManifest(target.url, 'by-digest-ok/app', image.index.digest)).body),
      image.index.digest,
    );
  });
});

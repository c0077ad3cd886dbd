/**
 * TLS through the CLI against real registries: CNCF distribution serving HTTPS with a self-signed
 * certificate (the fixture), one whose CA comes from NODE_EXTRA_CA_CERTS, and a plain-HTTP one spoken to as
 * if it were HTTPS. Loopback names are always plain HTTP, so the CLI names these registries `*.test`, which
 * a preloaded module resolves to 127.0.0.1 (and only those names): no test reaches another address.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runCli, type CliResult } from './helpers/cli.ts';
import { makeImage, pushImage, type TestImage } from './helpers/fixtures.ts';
import { ALL_MANIFEST_TYPES } from './helpers/http.ts';
import { requirePeer, startDistribution, type Distribution } from './helpers/peers.ts';
import { startPullsafe, type TestRegistry } from './helpers/pullsafe.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';

const fixtureCert = fileURLToPath(new URL('../src/client/fixtures/tls/cert.pem', import.meta.url));
const fixtureKey = fileURLToPath(new URL('../src/client/fixtures/tls/key.pem', import.meta.url));

/** Resolves names under .test (reserved, never in public DNS) to 127.0.0.1 in the CLI's process. */
const RESOLVER = `
import dns from 'node:dns';
const lookup = dns.lookup;
dns.lookup = function (hostname, options, callback) {
  if (typeof options === 'function') [callback, options] = [options, {}];
  if (typeof options === 'number') options = { family: options };
  if (!/\\.test$/i.test(hostname)) return lookup.call(this, hostname, options, callback);
  if (options?.all) process.nextTick(callback, null, [{ address: '127.0.0.1', family: 4 }]);
  else process.nextTick(callback, null, '127.0.0.1', 4);
};
`;

/** The digest a plain-HTTP registry on 127.0.0.1 gives `repo:tag`, or its HTTP status. */
async function digestAt(base: string, repo: string, tag: string): Promise<string> {
  const response = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: ALL_MANIFEST_TYPES.join(', ') },
  });
  return response.headers.get('docker-content-digest') ?? `HTTP ${response.status}`;
}

let work: string;
let image: TestImage;
let pullsafe: TestRegistry;
/** 127.0.0.1:PORT, plain HTTP. */
let target: string;
/** distribution over HTTPS with the self-signed fixture certificate, and its plain twin on the same storage. */
let tls: Distribution;
let twin: Distribution;
/** tls.test:PORT */
let tlsHost: string;
let env: Record<string, string>;

function cli(args: string[], extra: Record<string, string> = {}): Promise<CliResult> {
  return runCli(args, { env: { ...env, ...extra }, timeoutMs: 60_000 });
}

before(async () => {
  work = await makeTempDir('pullsafe-tls-');
  const resolver = join(work, 'resolve-test-names.mjs');
  await writeFile(resolver, RESOLVER);
  env = {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(resolver).href}`.trim(),
    // No user's Docker config or credentials in these runs.
    HOME: work,
    DOCKER_CONFIG: join(work, 'docker'),
    CI: '1',
  };
  image = await makeImage({
    format: 'oci',
    platforms: [{ os: 'linux', architecture: 'amd64' }],
    seed: 'tls-tests',
    layerSize: 20_000,
  });
  pullsafe = await startPullsafe();
  target = new URL(pullsafe.url).host;
  twin = await startDistribution();
  await pushImage(twin.url, 'library/app', 'v1', image);
  tls = await startDistribution({
    storageDir: twin.storageDir,
    tls: { certificate: fixtureCert, key: fixtureKey },
  });
  tlsHost = `tls.test:${tls.port}`;
});

after(async () => {
  await tls?.stop();
  await twin?.stop();
  await pullsafe?.stop();
  if (work) await removeTempDir(work);
});

describe('a registry with a self-signed certificate', { timeout: 120_000 }, () => {
  it('copy says its certificate is not trusted and how to trust it, at once (no retries)', async () => {
    const result = await cli(['copy', `${tlsHost}/library/app:v1`, `${target}/refused/app:v1`]);
    assert.equal(result.code, 3, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(
        `the certificate of ${tlsHost} is not trusted: self-signed \\(DEPTH_ZERO_SELF_SIGNED_CERT\\)`,
      ),
    );
    const hint = /^hint: (.*)$/m.exec(result.stderr)?.[1] ?? '';
    assert.match(hint, /NODE_EXTRA_CA_CERTS=FILE/);
    assert.match(hint, /--src-tls-verify=false/);
    assert.doesNotMatch(result.stderr, /reachable|use-system-ca|Node\.js|attempts|UNKNOWN/);
  });

  it('copy --src-tls-verify=false copies from it; --dest-tls-verify false copies into it', async () => {
    const from = await cli([
      'copy',
      '--src-tls-verify=false',
      `${tlsHost}/library/app:v1`,
      `${target}/from-tls/app:v1`,
    ]);
    assert.equal(from.code, 0, from.stderr);
    assert.equal(await digestAt(pullsafe.url, 'from-tls/app', 'v1'), image.index.digest);

    const into = await cli([
      'copy',
      '--dest-tls-verify',
      'false',
      `${target}/from-tls/app:v1`,
      `${tlsHost}/into-tls/app:v1`,
    ]);
    assert.equal(into.code, 0, into.stderr);
    assert.equal(await digestAt(twin.url, 'into-tls/app', 'v1'), image.index.digest);
  });

  it('sync reads tls-verify: false in a skopeo file as skopeo does: HTTPS without verification', async () => {
    const file = join(work, 'skopeo-tls.yaml');
    await writeFile(
      file,
      [`${tlsHost}:`, '  tls-verify: false', '  images:', '    library/app:', '      - v1', ''].join('\n'),
    );
    const result = await cli(['sync', '-f', file, '--dest', `${target}/skopeo-tls`]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /copied {5}.*skopeo-tls\/app:v1/);
    assert.equal(await digestAt(pullsafe.url, 'skopeo-tls/app', 'v1'), image.index.digest);
  });

  it("sync reads tlsVerify: false in pullsafe's format the same way; --dest-tls-verify=false for the target", async () => {
    const file = join(work, 'own-tls.yaml');
    await writeFile(
      file,
      [
        `target: ${target}/own-tls/{repository}`,
        'registries:',
        `  ${tlsHost}: { tlsVerify: false }`,
        'images:',
        `  - source: ${tlsHost}/library/app:v1`,
        '',
      ].join('\n'),
    );
    const from = await cli(['sync', '-f', file]);
    assert.equal(from.code, 0, from.stdout + from.stderr);
    assert.equal(await digestAt(pullsafe.url, 'own-tls/library/app', 'v1'), image.index.digest);

    const back = join(work, 'into-tls.yaml');
    await writeFile(
      back,
      [
        `target: ${tlsHost}/synced/{name}`,
        'images:',
        `  - source: ${target}/own-tls/library/app:v1`,
        '',
      ].join('\n'),
    );
    const refused = await cli(['sync', '-f', back]);
    assert.equal(refused.code, 3, refused.stdout + refused.stderr);
    assert.match(refused.stdout, /is not trusted: self-signed/);
    const into = await cli(['sync', '-f', back, '--dest-tls-verify=false']);
    assert.equal(into.code, 0, into.stdout + into.stderr);
    assert.equal(await digestAt(twin.url, 'synced/app', 'v1'), image.index.digest);
  });

  it('inspect and ratelimit take --tls-verify=false', async () => {
    const refused = await cli(['inspect', `${tlsHost}/library/app:v1`]);
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, /is not trusted: self-signed/);
    const inspected = await cli(['inspect', '--tls-verify=false', '--raw', `${tlsHost}/library/app:v1`]);
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.equal(inspected.stdout, image.index.bytes.toString());
    const quota = await cli(['ratelimit', '--tls-verify=false', `${tlsHost}/library/app:v1`]);
    assert.equal(quota.code, 0, quota.stderr);
    assert.match(quota.stdout, /anonymous +no quota headers/);
  });

  it('on a loopback address (a port-forward): plain HTTP is named as the problem, --tls-verify=false speaks HTTPS', async () => {
    const loopback = `127.0.0.1:${tls.port}`;
    const plain = await cli(['inspect', `${loopback}/library/app:v1`]);
    assert.equal(plain.code, 3, plain.stderr);
    assert.match(plain.stderr, new RegExp(`${loopback.replace(/\./g, '\\.')} answers HTTPS, not plain HTTP`));
    assert.match(plain.stderr, /--tls-verify=false/);
    // copy, sync and ratelimit start with a HEAD, whose 400 carries no body to tell.
    for (const args of [
      ['copy', `${loopback}/library/app:v1`, `${target}/forwarded/app:v1`],
      ['ratelimit', `${loopback}/library/app:v1`],
    ]) {
      const headFirst = await cli(args);
      assert.equal(headFirst.code, 3, headFirst.stderr);
      assert.match(headFirst.stderr, /answers HTTPS, not plain HTTP/, args[0]);
    }
    const inspected = await cli(['inspect', '--tls-verify=false', '--raw', `${loopback}/library/app:v1`]);
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.equal(inspected.stdout, image.index.bytes.toString());
    const copied = await cli([
      'copy',
      '--src-tls-verify=false',
      `${loopback}/library/app:v1`,
      `${target}/forwarded/app:v1`,
    ]);
    assert.equal(copied.code, 0, copied.stderr);
  });

  it('NODE_EXTRA_CA_CERTS is read: the certificate is trusted, and then its name is checked', async () => {
    const wrongName = await cli(['inspect', `${tlsHost}/library/app:v1`], {
      NODE_EXTRA_CA_CERTS: fixtureCert,
    });
    assert.equal(wrongName.code, 3);
    assert.match(
      wrongName.stderr,
      /is not trusted: issued for another name \(ERR_TLS_CERT_ALTNAME_INVALID\)/,
    );

    // A certificate issued for the name used, trusted through NODE_EXTRA_CA_CERTS alone.
    const openssl = requirePeer('openssl', 'openssl');
    const cert = join(work, 'trusted.pem');
    const key = join(work, 'trusted-key.pem');
    execFileSync(
      openssl,
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=trusted.test',
        '-addext',
        'subjectAltName=DNS:trusted.test',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    const trusted = await startDistribution({ storageDir: twin.storageDir, tls: { certificate: cert, key } });
    try {
      const ok = await cli(['inspect', '--raw', `trusted.test:${trusted.port}/library/app:v1`], {
        NODE_EXTRA_CA_CERTS: cert,
      });
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stdout, image.index.bytes.toString());
    } finally {
      await trusted.stop();
    }
  });
});

describe('a registry that answers plain HTTP', { timeout: 120_000 }, () => {
  /** plain.test:PORT, the twin's port. */
  let plainHost: string;
  before(() => {
    plainHost = `plain.test:${twin.host.split(':')[1]}`;
  });

  it('spoken to over HTTPS: says so, and which flag to pass, without OpenSSL internals', async () => {
    const result = await cli(['copy', `${plainHost}/library/app:v1`, `${target}/plain-refused/app:v1`]);
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, new RegExp(`${plainHost} answers plain HTTP, not HTTPS`));
    assert.match(result.stderr, new RegExp(`^hint: pass --plain-http ${plainHost} `, 'm'));
    assert.doesNotMatch(result.stderr, /SSL routines|openssl|version number|reachable/i);
  });

  it('--plain-http HOST:PORT, or tls-verify false falling back to plain HTTP, copy from it', async () => {
    const plain = await cli([
      'copy',
      '--plain-http',
      plainHost,
      `${plainHost}/library/app:v1`,
      `${target}/plain-flag/app:v1`,
    ]);
    assert.equal(plain.code, 0, plain.stderr);
    const fallback = await cli([
      'copy',
      '--src-tls-verify=false',
      `${plainHost}/library/app:v1`,
      `${target}/plain-fallback/app:v1`,
    ]);
    assert.equal(fallback.code, 0, fallback.stderr);
    assert.equal(await digestAt(pullsafe.url, 'plain-fallback/app', 'v1'), image.index.digest);

    const file = join(work, 'skopeo-plain.yaml');
    await writeFile(
      file,
      [`${plainHost}:`, '  tls-verify: false', '  images:', '    library/app:', '      - v1', ''].join('\n'),
    );
    const synced = await cli(['sync', '-f', file, '--dest', `${target}/skopeo-plain`]);
    assert.equal(synced.code, 0, synced.stdout + synced.stderr);
    assert.equal(await digestAt(pullsafe.url, 'skopeo-plain/app', 'v1'), image.index.digest);
  });
});

describe('flag values', { timeout: 60_000 }, () => {
  for (const value of ['http://vm:25000', 'vm:25000/v2', 'https://registry.test']) {
    it(`--plain-http ${value} is a usage error naming HOST or HOST:PORT`, async () => {
      const result = await cli(['copy', '--plain-http', value, `${tlsHost}/a:1`, `${target}/b:1`]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /HOST or HOST:PORT/);
    });
  }

  it('a tls-verify value other than true or false is a usage error', async () => {
    for (const args of [
      ['copy', '--src-tls-verify=maybe', `${tlsHost}/a:1`, `${target}/b:1`],
      ['inspect', '--tls-verify', 'no-thanks', `${tlsHost}/a:1`],
    ]) {
      const result = await cli(args);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /true or false/);
    }
  });
});

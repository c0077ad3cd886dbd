/**
 * Access control as clients meet it: challenges, credentials, per-repository rules, no secrets in logs, and
 * anonymous pulls by skopeo and curl, which send empty credentials after a challenge.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { runCliInProcess } from './helpers/cli.ts';
import { makeImage, writeOciLayout } from './helpers/fixtures.ts';
import { requirePeer, skopeo, skopeoOk } from './helpers/peers.ts';
import { startPullsafe, type TestRegistry } from './helpers/pullsafe.ts';

const run = promisify(execFile);

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const alice = basic('alice', 'alice-secret-pw');
const bob = basic('bob', 'bob-secret-pw');

let registry: TestRegistry;
let folder: string;

async function call(method: string, path: string, headers: Record<string, string> = {}, body?: Buffer) {
  const response = await fetch(`${registry.url}${path}`, { method, headers, ...(body ? { body } : {}) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text };
}

before(async () => {
  folder = await mkdtemp(join(tmpdir(), 'pullsafe-auth-'));
  const htpasswd = join(folder, 'htpasswd');
  await writeFile(
    htpasswd,
    `alice:${bcrypt.hashSync('alice-secret-pw', 4).replace('$2b$', '$2y$')}\nbob:${bcrypt.hashSync('bob-secret-pw', 4)}\n`,
  );
  registry = await startPullsafe({
    auth: {
      htpasswd,
      rules: [
        { repositories: 'public/**', users: ['anonymous', '*'], actions: ['pull'] },
        { repositories: 'team/**', users: ['alice'], actions: ['pull', 'push', 'delete'] },
        { repositories: 'team/**', users: ['bob'], actions: ['pull'] },
        { repositories: 'private/**', users: ['alice'], actions: ['pull', 'push'] },
        { repositories: 'bob/**', users: ['bob'], actions: ['pull', 'push'] },
      ],
    },
  });
});

after(async () => {
  await registry.stop();
  await rm(folder, { recursive: true, force: true });
});

describe('access control over HTTP', () => {
  it('challenges anonymous clients at /v2/ so docker login and skopeo send credentials', async () => {
    const response = await call('GET', '/v2/');
    assert.equal(response.status, 401);
    assert.equal(response.headers.get('www-authenticate'), 'Basic realm="pullsafe"');
    assert.equal(
      (JSON.parse(response.text) as { errors: { code: string }[] }).errors[0]!.code,
      'UNAUTHORIZED',
    );
    assert.equal((await call('GET', '/v2/', { Authorization: alice })).status, 200);
  });

  it('rejects wrong passwords and unsupported schemes with a challenge', async () => {
    for (const authorization of [basic('alice', 'wrong'), basic('mallory', 'x'), 'Bearer abc', 'Basic !!!']) {
      const response = await call('GET', '/v2/team/app/tags/list', { Authorization: authorization });
      assert.equal(response.status, 401, authorization);
      assert.ok(response.headers.get('www-authenticate'));
    }
  });

  it('applies per-repository rules: 401 for anonymous, 403 for a user without the right', async () => {
    const digest = `sha256:${createHash('sha256').update('x').digest('hex')}`;
    const anonymousPush = await call('POST', '/v2/team/app/blobs/uploads/');
    assert.equal(anonymousPush.status, 401);
    const bobPush = await call('POST', '/v2/team/app/blobs/uploads/', { Authorization: bob });
    assert.equal(bobPush.status, 403);
    assert.equal((JSON.parse(bobPush.text) as { errors: { code: string }[] }).errors[0]!.code, 'DENIED');
    const alicePush = await call(
      'POST',
      `/v2/team/app/blobs/uploads/?digest=${digest}`,
      { Authorization: alice },
      Buffer.from('x'),
    );
    assert.equal(alicePush.status, 201);
    assert.equal((await call('GET', `/v2/team/app/blobs/${digest}`, { Authorization: bob })).status, 200);
    assert.equal((await call('GET', `/v2/team/app/blobs/${digest}`)).status, 401);
    assert.equal((await call('DELETE', `/v2/team/app/blobs/${digest}`, { Authorization: bob })).status, 403);
  });

  it('lets anonymous clients pull public repositories', async () => {
    const response = await call('GET', '/v2/public/base/tags/list');
    assert.equal(response.status, 404, 'reaches the repository (unknown), not an auth error');
  });

  it('mounts only from repositories the client may read', async () => {
    const secret = Buffer.from('private layer');
    const digest = `sha256:${createHash('sha256').update(secret).digest('hex')}`;
    const pushed = await call(
      'POST',
      `/v2/private/x/blobs/uploads/?digest=${digest}`,
      { Authorization: alice },
      secret,
    );
    assert.equal(pushed.status, 201);
    const stolen = await call('POST', `/v2/bob/copy/blobs/uploads/?mount=${digest}&from=private/x`, {
      Authorization: bob,
    });
    assert.equal(stolen.status, 202, 'no mount: an ordinary upload starts instead');
    assert.equal((await call('GET', `/v2/bob/copy/blobs/${digest}`, { Authorization: bob })).status, 404);
    const allowed = await call('POST', `/v2/team/copy/blobs/uploads/?mount=${digest}&from=private/x`, {
      Authorization: alice,
    });
    assert.equal(allowed.status, 201);
  });

  it('filters the catalog to what the client may pull', async () => {
    const catalog = await call('GET', '/v2/_catalog', { Authorization: bob });
    const names = (JSON.parse(catalog.text) as { repositories: string[] }).repositories;
    assert.ok(names.includes('team/app'));
    assert.ok(!names.includes('private/x'));
  });

  it('never logs credentials', () => {
    const logged = JSON.stringify(registry.logs);
    assert.doesNotMatch(logged, /alice-secret-pw|bob-secret-pw/);
    assert.doesNotMatch(logged, new RegExp(alice.slice(6)));
  });
});

describe('anonymous pulls by clients that send empty credentials', () => {
  const emptyCredentials = 'Basic Og==';
  let open: TestRegistry;
  let closed: TestRegistry;
  let work: string;
  let authFile: string;
  let digest: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pullsafe-anonymous-'));
    const htpasswd = join(work, 'htpasswd');
    await writeFile(htpasswd, `alice:${bcrypt.hashSync('alice-secret-pw', 4)}\n`);
    // skopeo reads no credentials of the person running the tests.
    authFile = join(work, 'auth.json');
    await writeFile(authFile, '{}');
    open = await startPullsafe({ auth: { htpasswd, anonymousPull: true, anonymousPush: false } });
    closed = await startPullsafe({ auth: { htpasswd, anonymousPull: false, anonymousPush: false } });
    const image = await makeImage({
      format: 'oci',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
      seed: 'anonymous-pull',
    });
    const layout = join(work, 'layout');
    await writeOciLayout(layout, image, 'v1');
    for (const target of [open, closed]) {
      await skopeoOk(
        [
          'copy',
          '--dest-tls-verify=false',
          '--dest-creds',
          'alice:alice-secret-pw',
          `oci:${layout}:v1`,
          `docker://${new URL(target.url).host}/team/app:v1`,
        ],
        { env: { REGISTRY_AUTH_FILE: authFile } },
      );
    }
    digest = image.manifests[0]!.digest;
  });

  after(async () => {
    await open.stop();
    await closed.stop();
    await rm(work, { recursive: true, force: true });
  });

  const manifestPath = '/v2/team/app/manifests/v1';
  const accept = 'application/vnd.oci.image.manifest.v1+json';

  it('treats Authorization: Basic Og== as anonymous: pulls allowed, /v2/ still challenges', async () => {
    const response = await fetch(`${open.url}${manifestPath}`, {
      headers: { Authorization: emptyCredentials, Accept: accept },
    });
    assert.equal(response.status, 200, await response.clone().text());
    assert.equal(response.headers.get('docker-content-digest'), digest);
    const base = await fetch(`${open.url}/v2/`, { headers: { Authorization: emptyCredentials } });
    assert.equal(base.status, 401, 'docker login still gets its challenge');
    const push = await fetch(`${open.url}/v2/team/app/blobs/uploads/`, {
      method: 'POST',
      headers: { Authorization: emptyCredentials },
    });
    assert.equal(push.status, 401, 'anonymous may not push: 401 with a challenge');
    assert.equal(push.headers.get('www-authenticate'), 'Basic realm="pullsafe"');
  });

  it('curl -u : pulls where anonymous pull is allowed, and gets 401 with the challenge where it is not', async () => {
    const curl = requirePeer('curl', 'curl');
    const status = async (base: string) => {
      const { stdout } = await run(
        curl,
        [
          '-sS',
          '--max-time',
          '30',
          '-u',
          ':',
          '-H',
          `Accept: ${accept}`,
          '-D',
          '-',
          '-o',
          '/dev/null',
          `${base}${manifestPath}`,
        ],
        { timeout: 60_000 },
      );
      return stdout;
    };
    assert.match(await status(open.url), /^HTTP\/1\.1 200 /);
    const refused = await status(closed.url);
    assert.match(refused, /^HTTP\/1\.1 401 /);
    assert.match(refused, /^www-authenticate: Basic realm="pullsafe"\r$/im);
  });

  it('skopeo inspect and skopeo copy pull anonymously from a registry with users', async () => {
    const reference = `docker://${new URL(open.url).host}/team/app:v1`;
    const env = { REGISTRY_AUTH_FILE: authFile };
    const inspected = await skopeoOk(['inspect', '--tls-verify=false', reference], { env });
    assert.equal((JSON.parse(inspected.stdout) as { Digest: string }).Digest, digest);
    const target = join(work, 'pulled');
    await skopeoOk(['copy', '--src-tls-verify=false', reference, `oci:${target}:v1`], { env });
    const index = JSON.parse(await readFile(join(target, 'index.json'), 'utf8')) as {
      manifests: { digest: string }[];
    };
    assert.equal(index.manifests[0]?.digest, digest);

    const refused = await skopeo(
      ['inspect', '--tls-verify=false', `docker://${new URL(closed.url).host}/team/app:v1`],
      { env },
    );
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /401|unauthorized|authentication required/i);
  });

  it('pullsafe copy pulls anonymously from a registry with users', async () => {
    const host = new URL(open.url).host;
    const target = join(work, 'copied');
    const result = await runCliInProcess(
      ['copy', '--plain-http', host, `${host}/team/app:v1`, `oci:${target}:v1`],
      {
        env: { DOCKER_CONFIG: work, REGISTRY_AUTH_FILE: authFile },
      },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(digest));
  });
});

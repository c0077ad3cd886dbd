/** Access control as clients meet it: challenges, credentials, per-repository rules, no secrets in logs. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { startPullsafe, type TestRegistry } from './helpers/pullsafe.ts';

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

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PullsafeError } from '../errors/index.ts';
import {
  CredentialChain,
  credentialHelperGet,
  DOCKER_HUB_INDEX_SERVER,
  dockerConfigCredentials,
  dockerConfigPath,
  dockerServerAddress,
  ecrCredentials,
  envCredentials,
  explicitCredentials,
  matchRegistryKey,
  normaliseRegistryKey,
  parseDockerConfig,
  parseEcrHost,
  secretRegion,
  secretsManagerCredentials,
  standardCredentialChain,
  type EcrLike,
  type SecretsManagerLike,
} from './credentials.ts';

const b64 = (text: string) => Buffer.from(text).toString('base64');

async function withTempDir<T>(run: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'pullsafe-creds-'));
  try {
    return await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('registry key normalisation and matching follow Docker', () => {
  assert.equal(normaliseRegistryKey('https://index.docker.io/v1/'), 'docker.io');
  assert.equal(normaliseRegistryKey('registry-1.docker.io'), 'docker.io');
  assert.equal(normaliseRegistryKey('HTTP://Reg.Example.com:5000/v2/'), 'reg.example.com:5000');
  assert.equal(dockerServerAddress('docker.io'), DOCKER_HUB_INDEX_SERVER);
  assert.equal(dockerServerAddress('ghcr.io'), 'ghcr.io');

  const keys = ['https://index.docker.io/v1/', 'ghcr.io', 'https://reg.example.com:5000/v2/', 'quay.io'];
  assert.equal(matchRegistryKey(keys, 'docker.io'), 'https://index.docker.io/v1/');
  assert.equal(matchRegistryKey(keys, 'ghcr.io'), 'ghcr.io');
  assert.equal(matchRegistryKey(keys, 'reg.example.com:5000'), 'https://reg.example.com:5000/v2/');
  assert.equal(matchRegistryKey(keys, 'reg.example.com'), undefined);
  assert.equal(matchRegistryKey(['docker.io'], 'docker.io'), 'docker.io');
  // An exact key wins over a host match.
  assert.equal(matchRegistryKey(['https://ghcr.io', 'ghcr.io'], 'ghcr.io'), 'ghcr.io');
});

test('dockerConfigPath: DOCKER_CONFIG from the given env, else home', () => {
  assert.equal(dockerConfigPath({ DOCKER_CONFIG: '/etc/dc' }, '/home/u'), '/etc/dc/config.json');
  assert.equal(dockerConfigPath({}, '/home/u'), '/home/u/.docker/config.json');
});

test('parseDockerConfig: errors name the file, never the content', () => {
  assert.throws(
    () => parseDockerConfig('{"auths": {"x": {"auth": "c2VjcmV0"}', '/cfg.json'),
    (error: unknown) =>
      error instanceof PullsafeError &&
      error.code === 'CREDENTIALS_INVALID' &&
      error.message.includes('/cfg.json') &&
      !error.message.includes('c2VjcmV0'),
  );
  assert.throws(
    () => parseDockerConfig('{"auths": {"x": {"auth": 5}}}', '/cfg.json'),
    (error: unknown) => error instanceof PullsafeError && /auths\.x\.auth/.test(error.message),
  );
  const parsed = parseDockerConfig('{"auths":{},"credsStore":"desktop","other":1}', '/cfg.json');
  assert.equal(parsed.credsStore, 'desktop');
});

test('docker config: auths with auth, username/password and identitytoken; key forms', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, 'config.json');
    await writeFile(
      path,
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: b64('hubuser:hubpass') },
          'reg.example.com': { username: 'u2', password: 'p:2' },
          'https://other.example.com/v1/': { auth: b64('u3:p3') },
          'idp.example.com': { auth: b64('u4:'), identitytoken: 'refresh-4' },
          'empty.example.com': {},
          'bad.example.com': { auth: b64('no-colon') },
        },
      }),
    );
    const source = dockerConfigCredentials({ path, env: {} });
    assert.deepEqual(await source.get('docker.io'), { username: 'hubuser', password: 'hubpass' });
    assert.deepEqual(await source.get('index.docker.io'), { username: 'hubuser', password: 'hubpass' });
    assert.deepEqual(await source.get('reg.example.com'), { username: 'u2', password: 'p:2' });
    assert.deepEqual(await source.get('other.example.com'), { username: 'u3', password: 'p3' });
    assert.deepEqual(await source.get('idp.example.com'), { identityToken: 'refresh-4', username: 'u4' });
    assert.equal(await source.get('empty.example.com'), undefined);
    assert.equal(await source.get('nowhere.example.com'), undefined);
    await assert.rejects(source.get('bad.example.com'), (error: unknown) => {
      assert.ok(error instanceof PullsafeError);
      assert.equal(error.code, 'CREDENTIALS_INVALID');
      assert.match(error.message, /bad\.example\.com/);
      assert.doesNotMatch(error.message, /no-colon/);
      return true;
    });
  });
});

test('docker config: a missing file means no credentials', async () => {
  const source = dockerConfigCredentials({ path: '/nonexistent/pullsafe/config.json', env: {} });
  assert.equal(await source.get('docker.io'), undefined);
});

const helperScript = `#!/bin/sh
[ "$1" = "get" ] || { echo "unsupported $1" >&2; exit 3; }
read -r host
echo "$host" >> "$HELPER_LOG"
case "$host" in
  reg.example.com) printf '{"ServerURL":"reg.example.com","Username":"helperuser","Secret":"helpersecret"}' ;;
  https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"<token>","Secret":"identity-xyz"}' "$host" ;;
  broken.example.com) echo "keychain locked" >&2; exit 2 ;;
  garbage.example.com) echo "not json" ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;

async function installHelper(dir: string, name: string): Promise<Record<string, string>> {
  const file = join(dir, `docker-credential-${name}`);
  await writeFile(file, helperScript);
  await chmod(file, 0o755);
  return { PATH: `${dir}:/usr/bin:/bin`, HELPER_LOG: join(dir, 'helper.log') };
}

test('credential helper protocol: host on stdin, JSON out, <token> is an identity token', async () => {
  await withTempDir(async (dir) => {
    const env = await installHelper(dir, 'fake');
    assert.deepEqual(await credentialHelperGet('fake', 'reg.example.com', env), {
      username: 'helperuser',
      password: 'helpersecret',
    });
    assert.deepEqual(await credentialHelperGet('fake', DOCKER_HUB_INDEX_SERVER, env), {
      identityToken: 'identity-xyz',
    });
    assert.equal(await credentialHelperGet('fake', 'unknown.example.com', env), undefined);
    await assert.rejects(credentialHelperGet('fake', 'broken.example.com', env), (error: unknown) => {
      assert.ok(error instanceof PullsafeError);
      assert.equal(error.code, 'CREDENTIALS_INVALID');
      assert.match(
        error.message,
        /docker-credential-fake failed for broken\.example\.com \(exit 2\): keychain locked/,
      );
      return true;
    });
    await assert.rejects(credentialHelperGet('fake', 'garbage.example.com', env), /printed something other/);
    await assert.rejects(credentialHelperGet('missing', 'reg.example.com', env), /not installed/);
    await assert.rejects(credentialHelperGet('../evil', 'reg.example.com', env), /is invalid/);
  });
});

test('docker config: credHelpers per host, credsStore default, auths fallback; helper asked once', async () => {
  await withTempDir(async (dir) => {
    const env = await installHelper(dir, 'fake');
    await installHelper(dir, 'store');
    const path = join(dir, 'config.json');
    await writeFile(
      path,
      JSON.stringify({
        auths: { 'fallback.example.com': { auth: b64('fb:pw') } },
        credHelpers: { 'reg.example.com': 'fake' },
        credsStore: 'store',
      }),
    );
    const source = dockerConfigCredentials({ path, env });
    assert.deepEqual(await source.get('reg.example.com'), {
      username: 'helperuser',
      password: 'helpersecret',
    });
    assert.deepEqual(await source.get('reg.example.com'), {
      username: 'helperuser',
      password: 'helpersecret',
    });
    // credsStore answers for Docker Hub with its index server address.
    assert.deepEqual(await source.get('docker.io'), { identityToken: 'identity-xyz' });
    // The store has nothing for this host: the inline entry answers.
    assert.deepEqual(await source.get('fallback.example.com'), { username: 'fb', password: 'pw' });
    const { readFile } = await import('node:fs/promises');
    const asked = (await readFile(env.HELPER_LOG!, 'utf8')).trim().split('\n');
    assert.deepEqual(asked, ['reg.example.com', DOCKER_HUB_INDEX_SERVER, 'fallback.example.com']);
  });
});

test('explicit and environment credentials are scoped to the hosts named', async () => {
  const explicit = explicitCredentials('alice:pa:ss', { registry: 'docker.io' });
  assert.deepEqual(await explicit.get('index.docker.io'), { username: 'alice', password: 'pa:ss' });
  assert.equal(await explicit.get('ghcr.io'), undefined);
  assert.deepEqual(await explicitCredentials('bob:x').get('any.example.com'), {
    username: 'bob',
    password: 'x',
  });
  assert.throws(() => explicitCredentials('nopassword'), /user:password/);
  assert.throws(() => explicitCredentials(':x'), /user:password/);

  const env = { PULLSAFE_REGISTRY_USER: 'eve', PULLSAFE_REGISTRY_PASSWORD: 'pw' };
  assert.equal(await envCredentials(env).get('reg.example.com'), undefined);
  assert.deepEqual(await envCredentials(env, { registry: 'reg.example.com' }).get('reg.example.com'), {
    username: 'eve',
    password: 'pw',
  });
  const hosted = envCredentials({ ...env, PULLSAFE_REGISTRY_HOST: 'a.example.com, b.example.com' });
  assert.deepEqual(await hosted.get('b.example.com'), { username: 'eve', password: 'pw' });
  assert.equal(await hosted.get('c.example.com'), undefined);
});

test('CredentialChain: first source that knows the registry answers', async () => {
  const chain = new CredentialChain([
    explicitCredentials('first:1', { registry: 'a.example.com' }),
    explicitCredentials('second:2'),
  ]);
  assert.deepEqual(await chain.get('a.example.com'), { username: 'first', password: '1' });
  assert.deepEqual(await chain.get('b.example.com'), { username: 'second', password: '2' });
  assert.equal(await new CredentialChain([]).get('x'), undefined);
});

test('parseEcrHost: commercial, China, FIPS and dual-stack hosts', () => {
  assert.deepEqual(parseEcrHost('123456789012.dkr.ecr.eu-west-1.amazonaws.com'), {
    accountId: '123456789012',
    region: 'eu-west-1',
    fips: false,
    dualStack: false,
  });
  assert.deepEqual(parseEcrHost('123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn'), {
    accountId: '123456789012',
    region: 'cn-north-1',
    fips: false,
    dualStack: false,
  });
  assert.deepEqual(parseEcrHost('123456789012.dkr.ecr-fips.us-east-1.amazonaws.com:443'), {
    accountId: '123456789012',
    region: 'us-east-1',
    fips: true,
    dualStack: false,
  });
  assert.deepEqual(parseEcrHost('123456789012.dkr-ecr.ap-southeast-2.on.aws'), {
    accountId: '123456789012',
    region: 'ap-southeast-2',
    fips: false,
    dualStack: true,
  });
  assert.equal(parseEcrHost('public.ecr.aws'), undefined);
  assert.equal(parseEcrHost('12345.dkr.ecr.eu-west-1.amazonaws.com'), undefined);
  assert.equal(parseEcrHost('123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.com'), undefined);
  assert.equal(parseEcrHost('123456789012.dkr-ecr.eu-west-1.amazonaws.com'), undefined);
  assert.equal(parseEcrHost('docker.io'), undefined);
});

test('ECR source: region from the host, token cached until expiresAt', async () => {
  let now = Date.parse('2025-01-01T00:00:00Z');
  const calls: { region: string; name: string }[] = [];
  const factory = (region: string): EcrLike => ({
    async send(command) {
      calls.push({ region, name: command.constructor.name });
      return {
        $metadata: {},
        authorizationData: [
          {
            authorizationToken: b64(`AWS:password-${calls.length}`),
            expiresAt: new Date(now + 12 * 3600_000),
            proxyEndpoint: `https://123456789012.dkr.ecr.${region}.amazonaws.com`,
          },
        ],
      };
    },
  });
  const source = ecrCredentials({ clientFactory: factory, now: () => now });
  assert.equal(await source.get('ghcr.io'), undefined);
  const host = '123456789012.dkr.ecr.eu-central-1.amazonaws.com';
  const [first, concurrent] = await Promise.all([source.get(host), source.get(host)]);
  assert.deepEqual(first, { username: 'AWS', password: 'password-1' });
  assert.deepEqual(concurrent, first);
  assert.deepEqual(calls, [{ region: 'eu-central-1', name: 'GetAuthorizationTokenCommand' }]);
  now += 11 * 3600_000;
  assert.deepEqual(await source.get(host), { username: 'AWS', password: 'password-1' });
  now += 3600_000;
  assert.deepEqual(await source.get(host), { username: 'AWS', password: 'password-2' });
  assert.equal(calls.length, 2);
  await source.get('123456789012.dkr-ecr.us-west-2.on.aws');
  assert.equal(calls[2]?.region, 'us-west-2');
});

test('ECR source: an SDK failure is CREDENTIALS_INVALID naming the region', async () => {
  const source = ecrCredentials({
    clientFactory: () => ({
      async send() {
        throw Object.assign(new Error('User is not authorized (AKIAABCDEFGHIJKLMNOP)'), {
          name: 'AccessDeniedException',
        });
      },
    }),
  });
  await assert.rejects(source.get('123456789012.dkr.ecr.eu-west-1.amazonaws.com'), (error: unknown) => {
    assert.ok(error instanceof PullsafeError);
    assert.equal(error.code, 'CREDENTIALS_INVALID');
    assert.match(error.message, /eu-west-1: AccessDeniedException/);
    assert.doesNotMatch(error.message, /AKIA/);
    return true;
  });
});

function fakeSecrets(value: { SecretString?: string; SecretBinary?: Uint8Array }, seen: string[] = []) {
  return (region: string): SecretsManagerLike => ({
    async send(command) {
      seen.push(`${region}:${command.input.SecretId}`);
      return { $metadata: {}, ...value };
    },
  });
}

test('Secrets Manager source: ECS repositoryCredentials shape, region from the ARN, read once', async () => {
  const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:dockerhub-AbCdEf';
  assert.equal(secretRegion(arn), 'eu-west-1');
  assert.equal(secretRegion('plain-name'), undefined);
  const seen: string[] = [];
  const source = secretsManagerCredentials({
    secretId: arn,
    registry: 'docker.io',
    clientFactory: fakeSecrets({ SecretString: '{"username":"hub","password":"s3cret","note":"x"}' }, seen),
  });
  assert.equal(await source.get('ghcr.io'), undefined);
  assert.deepEqual(await source.get('docker.io'), { username: 'hub', password: 's3cret' });
  assert.deepEqual(await source.get('registry-1.docker.io'), { username: 'hub', password: 's3cret' });
  assert.deepEqual(seen, [`eu-west-1:${arn}`]);

  const binary = secretsManagerCredentials({
    secretId: 'by-name',
    region: 'us-east-1',
    registry: ['reg.example.com'],
    clientFactory: fakeSecrets({ SecretBinary: Buffer.from('{"username":"b","password":"c"}') }),
  });
  assert.deepEqual(await binary.get('reg.example.com'), { username: 'b', password: 'c' });
});

test('Secrets Manager source: a wrong shape names the secret, never its value', async () => {
  for (const SecretString of [
    '{"user":"hub","pass":"TOPSECRET"}',
    'TOPSECRET',
    '{"username":"hub","password":""}',
  ]) {
    const source = secretsManagerCredentials({
      secretId: 'team/dockerhub',
      region: 'eu-west-1',
      registry: 'docker.io',
      clientFactory: fakeSecrets({ SecretString }),
    });
    await assert.rejects(source.get('docker.io'), (error: unknown) => {
      assert.ok(error instanceof PullsafeError);
      assert.equal(error.code, 'CREDENTIALS_INVALID');
      assert.match(error.message, /team\/dockerhub/);
      assert.doesNotMatch(`${error.message} ${error.hint}`, /TOPSECRET/);
      return true;
    });
  }
  const noRegion = secretsManagerCredentials({
    secretId: 'name-only',
    registry: 'docker.io',
    clientFactory: fakeSecrets({ SecretString: '{}' }),
  });
  await assert.rejects(noRegion.get('docker.io'), /no AWS region/);
});

test('standardCredentialChain: explicit, then env, then Docker config, then ECR', async () => {
  await withTempDir(async (dir) => {
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({ auths: { 'reg.example.com': { auth: b64('cfg:pw') } } }),
    );
    const chain = standardCredentialChain({
      explicit: [explicitCredentials('cli:pw', { registry: 'cli.example.com' })],
      env: {
        DOCKER_CONFIG: dir,
        PULLSAFE_REGISTRY_USER: 'envu',
        PULLSAFE_REGISTRY_PASSWORD: 'envp',
        PULLSAFE_REGISTRY_HOST: 'env.example.com',
      },
      home: '/nonexistent',
      ecrClientFactory: () => ({
        async send() {
          return {
            $metadata: {},
            authorizationData: [
              { authorizationToken: b64('AWS:ecr'), expiresAt: new Date(Date.now() + 3600_000) },
            ],
          };
        },
      }),
    });
    assert.deepEqual(await chain.get('cli.example.com'), { username: 'cli', password: 'pw' });
    assert.deepEqual(await chain.get('env.example.com'), { username: 'envu', password: 'envp' });
    assert.deepEqual(await chain.get('reg.example.com'), { username: 'cfg', password: 'pw' });
    assert.deepEqual(await chain.get('123456789012.dkr.ecr.eu-west-1.amazonaws.com'), {
      username: 'AWS',
      password: 'ecr',
    });
    assert.equal(await chain.get('ghcr.io'), undefined);
  });
});

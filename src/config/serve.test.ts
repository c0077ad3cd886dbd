import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PullsafeError } from '../errors/index.ts';
import { anonymousPushAllowed, loadServeConfig, parseListen, validateServeConfig } from './serve.ts';
import { serveJsonSchema } from './schema.ts';

async function withFile<T>(content: string, run: (path: string) => Promise<T>): Promise<T> {
  const folder = await mkdtemp(join(tmpdir(), 'pullsafe-config-'));
  try {
    const path = join(folder, 'pullsafe.yaml');
    await writeFile(path, content);
    return await run(path);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

function configError(pattern: RegExp) {
  return (error: unknown) =>
    error instanceof PullsafeError && error.code === 'CONFIG_INVALID' && pattern.test(error.message);
}

describe('serve configuration', () => {
  it('has embedded defaults: loopback, ./data, anonymous pull and push', () => {
    const config = validateServeConfig({}, 'defaults');
    assert.equal(config.listen, '127.0.0.1:5000');
    assert.equal(config.storage, './data');
    assert.equal(config.auth.anonymousPull, true);
    assert.equal(anonymousPushAllowed(config), true);
    assert.equal(config.limits.maxManifestBytes, 4 * 1024 * 1024);
  });

  it('file, then environment, then flags: last wins', async () => {
    await withFile('listen: 127.0.0.1:6000\nstorage: /from/file\nlog:\n  level: debug\n', async (file) => {
      const fileOnly = await loadServeConfig({ file, env: {}, flags: {} });
      assert.equal(fileOnly.listen, '127.0.0.1:6000');
      assert.equal(fileOnly.log.level, 'debug');
      const env = await loadServeConfig({
        file,
        env: { PULLSAFE_STORAGE: '/from/env', PULLSAFE_LISTEN: '[::1]:7000' },
        flags: {},
      });
      assert.equal(env.storage, '/from/env');
      assert.equal(env.listen, '[::1]:7000');
      assert.equal(env.log.level, 'debug', 'untouched keys keep the file value');
      const flags = await loadServeConfig({
        file,
        env: { PULLSAFE_STORAGE: '/from/env' },
        flags: { storage: '/from/flag' },
      });
      assert.equal(flags.storage, '/from/flag');
    });
  });

  it('PULLSAFE_CONFIG names the file', async () => {
    await withFile('storage: /x\n', async (file) => {
      const config = await loadServeConfig({ env: { PULLSAFE_CONFIG: file }, flags: {} });
      assert.equal(config.storage, '/x');
    });
  });

  it('unknown keys are errors with the path and a suggestion', async () => {
    await withFile('listne: 127.0.0.1:5000\n', async (file) => {
      await assert.rejects(
        loadServeConfig({ file, env: {}, flags: {} }),
        configError(/listne: unknown key \(did you mean "listen"\?\)/),
      );
    });
    await withFile('auth:\n  htpaswd: /x\n', async (file) => {
      await assert.rejects(
        loadServeConfig({ file, env: {}, flags: {} }),
        configError(/auth\.htpaswd: unknown key \(did you mean "htpasswd"\?\)/),
      );
    });
  });

  it('wrong types, bad durations, bad YAML and a missing file are clear errors', async () => {
    await withFile('limits:\n  maxManifestBytes: lots\n', async (file) => {
      await assert.rejects(
        loadServeConfig({ file, env: {}, flags: {} }),
        configError(/limits\.maxManifestBytes/),
      );
    });
    await withFile('uploads:\n  maxAge: forever\n', async (file) => {
      await assert.rejects(loadServeConfig({ file, env: {}, flags: {} }), configError(/uploads\.maxAge/));
    });
    await withFile('listen: [unclosed\n', async (file) => {
      await assert.rejects(loadServeConfig({ file, env: {}, flags: {} }), configError(/not valid YAML/));
    });
    await withFile('- a\n- b\n', async (file) => {
      await assert.rejects(loadServeConfig({ file, env: {}, flags: {} }), configError(/mapping/));
    });
    await assert.rejects(
      loadServeConfig({ file: '/nonexistent/pullsafe.yaml', env: {}, flags: {} }),
      (error: unknown) => error instanceof PullsafeError && error.code === 'CONFIG_UNREADABLE',
    );
    await assert.rejects(
      loadServeConfig({ env: { PULLSAFE_ALLOW_ANONYMOUS_PUSH: 'maybe' }, flags: {} }),
      configError(/PULLSAFE_ALLOW_ANONYMOUS_PUSH/),
    );
  });

  it('parses listen addresses', () => {
    assert.deepEqual(parseListen('127.0.0.1:5000'), { host: '127.0.0.1', port: 5000, loopback: true });
    assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0, loopback: true });
    assert.deepEqual(parseListen(':5000'), { host: '0.0.0.0', port: 5000, loopback: false });
    assert.deepEqual(parseListen('localhost:80'), { host: 'localhost', port: 80, loopback: true });
    for (const bad of ['5000', '127.0.0.1', '127.0.0.1:99999', '[zz]:5', 'a:b']) {
      assert.throws(() => parseListen(bad), configError(/listen/), bad);
    }
  });

  it('refuses anonymous push off loopback unless allowed, and with users', () => {
    const open = validateServeConfig({ listen: '0.0.0.0:5000' }, 't');
    assert.equal(anonymousPushAllowed(open), false);
    assert.equal(
      anonymousPushAllowed(validateServeConfig({ listen: '0.0.0.0:5000', allowAnonymousPush: true }, 't')),
      true,
    );
    assert.equal(anonymousPushAllowed(validateServeConfig({ auth: { htpasswd: '/x' } }, 't')), false);
    assert.equal(anonymousPushAllowed(validateServeConfig({ listen: '[::1]:5000' }, 't')), true);
  });

  it('the checked-in JSON schema is current (regenerate: npm run schema)', async () => {
    const checkedIn = await readFile(new URL('../../docs/config.schema.json', import.meta.url), 'utf8');
    assert.equal(checkedIn, serveJsonSchema());
  });
});

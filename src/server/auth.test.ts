import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { OciError } from '../oci/errors.ts';
import { globRows } from '../shared/glob.test-support.ts';
import {
  AccessControl,
  AuthConfigError,
  authCacheDefaults,
  parseHtpasswd,
  type AccessControlHooks,
  type AccessRule,
  type AuthOptions,
} from './auth.ts';

let dir: string;
let htpasswd: string;
let aliceHash: string;

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}

/** A verify function that counts calls and delegates to bcrypt. */
function countingVerify(): { calls: number; verify: NonNullable<AccessControlHooks['verify']> } {
  const counter = {
    calls: 0,
    verify: (password: string, hash: string) => {
      counter.calls++;
      return bcrypt.compare(password, hash);
    },
  };
  return counter;
}

function options(overrides: Partial<AuthOptions> = {}): AuthOptions {
  return { realm: 'pullsafe', htpasswd, anonymousPull: false, anonymousPush: false, ...overrides };
}

async function rejectsUnauthorized(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof OciError);
    assert.equal(error.code, 'UNAUTHORIZED');
    assert.equal(error.status, 401);
    return true;
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pullsafe-auth-'));
  aliceHash = bcrypt.hashSync('alice-secret', 4);
  const bobHash = bcrypt.hashSync('bob-secret', 4);
  // htpasswd -B writes the $2y$ prefix.
  const carolHash = `$2y$${bcrypt.hashSync('carol-secret', 4).slice(4)}`;
  htpasswd = join(dir, 'htpasswd');
  await writeFile(
    htpasswd,
    `# registry users\nalice:${aliceHash}\n\nbob:${bobHash}\r\ncarol:${carolHash}\n`,
    'utf8',
  );
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('htpasswd loading', () => {
  test('accepts $2a$/$2b$/$2y$ entries, comments, blank lines and CRLF', async () => {
    const access = await AccessControl.load(options());
    assert.equal(access.usersConfigured, true);
  });

  test('without an htpasswd file no users are configured', async () => {
    const access = await AccessControl.load(options({ htpasswd: undefined }));
    assert.equal(access.usersConfigured, false);
  });

  const invalid: [string, string, RegExp][] = [
    ['md5', 'dave:$apr1$abcdefgh$0123456789abcdefghijkl', /MD5/],
    ['sha1', 'dave:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=', /SHA-1/],
    ['plain text', 'dave:password123', /not a bcrypt hash/],
    ['empty user', ':HASH', /empty user name/],
    ['no colon', 'dave', /expected user:bcrypt-hash/],
    ['truncated bcrypt', 'dave:$2y$05$tooshort', /malformed bcrypt hash/],
    ['reserved user', 'anonymous:HASH', /reserved/],
    ['duplicate user', 'alice:HASH', /duplicate user "alice" \(first on line 2\)/],
  ];
  for (const [name, line, why] of invalid) {
    test(`rejects ${name} with the line number and without the hash`, async () => {
      const file = join(dir, `bad-${name.replace(/ /g, '-')}`);
      const resolved = line.replace('HASH', aliceHash);
      await writeFile(file, `# users\nalice:${aliceHash}\n${resolved}\n`, 'utf8');
      await assert.rejects(AccessControl.load(options({ htpasswd: file })), (error: unknown) => {
        assert.ok(error instanceof AuthConfigError);
        assert.equal(error.code, 'AUTH_HTPASSWD_INVALID');
        assert.equal(error.line, 3);
        assert.match(error.message, /line 3/);
        assert.match(error.message, why);
        const secret = resolved.slice(resolved.indexOf(':') + 1);
        if (secret.length > 0)
          assert.ok(!error.message.includes(secret), 'message must not contain the hash');
        assert.ok(!error.message.includes(aliceHash));
        return true;
      });
    });
  }

  test('rejects a file without users', async () => {
    const file = join(dir, 'empty');
    await writeFile(file, '# nobody\n\n', 'utf8');
    await assert.rejects(AccessControl.load(options({ htpasswd: file })), { code: 'AUTH_HTPASSWD_INVALID' });
  });

  test('reports an unreadable file', async () => {
    await assert.rejects(AccessControl.load(options({ htpasswd: join(dir, 'missing') })), {
      code: 'AUTH_HTPASSWD_UNREADABLE',
    });
  });

  test('parseHtpasswd maps users to hashes', () => {
    const users = parseHtpasswd(`alice:${aliceHash}\n`, 'inline');
    assert.deepEqual([...users.keys()], ['alice']);
  });
});

describe('authenticate', () => {
  test('accepts good credentials, including a $2y$ entry', async () => {
    const access = await AccessControl.load(options());
    assert.deepEqual(await access.authenticate(basic('alice', 'alice-secret')), { user: 'alice' });
    assert.deepEqual(await access.authenticate(basic('carol', 'carol-secret')), { user: 'carol' });
  });

  test('a missing header is anonymous', async () => {
    const access = await AccessControl.load(options());
    assert.deepEqual(await access.authenticate(undefined), {});
  });

  test('accepts a lowercase scheme and passwords containing colons', async () => {
    const file = join(dir, 'colon');
    await writeFile(file, `dave:${bcrypt.hashSync('pa:ss:word', 4)}\n`, 'utf8');
    const access = await AccessControl.load(options({ htpasswd: file }));
    const header = basic('dave', 'pa:ss:word').replace('Basic', 'basic');
    assert.deepEqual(await access.authenticate(header), { user: 'dave' });
  });

  test('rejects a wrong password', async () => {
    const access = await AccessControl.load(options());
    await assert.rejects(access.authenticate(basic('alice', 'wrong')), (error: unknown) => {
      assert.ok(error instanceof OciError);
      assert.equal(error.code, 'UNAUTHORIZED');
      assert.equal(error.message, 'authentication required');
      assert.ok(!JSON.stringify(error.body()).includes('wrong'));
      return true;
    });
  });

  test('rejects an unknown user', async () => {
    const access = await AccessControl.load(options());
    await rejectsUnauthorized(access.authenticate(basic('mallory', 'alice-secret')));
  });

  test('compares user names exactly', async () => {
    const access = await AccessControl.load(options());
    await rejectsUnauthorized(access.authenticate(basic('Alice', 'alice-secret')));
    await rejectsUnauthorized(access.authenticate(basic('alice ', 'alice-secret')));
  });

  test('rejects malformed headers', async () => {
    const access = await AccessControl.load(options());
    const malformed = [
      'Basic !!!not-base64!!!',
      'Basic',
      'Basic ',
      `Basic ${Buffer.from('alice-no-colon').toString('base64')}`,
      `Basic ${Buffer.from(':password').toString('base64')}`,
      `Basic ${Buffer.from([0xff, 0xfe, 0x3a, 0x41]).toString('base64')}`,
      'Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig',
      'Digest username="alice"',
      '',
    ];
    for (const header of malformed) {
      await rejectsUnauthorized(access.authenticate(header));
    }
  });

  test('empty Basic credentials (user and password both empty) are anonymous', async () => {
    const counter = countingVerify();
    const access = await AccessControl.load(options(), { verify: counter.verify });
    assert.equal(basic('', ''), 'Basic Og==');
    assert.deepEqual(await access.authenticate('Basic Og=='), {});
    assert.deepEqual(await access.authenticate('basic Og=='), {});
    assert.equal(counter.calls, 0, 'no password check for anonymous clients');
    await rejectsUnauthorized(access.authenticate(basic('', 'x')));
    await rejectsUnauthorized(access.authenticate(basic('alice', '')));
    // Anonymous, and so refused where anonymous clients are refused: 401 with a challenge, not 403.
    assert.equal(access.authorize(await access.authenticate('Basic Og=='), 'app', 'pull'), 'unauthenticated');
  });

  test('without users credentials are ignored and the client is anonymous', async () => {
    const access = await AccessControl.load(options({ htpasswd: undefined, anonymousPull: true }));
    assert.deepEqual(await access.authenticate(basic('alice', 'alice-secret')), {});
    assert.deepEqual(await access.authenticate('Bearer token'), {});
  });
});

describe('verification cache', () => {
  test('a successful verification is reused until it expires', async () => {
    let now = 1_000_000;
    const counter = countingVerify();
    const access = await AccessControl.load(options(), { verify: counter.verify, now: () => now });
    await access.authenticate(basic('alice', 'alice-secret'));
    await access.authenticate(basic('alice', 'alice-secret'));
    assert.equal(counter.calls, 1);
    now += authCacheDefaults.successTtlMs - 1;
    await access.authenticate(basic('alice', 'alice-secret'));
    assert.equal(counter.calls, 1);
    now += 1;
    await access.authenticate(basic('alice', 'alice-secret'));
    assert.equal(counter.calls, 2);
  });

  test('the cache is keyed by user and password', async () => {
    const counter = countingVerify();
    const access = await AccessControl.load(options(), { verify: counter.verify });
    await access.authenticate(basic('alice', 'alice-secret'));
    await rejectsUnauthorized(access.authenticate(basic('alice', 'alice-secret2')));
    await rejectsUnauthorized(access.authenticate(basic('bob', 'alice-secret')));
    assert.equal(counter.calls, 3);
  });

  test('failures are cached briefly', async () => {
    let now = 0;
    const counter = countingVerify();
    const access = await AccessControl.load(options(), { verify: counter.verify, now: () => now });
    await rejectsUnauthorized(access.authenticate(basic('alice', 'wrong')));
    await rejectsUnauthorized(access.authenticate(basic('alice', 'wrong')));
    assert.equal(counter.calls, 1);
    now += authCacheDefaults.failureTtlMs;
    await rejectsUnauthorized(access.authenticate(basic('alice', 'wrong')));
    assert.equal(counter.calls, 2);
    // A cached failure does not stop the right password from working.
    assert.deepEqual(await access.authenticate(basic('alice', 'alice-secret')), { user: 'alice' });
  });

  test('unknown users cost one verification and are cached as failures', async () => {
    const counter = countingVerify();
    const access = await AccessControl.load(options(), { verify: counter.verify });
    await rejectsUnauthorized(access.authenticate(basic('mallory', 'x')));
    await rejectsUnauthorized(access.authenticate(basic('mallory', 'x')));
    assert.equal(counter.calls, 1);
  });

  test('an unknown user is checked at the cost of an entry chosen by the name, spread as the file is', async () => {
    // Costs 4, 4, 5, 6: the first entry's cost alone would tell unknown names from bob, carol and dave.
    const hashes = [
      bcrypt.hashSync('a', 4),
      bcrypt.hashSync('b', 4),
      bcrypt.hashSync('c', 5),
      `$2y$${bcrypt.hashSync('d', 6).slice(4)}`,
    ];
    const file = join(dir, 'mixed-costs');
    const users = ['alice', 'bob', 'carol', 'dave'];
    await writeFile(file, users.map((user, index) => `${user}:${hashes[index]}\n`).join(''), 'utf8');
    const checked: string[] = [];
    const access = await AccessControl.load(options({ htpasswd: file }), {
      verify: (_password, hash) => {
        checked.push(hash);
        return Promise.resolve(false);
      },
    });
    const cost = (hash: string) => Number(hash.slice(4, 6));
    const costOfAttempt = async (user: string, password: string) => {
      checked.length = 0;
      await rejectsUnauthorized(access.authenticate(basic(user, password)));
      assert.equal(checked.length, 1, user);
      assert.ok(hashes.includes(checked[0]!), 'a hash from the file');
      return cost(checked[0]!);
    };

    const names = 400;
    const seen = new Map<number, number>();
    for (let index = 0; index < names; index++) {
      const user = `nobody-${index}`;
      const first = await costOfAttempt(user, 'one');
      assert.equal(await costOfAttempt(user, 'two'), first, `${user}: the same cost on every attempt`);
      seen.set(first, (seen.get(first) ?? 0) + 1);
    }
    // Expected shares: half at cost 4, a quarter each at 5 and 6 (binomial, standard deviation under 10).
    for (const [value, expected] of [
      [4, names / 2],
      [5, names / 4],
      [6, names / 4],
    ] as const) {
      const count = seen.get(value) ?? 0;
      assert.ok(Math.abs(count - expected) < 45, `cost ${value}: ${count} of ${names} unknown names`);
    }
    for (const [index, user] of users.entries()) {
      assert.equal(await costOfAttempt(user, 'wrong'), cost(hashes[index]!), user);
    }
  });

  test('concurrent requests with the same credentials share one verification', async () => {
    const counter = countingVerify();
    const access = await AccessControl.load(options(), { verify: counter.verify });
    const results = await Promise.all(
      Array.from({ length: 5 }, () => access.authenticate(basic('bob', 'bob-secret'))),
    );
    assert.deepEqual(
      results,
      Array.from({ length: 5 }, () => ({ user: 'bob' })),
    );
    assert.equal(counter.calls, 1);
  });

  test('the cache is bounded', async () => {
    const counter = countingVerify();
    const access = await AccessControl.load(options(), { verify: counter.verify, cacheEntries: 2 });
    await access.authenticate(basic('alice', 'alice-secret'));
    await access.authenticate(basic('bob', 'bob-secret'));
    await access.authenticate(basic('carol', 'carol-secret'));
    assert.equal(counter.calls, 3);
    await access.authenticate(basic('carol', 'carol-secret'));
    assert.equal(counter.calls, 3);
    await access.authenticate(basic('alice', 'alice-secret'));
    assert.equal(counter.calls, 4, 'the oldest entry was evicted');
  });

  test('a throwing verify counts as a failure', async () => {
    const access = await AccessControl.load(options(), {
      verify: () => Promise.reject(new Error('boom')),
    });
    await rejectsUnauthorized(access.authenticate(basic('alice', 'alice-secret')));
  });
});

describe('repository globs', () => {
  test('access rules match the shared glob table (docs/configuration.md#patterns)', async () => {
    for (const [glob, name, matches] of globRows) {
      const access = await AccessControl.load(
        options({ rules: [{ repositories: glob, users: ['*'], actions: ['pull'] }] }),
      );
      assert.equal(
        access.authorize({ user: 'alice' }, name, 'pull'),
        matches ? 'allow' : 'denied',
        `${glob} against ${name}`,
      );
    }
  });

  test('invalid globs are rejected as invalid rules', async () => {
    for (const repositories of ['', 'Team/*', 'a//b', '/a', 'a/', 'a/***', 'a b', 'a:b']) {
      await assert.rejects(
        AccessControl.load(options({ rules: [{ repositories, users: ['*'], actions: ['pull'] }] })),
        { code: 'AUTH_RULES_INVALID' },
        repositories,
      );
    }
  });

  test('invalid users and actions are rejected', async () => {
    const bad = [
      { repositories: '**', users: [], actions: ['pull'] },
      { repositories: '**', users: [''], actions: ['pull'] },
      { repositories: '**', users: ['*'], actions: ['read'] },
    ] as unknown as AccessRule[];
    for (const rule of bad) {
      await assert.rejects(AccessControl.load(options({ rules: [rule] })), (error: unknown) => {
        assert.ok(error instanceof AuthConfigError);
        assert.equal(error.code, 'AUTH_RULES_INVALID');
        assert.match(error.message, /access rule 1/);
        return true;
      });
    }
  });
});

describe('authorize with rules', () => {
  const alice = { user: 'alice' };
  const bob = { user: 'bob' };
  const carol = { user: 'carol' };
  const anonymous = {};
  const rules: AccessRule[] = [
    { repositories: 'secret/**', users: ['alice'], actions: ['pull', 'push', 'delete'] },
    { repositories: 'secret/**', users: ['*', 'anonymous'], actions: [] },
    { repositories: 'team/*', users: ['alice', 'bob'], actions: ['pull', 'push'] },
    { repositories: 'team/*', users: ['*'], actions: ['pull'] },
    { repositories: 'public/**', users: ['anonymous', '*'], actions: ['pull'] },
    { repositories: 'library/nginx', users: ['carol'], actions: ['delete'] },
  ];

  test('first matching rule wins', async () => {
    const access = await AccessControl.load(options({ rules }));
    assert.equal(access.authorize(alice, 'secret/db', 'pull'), 'allow');
    assert.equal(access.authorize(bob, 'secret/db', 'pull'), 'denied');
    assert.equal(access.authorize(bob, 'team/app', 'push'), 'allow');
    assert.equal(access.authorize(carol, 'team/app', 'pull'), 'allow');
    assert.equal(access.authorize(carol, 'team/app', 'push'), 'denied');
    assert.equal(access.authorize(bob, 'team/app', 'delete'), 'denied', 'the matching rule lacks delete');
  });

  test('* stays within one component, ** crosses components', async () => {
    const access = await AccessControl.load(options({ rules }));
    assert.equal(access.authorize(bob, 'team/app/sub', 'pull'), 'denied');
    assert.equal(access.authorize(bob, 'public/a/b/c', 'pull'), 'allow');
  });

  test('exact names', async () => {
    const access = await AccessControl.load(options({ rules }));
    assert.equal(access.authorize(carol, 'library/nginx', 'delete'), 'allow');
    assert.equal(access.authorize(carol, 'library/nginx2', 'delete'), 'denied');
    assert.equal(access.authorize(carol, 'library/nginx', 'pull'), 'denied');
  });

  test('anonymous rules', async () => {
    const access = await AccessControl.load(options({ rules }));
    assert.equal(access.authorize(anonymous, 'public/tools', 'pull'), 'allow');
    assert.equal(access.authorize(anonymous, 'public/tools', 'push'), 'unauthenticated');
    assert.equal(
      access.authorize(anonymous, 'team/app', 'pull'),
      'unauthenticated',
      "'*' excludes anonymous",
    );
    assert.equal(access.authorize(anonymous, 'secret/db', 'pull'), 'unauthenticated');
  });

  test('no matching rule means no access', async () => {
    const access = await AccessControl.load(options({ rules }));
    assert.equal(access.authorize(alice, 'elsewhere/app', 'pull'), 'denied');
    assert.equal(access.authorize(anonymous, 'elsewhere/app', 'pull'), 'unauthenticated');
  });

  test('registry level: pull when some rule grants the principal pull', async () => {
    const access = await AccessControl.load(options({ rules }));
    assert.equal(access.authorize(anonymous, undefined, 'pull'), 'allow');
    assert.equal(access.authorize(carol, undefined, 'pull'), 'allow');
    const strict = await AccessControl.load(
      options({ rules: [{ repositories: 'team/*', users: ['alice'], actions: ['pull'] }] }),
    );
    assert.equal(strict.authorize(alice, undefined, 'pull'), 'allow');
    assert.equal(strict.authorize(bob, undefined, 'pull'), 'denied');
    assert.equal(strict.authorize(anonymous, undefined, 'pull'), 'unauthenticated');
  });

  test('canList filters the catalog by pull access', async () => {
    const access = await AccessControl.load(options({ rules }));
    const catalog = ['library/nginx', 'public/tools', 'secret/db', 'team/app'];
    assert.deepEqual(
      catalog.filter((name) => access.canList(bob, name)),
      ['public/tools', 'team/app'],
    );
    assert.deepEqual(
      catalog.filter((name) => access.canList(anonymous, name)),
      ['public/tools'],
    );
    assert.deepEqual(
      catalog.filter((name) => access.canList(alice, name)),
      ['public/tools', 'secret/db', 'team/app'],
    );
  });

  test('without users every refusal is denied', async () => {
    const access = await AccessControl.load(
      options({
        htpasswd: undefined,
        rules: [{ repositories: 'public/**', users: ['anonymous'], actions: ['pull'] }],
      }),
    );
    assert.equal(access.authorize(anonymous, 'public/a', 'pull'), 'allow');
    assert.equal(access.authorize(anonymous, 'public/a', 'push'), 'denied');
    assert.equal(access.authorize(anonymous, 'private/a', 'pull'), 'denied');
  });
});

describe('default rules', () => {
  const alice = { user: 'alice' };
  const anonymous = {};

  test('with users: authenticated users may do everything, anonymous nothing by default', async () => {
    const access = await AccessControl.load(options());
    for (const action of ['pull', 'push', 'delete'] as const) {
      assert.equal(access.authorize(alice, 'any/repo/here', action), 'allow');
      assert.equal(access.authorize(anonymous, 'any/repo/here', action), 'unauthenticated');
    }
    assert.equal(access.authorize(alice, undefined, 'pull'), 'allow');
    assert.equal(access.authorize(anonymous, undefined, 'pull'), 'unauthenticated');
  });

  test('with users and anonymousPull', async () => {
    const access = await AccessControl.load(options({ anonymousPull: true }));
    assert.equal(access.authorize(anonymous, 'library/nginx', 'pull'), 'allow');
    assert.equal(access.authorize(anonymous, 'library/nginx', 'push'), 'unauthenticated');
    assert.equal(access.authorize(anonymous, 'library/nginx', 'delete'), 'unauthenticated');
    assert.equal(access.authorize(anonymous, undefined, 'pull'), 'allow');
  });

  test('with users and anonymousPush (push implies delete)', async () => {
    const access = await AccessControl.load(options({ anonymousPush: true }));
    assert.equal(access.authorize(anonymous, 'library/nginx', 'pull'), 'unauthenticated');
    assert.equal(access.authorize(anonymous, 'library/nginx', 'push'), 'allow');
    assert.equal(access.authorize(anonymous, 'library/nginx', 'delete'), 'allow');
  });

  test('without users: everyone gets what the flags allow', async () => {
    const pullOnly = await AccessControl.load(options({ htpasswd: undefined, anonymousPull: true }));
    assert.equal(pullOnly.authorize(anonymous, 'library/nginx', 'pull'), 'allow');
    assert.equal(pullOnly.authorize(anonymous, 'library/nginx', 'push'), 'denied');
    assert.equal(pullOnly.authorize(alice, 'library/nginx', 'pull'), 'allow');
    assert.equal(pullOnly.authorize(alice, 'library/nginx', 'delete'), 'denied');
    assert.equal(pullOnly.authorize(anonymous, undefined, 'pull'), 'allow');

    const open = await AccessControl.load(
      options({ htpasswd: undefined, anonymousPull: true, anonymousPush: true }),
    );
    for (const action of ['pull', 'push', 'delete'] as const) {
      assert.equal(open.authorize(anonymous, 'a/b', action), 'allow');
    }

    const closed = await AccessControl.load(options({ htpasswd: undefined }));
    assert.equal(closed.authorize(anonymous, 'a/b', 'pull'), 'denied');
    assert.equal(closed.authorize(anonymous, undefined, 'pull'), 'denied');
  });
});

describe('challenge', () => {
  test('names the realm', async () => {
    const access = await AccessControl.load(options());
    assert.equal(access.challenge(), 'Basic realm="pullsafe"');
  });

  test('escapes quotes and backslashes in the realm', async () => {
    const access = await AccessControl.load(options({ realm: 'my "registry" \\ here' }));
    assert.equal(access.challenge(), 'Basic realm="my \\"registry\\" \\\\ here"');
  });

  test('rejects control characters in the realm', async () => {
    await assert.rejects(AccessControl.load(options({ realm: 'a\r\nSet-Cookie: x' })), {
      code: 'AUTH_REALM_INVALID',
    });
  });
});

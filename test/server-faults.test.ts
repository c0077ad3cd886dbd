/**
 * `pullsafe serve` against bad luck and hostile clients, as a child process the way users run it: clients
 * that hang up at any byte (wrk, curl, raw sockets with FIN and RST), uploads cut mid-body, many clients that
 * read slowly, and an oversized manifest sent chunked. After each blow the process must still answer, its
 * log must hold no uncaught error, and what it stored must still read back byte-exact.
 */
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli, startServeProcess, type ServeProcess } from './helpers/cli.ts';
import { OCI_MANIFEST, pushBlob, request, sha256 } from './helpers/http.ts';
import { requirePeer } from './helpers/peers.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';

const MiB = 1024 * 1024;

/** Runs a command to its end (bounded); resolves with its exit code and output. */
function run(
  command: string,
  args: string[],
  timeoutMs = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Host and port of a server URL such as http://127.0.0.1:PORT. */
function address(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port) };
}

/**
 * Sends `head` (and `body`, if any), reads up to `readBytes` of the answer, then hangs up: with a reset
 * (RST) or a plain close (FIN). Resolves once the socket is gone; never rejects.
 */
function hangUp(
  url: string,
  head: string,
  options: { body?: Buffer; readBytes: number; reset: boolean; timeoutMs?: number },
): Promise<void> {
  return new Promise((resolve) => {
    const socket: Socket = connect(address(url));
    let read = 0;
    const finish = (): void => {
      if (options.reset) socket.resetAndDestroy();
      else socket.destroy();
    };
    const timer = setTimeout(finish, options.timeoutMs ?? 2_000);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.on('connect', () => {
      socket.write(head);
      if (options.body) socket.write(options.body);
      if (options.readBytes === 0) setImmediate(finish);
    });
    socket.on('data', (chunk: Buffer) => {
      read += chunk.length;
      if (read >= options.readBytes) finish();
    });
  });
}

/** Asserts the server still answers `/v2/` and has logged no uncaught error. */
async function assertAlive(server: ServeProcess, when: string): Promise<void> {
  assert.equal(server.child.exitCode, null, `${when}: the server exited:\n${server.logs().slice(-3000)}`);
  const base = await request(`${server.url}/v2/`, { timeoutMs: 10_000 });
  assert.equal(base.status, 200, `${when}: /v2/ answered ${base.status}`);
  assert.doesNotMatch(server.logs(), /uncaught|triggerUncaughtException/i, `${when}: uncaught error logged`);
}

async function stopServer(server: ServeProcess | undefined): Promise<void> {
  if (!server || server.child.exitCode !== null) return;
  server.child.kill('SIGKILL');
  await server.exited;
}

/**
 * Runs `body` against `pullsafe serve` started with the config file `yaml` on a fresh storage
 * folder, and stops it and removes the folder afterwards, whatever `body` did.
 */
async function withConfiguredServe(
  yaml: string,
  body: (server: ServeProcess) => Promise<void>,
): Promise<void> {
  const folder = await makeTempDir('pullsafe-configured-');
  let server: ServeProcess | undefined;
  try {
    const config = join(folder, 'serve.yaml');
    await writeFile(config, yaml);
    server = await startServeProcess(['--config', config, '--storage', join(folder, 'data')]);
    await body(server);
  } finally {
    await stopServer(server);
    await removeTempDir(folder);
  }
}

/** Counts upload folders left in the storage. */
async function uploadsLeft(storage: string): Promise<number> {
  return (await readdir(join(storage, 'uploads')).catch(() => [])).length;
}

async function pushImage(base: string, repo: string, tag: string, layer: Buffer): Promise<Buffer> {
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: await pushBlob(base, repo, config),
        size: config.length,
      },
      layers: [
        {
          mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
          digest: await pushBlob(base, repo, layer),
          size: layer.length,
        },
      ],
    }),
  );
  const put = await request(`${base}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'Content-Type': OCI_MANIFEST },
    body: manifest,
  });
  assert.equal(put.status, 201, put.text());
  return manifest;
}

describe('serve outlives clients that hang up', () => {
  let folder: string;
  let server: ServeProcess;
  const blob = randomBytes(32 * MiB);
  const blobDigest = sha256(blob);
  let manifest: Buffer;

  before(async () => {
    folder = await makeTempDir('pullsafe-faults-');
    server = await startServeProcess(['--storage', join(folder, 'data')]);
    manifest = await pushImage(server.url, 'faults/app', 'v1', blob);
  });
  after(async () => {
    await stopServer(server);
    await removeTempDir(folder);
  });

  it('downloads cut at any byte by wrk, curl and raw sockets end only their own responses', async () => {
    const wrk = requirePeer('wrk', 'wrk');
    const curl = requirePeer('curl', 'curl');
    const blobUrl = `${server.url}/v2/faults/app/blobs/${blobDigest}`;
    const { host } = address(server.url);
    const heads = [
      `GET /v2/faults/app/blobs/${blobDigest} HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      `GET /v2/faults/app/blobs/${blobDigest} HTTP/1.1\r\nHost: ${host}\r\nRange: bytes=1000-20000000\r\n\r\n`,
      `HEAD /v2/faults/app/blobs/${blobDigest} HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      `GET /v2/faults/app/manifests/v1 HTTP/1.1\r\nHost: ${host}\r\nAccept: ${OCI_MANIFEST}\r\n\r\n`,
      `GET /v2/faults/app/tags/list HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      `GET /metrics HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    ];
    for (let round = 1; round <= 3; round++) {
      // wrk ends its run with transfers in flight: every connection is cut mid-blob.
      const load = await run(wrk, ['-t2', '-c16', '-d1s', '--timeout', '5s', blobUrl]);
      assert.equal(load.code, 0, `wrk: ${load.stderr}`);
      await assertAlive(server, `round ${round}, after wrk`);

      await Promise.all(
        Array.from({ length: 16 }, (_, index) =>
          run(curl, ['-s', '-o', '/dev/null', '--max-time', `0.0${(index % 9) + 1}`, blobUrl]),
        ),
      );
      await assertAlive(server, `round ${round}, after curl --max-time`);

      const cuts: Promise<void>[] = [];
      for (const head of heads) {
        for (const readBytes of [0, 1, 200, 64 * 1024, MiB, 8 * MiB]) {
          cuts.push(hangUp(server.url, head, { readBytes, reset: (readBytes + round) % 2 === 0 }));
        }
      }
      await Promise.all(cuts);
      await assertAlive(server, `round ${round}, after raw hang-ups`);
    }

    const whole = await request(blobUrl, { timeoutMs: 30_000 });
    assert.equal(whole.status, 200);
    assert.equal(sha256(whole.body), blobDigest, 'the blob still reads back byte-exact');
    const stored = await request(`${server.url}/v2/faults/app/manifests/v1`, {
      headers: { Accept: OCI_MANIFEST },
    });
    assert.deepEqual(stored.body, manifest);
    const metrics = (await request(`${server.url}/metrics`)).text();
    const aborts = Number(/^pullsafe_http_client_aborts_total (\d+)$/m.exec(metrics)?.[1] ?? 0);
    assert.ok(aborts > 0, 'hang-ups are counted in pullsafe_http_client_aborts_total');
  });

  it('uploads cut mid-body end only their own request, and single-request uploads leave nothing', async () => {
    const storage = join(folder, 'data');
    const { host } = address(server.url);
    const part = randomBytes(256 * 1024);
    const declared = 4 * MiB;
    const before = await uploadsLeft(storage);

    // Single-request uploads (POST ?digest=): nobody knows their id, so a cut one must be removed at once.
    const digest = sha256(randomBytes(16));
    await Promise.all(
      [true, false, true, false].map((reset) =>
        hangUp(
          server.url,
          `POST /v2/faults/cut/blobs/uploads/?digest=${digest} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${declared}\r\nContent-Type: application/octet-stream\r\n\r\n`,
          { body: part, readBytes: 1, reset, timeoutMs: 300 },
        ),
      ),
    );

    // A chunked manifest cut mid-body, and a monolithic PUT and a PATCH of a session cut mid-body.
    await hangUp(
      server.url,
      `PUT /v2/faults/cut/manifests/x HTTP/1.1\r\nHost: ${host}\r\nContent-Type: ${OCI_MANIFEST}\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n{"schemaVersion":`,
      { readBytes: 1, reset: true, timeoutMs: 300 },
    );
    const session = await request(`${server.url}/v2/faults/cut/blobs/uploads/`, {
      method: 'POST',
      headers: { 'Content-Length': 0 },
    });
    assert.equal(session.status, 202);
    const location = new URL(String(session.headers.location), server.url);
    await hangUp(
      server.url,
      `PATCH ${location.pathname} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${declared}\r\nContent-Type: application/octet-stream\r\n\r\n`,
      { body: part, readBytes: 1, reset: false, timeoutMs: 300 },
    );
    await assertAlive(server, 'after cut uploads');

    // What arrived of the cut PATCH is kept, and the upload resumes from there to a verified blob.
    let status = await request(location);
    for (let wait = 0; wait < 50 && status.headers.range === '0-0'; wait++) {
      await sleep(50);
      status = await request(location);
    }
    assert.equal(status.status, 204);
    const held = Number(/^0-(\d+)$/.exec(String(status.headers.range))?.[1]) + 1;
    assert.ok(held > 0 && held <= part.length, `the upload holds ${held} bytes of the cut chunk`);
    const rest = Buffer.concat([part.subarray(0, held), randomBytes(1000)]);
    const resumed = await request(location, {
      method: 'PATCH',
      headers: { 'Content-Range': `${held}-${rest.length - 1}`, 'Content-Type': 'application/octet-stream' },
      body: rest.subarray(held),
    });
    assert.equal(resumed.status, 202, resumed.text());
    const done = new URL(String(resumed.headers.location), server.url);
    done.searchParams.set('digest', sha256(rest));
    const committed = await request(done, { method: 'PUT', headers: { 'Content-Length': 0 } });
    assert.equal(committed.status, 201, committed.text());

    for (let wait = 0; wait < 100 && (await uploadsLeft(storage)) > before; wait++) await sleep(50);
    assert.equal(await uploadsLeft(storage), before, 'cut single-request uploads released their space');
    await assertAlive(server, 'after the resumed upload');
  });

  it('answers an oversized manifest sent chunked with 413, not a reset', async () => {
    const curl = requirePeer('curl', 'curl');
    const big = join(folder, 'big-manifest.json');
    await writeFile(big, Buffer.alloc(5 * MiB, 'a'));
    const result = await run(curl, [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-X',
      'PUT',
      '-H',
      `Content-Type: ${OCI_MANIFEST}`,
      '-H',
      'Transfer-Encoding: chunked',
      '--data-binary',
      `@${big}`,
      `${server.url}/v2/faults/app/manifests/huge`,
    ]);
    assert.equal(result.stdout, '413', `curl: exit ${result.code}, ${result.stderr}`);
    await assertAlive(server, 'after an oversized chunked manifest');
  });
});

describe('serve under many slow readers', () => {
  let folder: string;
  let server: ServeProcess;
  const blob = randomBytes(50 * MiB);
  const blobDigest = sha256(blob);

  before(async () => {
    folder = await makeTempDir('pullsafe-slow-');
    server = await startServeProcess(['--storage', join(folder, 'data')]);
    await pushBlob(server.url, 'slow/app', blob);
  });
  after(async () => {
    await stopServer(server);
    await removeTempDir(folder);
  });

  it('keeps its memory bounded by the budget, not the number of readers, and serves others meanwhile', async () => {
    const { host } = address(server.url);
    const readers: Socket[] = [];
    const received: number[] = [];
    const head = `GET /v2/slow/app/blobs/${blobDigest} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
    for (let index = 0; index < 200; index++) {
      const socket = connect(address(server.url));
      socket.on('error', () => undefined);
      received[index] = 0;
      socket.on('data', (chunk: Buffer) => {
        received[index]! += chunk.length;
        // About 1 MiB/s each: read 64 KiB, then pause for 60 ms.
        socket.pause();
        setTimeout(() => socket.resume(), 60).unref();
      });
      socket.write(head);
      readers.push(socket);
    }
    let peakKiB = 0;
    const rssKiB = async (): Promise<number> => {
      const status = await readFile(`/proc/${server.child.pid}/status`, 'utf8');
      return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0);
    };
    try {
      const started = Date.now();
      while (Date.now() - started < 4_000) {
        peakKiB = Math.max(peakKiB, await rssKiB());
        await sleep(200);
      }
      const asked = Date.now();
      const base = await request(`${server.url}/v2/`, { timeoutMs: 10_000 });
      assert.equal(base.status, 200);
      assert.ok(Date.now() - asked < 2_000, `GET /v2/ took ${Date.now() - asked} ms behind 200 slow readers`);
      assert.ok(received.filter((bytes) => bytes > 0).length === 200, 'every slow reader is being served');
    } finally {
      for (const socket of readers) socket.destroy();
    }
    assert.ok(peakKiB > 0, 'RSS was sampled');
    assert.ok(peakKiB < 200 * 1024, `peak RSS ${Math.round(peakKiB / 1024)} MiB with 200 slow readers`);
    await assertAlive(server, 'after 200 slow readers');
  });
});

describe('serve access to /metrics', () => {
  it('needs credentials when anonymous pull is off', async () => {
    const folder = await makeTempDir('pullsafe-metrics-');
    let server: ServeProcess | undefined;
    try {
      const htpasswd = join(folder, 'htpasswd');
      await writeFile(htpasswd, `alice:${bcrypt.hashSync('secret', 4)}\n`);
      const config = join(folder, 'serve.yaml');
      await writeFile(config, `auth:\n  htpasswd: ${htpasswd}\n  anonymousPull: false\n`);
      server = await startServeProcess(['--config', config, '--storage', join(folder, 'data')]);
      const anonymous = await request(`${server.url}/metrics`);
      assert.equal(anonymous.status, 401);
      assert.match(String(anonymous.headers['www-authenticate']), /^Basic /);
      const alice = await request(`${server.url}/metrics`, {
        headers: { Authorization: `Basic ${Buffer.from('alice:secret').toString('base64')}` },
      });
      assert.equal(alice.status, 200, alice.text());
      assert.match(alice.text(), /pullsafe_http_requests_total/);
    } finally {
      await stopServer(server);
      await removeTempDir(folder);
    }
  });
});

describe('serve and a failure nothing handled', () => {
  it('logs and counts an unhandled rejection, and goes on serving', async () => {
    const folder = await makeTempDir('pullsafe-unhandled-');
    let server: ServeProcess | undefined;
    // A promise rejected with nobody listening, 1.5 s after start: what a bug in any operation leaves.
    const bug = join(folder, 'bug.mjs');
    await writeFile(bug, 'setTimeout(() => { Promise.reject(new Error("injected by the test")); }, 1500);\n');
    const injected = `--import=${bug}`;
    const before = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = `${before ?? ''} ${injected}`.trim();
    try {
      server = await startServeProcess(['--storage', join(folder, 'data')]);
    } finally {
      if (before === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = before;
    }
    try {
      for (let wait = 0; wait < 50 && !server.logs().includes('injected by the test'); wait++)
        await sleep(100);
      assert.match(server.logs(), /unhandled rejection \(a bug in pullsafe; serving goes on\)/);
      assert.match(server.logs(), /injected by the test/);
      assert.equal(server.child.exitCode, null, 'serve is alive');
      const digest = await pushBlob(server.url, 'after/rejection', Buffer.from('still serving'));
      assert.equal((await request(`${server.url}/v2/after/rejection/blobs/${digest}`)).status, 200);
      const metrics = await request(`${server.url}/metrics`);
      assert.match(metrics.text(), /^pullsafe_unhandled_rejections_total 1$/m);
    } finally {
      await stopServer(server);
      await removeTempDir(folder);
    }
  });
});

describe('serve shutdown', () => {
  it('answers /readyz with 503 while the listener still accepts, for the drain delay', async () => {
    await withConfiguredServe('shutdownDelay: 2s\n', async (server) => {
      assert.equal((await request(`${server.url}/readyz`)).status, 200);
      const signalled = Date.now();
      server.child.kill('SIGTERM');
      await sleep(300);
      const during = await request(`${server.url}/readyz`, { timeoutMs: 2_000 });
      assert.equal(during.status, 503, 'the listener accepts and says it is leaving');
      assert.match(during.text(), /shutting down/);
      assert.equal((await request(`${server.url}/v2/`)).status, 200, 'requests are still served');
      assert.equal(await server.exited, 0);
      assert.ok(Date.now() - signalled >= 1_900, 'the listener stayed open for the delay');
    });
  });

  it('stops at once on Ctrl-C (SIGINT), without the drain delay', async () => {
    await withConfiguredServe('shutdownDelay: 20s\n', async (server) => {
      const signalled = Date.now();
      server.child.kill('SIGINT');
      assert.equal(await server.exited, 0);
      assert.ok(Date.now() - signalled < 5_000, 'SIGINT does not wait for the drain delay');
    });
  });
});

describe('serve with gc while serving', () => {
  it('sweeps what nothing references and is past the grace period, and keeps what images use', async () => {
    await withConfiguredServe('gc:\n  interval: 1s\n  minAge: 0\n', async (server) => {
      const layer = randomBytes(64 * 1024);
      await pushImage(server.url, 'gc/app', 'v1', layer);
      const orphan = randomBytes(32 * 1024);
      const orphanDigest = await pushBlob(server.url, 'gc/app', orphan);
      let gone = false;
      for (let wait = 0; wait < 100 && !gone; wait++) {
        await sleep(100);
        gone =
          (await request(`${server.url}/v2/gc/app/blobs/${orphanDigest}`, { method: 'HEAD' })).status === 404;
      }
      assert.ok(gone, 'the unreferenced blob was swept while the server ran');
      const kept = await request(`${server.url}/v2/gc/app/blobs/${sha256(layer)}`);
      assert.equal(sha256(kept.body), sha256(layer), 'a blob an image uses stays');
      assert.match((await request(`${server.url}/metrics`)).text(), /^pullsafe_gc_runs_total [1-9]/m);
      await assertAlive(server, 'after gc while serving');
    });
  });
});

describe('serve on a full disk', () => {
  // A real full filesystem: a 20 MiB tmpfs, mounted here (tests run as root, as CI does).
  let mountPoint: string;
  let server: ServeProcess | undefined;

  before(async () => {
    mountPoint = await makeTempDir('pullsafe-full-');
    const mounted = await run('mount', ['-t', 'tmpfs', '-o', 'size=20m', 'tmpfs', mountPoint]);
    if (mounted.code !== 0) {
      throw new Error(
        `the full-disk tests mount a 20 MiB tmpfs and need root (CI runs as root): mount said ${mounted.stderr.trim()}`,
      );
    }
  });
  after(async () => {
    await stopServer(server);
    await run('umount', [mountPoint]);
    await removeTempDir(mountPoint);
  });

  it('refuses writes with 507 "storage is full", keeps serving reads, and accepts writes once space is freed', async () => {
    const storage = join(mountPoint, 'data');
    server = await startServeProcess(['--storage', storage]);
    const first = randomBytes(3 * MiB);
    const firstDigest = await pushBlob(server.url, 'full/app', first);

    // Fill the disk with pushes of shrinking size, down to the last few kilobytes.
    let refused: Awaited<ReturnType<typeof request>> | undefined;
    let pushes = 0;
    for (const size of [3 * MiB, 256 * 1024, 16 * 1024, 1024]) {
      for (let attempt = 0; attempt < 40; attempt++) {
        const data = randomBytes(size);
        const answer = await request(`${server.url}/v2/full/app/blobs/uploads/?digest=${sha256(data)}`, {
          method: 'POST',
          body: data,
          headers: { 'Content-Type': 'application/octet-stream' },
        });
        if (answer.status === 201) {
          pushes++;
          continue;
        }
        refused = answer;
        break;
      }
    }
    assert.ok(pushes >= 4, `${pushes} pushes succeeded before the disk filled`);
    assert.ok(refused, 'a push was refused');
    assert.equal(refused.status, 507, refused.text());
    const error = refused.json<{ errors: { code: string; message: string }[] }>().errors[0]!;
    assert.match(error.message, /storage is full/);
    await assertAlive(server, 'after the disk filled');

    // Writes of every kind say the same; reads go on; readiness and metrics tell.
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: firstDigest,
          size: first.length,
        },
        layers: [],
        annotations: { filler: 'x'.repeat(64 * 1024) },
      }),
    );
    const put = await request(`${server.url}/v2/full/app/manifests/v1`, {
      method: 'PUT',
      headers: { 'Content-Type': OCI_MANIFEST },
      body: manifest,
    });
    assert.equal(put.status, 507, put.text());
    const read = await request(`${server.url}/v2/full/app/blobs/${firstDigest}`);
    assert.equal(sha256(read.body), firstDigest);
    const ready = await request(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.match(ready.text(), /storage full/);
    assert.match((await request(`${server.url}/metrics`)).text(), /^pullsafe_storage_full 1$/m);
    assert.equal(await uploadsLeft(storage), 0, 'failed uploads released their space at once');

    // A restart on the full disk starts, and says the same for writes.
    await stopServer(server);
    server = await startServeProcess(['--storage', storage]);
    const again = randomBytes(MiB);
    const afterRestart = await request(`${server.url}/v2/full/app/blobs/uploads/?digest=${sha256(again)}`, {
      method: 'POST',
      body: again,
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    assert.equal(afterRestart.status, 507, afterRestart.text());

    // Space freed (the operator deletes what it no longer needs): writes work again, readiness recovers.
    const deleted = await request(`${server.url}/v2/full/app/blobs/${firstDigest}`, { method: 'DELETE' });
    assert.equal(deleted.status, 202);
    const gc = await runCli(['gc', '--storage', storage, '--min-age', '0']);
    assert.equal(gc.code, 0, gc.stderr);
    const pushed = await request(`${server.url}/v2/full/app/blobs/uploads/?digest=${sha256(again)}`, {
      method: 'POST',
      body: again,
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    assert.equal(pushed.status, 201, pushed.text());
    assert.equal((await request(`${server.url}/readyz`)).text(), 'ready\n');
    assert.match((await request(`${server.url}/metrics`)).text(), /^pullsafe_storage_full 0$/m);
    await assertAlive(server, 'after space was freed');
  });
});

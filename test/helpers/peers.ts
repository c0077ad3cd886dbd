/**
 * The reference peers tests compare pullsafe against: CNCF distribution (Debian's `docker-registry`)
 * and `skopeo`. A missing peer is an error naming it and its Debian package, never a skipped test.
 * Every wait here is bounded; every server listens on 127.0.0.1 only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { delimiter, isAbsolute, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { request } from './http.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

/** The absolute path of `binary` on PATH; throws "peer missing: BINARY (apt-get install PACKAGE)" otherwise. */
export function requirePeer(binary: string, aptPackage: string): string {
  const candidates = isAbsolute(binary)
    ? [binary]
    : (process.env.PATH ?? '')
        .split(delimiter)
        .filter((dir) => dir !== '')
        .map((dir) => join(dir, binary));
  for (const candidate of candidates) {
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; try the next PATH entry
    }
  }
  throw new Error(`peer missing: ${binary} (apt-get install ${aptPackage})`);
}

/** Children started here, killed if the test process exits while they still run. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const running of liveChildren) running.kill('SIGKILL');
    });
  }
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
}

/** Keeps the last `limit` characters of a process's output, for error messages. */
function tail(limit: number): { add(chunk: Buffer): void; text(): string } {
  let text = '';
  return {
    add(chunk) {
      text += chunk.toString('utf8');
      if (text.length > limit) text = text.slice(text.length - limit);
    },
    text: () => text,
  };
}

function exitOf(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM, then SIGKILL if the process is still there after `graceMs`; resolves once it has exited. */
async function terminate(child: ChildProcess, graceMs = 5_000): Promise<void> {
  const exited = exitOf(child);
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export interface Distribution {
  /** http://127.0.0.1:PORT (https:// with `tls`) */
  url: string;
  /** 127.0.0.1:PORT, the registry host as an image reference spells it. */
  host: string;
  port: number;
  storageDir: string;
  /** Everything the registry logged so far (the last 64 KiB; JSON lines). */
  logs(): string;
  /** Stops the registry (SIGTERM, SIGKILL after 5 s), and removes the storage folder if it made it. */
  stop(): Promise<void>;
}

/**
 * Starts CNCF distribution on 127.0.0.1, port chosen by the kernel, filesystem storage, deletes enabled,
 * no auth. Resolves once `GET /v2/` answers 200 (within `startTimeoutMs`, default 15 s).
 *
 * The bound port comes from the registry's own "listening on 127.0.0.1:PORT" log line, which it logs at
 * info level only; so the log level is info, which also logs one JSON line per request (see logs()).
 */
export async function startDistribution(
  options: {
    storageDir?: string;
    startTimeoutMs?: number;
    /** Serve HTTPS with this certificate and key (PEM files). */
    tls?: { certificate: string; key: string };
  } = {},
): Promise<Distribution> {
  const binary = requirePeer('docker-registry', 'docker-registry');
  const startTimeoutMs = options.startTimeoutMs ?? 15_000;
  const configDir = await makeTempDir('pullsafe-distribution-');
  const storageDir = options.storageDir ?? join(configDir, 'storage');
  const config = {
    version: '0.1',
    log: { level: 'info', formatter: 'json', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: storageDir },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: '127.0.0.1:0',
      secret: randomBytes(16).toString('hex'),
      ...(options.tls ? { tls: options.tls } : {}),
    },
  };
  const configPath = join(configDir, 'config.yml');
  // JSON is a subset of YAML, and leaves no quoting to get wrong.
  await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);

  const child = spawn(binary, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'], cwd: configDir });
  track(child);
  const output = tail(64 * 1024);
  child.stdout.on('data', (chunk: Buffer) => output.add(chunk));
  child.stderr.on('data', (chunk: Buffer) => output.add(chunk));
  const cleanup = async () => {
    await terminate(child);
    await removeTempDir(configDir); // holds the storage folder too, when this made it
  };

  try {
    const host = await new Promise<string>((resolve, reject) => {
      let buffered = '';
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(`docker-registry did not report its port within ${startTimeoutMs} ms:\n${output.text()}`),
        );
      }, startTimeoutMs);
      const onData = (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        const match = /listening on (127\.0\.0\.1:\d+)/.exec(buffered);
        if (match?.[1]) {
          done();
          resolve(match[1]);
        } else if (buffered.length > 1_000_000) {
          buffered = buffered.slice(-4096);
        }
      };
      const onExit = (code: number | null, signal: string | null) => {
        done();
        reject(new Error(`docker-registry exited (${code ?? signal}) before listening:\n${output.text()}`));
      };
      const onError = (error: Error) => {
        done();
        reject(error);
      };
      function done() {
        clearTimeout(timer);
        child.stderr.off('data', onData);
        child.stdout.off('data', onData);
        child.off('exit', onExit);
        child.off('error', onError);
      }
      child.stderr.on('data', onData);
      child.stdout.on('data', onData);
      child.once('exit', onExit);
      child.once('error', onError);
    });
    const url = `${options.tls ? 'https' : 'http'}://${host}`;
    await waitForV2(url, startTimeoutMs, child, output.text);
    const port = Number(host.slice(host.lastIndexOf(':') + 1));
    return { url, host, port, storageDir, logs: output.text, stop: cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** Polls GET /v2/ until it answers 200; bounded by `timeoutMs` and by 200 attempts. */
async function waitForV2(
  url: string,
  timeoutMs: number,
  child: ChildProcess,
  logs: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (let attempt = 0; attempt < 200 && Date.now() < deadline; attempt++) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    try {
      const status = url.startsWith('https:')
        ? await httpsStatus(`${url}/v2/`)
        : (await request(`${url}/v2/`, { timeoutMs: 2_000 })).status;
      if (status === 200) return;
      last = `status ${status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(50);
  }
  throw new Error(`docker-registry at ${url} never answered GET /v2/ with 200 (${last}):\n${logs()}`);
}

/** The status of a GET over HTTPS to a test registry on 127.0.0.1, whatever its certificate. */
function httpsStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { rejectUnauthorized: false, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

export interface SkopeoResult {
  code: number;
  stdout: string;
  stderr: string;
}

const ACCEPT_ANYTHING = JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] });

/**
 * Runs skopeo with `args` after one implicit global option: `--policy` naming a temporary policy that
 * accepts anything. TLS flags are the caller's. Rejects if skopeo runs past `timeoutMs` (default 120 s),
 * after killing it; otherwise resolves with its exit code and output, whatever the code.
 */
export async function skopeo(
  args: string[],
  options: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<SkopeoResult> {
  const binary = requirePeer('skopeo', 'skopeo');
  const timeoutMs = options.timeoutMs ?? 120_000;
  const dir = await makeTempDir('pullsafe-skopeo-');
  try {
    const policy = join(dir, 'policy.json');
    await writeFile(policy, ACCEPT_ANYTHING);
    const fullArgs = ['--policy', policy, ...args];
    return await new Promise<SkopeoResult>((resolve, reject) => {
      const child = spawn(binary, fullArgs, {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...options.env },
      });
      track(child);
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        const out = Buffer.concat(stdout).toString('utf8');
        const err = Buffer.concat(stderr).toString('utf8');
        if (timedOut) {
          reject(new Error(`skopeo ${args.join(' ')}: killed after ${timeoutMs} ms\n${err}`));
        } else {
          resolve({ code: code ?? (signal ? 128 : 1), stdout: out, stderr: err });
        }
      });
    });
  } finally {
    await removeTempDir(dir);
  }
}

/** skopeo(), but a non-zero exit is an error carrying skopeo's stderr. */
export async function skopeoOk(
  args: string[],
  options: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<SkopeoResult> {
  const result = await skopeo(args, options);
  if (result.code !== 0) {
    throw new Error(`skopeo ${args.join(' ')} exited ${result.code}:\n${result.stderr}`);
  }
  return result;
}

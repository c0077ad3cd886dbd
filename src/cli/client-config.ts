/** `pullsafe client-config`: what each container runtime needs to pull through the cache, printed or written. */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  clientConfig,
  clientRuntimes,
  parseCacheEndpoint,
  renderClientConfig,
  type CacheEndpoint,
  type ClientConfigSection,
  type ClientRuntime,
} from '../config/client-config.ts';
import { loadServeConfig } from '../config/serve.ts';
import { PullsafeError } from '../errors/index.ts';
import { exitCodes, type CommandIo, type OutputStream } from './output.ts';

export interface ClientConfigFlags {
  endpoint: string;
  config?: string;
  proxy?: string[];
  runtime?: ClientRuntime | 'all';
  out?: string;
}

/** Each runtime's settings; `outDir` is set when they were written there. */
export interface ClientConfigOutcome {
  endpoint: CacheEndpoint;
  sections: ClientConfigSection[];
  outDir?: string;
}

export async function runClientConfig(flags: ClientConfigFlags, io: CommandIo): Promise<number> {
  printClientConfig(await writeClientConfig(flags, io.env), io.stdout);
  return exitCodes.ok;
}

/** The settings each runtime needs, written under `--out` when given. */
export async function writeClientConfig(
  flags: ClientConfigFlags,
  env: Record<string, string | undefined>,
): Promise<ClientConfigOutcome> {
  const endpoint = parseCacheEndpoint(flags.endpoint);
  // Only the config file's location counts here: serve's other variables (listen, storage) say nothing
  // about clients, and a bad one must not stop this command.
  const configEnv = env.PULLSAFE_CONFIG ? { PULLSAFE_CONFIG: env.PULLSAFE_CONFIG } : {};
  const config = await loadServeConfig({
    ...(flags.config ? { file: flags.config } : {}),
    env: configEnv,
    flags: flags.proxy?.length ? { proxies: flags.proxy } : {},
  });
  const runtime = flags.runtime ?? 'all';
  const sections = clientConfig({
    endpoint,
    upstreams: config.proxy.upstreams,
    runtimes: runtime === 'all' ? clientRuntimes : [runtime],
  });
  if (flags.out === undefined) return { endpoint, sections };
  const outDir = flags.out.replace(/\/+$/, '') || '/';
  for (const file of sections.flatMap((section) => section.files)) {
    const path = join(outDir, file.outPath);
    try {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, file.content);
    } catch (error) {
      throw new PullsafeError(
        'USAGE',
        `--out ${flags.out}: cannot write ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
        { hint: 'give a folder this user can create and write, e.g. --out ./client-config' },
      );
    }
  }
  return { endpoint, sections, outDir };
}

export function printClientConfig(outcome: ClientConfigOutcome, out: OutputStream): void {
  const { endpoint, sections, outDir } = outcome;
  out.write(renderClientConfig(endpoint, sections, outDir === undefined ? undefined : { outDir }));
}

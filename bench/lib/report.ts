/** Machine description and result tables. */
import { readFile } from 'node:fs/promises';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { run } from './proc.ts';

export interface Machine {
  cpu: string;
  cores: number;
  memory: string;
  kernel: string;
  node: string;
  distribution: string;
  curl: string;
  wrk: string;
  nginx?: string;
  pullsafe: string;
}

async function firstLine(command: string, args: string[], cwd?: string): Promise<string> {
  try {
    const result = await run(command, args, { timeoutMs: 10_000, ...(cwd ? { cwd } : {}) });
    return (result.stdout.trim() || result.stderr.trim()).split('\n')[0]!.trim();
  } catch {
    return 'unknown';
  }
}

export async function describeMachine(root: string, nginxBinary: string | undefined): Promise<Machine> {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const info = await readFile('/proc/cpuinfo', 'utf8');
    cpu = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? cpu;
  } catch {
    // keep os.cpus()
  }
  const pkg = JSON.parse(await readFile(`${root}/package.json`, 'utf8')) as { version?: string };
  const commit = await firstLine('git', ['rev-parse', '--short', 'HEAD'], root);
  const machine: Machine = {
    cpu,
    cores: availableParallelism(),
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: `Linux ${release()}`,
    node: process.version,
    distribution: await firstLine('/usr/bin/docker-registry', ['--version']),
    curl: (await firstLine('curl', ['--version'])).split(' ').slice(0, 2).join(' '),
    wrk: (await firstLine('wrk', ['-v'])).split(' ').slice(0, 2).join(' '),
    pullsafe: `pullsafe ${pkg.version ?? '?'} (commit ${commit})`,
  };
  if (nginxBinary) machine.nginx = await firstLine(nginxBinary, ['-v']);
  return machine;
}

export function machineLines(machine: Machine): string[] {
  return [
    `CPU:          ${machine.cpu}, ${machine.cores} cores`,
    `Memory:       ${machine.memory}`,
    `Kernel:       ${machine.kernel}`,
    `Node:         ${machine.node}`,
    `Server A:     ${machine.pullsafe}`,
    `Server B:     ${machine.distribution}`,
    `Clients:      ${machine.curl} (blob GET and PUT), ${machine.wrk} (manifest GET)`,
    ...(machine.nginx ? [`Reference:    ${machine.nginx} (sendfile on)`] : []),
  ];
}

/** A Markdown table with padded columns (readable in a terminal as well). */
export function markdownTable(header: string[], rows: string[][], alignRight: boolean[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const cell = (text: string, i: number): string =>
    alignRight[i] ? text.padStart(widths[i]!) : text.padEnd(widths[i]!);
  const line = (cells: string[]): string => `| ${cells.map((c, i) => cell(c, i)).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (alignRight[i] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

export function fixed(value: number | undefined, digits = 0): string {
  if (value === undefined || !Number.isFinite(value)) return '—';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '—';
  return `${(a / b).toFixed(2)}x`;
}

#!/usr/bin/env node
/** The pullsafe command line: parses argv and env, runs a command, prints, exits with a documented code. */
import { Command, CommanderError, Option } from 'commander';
import { runFsck, runGc } from './maintenance.ts';
import { exitCodes, reportError } from './output.ts';
import { runServe } from './serve.ts';

const version = '0.1.0';

function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command()
    .name('pullsafe')
    .description('Registries, mirrors and diagnosis for images that must always pull.')
    .version(version)
    .exitOverride()
    .showHelpAfterError();

  program
    .command('serve')
    .description('run an OCI registry on local storage')
    .option('-c, --config <file>', 'YAML or JSON config file (env PULLSAFE_CONFIG)')
    .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:5000)')
    .option('--storage <dir>', 'storage folder (default ./data)')
    .option('--htpasswd <file>', 'users, bcrypt htpasswd file; enables authentication')
    .option('--allow-anonymous-push', 'allow pushes without credentials on a non-loopback address')
    .addOption(
      new Option('--log-level <level>', 'log level').choices([
        'trace',
        'debug',
        'info',
        'warn',
        'error',
        'silent',
      ]),
    )
    .action(async (flags) => setExit(await runServe(flags, process.env)));

  program
    .command('gc')
    .description('remove blobs no manifest references (mark and sweep)')
    .requiredOption('--storage <dir>', 'storage folder')
    .option('--dry-run', 'report what would be removed, remove nothing')
    .option('--min-age <duration>', 'keep unreferenced blobs younger than this (pushes in progress)', '1h')
    .option('--json', 'print the report as JSON')
    .action(async (flags) => setExit(await runGc(flags)));

  program
    .command('fsck')
    .description('re-hash every stored blob and check every link; exit 1 on problems')
    .requiredOption('--storage <dir>', 'storage folder')
    .option('--json', 'print the report as JSON')
    .action(async (flags) => setExit(await runFsck(flags)));

  return program;
}

async function main(argv: string[]): Promise<number> {
  let exitCode: number = exitCodes.ok;
  const program = buildProgram((code) => (exitCode = code));
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? exitCodes.ok : exitCodes.usage;
    }
    return reportError(error);
  }
  return exitCode;
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.exitCode = reportError(error);
  },
);

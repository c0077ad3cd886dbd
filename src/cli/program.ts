/**
 * The pullsafe command line: parses the arguments, runs a command with the streams and environment it is
 * given, and returns the documented exit code. `entry.ts` runs it as the process; tests run it in process.
 */
import {
  Command,
  CommanderError,
  InvalidArgumentError,
  Option,
  type OptionValues,
} from '@commander-js/extra-typings';
import { exitCodes, reportError, type CommandIo } from './output.ts';

// Each command loads its own modules when it runs: `serve` never pays for the AWS SDK or the client.
const commands = {
  serve: () => import('./serve.ts'),
  clientConfig: () => import('./client-config.ts'),
  maintenance: () => import('./maintenance.ts'),
  copy: () => import('./copy.ts'),
  sync: () => import('./sync.ts'),
  warm: () => import('./warm.ts'),
  scan: () => import('./scan.ts'),
  explain: () => import('./explain.ts'),
  doctor: () => import('./doctor.ts'),
};

const version = '0.1.0';

export interface ProgramHooks {
  /** Runs before `serve` starts: the process entry restarts itself there with serve's V8 flags. */
  beforeServe?: () => void;
}

/** Runs `pullsafe ARGS…` and returns its exit code; errors are reported on `io.stderr`, never thrown. */
export async function runProgram(
  args: readonly string[],
  io: CommandIo,
  hooks: ProgramHooks = {},
): Promise<number> {
  let exitCode: number = exitCodes.ok;
  const program = buildProgram(io, hooks, (code) => (exitCode = code));
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? exitCodes.ok : exitCodes.usage;
    }
    return reportError(error, io.stderr);
  }
  return exitCode;
}

/** Runs a command's handler and keeps its exit code. */
type Run = (handler: () => Promise<number>) => Promise<void>;

function buildProgram(io: CommandIo, hooks: ProgramHooks, setExit: (code: number) => void): Command {
  const program = new Command()
    .name('pullsafe')
    .description('Registries, mirrors and diagnosis for images that must always pull.')
    .version(version)
    .exitOverride()
    .showHelpAfterError()
    // Set before the commands are added, which inherit it: commander's help and errors go to `io` too.
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      getOutHelpWidth: () => (io.stdout.isTTY ? io.stdout.columns : undefined) ?? 80,
      getErrHelpWidth: () => (io.stderr.isTTY ? io.stderr.columns : undefined) ?? 80,
    });
  const run: Run = async (handler) => setExit(await handler());
  addServeCommands(program, io, hooks, run);
  addStorageCommands(program, io, run);
  addCopyCommands(program, io, run);
  addInspectCommands(program, io, run);
  addScanCommands(program, io, run);
  addDiagnosisCommands(program, io, run);
  return program;
}

/** Collects a repeatable option's values. */
const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** serve, client-config. */
function addServeCommands(program: Command, io: CommandIo, hooks: ProgramHooks, run: Run): void {
  program
    .command('serve')
    .description('run an OCI registry on local storage, and a pull-through cache of upstream registries')
    .option('-c, --config <file>', 'YAML or JSON config file (env PULLSAFE_CONFIG)')
    .option(
      '--proxy <name[=url]>',
      'serve this upstream registry as a pull-through cache (repeatable): docker.io, ghcr.io=https://ghcr.io',
      collect,
    )
    .option(
      '--redis <url>',
      'Redis shared by the replicas of one registry: redis://HOST:PORT (env PULLSAFE_REDIS)',
    )
    .option(
      '--secret-file <file>',
      'key that signs upload locations, shared by the replicas (env PULLSAFE_SECRET_FILE, or PULLSAFE_SECRET)',
    )
    .option(
      '--hosted <glob>',
      'repositories hosted here (push allowed) where bare names would go to the default upstream (repeatable)',
      collect,
    )
    .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:5000)')
    .option('--storage <dir>', 'storage folder (default ./data), or s3://BUCKET/PREFIX')
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
      ] as const),
    )
    .action((flags) =>
      run(async () => {
        hooks.beforeServe?.();
        return (await commands.serve()).runServe(flags, io.env);
      }),
    );

  program
    .command('client-config')
    .description(
      'print what containerd, Docker, podman/CRI-O and ECS/CodeBuild need to pull through the cache',
    )
    .requiredOption('--endpoint <url>', "the cache's URL as clients reach it: https://cache.example.com")
    .option('-c, --config <file>', "serve's config file, for its upstreams (env PULLSAFE_CONFIG)")
    .option(
      '--proxy <name[=url]>',
      'an upstream, as given to serve (repeatable): docker.io, ghcr.io=https://ghcr.io',
      collect,
    )
    .addOption(
      new Option('--runtime <runtime>', 'only this runtime (default all)').choices([
        'containerd',
        'docker',
        'podman',
        'ecs',
        'all',
      ] as const),
    )
    .option('--out <dir>', 'write the files under DIR (certs.d/…, daemon.json, registries.conf) instead')
    .action((flags) => run(async () => (await commands.clientConfig()).runClientConfig(flags, io)));
}

/** gc, fsck. */
function addStorageCommands(program: Command, io: CommandIo, run: Run): void {
  program
    .command('gc')
    .description('remove blobs no manifest references (mark and sweep)')
    .requiredOption('--storage <dir>', 'storage folder, or s3://BUCKET/PREFIX')
    .option('--dry-run', 'report what would be removed, remove nothing')
    .option(
      '--delete-untagged',
      'also remove manifests no tag reaches (children of tagged indexes and referrers of kept manifests stay)',
    )
    .option(
      '--min-age <duration>',
      'keep unreferenced blobs and untagged manifests younger than this (pushes in progress)',
      '1h',
    )
    .option(
      '--redis <url>',
      "the serving replicas' Redis: what their pushes and fills under way need is kept (env PULLSAFE_REDIS)",
    )
    .option('--json', 'print the report as JSON')
    .action((flags) => run(async () => (await commands.maintenance()).runGc(flags, io)));

  program
    .command('fsck')
    .description('re-hash every stored blob and check every link; exit 1 on problems')
    .requiredOption('--storage <dir>', 'storage folder, or s3://BUCKET/PREFIX')
    .option('--json', 'print the report as JSON')
    .action((flags) => run(async () => (await commands.maintenance()).runFsck(flags, io)));
}

/** HOST or HOST:PORT ([v6]:PORT too); a scheme or a path would match no host and do nothing. */
const collectHost = (value: string, previous: string[] = []): string[] => {
  if (!/^(?:[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i.test(value)) {
    throw new InvalidArgumentError(
      'give HOST or HOST:PORT (e.g. registry.internal:5000), no scheme or path.',
    );
  }
  return [...previous, value];
};

/** skopeo's booleans, as Go's strconv.ParseBool reads them. */
const parseBoolean = (value: string): boolean => {
  if (/^(?:1|t|true)$/i.test(value)) return true;
  if (/^(?:0|f|false)$/i.test(value)) return false;
  throw new InvalidArgumentError('give true or false.');
};

/** `--src-tls-verify`, `--dest-tls-verify`, `--tls-verify`: a boolean option named by its caller. */
const tlsVerify = <Flag extends string>(flag: Flag, whose: string) =>
  new Option(
    `${flag} <bool>`,
    `false: HTTPS to ${whose} without certificate checks, plain HTTP if it answers so (as skopeo)`,
  ).argParser(parseBoolean);

/** The options every registry client command ends with. */
const clientOptions = <Args extends unknown[], Opts extends OptionValues>(command: Command<Args, Opts>) =>
  command
    .option(
      '--plain-http <host>',
      'speak plain HTTP to this registry host (repeatable; loopback is automatic)',
      collectHost,
    )
    .option('--region <region>', 'AWS region for Secrets Manager secrets named without an ARN');

/** copy, sync, warm. */
function addCopyCommands(program: Command, io: CommandIo, run: Run): void {
  clientOptions(
    program
      .command('copy')
      .description('copy an image between registries and OCI layouts (all platforms by default)')
      .argument('<source>', 'image reference (nginx:1.25, ghcr.io/org/app@sha256:…) or oci:DIR[:TAG]')
      .argument('<destination>', 'image reference or oci:DIR[:TAG]; without a tag, the source tag is kept')
      .option(
        '--platform <os/arch[/variant]>',
        'copy only these platforms (repeatable; changes the index digest)',
        collect,
      )
      .option('--referrers', 'also copy signatures, SBOMs and attestations attached to the image')
      .option('--src-creds <user:password>', 'credentials for the source registry')
      .option('--dest-creds <user:password>', 'credentials for the destination registry')
      .addOption(tlsVerify('--src-tls-verify', 'the source registry'))
      .addOption(tlsVerify('--dest-tls-verify', 'the destination registry'))
      .option(
        '--src-secret <secret>',
        'AWS Secrets Manager secret with {"username","password"} for the source',
      )
      .option(
        '--dest-secret <secret>',
        'AWS Secrets Manager secret with {"username","password"} for the destination',
      )
      .option('--concurrency <n>', 'blobs transferred at once (default 4)')
      .option('--json', 'one JSON event per line, then a summary'),
  ).action((source, destination, flags) =>
    run(async () => (await commands.copy()).runCopy(source, destination, flags, io)),
  );

  clientOptions(
    program
      .command('sync')
      .description('copy many images from a mirror file (pullsafe format or skopeo sync YAML)')
      .requiredOption('-f, --file <file>', 'mirror file (YAML or JSON)')
      .option('--dest <prefix>', 'target prefix (required for skopeo sync files)')
      .option('--scoped', 'keep the whole source name under --dest (skopeo --scoped)')
      .option('--dry-run', 'show what would be copied (HEAD requests only)')
      .option('--creds <user:password>', 'credentials for every registry without others')
      .addOption(tlsVerify('--dest-tls-verify', 'the target registry'))
      .option('--json', 'one JSON event per line, then a summary'),
  ).action((flags) => run(async () => (await commands.sync()).runSyncCommand(flags, io)));

  program
    .command('warm')
    .description('fill a pullsafe pull-through cache with the images of a mirror file, ahead of a deploy')
    .requiredOption(
      '-f, --file <file>',
      'mirror file (pullsafe format or skopeo sync YAML); targets are ignored',
    )
    .requiredOption('--endpoint <url>', 'the cache: http://cache:5000 or https://cache.example.com')
    .option(
      '--platform <os/arch[/variant]>',
      "pull only these platforms of an index (repeatable; replaces the file's)",
      collect,
    )
    .option(
      '--reserve <n>',
      "stop before an upstream's pull quota falls below this (default: the file's, else 10)",
    )
    .option('--image-concurrency <n>', "images pulled at once (default: the file's, else 2)")
    .option('--blob-concurrency <n>', "blobs read at once (default: the file's, else 4)")
    .option('--creds <user:password>', 'credentials for the cache (else env, Docker config)')
    .addOption(tlsVerify('--tls-verify', 'the cache'))
    .option('--json', 'one JSON event per line, then a summary')
    .action((flags) => run(async () => (await commands.warm()).runWarmCommand(flags, io)));
}

/** inspect, ratelimit. */
function addInspectCommands(program: Command, io: CommandIo, run: Run): void {
  clientOptions(
    program
      .command('inspect')
      .description('show an image: digest, media type, platforms, sizes, config')
      .argument('<image>', 'image reference or oci:DIR[:TAG]')
      .option('--raw', 'print the manifest exactly as stored')
      .option('--creds <user:password>', 'registry credentials')
      .addOption(tlsVerify('--tls-verify', 'the registry'))
      .option('--json', 'print JSON'),
  ).action((image, flags) => run(async () => (await commands.copy()).runInspect(image, flags, io)));

  clientOptions(
    program
      .command('ratelimit')
      .description(
        'what Docker Hub will still allow this IP or account (HEAD requests only: checking costs nothing)',
      )
      .argument(
        '[image]',
        "an image to check with, on Docker Hub or any registry that announces a quota (default: Docker Hub's ratelimitpreview/test)",
      )
      .option('--creds <user:password>', 'registry credentials (else env, Docker config)')
      .addOption(tlsVerify('--tls-verify', 'the registry'))
      .option('--json', 'print JSON'),
  ).action((image, flags) => run(async () => (await commands.copy()).runRateLimit(image, flags, io)));
}

/** scan, rewrite. */
function addScanCommands(program: Command, io: CommandIo, run: Run): void {
  program
    .command('scan')
    .description(
      'find image references that depend on Docker Hub (Dockerfiles, compose, Kubernetes, Helm, ECS, Terraform, CDK, CI files, …)',
    )
    .argument('[paths...]', 'files or folders (default: .)')
    .option('--json', 'print one JSON object with a references array')
    .option('--sarif', 'print SARIF 2.1.0 for code-scanning tools')
    .option(
      '--fail-on <class>',
      'exit 1 when a reference is of this class: docker-hub, floating, unpinned, unresolved, any (repeatable)',
      collect,
    )
    .action((paths, flags) =>
      run(async () => {
        // Workers start first, so their start-up overlaps this thread's loading of the scan modules.
        (await import('../scan/worker-warmup.ts')).prewarmScanWorkers();
        return (await commands.scan()).runScan(paths, flags, io);
      }),
    );

  program
    .command('rewrite')
    .description(
      'point Docker Hub references at ECR Public, an ECR pull-through cache or a mirror, editing only image references (Helm image maps in place)',
    )
    .argument('[paths...]', 'files or folders (default: .)')
    .option('--to-ecr-public', 'official images to public.ecr.aws/docker/library/<name>')
    .option('--to-pull-through <host>', 'an ECR pull-through cache: <acct>.dkr.ecr.<region>.amazonaws.com')
    .option('--prefix <prefix>', 'the pull-through rule prefix (default docker-hub)')
    .option('--to-mirror <host[/prefix]>', 'a registry holding copies, such as one filled by pullsafe sync')
    .option(
      '--to-cache <url>',
      "pullsafe's pull-through cache: HOST/docker.io/<repository> (for ECS Fargate and CodeBuild, which have no mirror setting)",
    )
    .option(
      '--cache-registry <name>',
      'with --to-cache: another registry the cache proxies, rewritten to HOST/<name>/<repository> (repeatable)',
      collect,
    )
    .option('--rules <file>', 'a YAML or JSON rules file: repository globs to targets, first match wins')
    .option('--dry-run', 'print a unified diff, change nothing')
    .action((paths, flags) => run(async () => (await commands.scan()).runRewrite(paths, flags, io)));
}

/** doctor, explain. */
function addDiagnosisCommands(program: Command, io: CommandIo, run: Run): void {
  program
    .command('doctor')
    .description(
      'why pulls fail for an ECS task, service or task definition, or a CodeBuild project: read-only AWS checks',
    )
    .option('--cluster <cluster>', 'ECS cluster name or ARN')
    .option('--task <task>', 'task id or ARN (stopped tasks stay visible for about an hour)')
    .option('--service <service>', 'ECS service: its recent failed tasks and its task definition')
    .option('--task-definition <family:revision>', 'check a task definition before deploying it')
    .option('--codebuild-project <name>', 'check a CodeBuild project and its last failed build')
    .option('--build-id <id>', 'with --codebuild-project: read this build instead of the last failed one')
    .option(
      '--buildspec <file>',
      'with --codebuild-project: the buildspec, when the project keeps it in its source',
    )
    .option(
      '--source <dir>',
      'with --codebuild-project: a checkout of its source (buildspec, Dockerfiles, compose)',
    )
    .option('--subnets <ids>', 'with --task-definition: comma-separated subnets it will run in')
    .option('--security-groups <ids>', 'with --task-definition: comma-separated security groups')
    .option('--assign-public-ip', 'with --task-definition: the task gets a public IP')
    .option('--region <region>', 'AWS region (else AWS_REGION, or the region of an ARN)')
    .option('--profile <profile>', 'AWS shared config profile (else AWS_PROFILE, then the default chain)')
    .option('--json', 'print the report as JSON')
    .option('--markdown', 'print the report as Markdown')
    .option('--save-snapshot <file>', 'write every AWS answer used (secret values never) to replay later')
    .option('--snapshot <file>', 'replay a saved snapshot: no AWS calls')
    .action((flags) => run(async () => (await commands.doctor()).runDoctorCommand(flags, io)));

  program
    .command('explain')
    .description('say why an image pull failed, from the error text alone (no AWS calls)')
    .argument('[message...]', 'the error text (quote it); read from stdin when absent')
    .option('--json', 'print one JSON object with a causes array, most specific first')
    .option('--ip-ranges <file>', "AWS's ip-ranges.json, to tell Amazon S3 addresses with the current list")
    .action((message, flags) => run(async () => (await commands.explain()).runExplain(message, flags, io)));
}

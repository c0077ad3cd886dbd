#!/usr/bin/env node
/**
 * The `pullsafe` entry point. It imports nothing before it has checked the Node version, so that an older
 * Node (which cannot even load pullsafe's modules) gets a sentence and exit code 2 instead of a SyntaxError.
 * Written without type annotations: Node 20 must be able to parse it.
 */
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `pullsafe needs Node >= 22.12 and this is Node ${process.versions.node}: run ./pullsafe from a checkout, which installs Node 24 into .tools/, or install Node 24 LTS\n`,
  );
  process.exitCode = 2;
} else {
  // Node's compile cache (in the temporary folder; NODE_DISABLE_COMPILE_CACHE=1 turns it off) spares each run
  // the compiling of the modules its command loads: about 40 ms of a `sync` start-up.
  (await import('node:module')).enableCompileCache?.();
  await import('./entry.ts');
}

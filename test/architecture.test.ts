import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';

const root = join(import.meta.dirname, '..');
const folders = readdirSync(join(root, 'src'), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();

/** The folder table of docs/ARCHITECTURE.md: folder → the folders its "imports" cell names. */
function documentedImports(): Map<string, string[]> {
  const text = readFileSync(join(root, 'docs', 'ARCHITECTURE.md'), 'utf8');
  const rows = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const row = /^\| `([a-z-]+)\/` +\|.*\| ([^|]+?) +\|$/.exec(line);
    if (!row) continue;
    const [, folder = '', cell = ''] = row;
    const named = [...cell.matchAll(/`([a-z-]+)`/g)].map((match) => match[1] ?? '');
    if (cell === 'every folder')
      rows.set(
        folder,
        folders.filter((other) => other !== folder),
      );
    else if (cell === 'nothing') rows.set(folder, []);
    else {
      assert.equal(
        cell.replace(/`[a-z-]+`/g, '').replace(/[, ]/g, ''),
        '',
        `docs/ARCHITECTURE.md, row ${folder}/: the imports cell names only folders, in backquotes ("${cell}")`,
      );
      rows.set(folder, named);
    }
  }
  return rows;
}

/** Whether lint accepts `import '<specifier>'` in a file at `file` (relative to the repository). */
async function lintAccepts(eslint: ESLint, file: string, specifier: string): Promise<boolean> {
  const [result] = await eslint.lintText(`import '${specifier}';\n`, { filePath: join(root, file) });
  assert.ok(result, file);
  const unexpected = result.messages.filter((message) => message.ruleId !== 'no-restricted-imports');
  assert.deepEqual(unexpected, [], `${file}: only the layer rule may speak about a bare import`);
  return result.messages.length === 0;
}

test("docs/ARCHITECTURE.md's folder table has a row for every folder of src/, and no other", () => {
  assert.deepEqual([...documentedImports().keys()].sort(), folders);
});

test('lint allows exactly the imports the folder table names, from any depth of a folder', async () => {
  const documented = documentedImports();
  // The probes exist only as text: no type information for them, and none needed by the layer rule.
  const eslint = new ESLint({ cwd: root, overrideConfig: tseslint.configs.disableTypeChecked });
  const disagreements: string[] = [];
  for (const from of folders) {
    const allowed = documented.get(from) ?? [];
    for (const to of folders) {
      if (to === from) continue;
      const probes: [string, string][] = [
        [`src/${from}/probe.ts`, `../${to}/index.ts`],
        [`src/${from}/inner/probe.ts`, `../../${to}/index.ts`],
        [`src/${from}/inner/deeper/probe.ts`, `../../../${to}/index.ts`],
      ];
      for (const [file, specifier] of probes) {
        const accepted = await lintAccepts(eslint, file, specifier);
        if (accepted !== allowed.includes(to)) {
          disagreements.push(
            `${file} importing ${specifier}: lint ${accepted ? 'accepts' : 'refuses'} it, the table ${allowed.includes(to) ? 'allows' : 'does not allow'} it`,
          );
        }
      }
    }
  }
  assert.deepEqual(disagreements, []);
});

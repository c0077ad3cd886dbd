// Lint, including the layer rule: dependencies point one way (see docs/ARCHITECTURE.md).
import { readdirSync } from 'node:fs';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layer rule as an allow-list: the internal folders (`src/<folder>`) each folder may import. Anything
 * else is an error, so a new folder must be added here before lint passes (it then imports only what its
 * entry allows). docs/ARCHITECTURE.md's folder table states these lists word for word;
 * test/architecture.test.ts checks the two against each other.
 */
const allowedImports = {
  shared: [],
  errors: ['shared'],
  reference: ['shared'],
  oci: ['shared'],
  store: ['oci', 'shared'],
  client: ['oci', 'reference', 'errors', 'shared'],
  proxy: ['oci', 'client', 'store', 'shared'],
  server: ['oci', 'store', 'proxy', 'shared'],
  config: ['reference', 'errors', 'shared'],
  copy: ['oci', 'reference', 'client', 'errors', 'shared'],
  scan: ['reference', 'shared'],
  explain: ['reference', 'errors', 'shared'],
  doctor: ['reference', 'explain', 'errors', 'shared'],
  cli: [
    'reference',
    'oci',
    'store',
    'client',
    'proxy',
    'server',
    'config',
    'copy',
    'scan',
    'explain',
    'doctor',
    'errors',
    'shared',
  ],
};

const folders = readdirSync(new URL('./src/', import.meta.url), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name);
const unlisted = folders.filter((folder) => !Object.hasOwn(allowedImports, folder));
if (unlisted.length > 0) {
  throw new Error(
    `eslint.config.js: src/${unlisted.join(', src/')} has no entry in allowedImports (the layer rule); ` +
      'add one, and its row in docs/ARCHITECTURE.md',
  );
}

const layerRules = Object.entries(allowedImports).map(([layer, allowed]) => {
  const denied = folders.filter((folder) => folder !== layer && !allowed.includes(folder));
  return {
    files: [`src/${layer}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: denied.map((name) => ({
            group: [`../${name}/*`, `../../${name}/*`, `../../../${name}/*`],
            message:
              `src/${layer} may import only ${allowed.length > 0 ? allowed.join(', ') : 'no other folder of src'}, ` +
              `not src/${name} (layer rule: eslint.config.js, docs/ARCHITECTURE.md)`,
          })),
        },
      ],
    },
  };
});

/**
 * Size warnings: a file past 600 lines or a function past 80 (code lines; blank lines and comments do not
 * count) is probably doing more than one job. Exempt: tests, where a file is the list of one subject's
 * cases and a `describe` block is a function only by syntax; and data, whose length is its content
 * (`src/scan/official-images.ts` follows Docker's list of official images).
 */
const sizeRules = {
  'max-lines': ['warn', { max: 600, skipBlankLines: true, skipComments: true }],
  'max-lines-per-function': ['warn', { max: 80, skipBlankLines: true, skipComments: true }],
};
const sizeExempt = [
  'src/**/*.test.ts',
  'src/**/*.test-support.ts',
  'test/**/*.test.ts',
  'test/store-contract.ts',
  'src/scan/official-images.ts',
];

/**
 * Type-aware rules (typescript-eslint): the whole recommended type-checked set on all of src. It stops an
 * `any` from spreading (no-unsafe-*), a promise from being left to reject unheard (no-floating-promises,
 * no-misused-promises: an unhandled rejection ends the process), a non-Error from being thrown, an async
 * function that awaits nothing, and an assertion that changes no type. Exceptions, each with its reason:
 * - node:test's `describe`, `it` and `test` return promises the runner awaits itself.
 * - require-await is off in tests: their fakes stand in for async interfaces (SDK clients, credential
 *   sources, signers, sleep), written async with nothing to await, and a throw in one must reach the code
 *   under test as a rejection, as the real one's would.
 */
const typedFiles = ['src/**/*.ts'];
const typedRules = [
  {
    files: typedFiles,
    // tsconfig.json's one program (src, test, bench): about three times faster here than projectService.
    languageOptions: { parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname } },
  },
  ...tseslint.configs.recommendedTypeCheckedOnly.map((config) => ({
    ...config,
    files: typedFiles,
  })),
  {
    files: typedFiles,
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test'] },
          ],
        },
      ],
    },
  },
  { files: ['src/**/*.test.ts'], rules: { '@typescript-eslint/require-await': 'off' } },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tools/**', '.tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...typedRules,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error',
      ...sizeRules,
    },
  },
  { files: sizeExempt, rules: { 'max-lines': 'off', 'max-lines-per-function': 'off' } },
  ...layerRules,
  {
    files: ['src/cli/**/*.ts', 'bench/**/*.ts', 'test/**/*.ts', 'scripts/**'],
    rules: { 'no-console': 'off' },
  },
);

// Lint, including the layer rule: dependencies point one way (see docs/ARCHITECTURE.md).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Internal folders each layer must not import from. Every layer may import `shared`, which imports none. */
const forbidden = {
  reference: [
    'oci',
    'client',
    'store',
    'proxy',
    'server',
    'scan',
    'doctor',
    'config',
    'cli',
    'copy',
    'explain',
  ],
  oci: [
    'reference',
    'client',
    'store',
    'proxy',
    'server',
    'scan',
    'doctor',
    'config',
    'cli',
    'copy',
    'explain',
  ],
  store: ['client', 'proxy', 'server', 'scan', 'doctor', 'config', 'cli', 'copy', 'explain'],
  client: ['store', 'proxy', 'server', 'scan', 'doctor', 'config', 'cli', 'copy', 'explain'],
  proxy: ['server', 'scan', 'doctor', 'config', 'cli', 'copy', 'explain'],
  server: ['scan', 'doctor', 'config', 'cli', 'copy', 'explain'],
  config: ['client', 'store', 'proxy', 'server', 'scan', 'doctor', 'cli', 'copy', 'explain'],
  scan: ['oci', 'client', 'store', 'proxy', 'server', 'doctor', 'config', 'cli', 'copy', 'explain'],
  copy: ['store', 'proxy', 'server', 'scan', 'doctor', 'config', 'cli', 'explain'],
  explain: ['oci', 'client', 'store', 'proxy', 'server', 'scan', 'doctor', 'config', 'cli', 'copy'],
  doctor: ['oci', 'store', 'proxy', 'server', 'scan', 'config', 'cli', 'copy'],
  shared: [
    'reference',
    'oci',
    'client',
    'store',
    'proxy',
    'server',
    'scan',
    'doctor',
    'explain',
    'config',
    'cli',
    'copy',
    'errors',
  ],
  errors: [
    'reference',
    'oci',
    'client',
    'store',
    'proxy',
    'server',
    'scan',
    'doctor',
    'explain',
    'config',
    'cli',
    'copy',
  ],
};

const layerRules = Object.entries(forbidden).map(([layer, banned]) => ({
  files: [`src/${layer}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: banned.map((name) => ({
          group: [`../${name}/*`, `../../${name}/*`],
          message: `src/${layer} may not depend on src/${name} (layer rule, docs/ARCHITECTURE.md)`,
        })),
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tools/**', '.tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error',
    },
  },
  ...layerRules,
  {
    files: ['src/cli/**/*.ts', 'bench/**/*.ts', 'test/**/*.ts', 'scripts/**'],
    rules: { 'no-console': 'off' },
  },
);

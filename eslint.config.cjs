/**
 * ESLint (flat config): typescript-eslint's type-checked recommended rules over all of the
 * project's TypeScript, a ban on Node built-ins in workflows/ (ARCHITECTURE rule 2), and
 * eslint-config-prettier last so formatting is Prettier's alone. Import edges between folders are
 * dependency-cruiser's job (.dependency-cruiser.cjs), not ESLint's.
 */
const { builtinModules } = require('node:module');
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');
const prettier = require('eslint-config-prettier/flat');

const nodeBuiltins = builtinModules.filter((name) => !name.startsWith('_'));

module.exports = tseslint.config(
  { ignores: ['dist/', 'coverage/', '.data/', 'node_modules/', '**/*.js', '**/*.cjs', '**/*.mjs'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: __dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `_`-prefixed names are the house way of saying "unused on purpose" (rest siblings, callbacks).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    // Harness code (tests, the stack launcher, benchmarks) reads HTTP/JSON bodies typed `any` on
    // purpose (res.body.user.id, Vault API replies); typing every reply would not catch a bug there.
    // Product code keeps all of these rules.
    files: ['test/**/*.ts', 'infra/**/*.ts', 'bench/**/*.ts', 'reliability/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // Test doubles implement async interfaces without awaiting (a fake Vault's kvGet, a fake
    // mailer's send), and jest's expect(obj.method) passes methods around on purpose.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      // Workflow code runs in Temporal's deterministic sandbox: no Node built-ins, with or without `node:`.
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'workflows/ must not use Node built-ins (deterministic sandbox).' })),
          patterns: [{ group: ['node:*'], message: 'workflows/ must not use Node built-ins (deterministic sandbox).' }],
        },
      ],
    },
  },
  prettier,
);

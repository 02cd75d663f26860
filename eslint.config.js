// Lint: typescript-eslint's recommended type-checked rules, with the async rules that matter
// for a server (no floating promises, no misused promises).
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'bin/**', 'eslint.config.js'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [{ from: 'package', name: ['test', 'describe', 'it', 'before', 'after', 'beforeEach', 'afterEach'], package: 'node:test' }] }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true, allowNullish: true }],
    },
  },
  {
    // Invariant 1 (docs/invariants.md): the database and the client layer speak to the log only
    // through the Kafka protocol, never by importing the broker.
    files: ['src/db/**', 'src/client/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['**/broker/**', '**/protocol/**'], message: 'src/db and src/client talk to Kafka through the client library, not the broker or its codecs' }] }] },
  },
)

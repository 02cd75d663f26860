// Lint: typescript-eslint's recommended type-checked rules, with the async rules that matter
// for a server (no floating promises, no misused promises).
import tseslint from 'typescript-eslint'

// Invariant 1 (docs/invariants.md): the database and the client layer speak to the log only
// through the Kafka protocol, never by importing the broker.
const NO_BROKER_OR_PROTOCOL = {
  group: ['**/broker/**', '**/protocol/**'],
  message: 'src/db and src/client talk to Kafka through the client library, not the broker or its codecs',
}

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'bin/**', 'eslint.config.js'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              name: ['test', 'describe', 'it', 'before', 'after', 'beforeEach', 'afterEach'],
              package: 'node:test',
            },
          ],
        },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowNullish: true },
      ],
    },
  },
  // Dependencies point one way. ESLint's flat config replaces (does not merge) the options of
  // no-restricted-imports for files matched by a later object, so each narrower group below
  // repeats the patterns of the wider one it sits in.
  {
    // Invariant 1 (docs/invariants.md): the database and the client layer speak to the log only
    // through the Kafka protocol, never by importing the broker.
    files: ['src/db/**', 'src/client/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: [NO_BROKER_OR_PROTOCOL] }] },
  },
  {
    // Replication is the log format and the replica state machine; storage builds on it, not the reverse.
    files: ['src/db/replication/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            NO_BROKER_OR_PROTOCOL,
            {
              group: ['**/storage/**'],
              message: 'src/db/replication must not depend on src/db/storage (storage builds on replication)',
            },
          ],
        },
      ],
    },
  },
  {
    // Storage nodes follow the metadata log; the controller's types are its own (shared ones live in src/db/metadata).
    files: ['src/db/storage/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            NO_BROKER_OR_PROTOCOL,
            {
              group: ['**/controller/**'],
              message: 'src/db/storage must not depend on src/db/controller (shared types live in src/db/metadata)',
            },
          ],
        },
      ],
    },
  },
  {
    // The client library and the node client it shares with the router run in applications: they
    // know the nodes' API and the placement, never the router's, storage's or controller's code.
    files: ['src/db/client/**', 'src/db/node-client/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            NO_BROKER_OR_PROTOCOL,
            {
              group: ['**/router/**', '**/storage/**', '**/controller/**'],
              message: 'src/db/client and src/db/node-client must not depend on the router, storage or controller',
            },
          ],
        },
      ],
    },
  },
  {
    // The codecs are the broker's vocabulary, usable by tests and tools without a broker.
    files: ['src/protocol/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/broker/**'], message: 'src/protocol must not depend on src/broker' }] },
      ],
    },
  },
)

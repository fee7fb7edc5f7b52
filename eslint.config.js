import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'src/**/*.pb.ts', 'proto/**/*.ts'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // On Node 20 a garbage collection can lose an AbortSignal.timeout joined into another signal
    // before it fires (nodejs/node#57736): the daemon's deadlines come from abortAfter.
    files: ['src/**/*.ts'],
    ignores: ['src/wait/abort-after.ts'],
    rules: {
      'no-restricted-properties': ['error', { object: 'AbortSignal', property: 'timeout', message: 'use abortAfter (src/wait): a collection can lose an AbortSignal.timeout joined into AbortSignal.any before it fires' }],
    },
  },
)

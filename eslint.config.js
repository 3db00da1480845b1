// Lint: typescript-eslint's recommended rules for the library, its tests and tools, and the layers' import rules
// (docs/design.md): a layer imports only the layers below it, and the locks only themselves and what is shared.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Each folder is a layer; a layer imports the ones below it only (docs/design.md). Above the locks, only their seam.
const layers = [
  ['src/shared/**', []],
  ['src/locks/**', ['shared/']],
  ['src/profile/**', ['shared/', 'locks/seam\\.js$']],
  ['src/diagnostics/**', ['shared/', 'locks/seam\\.js$', 'profile/']],
  ['src/pprof/**', ['shared/', 'locks/seam\\.js$', 'profile/', 'diagnostics/']],
  ['src/cluster/**', ['shared/', 'locks/seam\\.js$', 'profile/', 'diagnostics/', 'pprof/']],
  ['src/http/**', ['shared/', 'locks/seam\\.js$', 'profile/', 'diagnostics/', 'pprof/', 'cluster/']],
  ['src/exporters/**', ['shared/', 'locks/seam\\.js$', 'profile/', 'diagnostics/', 'pprof/', 'cluster/', 'http/']],
  ['src/async-mutex/**', ['shared/', 'locks/', 'start\\.js$']],
];
const layerRules = layers.map(([files, below]) => ({
  files: [files],
  ignores: ['src/http/ui/**'],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            regex: below.length === 0 ? '^\\.\\./' : `^\\.\\./(?!${below.join('|')})`,
            message: `${files.slice(0, -3)} imports only ${below.length === 0 ? 'nothing of mutexprof' : below.map((b) => b.replace(/\\/g, '').replace(/\$$/, '')).join(', ')} (the layers: docs/design.md)`,
          },
        ],
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/.baseline/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setImmediate: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        queueMicrotask: 'readonly',
        performance: 'readonly',
        URL: 'readonly',
        URLSearchParams: 'readonly',
        fetch: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        structuredClone: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        Blob: 'readonly',
        FormData: 'readonly',
        Headers: 'readonly',
        Request: 'readonly',
        Response: 'readonly',
        globalThis: 'readonly',
        document: 'readonly',
        location: 'readonly',
        history: 'readonly',
        addEventListener: 'readonly',
        window: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-namespace': ['error', { allowDeclarations: true }],
      '@typescript-eslint/no-unused-expressions': ['error', { allowShortCircuit: true, allowTernary: true }],
    },
  },
  {
    // CommonJS fixtures (the apps and test suites that test/register.test.ts and test/testrun.test.ts run)
    files: ['test/fixtures/**/*.{js,cjs}'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', test: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  ...layerRules,
);

import js from '@eslint/js'
import pluginVue from 'eslint-plugin-vue'
import globals from 'globals'
import tseslint from 'typescript-eslint'
import prettier from 'eslint-config-prettier'

const ELECTRON = { name: 'electron', message: 'Only src/main and src/preload may import electron.', allowTypeImports: false }

/** A pattern forbidding relative imports that reach into any of these top-level folders of src/. */
function importOf(folders, message) {
  return { regex: `^(\\.\\./)+(src/)?(${folders.join('|')})(/|$)`, message }
}

export default tseslint.config(
  { ignores: ['out/**', 'node_modules/**', 'test-results/**', 'projects/**', 'resources/**/*.min.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...pluginVue.configs['flat/recommended'],
  {
    files: ['**/*.vue'],
    languageOptions: { parserOptions: { parser: tseslint.parser, extraFileExtensions: ['.vue'] } }
  },
  {
    files: ['src/renderer/**/*.{ts,vue}'],
    languageOptions: { globals: globals.browser }
  },
  {
    files: ['src/{main,preload,core,server,cli,shared}/**/*.ts', 'scripts/**/*.mjs', 'bin/**/*.js', 'tests/**/*.ts', 'bench/**/*.{ts,mjs}', '*.config.{ts,js}'],
    languageOptions: { globals: globals.node }
  },
  // The one-way flow shared → core → main/server/cli → renderer, enforced: each folder may import only what may run
  // where it runs (README, "Layout"). tests/unit/architecture.test.ts checks that these rules catch a wrong import.
  {
    files: ['src/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^(?!zod$|\\./)', message: 'src/shared is the contract every process imports: it may import zod and its own files only.' }] }
      ]
    }
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [ELECTRON],
          patterns: [
            importOf(
              ['main', 'preload', 'server', 'cli', 'renderer'],
              'The engine (src/core) runs in every process: it may import src/shared, never the doors or the renderer.'
            )
          ]
        }
      ]
    }
  },
  {
    files: ['src/server/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [ELECTRON],
          patterns: [
            importOf(
              ['main', 'preload', 'cli', 'renderer'],
              'The browser mode serves src/core through the API; it does not reach into the other doors or the renderer.'
            )
          ]
        }
      ]
    }
  },
  {
    files: ['src/cli/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [ELECTRON],
          patterns: [
            importOf(['main', 'preload', 'renderer'], 'The CLI calls src/core through the API (and src/server for serve); never Electron or the renderer.')
          ]
        }
      ]
    }
  },
  {
    files: ['src/main/**/*.ts', 'src/preload/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            importOf(
              ['server', 'cli', 'renderer'],
              'Electron main and preload serve src/core over IPC; they do not reach into the other doors or the renderer.'
            )
          ]
        }
      ]
    }
  },
  {
    files: ['src/renderer/**/*.{ts,vue}'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [ELECTRON],
          patterns: [
            importOf(
              ['core', 'main', 'preload', 'server', 'cli'],
              'The renderer talks to the engine only through the API client (src/renderer/src/api/client.ts) and the contract in src/shared.'
            ),
            { regex: '^node:', message: 'The renderer runs in a browser: no Node modules.' }
          ]
        }
      ]
    }
  },
  {
    rules: {
      'vue/max-attributes-per-line': 'off',
      'vue/singleline-html-element-content-newline': 'off',
      'vue/html-self-closing': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }]
    }
  },
  // Layout is Prettier's (.prettierrc.json): stylistic rules that would fight it are off.
  prettier
)

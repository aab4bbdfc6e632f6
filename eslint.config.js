// Lint holds the boundaries STYLE.md names: no floating promises, no import
// cycles, no I/O imports inside the pure cores, and no API imports in participants or config.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import importX, { createNodeResolver } from "eslint-plugin-import-x";

const apiBan = "Import the contract from a neutral module (shared/, coordinator/config/limits.ts).";
const ioModules = ["pg", "ioredis", "kafkajs", "fastify", "pino", "prom-client", "node:*"];

export default tseslint.config(
  { ignores: ["dist/**", "client/dist/**", "node_modules/**", ".local/**", "eslint.config.js"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "import-x": importX },
    settings: { "import-x/resolver": { node: { extensions: [".ts", ".js"] } } },
    rules: {
      // node:test's describe/test return promises the runner itself awaits.
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["describe", "test", "it", "suite"] },
          ],
        },
      ],
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/switch-exhaustiveness-check": [
        "error",
        { considerDefaultExhaustiveForUnions: true },
      ],
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
      "import-x/no-cycle": ["error", { ignoreExternal: true }],
    },
  },
  {
    // Participants and the configuration know nothing of the API: the contract types they
    // share with it (branch work, limits) live in neutral modules (shared/, config/limits.ts).
    // The zones compare resolved files, so the resolver maps `./x.js` imports to `./x.ts`.
    files: ["participants/**/*.ts", "coordinator/config/**/*.ts"],
    settings: {
      "import-x/resolver-next": [
        createNodeResolver({
          extensions: [".ts", ".js"],
          extensionAlias: { ".js": [".ts", ".js"] },
        }),
      ],
    },
    rules: {
      "import-x/no-restricted-paths": [
        "error",
        {
          zones: [
            { target: "./participants", from: "./coordinator/api", message: apiBan },
            { target: "./coordinator/config", from: "./coordinator/api", message: apiBan },
          ],
        },
      ],
    },
  },
  {
    files: ["coordinator/core/**/*.ts", "coordinator/raft/core/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: ioModules, message: "The pure core does no I/O: inject it." }] },
      ],
      "no-restricted-globals": ["error", { name: "Date", message: "Inject a clock." }],
      "no-restricted-properties": [
        "error",
        { object: "Math", property: "random", message: "Inject a seeded random." },
      ],
    },
  },
  {
    // The web console's browser script (plain JavaScript, no type information).
    files: ["console/**/*.js"],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: "module",
      globals: Object.fromEntries(
        [
          "AbortController",
          "FormData",
          "Node",
          "TextDecoderStream",
          "URLSearchParams",
          "document",
          "fetch",
          "location",
          "sessionStorage",
          "setTimeout",
          "window",
        ].map((name) => [name, "readonly"]),
      ),
    },
  },
);

/**
 * The boundary rulebook (docs/architecture.md, "Boundary rules"). Every boundary message carries
 * its rule tag, e.g. [boundary/platform-no-domain], so a CI failure names the rule and ESLint
 * names the file.
 * test/architecture/lint-boundaries.spec.ts proves each tag fires; run with
 * ESLINT_USE_FLAT_CONFIG=false (legacy eslintrc on ESLint 9) and `--rulesdir eslint-rules`,
 * which holds the repo's own rules (queue-ownership, tested in queue-ownership.rule.spec.ts).
 * .dependency-cruiser.js states the import rules again for a second, independent check.
 */
// The domain modules and whose contracts each may import, declared once: in each module's
// manifest (libs/<module>/src/module.manifest.ts, `mayUse`).
const { DOMAIN, MAY_USE } = require('./scripts/module-manifests.cjs').boundaryDeclarations(__dirname);

const rule = (tag, regex, why) => ({ regex, message: `[boundary/${tag}] ${why}` });
const either = (names) => `(${names.join('|')})`;
const EVERYWHERE = [
  // Only the entry point and the contracts are public. A module's persistence internals
  // (entities, migrations) are reachable only by a deep path, so this ban keeps them private.
  // @app/platform/tracing: the tracing preload, which must load before the platform's entry point.
  rule('no-deep-import', '^@app/(?!platform/tracing$)[^/]+/(?!(contracts|manifest)$).+',
    'import a module only via @app/<module> or @app/<module>/contracts'),
  rule('no-relative-climb', '^(\\.\\./)+(libs(/|$)|([^./][^/]*/)?src(/|$))',
    'a relative path must not leave its own src; use the @app/<module> alias'),
];
const forLib = (lib) => {
  const others = DOMAIN.filter((m) => m !== lib);
  const allowed = MAY_USE[lib] ?? [];
  const denied = lib === 'platform' ? [] : others.filter((m) => !allowed.includes(m));
  return [
    ...EVERYWHERE,
    rule('lib-no-apps', '^(\\.\\./)*apps(/|$)', 'libs never import from apps/'),
    rule('no-self-alias', `^@app/${lib}(/contracts)?$`,
      `libs/${lib} imports itself by relative path, not @app/${lib} (cycle through the entry point)`),
    lib === 'platform' && rule('platform-no-domain', `^@app/(${DOMAIN.join('|')}|manifests)(/|$)`,
      'libs/platform must not import domain modules'),
    // Manifests are read by libs/manifests (and the tools), not by each other's code.
    lib !== 'platform' && rule('manifests-aggregate-only', `^@app/(${either(others)}/manifest|manifests)$`,
      'a domain module reads no other module\'s manifest; libs/manifests gathers them for the apps'),
    denied.length && rule('module-direction', `^@app/${either(denied)}(/|$)`,
      `${lib} may import contracts of: ${allowed.join(', ') || 'no domain module'}`),
    allowed.length && rule('contracts-only', `^@app/${either(allowed)}$`,
      'a domain module imports another only via @app/<module>/contracts'),
  ].filter(Boolean);
};
const restrict = (patterns) => ['error', { patterns }];

module.exports = {
  root: true,
  reportUnusedDisableDirectives: true,
  ignorePatterns: ['dist/', 'node_modules/', 'coverage/', 'test/architecture/fixtures/'],
  env: { node: true, es2022: true },
  parser: '@typescript-eslint/parser',
  parserOptions: { project: './tsconfig.json', tsconfigRootDir: __dirname, sourceType: 'module' },
  plugins: ['@typescript-eslint', 'import'],
  extends: ['plugin:@typescript-eslint/recommended'],
  settings: {
    'import/parsers': { '@typescript-eslint/parser': ['.ts'] },
    'import/resolver': { typescript: { project: `${__dirname}/tsconfig.json` }, node: true },
  },
  rules: {
    '@typescript-eslint/no-floating-promises': 'error',
    '@typescript-eslint/no-explicit-any': 'error',
    // disableScc: the SCC shortcut crashes on files not on disk, and the boundary spec lints
    // virtual paths; a plain depth-first search is fast enough at this size.
    'import/no-cycle': ['error', { ignoreExternal: true, disableScc: true }],
    // [boundary/queue-ownership]: a queue `<module>.<purpose>` is touched only from libs/<module>.
    'queue-ownership': ['error', { exempt: ['platform'] }],
    // [boundary/foreign-resource]: a module injects only its own DataSource/EntityManager/repositories.
    'foreign-resource': ['error', { exempt: ['platform', 'manifests'] }],
    'no-restricted-imports': restrict(EVERYWHERE),
    // [boundary/contracts-self-contained]: a module's contracts/ imports nothing else of its
    // module, so the contracts can become a published package the day the module leaves.
    'import/no-restricted-paths': ['error', {
      zones: DOMAIN.map((lib) => ({
        target: `./libs/${lib}/src/contracts`,
        from: `./libs/${lib}/src`,
        except: ['./contracts'],
        message: `[boundary/contracts-self-contained] libs/${lib}/src/contracts imports only itself, @app/platform types and other modules' contracts`,
      })),
    }],
  },
  // A later override replaces the whole no-restricted-imports list, so each lib gets its full list.
  overrides: ['platform', ...DOMAIN].map((lib) => ({
    files: [`libs/${lib}/**/*.ts`],
    rules: { 'no-restricted-imports': restrict(forLib(lib)) },
  })),
};

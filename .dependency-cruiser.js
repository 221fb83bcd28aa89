/**
 * The import rules of .eslintrc.js, stated again for dependency-cruiser: a second,
 * independent check over the whole resolved import graph of apps/ and libs/, so a rule
 * switched off in one file is still enforced by the other. Rule names mirror the ESLint
 * tags: [boundary/module-direction] here is `boundary-module-direction`.
 * test/architecture/dependency-graph.spec.ts runs it on the repository and on fixtures,
 * and checks that both files read their directions from the manifests; `npm run graph`
 * draws it.
 */
// The domain modules and their allowed directions come from the module manifests, as
// in .eslintrc.js (libs/<module>/src/module.manifest.ts, `mayUse`).
const { DOMAIN, MAY_USE } = require('./scripts/module-manifests.cjs').boundaryDeclarations(__dirname);

const either = (names) => `(${names.join('|')})`;
const ENTRY = '^libs/[^/]+/src/index\\.ts$';
const CONTRACTS = '^libs/[^/]+/src/contracts/index\\.ts$';
const MANIFEST = '^libs/[^/]+/src/module\\.manifest\\.ts$';
// The tracing preload (@app/platform/tracing): loaded by the apps before the platform's entry point.
const TRACING_PRELOAD = '^libs/platform/src/tracing/tracing\\.setup\\.ts$';
const forbid = (name, comment, from, to) => ({ name, comment, severity: 'error', from, to });

const perDomainModule = DOMAIN.flatMap((lib) => {
  const allowed = MAY_USE[lib];
  const denied = DOMAIN.filter((m) => m !== lib && !allowed.includes(m));
  return [
    denied.length &&
      forbid('boundary-module-direction', `${lib} may import contracts of: ${allowed.join(', ') || 'no domain module'}`,
        { path: `^libs/${lib}/` }, { path: `^libs/${either(denied)}/` }),
    forbid('boundary-manifests-aggregate-only', 'a domain module reads no other module\'s manifest; libs/manifests gathers them for the apps',
      { path: `^libs/${lib}/` }, { path: [`^libs/${either(DOMAIN.filter((m) => m !== lib))}/src/module\\.manifest\\.ts$`, '^libs/manifests/'] }),
    allowed.length &&
      forbid('boundary-contracts-only', 'a domain module imports another only via @app/<module>/contracts',
        { path: `^libs/${lib}/` }, { path: `^libs/${either(allowed)}/src/index\\.ts$` }),
  ].filter(Boolean);
});

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    // Only the entry point and the contracts of a lib are public: entities, repositories and
    // migrations are reachable only by a deep path, so this keeps them private too.
    forbid('boundary-no-deep-import', 'import a module only via @app/<module> or @app/<module>/contracts',
      { path: '^(apps|libs)/([^/]+)/' }, { path: '^libs/[^/]+/', pathNot: ['^$1/$2/', ENTRY, CONTRACTS, MANIFEST, TRACING_PRELOAD] }),
    forbid('boundary-no-relative-climb', 'a relative path must not leave its own app or lib; use the @app/<module> alias',
      { path: '^(apps|libs)/([^/]+)/' }, { path: '^(apps|libs)/', pathNot: '^$1/$2/', dependencyTypesNot: ['aliased'] }),
    forbid('boundary-contracts-self-contained', "a module's contracts/ imports nothing else of its module",
      { path: '^libs/([^/]+)/src/contracts/' }, { path: '^libs/$1/src/', pathNot: '^libs/$1/src/contracts/' }),
    forbid('boundary-lib-no-apps', 'libs never import from apps/', { path: '^libs/' }, { path: '^apps/' }),
    forbid('boundary-no-self-alias', 'a lib imports itself by relative path, not by its alias (cycle through the entry point)',
      { path: '^libs/([^/]+)/' },
      { path: '^libs/$1/src/(index|contracts/index)\\.ts$', dependencyTypes: ['aliased-tsconfig-paths', 'aliased-tsconfig'] }),
    forbid('boundary-platform-no-domain', 'libs/platform must not import domain modules',
      { path: '^libs/platform/' }, { path: `^libs/${either([...DOMAIN, 'manifests'])}/` }),
    ...perDomainModule,
    forbid('boundary-no-cycle', 'no import cycles anywhere', {}, { circular: true }),
    // Not an ESLint tag: an import the cruiser cannot resolve is an edge it cannot check.
    forbid('not-to-unresolvable', 'every import resolves (else the graph, and every rule above, is blind to it)',
      {}, { couldNotResolve: true }),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // `import type` edges count: a type-only import is still a dependency between modules.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
    skipAnalysisNotInRules: true,
  },
};

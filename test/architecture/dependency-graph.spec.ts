import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import {
  cruiseSync,
  GRAPH_FILE,
  moduleCycles,
  moduleGraph,
  renderMermaid,
  ROOT,
  ruleNames,
  violations,
  type CruiseResult,
  type Violation,
} from './support/dependency-graph';
import { MODULE_MANIFESTS } from '@app/manifests';
import type { ModuleManifest } from '@app/platform';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { boundaryDeclarations, loadManifests } = require('../../scripts/module-manifests.cjs');

/**
 * The second, independent check of the import rules: dependency-cruiser over the whole
 * resolved graph of apps/ and libs/ with .dependency-cruiser.js. The repository must be
 * clean; the fixture tree under fixtures/depcruise/ (a miniature repo with its own
 * tsconfig.json) must break every rule exactly where its files' `// expect:` lines say.
 */
const FIXTURE_ROOT = path.join(__dirname, 'fixtures/depcruise');

const only = (result: CruiseResult, rule: string): Violation[] => violations(result).filter((v) => v.rule === rule);
const format = (list: Violation[]) => list.map((v) => `${v.rule}: ${v.from} -> ${v.to}`);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

/** `<file> <rule>` for every `// expect:` rule of every fixture file. */
function expectedFixtureViolations(): string[] {
  return sourceFiles(FIXTURE_ROOT)
    .flatMap((file) => {
      const rules = /^\/\/ expect: (.+)$/m.exec(readFileSync(file, 'utf8'))?.[1].trim().split(/\s+/) ?? [];
      return rules.map((rule) => `${path.relative(FIXTURE_ROOT, file).split(path.sep).join('/')} ${rule}`);
    })
    .sort();
}

let repo: CruiseResult;
let fixtures: CruiseResult;

beforeAll(() => {
  repo = cruiseSync();
  fixtures = cruiseSync({ cwd: FIXTURE_ROOT });
});

describe('dependency-cruiser on the repository (apps/ and libs/)', () => {
  it('Graph_IsResolved_ThroughTheTsconfigAliases', () => {
    // A cruise that could not resolve @app/* would see no edges and pass every rule.
    expect(only(repo, 'not-to-unresolvable')).toEqual([]);
    const api = repo.modules.find((m) => m.source === 'apps/api/src/modules.ts');
    expect(api?.dependencies.map((d) => d.resolved)).toEqual(expect.arrayContaining(['libs/users/src/index.ts']));
  });

  it.each([
    ['Modules_AreImported_OnlyThroughEntryPointsOrContracts', 'boundary-no-deep-import'],
    ['RelativeImports_DoNotLeave_TheirAppOrLib', 'boundary-no-relative-climb'],
    ['Libs_DoNotDependOn_Apps', 'boundary-lib-no-apps'],
    ['Libs_DoNotImport_ThemselvesByAlias', 'boundary-no-self-alias'],
    ['Platform_DoesNotDependOn_DomainModules', 'boundary-platform-no-domain'],
    ['DomainModules_DependOnlyIn_TheDeclaredDirections', 'boundary-module-direction'],
    ['DomainModules_UseOtherModules_OnlyThroughContracts', 'boundary-contracts-only'],
    ['Files_HaveNoImportCycles', 'boundary-no-cycle'],
  ])('%s (%s)', (_name, rule) => {
    expect(format(only(repo, rule))).toEqual([]);
  });

  it('Repository_HasNoViolations_OfAnyRule', () => {
    expect(format(violations(repo))).toEqual([]);
  });

  it('Modules_HaveNoCycles_AtModuleLevel', () => {
    expect(moduleCycles(moduleGraph(repo))).toEqual([]);
  });

  it('ModuleGraphPicture_IsUpToDate (docs/module-graph.mmd)', () => {
    const picture = renderMermaid(moduleGraph(repo));
    let committed = '';
    try {
      committed = readFileSync(GRAPH_FILE, 'utf8');
    } catch {
      // missing counts as stale
    }
    if (committed !== picture) {
      throw new Error(`${path.relative(ROOT, GRAPH_FILE)} is stale: run npm run graph\n\nexpected:\n${picture}`);
    }
  });
});

describe('dependency-cruiser on the not-ok fixtures (fixtures/depcruise/)', () => {
  it('reports exactly the rule and file each fixture expects, and nothing in the ok files', () => {
    const found = [...new Set(violations(fixtures).map((v) => `${v.from} ${v.rule}`))].sort();
    expect(found).toEqual(expectedFixtureViolations());
  });

  it('names the rule, the file and the target in each violation', () => {
    expect(only(fixtures, 'boundary-platform-no-domain')).toEqual([
      { rule: 'boundary-platform-no-domain', from: 'libs/platform/src/welcome.ts', to: 'libs/users/src/contracts/index.ts' },
    ]);
    expect(only(fixtures, 'boundary-module-direction')).toEqual([
      { rule: 'boundary-module-direction', from: 'libs/users/src/order-stats.ts', to: 'libs/orders/src/contracts/index.ts' },
    ]);
  });

  it('has a fixture that breaks every rule of .dependency-cruiser.js', () => {
    const broken = new Set(violations(fixtures).map((v) => v.rule));
    expect(ruleNames().filter((rule) => !broken.has(rule))).toEqual([]);
  });
});

describe('.dependency-cruiser.js and .eslintrc.js state the same rules', () => {
  const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

  it('both read the modules and their directions from the manifests, and declare none themselves', () => {
    for (const file of ['.eslintrc.js', '.dependency-cruiser.js']) {
      expect(read(file)).toContain("require('./scripts/module-manifests.cjs').boundaryDeclarations(__dirname)");
      expect(read(file)).not.toMatch(/MAY_USE = \{|DOMAIN = \[/);
    }
  });

  it('the manifest loader the tools use agrees with the manifests the apps compile in', () => {
    const loaded = boundaryDeclarations(ROOT);
    expect(new Set(loaded.DOMAIN)).toEqual(new Set(MODULE_MANIFESTS.map((m) => m.name)));
    expect(loaded.MAY_USE).toEqual(Object.fromEntries(MODULE_MANIFESTS.map((m) => [m.name, [...m.mayUse]])));
    const declarations = (m: ModuleManifest) => JSON.parse(JSON.stringify({ ...m, config: Object.keys(m.config?.properties ?? {}) }));
    expect((loadManifests(ROOT) as ModuleManifest[]).map(declarations)).toEqual(expect.arrayContaining(MODULE_MANIFESTS.map(declarations)));
  });

  it('has a dependency-cruiser rule for every ESLint import tag', () => {
    const tags = [...read('.eslintrc.js').matchAll(/rule\('([a-z-]+)'/g)].map((m) => `boundary-${m[1]}`);
    // import/no-cycle is the ESLint side of boundary-no-cycle.
    const expected = [...new Set([...tags, 'boundary-no-cycle'])].sort();
    expect(expected.filter((rule) => !ruleNames().includes(rule))).toEqual([]);
  });
});

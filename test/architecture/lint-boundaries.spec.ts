import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadESLint } from 'eslint';

/**
 * Proves the boundary rulebook (.eslintrc.js) fires: every fixture under not-ok/ must
 * produce exactly the findings its `// expect:` line names, every fixture under ok/ none.
 * A fixture is linted as if it lived at its `// lint-as:` path, so the per-directory
 * overrides apply without the file ever being written into a lib.
 */
const ROOT = path.resolve(__dirname, '../..');
const FIXTURES = path.join(__dirname, 'fixtures');
// The repo's own rules (`eslint --rulesdir eslint-rules` in `npm run lint`); each file is a rule.
const RULES_DIR = path.join(ROOT, 'eslint-rules');
const TAG = /\[boundary\/[a-z-]+\]/;

interface Fixture {
  name: string;
  lintAs: string;
  expected: string[];
  code: string;
}

function loadFixtures(kind: 'ok' | 'not-ok'): Fixture[] {
  const dir = path.join(FIXTURES, kind);
  return readdirSync(dir)
    .filter((file) => file.endsWith('.ts'))
    .sort()
    .map((file) => {
      const code = readFileSync(path.join(dir, file), 'utf8');
      const lintAs = /^\/\/ lint-as: (\S+)$/m.exec(code)?.[1];
      if (!lintAs) throw new Error(`${kind}/${file} has no "// lint-as: <path>" line`);
      const expected = /^\/\/ expect: (.+)$/m.exec(code)?.[1].trim().split(/\s+/) ?? [];
      return { name: `${kind}/${file}`, lintAs, expected: expected.sort(), code };
    });
}

const notOk = loadFixtures('not-ok');
const ok = loadFixtures('ok');

// One linter for the whole file. Fixtures are not in tsconfig.json (their paths are
// virtual), so type-aware parsing is switched off here and with it the one type-aware
// rule; the boundary rules and import/no-cycle need no type information.
let lint: (fixture: Fixture) => Promise<string[]>;

beforeAll(async () => {
  const LegacyESLint = await loadESLint({ useFlatConfig: false });
  const eslint = new LegacyESLint({
    cwd: ROOT,
    rulePaths: [RULES_DIR],
    overrideConfig: {
      parserOptions: { project: null },
      rules: { '@typescript-eslint/no-floating-promises': 'off' },
    },
  });
  lint = async ({ code, lintAs }) => {
    const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, lintAs) });
    // A boundary finding is keyed by its tag, anything else by its rule id, so a parse
    // error or a stray rule in a fixture fails the comparison too.
    return result.messages
      .map((m) => TAG.exec(m.message)?.[0] ?? m.ruleId ?? `fatal: ${m.message}`)
      .sort();
  };
});

describe('.eslintrc.js boundary rules', () => {
  it.each(notOk.map((f) => [f.name, f] as const))('%s is rejected with the rule it breaks', async (_name, fixture) => {
    expect(fixture.expected.length).toBeGreaterThan(0);
    expect(await lint(fixture)).toEqual(fixture.expected);
  });

  it.each(ok.map((f) => [f.name, f] as const))('%s passes', async (_name, fixture) => {
    expect(await lint(fixture)).toEqual([]);
  });

  it('has a not-ok fixture for every boundary tag the rulebook defines', () => {
    const rulebook = readFileSync(path.join(ROOT, '.eslintrc.js'), 'utf8');
    const custom = readdirSync(RULES_DIR).filter((f) => f.endsWith('.js')).map((f) => path.basename(f, '.js'));
    const defined = [...[...rulebook.matchAll(/rule\('([a-z-]+)'/g)].map((m) => m[1]), ...custom].map((tag) => `[boundary/${tag}]`);
    const covered = new Set(notOk.flatMap((f) => f.expected));
    expect(defined.length).toBeGreaterThan(0);
    expect(defined.filter((tag) => !covered.has(tag))).toEqual([]);
  });
});

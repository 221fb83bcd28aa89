import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  checkMigrationSource,
  checkRepository,
  knownModules,
  migrationFiles,
  RULES,
  type MigrationFinding,
} from './support/migration-checker';
import { MODULE_MANIFESTS } from '@app/manifests';

/**
 * No migration of a module touches another module's schema or declares a foreign key that
 * can leave its own schema (docs/architecture.md, "Tables and roles"). The checker reads the SQL literals
 * of every file under libs/<module>/src/persistence/migrations/; the fixtures under
 * fixtures/migrations/ say with `// module:` whose migration they pretend to be and with
 * `// expect:` which rules they break.
 */
const ROOT = path.resolve(__dirname, '../..');
const FIXTURES = path.join(__dirname, 'fixtures/migrations');

interface Fixture {
  name: string;
  module: string;
  expected: string[];
  source: string;
}

function loadFixtures(kind: 'ok' | 'not-ok'): Fixture[] {
  return readdirSync(path.join(FIXTURES, kind))
    .filter((file) => file.endsWith('.ts'))
    .sort()
    .map((file) => {
      const name = `${kind}/${file}`;
      const source = readFileSync(path.join(FIXTURES, kind, file), 'utf8');
      const module = /^\/\/ module: (\S+)$/m.exec(source)?.[1];
      if (!module) throw new Error(`${name} has no "// module: <module>" line`);
      const expected = /^\/\/ expect: (.+)$/m.exec(source)?.[1].trim().split(/\s+/) ?? [];
      return { name, module, expected: expected.sort(), source };
    });
}

const check = (fixture: Fixture): MigrationFinding[] => checkMigrationSource(fixture.source, { file: fixture.name, module: fixture.module });
const notOk = loadFixtures('not-ok');
const ok = loadFixtures('ok');

describe('Migrations stay inside their module schema', () => {
  it('finds the migrations of every module that has them', () => {
    const modules = MODULE_MANIFESTS.map((m) => m.name).sort();
    expect(knownModules()).toEqual(modules);
    expect(new Set(migrationFiles().map((f) => f.module))).toEqual(new Set(modules));
  });

  it('Migrations_DoNotTouch_OtherModulesSchemas_NorDeclareForeignKeysAcrossThem', () => {
    expect(checkRepository(ROOT).findings.map((f) => f.message)).toEqual([]);
  });

  it("Platform_MessagingDdl_NamesNoSchemaOfItsOwn (every module's outbox/inbox tables come from it)", () => {
    const file = 'libs/platform/src/database/outbox-inbox.sql.ts';
    const source = readFileSync(path.join(ROOT, file), 'utf8');
    // As if it belonged to no module: any hard-coded schema would be reported.
    expect(checkMigrationSource(source, { file, module: '' }).map((f) => f.message)).toEqual([]);
  });

  it.each(notOk.map((f) => [f.name, f] as const))('%s is rejected with the rule it breaks, naming the file', (_name, fixture) => {
    const findings = check(fixture);
    expect(fixture.expected.length).toBeGreaterThan(0);
    expect(findings.map((f) => f.rule).sort()).toEqual(fixture.expected);
    for (const finding of findings) {
      expect(finding.message).toMatch(new RegExp(`^\\[${finding.rule}\\] ${fixture.name}:\\d+ \\(module ${fixture.module}\\) `));
    }
  });

  it.each(ok.map((f) => [f.name, f] as const))('%s passes', (_name, fixture) => {
    expect(check(fixture)).toEqual([]);
  });

  it('has a not-ok fixture for every rule of the checker', () => {
    const covered = new Set(notOk.flatMap((f) => f.expected));
    expect(RULES.filter((rule) => !covered.has(rule))).toEqual([]);
  });

  it('names the offending file, line and schema', () => {
    const [fixture] = notOk.filter((f) => f.name === 'not-ok/orders-foreign-key-into-users.ts');
    expect(check(fixture).map((f) => f.message)).toEqual([
      `[migration-no-cross-schema-fk] not-ok/orders-foreign-key-into-users.ts:10 (module orders) declares a foreign key into schema "users" (users.users); a module's keys stay in its own schema`,
    ]);
  });
});

'use strict';
/**
 * The static half of "each module owns its tables" (docs/architecture.md, "Tables and roles"): a module's
 * migrations never touch another module's schema and never declare a foreign key that
 * could leave their own schema. (The other half is the database itself: each module's
 * role has privileges on its own schema only.)
 *
 * Only the text of string and template literals is read, i.e. the SQL, not comments; the
 * literals are found with TypeScript's parser. Plain CommonJS with a .d.ts beside it so that
 * test/architecture/migrations.spec.ts and scripts/boundaries.mjs share it.
 *
 * Rules (names as they appear in findings):
 *   migration-own-schema      SQL names another module's schema (`orders.x`, `"orders".x`,
 *                             `SCHEMA orders`, `search_path ... orders`), or a literal that
 *                             is exactly another module's name is handed to a call (for
 *                             example messagingTablesUp('orders')).
 *   migration-no-cross-schema-fk
 *                             `REFERENCES <schema>.<table>` into another schema, or an
 *                             unqualified `REFERENCES <table>`, which resolves through the
 *                             search_path and so cannot be shown to stay in the schema.
 */
const { readdirSync, readFileSync, existsSync } = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

const ROOT = path.resolve(__dirname, '../../..');
const RULES = ['migration-own-schema', 'migration-no-cross-schema-fk'];

/** Domain modules: every lib but the platform (which owns no schema). */
function knownModules(root = ROOT) {
  return readdirSync(path.join(root, 'libs'), { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !['platform', 'manifests'].includes(entry.name))
    .map((entry) => entry.name)
    .sort();
}

/** Every migration file of every module, as { module, file } with file relative to root. */
function migrationFiles(root = ROOT) {
  return knownModules(root).flatMap((module) => {
    const dir = path.join(root, 'libs', module, 'src/persistence/migrations');
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((name) => name.endsWith('.ts') && !name.endsWith('.spec.ts'))
      .sort()
      .map((name) => ({ module, file: path.relative(root, path.join(dir, name)).split(path.sep).join('/') }));
  });
}

/** The string and template literals of a source file, with the line each starts on. */
function literals(source, file) {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found = [];
  const line = (node) => sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
  const visit = (node) => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) {
      found.push({ text: node.text, line: line(node), whole: true, node });
    } else if (ts.isTemplateExpression(node)) {
      // `${...}` parts are unknown here; a space keeps `${s}.outbox` from reading as `x.outbox`.
      const text = [node.head.text, ...node.templateSpans.map((span) => span.literal.text)].join(' ');
      found.push({ text, line: line(node), whole: false, node });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

const ident = '"?([A-Za-z_][A-Za-z0-9_$]*)"?';
const FOREIGN_KEY = new RegExp(`\\bREFERENCES\\s+(?:${ident}\\s*\\.\\s*)?${ident}`, 'gi');

/**
 * Findings for one migration's source, pretending it belongs to `module`.
 * @returns {{ file: string, line: number, rule: string, message: string }[]}
 */
function checkMigrationSource(source, { file, module, modules = knownModules() }) {
  const others = modules.filter((m) => m !== module);
  const findings = [];
  const report = (rule, line, detail) =>
    findings.push({ file, line, rule, message: `[${rule}] ${file}:${line} (module ${module}) ${detail}` });
  if (!others.length) return findings;

  const other = `(${others.join('|')})`;
  const mentions = [
    new RegExp(`(?<![\\w$."])"?${other}"?\\s*\\.\\s*"?[A-Za-z_][\\w$]*"?`, 'gi'),
    new RegExp(`\\bSCHEMA\\s+(?:IF\\s+(?:NOT\\s+)?EXISTS\\s+)?"?${other}"?(?![\\w$])`, 'gi'),
    new RegExp(`\\bsearch_path\\b[^;]*?(?<![\\w$])"?${other}"?(?![\\w$])`, 'gi'),
  ];

  for (const literal of literals(source, file)) {
    // Foreign keys first; their text is then blanked so it is not reported twice.
    const lineOf = (offset) => literal.line + (literal.text.slice(0, offset).match(/\n/g)?.length ?? 0);
    let sql = literal.text.replace(FOREIGN_KEY, (match, schema, table, offset) => {
      if (!schema) {
        report('migration-no-cross-schema-fk', lineOf(offset),
          `declares a foreign key to "${table}" without a schema; write REFERENCES ${module}.${table} (keys never leave the module's schema)`);
      } else if (schema.toLowerCase() !== module) {
        report('migration-no-cross-schema-fk', lineOf(offset),
          `declares a foreign key into schema "${schema}" (${schema}.${table}); a module's keys stay in its own schema`);
      }
      return ' '.repeat(match.length);
    });
    for (const pattern of mentions) {
      sql = sql.replace(pattern, (match, schema, offset) => {
        report('migration-own-schema', lineOf(offset),
          `touches schema "${schema.toLowerCase()}" of module ${schema.toLowerCase()} (${match.trim().replace(/\s+/g, ' ')}); a migration changes its own schema only`);
        return ' '.repeat(match.length);
      });
    }
    // A bare module name handed to a helper, e.g. messagingTablesUp('orders').
    if (literal.whole && others.includes(literal.text) && ts.isCallExpression(literal.node.parent)) {
      report('migration-own-schema', literal.line,
        `passes schema name "${literal.text}" of module ${literal.text} to ${literal.node.parent.expression.getText()}(); a migration changes its own schema only`);
    }
  }
  return findings.sort((a, b) => a.line - b.line || a.rule.localeCompare(b.rule));
}

/** Reads and checks one file. */
function checkMigrationFile(fullPath, { module, file = fullPath, modules } = {}) {
  return checkMigrationSource(readFileSync(fullPath, 'utf8'), { file, module, modules });
}

/** Checks every migration of the repository: { files, findings }. */
function checkRepository(root = ROOT) {
  const modules = knownModules(root);
  const files = migrationFiles(root);
  const findings = files.flatMap(({ module, file }) =>
    checkMigrationFile(path.join(root, file), { module, file, modules }),
  );
  return { files: files.map((f) => f.file), findings };
}

module.exports = { RULES, knownModules, migrationFiles, checkMigrationSource, checkMigrationFile, checkRepository, literals };

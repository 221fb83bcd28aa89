'use strict';
/**
 * "The schema must not block sharding by user" (docs/scaling.md): every table a module's
 * migrations create has a `user_id` column, the column Citus would distribute it by, unless
 * the module declares it otherwise, with the reason, in its database definition's
 * `distribution` (reference, local, distributed by another column, or to colocate first).
 *
 * Reads the SQL literals of migrations (like migration-checker.js): `CREATE TABLE
 * [IF NOT EXISTS] <schema>.<table> ( ... )` with its column list. Tables created as
 * `PARTITION OF` another, or `(LIKE ...)`, take the parent's columns and are not checked
 * on their own; names built at run time (`%I`, `${...}`) are skipped.
 *
 * Rules:
 *   shard-user-id            a table without user_id that its module does not declare.
 *   shard-stale-declaration  a declared table that no migration creates (keeps the list true).
 */
const { literals } = require('./migration-checker');

const RULES = ['shard-user-id', 'shard-stale-declaration'];
// The schema may be a `${...}` part, read as a space: `CREATE TABLE  .outbox (`.
const CREATE_TABLE = /\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:(?:"?([A-Za-z_][\w$]*)"?)?\s*\.\s*)?"?([A-Za-z_][\w$]*)"?(?=[\s(])/gi;

/** The body between the parenthesis at `open` and its match. */
function parenthesised(text, open) {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return text.slice(open + 1, i);
  }
  return text.slice(open + 1);
}

/** Tables a migration source creates: { table, line, columns } (columns lower-cased). */
function createdTables(source, file) {
  const found = [];
  for (const literal of literals(source, file)) {
    for (const match of literal.text.matchAll(CREATE_TABLE)) {
      const rest = literal.text.slice(match.index + match[0].length);
      const open = rest.search(/\S/);
      if (rest[open] !== '(') continue; // PARTITION OF, AS SELECT, ...: columns come from elsewhere
      const body = parenthesised(rest, open);
      if (/^\s*LIKE\b/i.test(body)) continue;
      // Column names: the first word of each top-level item that is not a constraint.
      const items = [];
      let depth = 0;
      let current = '';
      for (const ch of body) {
        if (ch === '(') depth++;
        if (ch === ')') depth--;
        if (ch === ',' && depth === 0) {
          items.push(current);
          current = '';
        } else current += ch;
      }
      items.push(current);
      const columns = items
        .map((item) => item.replace(/--[^\n]*/g, '').trim())
        .filter((item) => item && !/^(CONSTRAINT|PRIMARY|UNIQUE|FOREIGN|CHECK|EXCLUDE)\b/i.test(item))
        .map((item) => item.split(/\s+/)[0].replace(/"/g, '').toLowerCase());
      const line = literal.line + (literal.text.slice(0, match.index).match(/\n/g)?.length ?? 0);
      found.push({ schema: match[1]?.toLowerCase() ?? null, table: match[2].toLowerCase(), line, columns });
    }
  }
  return found;
}

/** Every table name a distribution declares, with the kind it is declared as. */
function declaredTables(distribution = {}) {
  const kinds = ['distributedBy', 'reference', 'local', 'colocateBeforeSharding'];
  return new Map(kinds.flatMap((kind) => Object.keys(distribution[kind] ?? {}).map((table) => [table, kind])));
}

/**
 * Findings for one module: `sources` are its migrations ({ file, source }), `distribution`
 * its declaration. Each message names the rule, file, line, module and table.
 */
function checkShardReadiness({ module, sources, distribution }) {
  const declared = declaredTables(distribution);
  const findings = [];
  const seen = new Set();
  for (const { file, source } of sources) {
    for (const created of createdTables(source, file)) {
      seen.add(created.table);
      const kind = declared.get(created.table);
      if (kind === 'distributedBy') {
        const column = distribution.distributedBy[created.table].column;
        if (!created.columns.includes(column)) {
          findings.push({ rule: 'shard-user-id', file, line: created.line, table: created.table,
            message: `[shard-user-id] ${file}:${created.line} (module ${module}) table ${module}.${created.table} is declared distributed by "${column}", which it does not have` });
        }
        continue;
      }
      if (created.columns.includes('user_id') || kind) continue;
      findings.push({ rule: 'shard-user-id', file, line: created.line, table: created.table,
        message: `[shard-user-id] ${file}:${created.line} (module ${module}) table ${module}.${created.table} has no user_id column: ` +
          `tables of a user-owned module are distributed by user_id (docs/scaling.md); add the column, or declare the table ` +
          `in the module's database definition (distribution: reference, local, distributedBy or colocateBeforeSharding) with the reason` });
    }
  }
  for (const [table, kind] of declared) {
    if (seen.has(table)) continue;
    findings.push({ rule: 'shard-stale-declaration', file: `${module} distribution`, line: 0, table,
      message: `[shard-stale-declaration] (module ${module}) declares ${module}.${table} as ${kind}, but no migration of the module creates it` });
  }
  return findings;
}

module.exports = { RULES, createdTables, checkShardReadiness };

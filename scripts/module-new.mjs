// `npm run module:new -- <name>`: a new domain module in one command (docs/architecture.md,
// "Module manifests", "Adding a module"). It renders scripts/module-template/ into
// libs/<name>/ and test/modules/<name>/ (manifest, settings, database definition and first
// migration, contracts, inbox consumer, endpoint, Nest module, entry point, e2e spec), then
// registers the module where a tool cannot read the manifests itself: tsconfig.base.json
// paths, nest-cli.json, libs/manifests (MODULE_MANIFESTS) and apps/api/src/modules.ts
// (DOMAIN_MODULE_CATALOGUE). ESLint, dependency-cruiser and jest find it through
// scripts/module-manifests.cjs. Finally it writes the JSON Schema of the new event
// (`npm run contracts:update`) and redraws docs/module-graph.mmd (`npm run graph`).
//
// Names: ^[a-z][a-z0-9]{1,20}$. The name is used verbatim as the Postgres schema and in the
// role `<DB_ROLE_PREFIX>_<name>`, upper-cased as the prefix of its variables
// (`<NAME>_DATABASE_URL`), in queue names (`<name>.inbox`), event types, URLs and, as is or
// capitalised, in TypeScript identifiers (`<name>Manifest`, `<Name>Module`). One lowercase
// word fits all of them unquoted: a hyphen would need quoting in SQL (the bootstrap refuses
// it outright), is not valid in a shell variable name or an identifier; an underscore would
// make `<prefix>_<name>` ambiguous. 21 characters at most: DB_ROLE_PREFIX may be 41, and
// `<prefix>_<name>` must fit Postgres' 63-byte identifiers. Also refused: an existing module
// or lib, `platform` and `manifests`, app/project names, `public`, SQL reserved words, and
// names the platform's own code already mentions (it must name no domain module:
// test/architecture/manifests-agree.spec.ts) or whose variable prefix another module uses.
//
// Nothing is written until every check has passed; if a later step fails, every file is put
// back as it was. Exit 0 and a list of what changed, or exit 1 (2 for usage) and why.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TEMPLATE = path.join(ROOT, 'scripts', 'module-template');
const require = createRequire(import.meta.url);

export const NAME_PATTERN = /^[a-z][a-z0-9]{1,20}$/;
/** Libraries that are not domain modules, apps, and Postgres' default schema. */
const RESERVED = ['platform', 'manifests', 'api', 'apps', 'libs', 'public'];
/** Postgres reserved keywords (pg_get_keywords() catcode R and T): not usable unquoted as a schema. */
const SQL_RESERVED = new Set(
  ('all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate collation column ' +
    'concurrently constraint create cross current_catalog current_date current_role current_schema current_time ' +
    'current_timestamp current_user default deferrable desc distinct do else end except false fetch for foreign freeze ' +
    'from full grant group having ilike in initially inner intersect into is isnull join lateral leading left like limit ' +
    'localtime localtimestamp natural not notnull null offset on only or order outer overlaps placing primary references ' +
    'returning right select session_user similar some symmetric table tablesample then to trailing true union unique user ' +
    'using variadic verbose when where window with').split(' '),
);

const rel = (file) => path.relative(ROOT, file).split(path.sep).join('/');
const read = (file) => readFileSync(path.join(ROOT, file), 'utf8');

class Refusal extends Error {}

function casings(name) {
  return { name, Name: name[0].toUpperCase() + name.slice(1), NAME: name.toUpperCase() };
}

/** Every reason `name` cannot be a new module here; empty when it can. */
function nameProblems(name) {
  if (!NAME_PATTERN.test(name)) {
    return [
      `"${name}" is not a valid module name: use one lowercase word, a letter then letters or digits, 2 to 21 characters ` +
        `(${NAME_PATTERN}); it becomes the schema, the role suffix, the <NAME>_ variable prefix and the queue names`,
    ];
  }
  const problems = [];
  const { NAME } = casings(name);
  if (RESERVED.includes(name)) problems.push(`"${name}" is reserved (libs/platform, libs/manifests, the apps and Postgres' public schema)`);
  if (SQL_RESERVED.has(name)) problems.push(`"${name}" is an SQL reserved word: the module's SQL names its schema unquoted`);
  for (const dir of ['libs', 'apps']) {
    if (existsSync(path.join(ROOT, dir, name))) problems.push(`${dir}/${name} already exists`);
  }
  if (existsSync(path.join(ROOT, 'test', 'modules', name))) problems.push(`test/modules/${name} already exists`);
  const paths = JSON.parse(read('tsconfig.base.json')).compilerOptions?.paths ?? {};
  if (Object.keys(paths).some((alias) => alias === `@app/${name}` || alias.startsWith(`@app/${name}/`))) {
    problems.push(`tsconfig.base.json already has the alias @app/${name}`);
  }
  if (JSON.parse(read('nest-cli.json')).projects?.[name]) problems.push(`nest-cli.json already has a project "${name}"`);
  if (new RegExp(`^\\s*${name}\\s*:`, 'm').test(read('apps/api/src/modules.ts'))) {
    problems.push(`apps/api/src/modules.ts already lists "${name}" in DOMAIN_MODULE_CATALOGUE`);
  }

  const { loadManifests } = require('./module-manifests.cjs');
  for (const manifest of loadManifests(ROOT)) {
    if (manifest.name === name || manifest.schema === name) problems.push(`module "${manifest.name}" already owns the name or schema "${name}"`);
    const clash = Object.keys(manifest.config?.properties ?? {}).filter((key) => key.startsWith(`${NAME}_`));
    if (clash.length) problems.push(`module "${manifest.name}" already declares variables with the prefix ${NAME}_ (${clash.join(', ')})`);
  }

  // The same patterns as test/architecture/manifests-agree.spec.ts ("libs/platform names no domain module").
  const platform = path.join(ROOT, 'libs', 'platform', 'src');
  const patterns = [new RegExp(`['"\`]${name}['"\`.:]`), new RegExp(`\\b${NAME}_`), new RegExp(`@app/${name}\\b`)];
  const files = readdirSync(platform, { recursive: true }).filter((f) => String(f).endsWith('.ts') && !String(f).endsWith('.spec.ts'));
  for (const file of files.sort()) {
    const source = readFileSync(path.join(platform, String(file)), 'utf8');
    const hit = patterns.find((pattern) => pattern.test(source));
    if (hit) {
      problems.push(`libs/platform/src/${file} already mentions "${name}" (${hit}); the platform must name no domain module, so pick another name`);
      break;
    }
  }
  return problems;
}

/** Template files, as paths relative to the template root. */
function templateFiles(dir = TEMPLATE, prefix = '') {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) return templateFiles(path.join(dir, entry.name), relative);
    return entry.name.endsWith('.tmpl') ? [relative] : [];
  });
}

function render(text, values) {
  return text.replace(/__(name|Name|NAME|timestamp)__/g, (_, key) => values[key]);
}

/** `import { x } from '<specifier>';` lines of one block, with the new one, sorted by specifier. */
function addSortedImport(source, file, linePattern, newLine) {
  const lines = source.split('\n');
  const indexes = lines.map((line, i) => (linePattern.test(line) ? i : -1)).filter((i) => i >= 0);
  if (!indexes.length || indexes[indexes.length - 1] - indexes[0] !== indexes.length - 1) {
    throw new Error(`${file}: cannot find one block of lines matching ${linePattern} to add "${newLine}" to`);
  }
  const specifier = (line) => /from '([^']+)'/.exec(line)[1];
  const block = [...indexes.map((i) => lines[i]), newLine].sort((a, b) => specifier(a).localeCompare(specifier(b)));
  lines.splice(indexes[0], indexes.length, ...block);
  return lines.join('\n');
}

function replaceOnce(source, file, pattern, replacer) {
  const matches = source.match(new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`)) ?? [];
  if (matches.length !== 1) throw new Error(`${file}: expected exactly one match of ${pattern}, found ${matches.length}`);
  return source.replace(pattern, replacer);
}

const json = (value) => `${JSON.stringify(value, null, 2)}\n`;

/** The new contents of the files that register a module: { file: text }. */
function registrations({ name, Name }) {
  const edits = {};

  const base = JSON.parse(read('tsconfig.base.json'));
  const paths = Object.entries(base.compilerOptions.paths);
  const at = paths.findIndex(([alias]) => alias === '@app/manifests');
  paths.splice(at < 0 ? paths.length : at, 0,
    [`@app/${name}`, [`./libs/${name}/src/index`]],
    [`@app/${name}/contracts`, [`./libs/${name}/src/contracts/index`]],
    [`@app/${name}/manifest`, [`./libs/${name}/src/module.manifest`]]);
  base.compilerOptions.paths = Object.fromEntries(paths);
  edits['tsconfig.base.json'] = json(base);

  const nest = JSON.parse(read('nest-cli.json'));
  const projects = Object.entries(nest.projects);
  const project = {
    type: 'library',
    root: `libs/${name}`,
    entryFile: 'index',
    sourceRoot: `libs/${name}/src`,
    compilerOptions: { tsConfigPath: `libs/${name}/tsconfig.lib.json` },
  };
  const manifests = projects.findIndex(([key]) => key === 'manifests');
  projects.splice(manifests < 0 ? projects.length : manifests, 0, [name, project]);
  nest.projects = Object.fromEntries(projects);
  edits['nest-cli.json'] = json(nest);

  const manifestsFile = 'libs/manifests/src/index.ts';
  let aggregate = addSortedImport(read(manifestsFile), manifestsFile, /^import \{ \w+Manifest \} from '@app\/[a-z0-9]+\/manifest';$/,
    `import { ${name}Manifest } from '@app/${name}/manifest';`);
  // Appended: the array's order is the boot order.
  aggregate = replaceOnce(aggregate, manifestsFile, /(export const MODULE_MANIFESTS[^=]*=\s*\[)([^\]]*)\]/,
    (_, head, items) => `${head}${items.trim().replace(/,$/, '')}, ${name}Manifest]`);
  edits[manifestsFile] = aggregate;

  const catalogueFile = 'apps/api/src/modules.ts';
  let catalogue = addSortedImport(read(catalogueFile), catalogueFile, /^import \{ \w+Module, \w+Database \} from '@app\/[a-z0-9]+';$/,
    `import { ${Name}Module, ${name}Database } from '@app/${name}';`);
  catalogue = replaceOnce(catalogue, catalogueFile, /(export const DOMAIN_MODULE_CATALOGUE[^=]*=\s*\{\n(?:[^\n]*\n)*?)(\};)/,
    (_, body, end) => `${body}  ${name}: { module: ${Name}Module, database: ${name}Database },\n${end}`);
  edits[catalogueFile] = catalogue;
  return edits;
}

function run(step, script, args) {
  const result = spawnSync(process.execPath, [path.join(ROOT, script), ...args], { cwd: ROOT, encoding: 'utf8' });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
  if (result.status !== 0) throw new Error(`${step} failed (node ${[script, ...args].join(' ')}):\n${output}`);
  return output;
}

/** Every committed event schema (libs/<module>/src/contracts/events/*.schema.json) and its text. */
function eventSchemas() {
  const schemas = new Map();
  for (const lib of readdirSync(path.join(ROOT, 'libs'))) {
    const dir = path.join('libs', lib, 'src', 'contracts', 'events');
    if (!existsSync(path.join(ROOT, dir))) continue;
    for (const file of readdirSync(path.join(ROOT, dir))) {
      if (file.endsWith('.schema.json')) schemas.set(`${dir}/${file}`.split(path.sep).join('/'), read(path.join(dir, file)));
    }
  }
  return schemas;
}

function generate(name) {
  const values = { ...casings(name), timestamp: String(Date.now()) };
  const files = templateFiles().map((template) => ({
    template,
    target: render(template.replace(/\.tmpl$/, ''), values),
  }));
  const edits = registrations(values);
  const originals = new Map();
  for (const file of [...Object.keys(edits), 'docs/module-graph.mmd']) {
    originals.set(file, existsSync(path.join(ROOT, file)) ? read(file) : undefined);
  }
  // contracts:update writes every pending compatible change; only the new module's are ours.
  for (const [file, text] of eventSchemas()) originals.set(file, text);
  const createdRoots = [`libs/${name}`, `test/modules/${name}`];
  const testModulesExisted = existsSync(path.join(ROOT, 'test', 'modules'));
  const rollback = () => {
    for (const dir of createdRoots) rmSync(path.join(ROOT, dir), { recursive: true, force: true });
    if (!testModulesExisted) rmSync(path.join(ROOT, 'test', 'modules'), { recursive: true, force: true });
    for (const [file, text] of originals) {
      if (text === undefined) rmSync(path.join(ROOT, file), { force: true });
      else writeFileSync(path.join(ROOT, file), text);
    }
  };

  try {
    for (const { template, target } of files) {
      const full = path.join(ROOT, target);
      mkdirSync(path.dirname(full), { recursive: true });
      writeFileSync(full, render(readFileSync(path.join(TEMPLATE, template), 'utf8'), values), { flag: 'wx' });
    }
    for (const [file, text] of Object.entries(edits)) writeFileSync(path.join(ROOT, file), text);
    const contracts = run('npm run contracts:update', 'scripts/event-contracts.cjs', ['update']);
    const others = [...eventSchemas()].filter(([file, text]) => !file.startsWith(`libs/${name}/`) && originals.get(file) !== text);
    for (const [file] of others) {
      const text = originals.get(file);
      if (text === undefined) rmSync(path.join(ROOT, file));
      else writeFileSync(path.join(ROOT, file), text);
    }
    const graph = run('npm run graph', 'scripts/graph.mjs', []);
    return { files: files.map((f) => f.target).sort(), edits: Object.keys(edits), contracts, graph, others: others.map(([file]) => file) };
  } catch (error) {
    rollback();
    throw error;
  }
}

function main(argv) {
  const args = argv.filter((a) => a !== '--');
  if (args.length !== 1 || args[0] === '--help' || args[0] === '-h' || args[0].startsWith('-')) {
    process.stderr.write('usage: npm run module:new -- <name>    (one lowercase word, e.g. billing)\n');
    return args.length === 1 && (args[0] === '--help' || args[0] === '-h') ? 0 : 2;
  }
  const name = args[0];
  try {
    const problems = nameProblems(name);
    if (problems.length) throw new Refusal(problems.join('\n  '));
    const { NAME } = casings(name);
    const result = generate(name);
    const out = [
      `module:new: created module "${name}"`,
      '',
      'created',
      ...result.files.map((f) => `  ${f}`),
      '',
      'registered in',
      `  tsconfig.base.json            paths @app/${name}, @app/${name}/contracts, @app/${name}/manifest`,
      `  nest-cli.json                 library project "${name}"`,
      `  libs/manifests/src/index.ts   MODULE_MANIFESTS (${name}Manifest)`,
      `  apps/api/src/modules.ts       DOMAIN_MODULE_CATALOGUE (${name})`,
      '',
      'generated',
      ...result.contracts
        .split('\n')
        .filter((line) => line && !result.others.some((file) => line.includes(file)))
        .map((line) => `  ${line}   (npm run contracts:update)`),
      ...result.graph.split('\n').filter(Boolean).map((l) => `  ${l}   (npm run graph)`),
      ...(result.others.length
        ? ['', 'left as they were (changes of other modules pending; run npm run contracts:update for them):', ...result.others.map((f) => `  ${f}`)]
        : []),
      '',
      `It owns schema "${name}" (role <DB_ROLE_PREFIX>_${name}, ${NAME}_DATABASE_URL and ${NAME}_DB_* overrides, ${NAME}_LIST_LIMIT),`,
      `queues ${name}.inbox and ${name}.external, and serves /v1/${name}/examples. Check it with:`,
      `  npm run lint && npm run boundaries && npx tsc -p tsconfig.json && npm run contracts:check && npx jest test/modules/${name}`,
      '',
    ];
    process.stdout.write(out.join('\n'));
    return 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(error instanceof Refusal ? `module:new: refused:\n  ${message}\n` : `module:new: failed, nothing was changed:\n${message}\n`);
    return 1;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}

'use strict';
/**
 * Event contracts that cannot break silently (docs/architecture.md, "Event contracts").
 *
 * Every event version a manifest publishes has a payload type in its module's contracts
 * (`export interface EventPayloads { [UserEvents.registered]: UserRegisteredV1; ... }` in
 * libs/<module>/src/contracts/index.ts) and a committed JSON Schema generated from it
 * (libs/<module>/src/contracts/events/<type>.schema.json). `check` compares the two and
 * fails on a breaking change to a published version, a version without schema, a schema
 * of a version no longer published, a payload map out of step with the manifest, and the
 * manifests' own declaration errors (manifestProblems). `update` writes new schemas and
 * compatible changes, never a breaking one, and never deletes a schema.
 *
 *   node scripts/event-contracts.cjs check|update [--root <dir>]
 *   (npm run contracts:check / contracts:update; test/architecture/event-contracts.spec.ts)
 *
 * The generator is the TypeScript checker itself (the repository's one `typescript`): a
 * contract is plain JSON data, so it supports interfaces and object types (intersections
 * too), optional fields, string/number/boolean, literal unions and enums, arrays, `null`
 * unions and nested objects, and refuses anything else by name (any, unknown, Date,
 * functions, index signatures, tuples, unions of object types, recursion).
 *
 * Compatibility rule: events are read in both directions. New consumers read old events
 * (outbox replay, dead letters, jobs queued across a deploy) and old consumers read new
 * ones (rolling deploys, an extracted service, external consumers). So the only
 * compatible changes are an added optional field (consumers ignore fields they do not
 * know) and documentation; everything else, including widening an enum, needs a new
 * version.
 */
const { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } = require('node:fs');
const path = require('node:path');
const Module = require('node:module');
const ts = require('typescript');
const { loadManifests } = require('./module-manifests.cjs');

const REPO_ROOT = path.resolve(__dirname, '..');
const PAYLOAD_MAP = 'EventPayloads';
const UPDATE = 'npm run contracts:update';
const JSON_SCHEMA = 'http://json-schema.org/draft-07/schema#';
const SCHEMA_SUFFIX = '.schema.json';
/** Contracts are JSON shapes: ES2015's declarations are all they can need, and parse fast. */
const LIBS = ['lib.es2015.d.ts'];

const posix = (file) => file.split(path.sep).join('/');
const contractsFile = (root, module) => path.join(root, 'libs', module, 'src', 'contracts', 'index.ts');
const schemaDir = (root, module) => path.join(root, 'libs', module, 'src', 'contracts', 'events');
const schemaFile = (root, module, type) => path.join(schemaDir(root, module), `${type}${SCHEMA_SUFFIX}`);

/** The schema as committed: two-space JSON with a final newline. */
const serialize = (schema) => `${JSON.stringify(schema, null, 2)}\n`;

// ---------------------------------------------------------------------------------------
// manifestProblems() from libs/platform, loaded from this repository (fixtures have none).

let manifestProblemsFn;
function manifestProblems(manifests) {
  if (!manifestProblemsFn) {
    const file = path.join(REPO_ROOT, 'libs', 'platform', 'src', 'messaging', 'module-manifest.ts');
    manifestProblemsFn = loadRelativeTs(file, new Map()).manifestProblems;
  }
  return manifestProblemsFn(manifests);
}

/** Loads a TypeScript file: relative imports as TypeScript, packages as usual (type imports are erased). */
function loadRelativeTs(file, cache) {
  if (cache.has(file)) return cache.get(file).exports;
  const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), {
    fileName: file,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
  });
  const mod = new Module(file);
  mod.filename = file;
  cache.set(file, mod);
  const localRequire = (specifier) => {
    if (!specifier.startsWith('.')) return require(specifier);
    return loadRelativeTs(path.resolve(path.dirname(file), `${specifier}.ts`), cache);
  };
  new Function('exports', 'require', 'module', '__filename', '__dirname', outputText)(mod.exports, localRequire, mod, file, path.dirname(file));
  return mod.exports;
}

// ---------------------------------------------------------------------------------------
// Generator: payload type → JSON Schema (draft-07), over the TypeScript checker.

class ContractError extends Error {
  constructor(at, message) {
    super(message);
    this.at = at;
  }
}

/** `$.a.b`, `$.lines[*].sku`, `$['odd-name']`. */
function child(at, name) {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? `${at}.${name}` : `${at}[${JSON.stringify(name)}]`;
}

function docs(symbol, checker) {
  return ts.displayPartsToString(symbol.getDocumentationComment(checker)).replace(/\s*\n\s*/g, ' ').trim();
}

const libSourceFiles = new Map();

/** One program over every module's contracts; lib files are parsed once per process. */
function createProgram(root, files) {
  const base = path.join(root, 'tsconfig.base.json');
  let paths;
  if (existsSync(base)) paths = ts.readConfigFile(base, ts.sys.readFile).config?.compilerOptions?.paths;
  const { options: fromConfig } = ts.parseJsonConfigFileContent({ compilerOptions: paths ? { paths } : {}, files: [] }, ts.sys, root, undefined, base);
  const options = {
    ...fromConfig,
    // strictNullChecks keeps `| null` and the `undefined` of optional fields apart.
    strict: true,
    noEmit: true,
    types: [],
    lib: LIBS,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.Node20,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options, true);
  const read = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => {
    if (!/[\\/]node_modules[\\/]typescript[\\/]lib[\\/]/.test(fileName)) return read(fileName, languageVersion, onError, shouldCreate);
    if (!libSourceFiles.has(fileName)) libSourceFiles.set(fileName, read(fileName, languageVersion, onError, shouldCreate));
    return libSourceFiles.get(fileName);
  };
  return ts.createProgram(files, options, host);
}

/** The `EventPayloads` map of a contracts file: event type → { type, description }, or undefined. */
function payloadMap(program, file) {
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  const moduleSymbol = source && checker.getSymbolAtLocation(source);
  if (!moduleSymbol) return undefined;
  let symbol = checker.getExportsOfModule(moduleSymbol).find((s) => s.getName() === PAYLOAD_MAP);
  if (!symbol) return undefined;
  if (symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  if (!(symbol.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias))) return { notAType: true };
  const map = new Map();
  for (const entry of checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(symbol))) {
    const type = checker.getTypeOfSymbol(entry);
    const description = docs(entry, checker) || (type.aliasSymbol && docs(type.aliasSymbol, checker)) || (type.symbol && docs(type.symbol, checker)) || '';
    map.set(entry.getName(), { type, description });
  }
  return { map };
}

/** The JSON Schema of one event version's payload. Throws ContractError naming the field. */
function payloadSchema(checker, type, eventType, contracts, description) {
  const body = schemaOf(checker, [type], '$', []);
  if (body.type !== 'object') throw new ContractError('$', `the payload must be an object type, not ${checker.typeToString(type)}`);
  return {
    $schema: JSON_SCHEMA,
    $comment: `Generated by ${UPDATE} from ${PAYLOAD_MAP}['${eventType}'] in ${contracts}. A published version changes only compatibly; see docs/architecture.md, "Event contracts".`,
    title: eventType,
    ...(description ? { description } : {}),
    ...body,
  };
}

const KIND_ORDER = ['string', 'number', 'boolean', 'array', 'object', 'null'];

/** Schema of the union of `types` (one type, or the members of a union). */
function schemaOf(checker, types, at, stack) {
  const members = types.flatMap((t) => (t.flags & ts.TypeFlags.Union ? t.types : [t]));
  const literals = { string: new Set(), number: new Set(), boolean: new Set() };
  const plain = new Set();
  const structured = [];
  for (const t of members) {
    const f = t.flags;
    if (f & ts.TypeFlags.String) plain.add('string');
    else if (f & ts.TypeFlags.Number) plain.add('number');
    else if (f & ts.TypeFlags.Boolean) plain.add('boolean');
    else if (f & ts.TypeFlags.Null) plain.add('null');
    else if (f & ts.TypeFlags.StringLiteral) literals.string.add(t.value);
    else if (f & ts.TypeFlags.NumberLiteral) literals.number.add(t.value);
    else if (f & ts.TypeFlags.BooleanLiteral) literals.boolean.add(t.intrinsicName === 'true');
    else if (f & ts.TypeFlags.Undefined) throw new ContractError(at, 'undefined is not JSON: make the field optional (name?: T) instead');
    else if (f & (ts.TypeFlags.Object | ts.TypeFlags.Intersection)) structured.push(t);
    else throw new ContractError(at, `unsupported type ${checker.typeToString(t)}${t.intrinsicName === 'error' ? ' (it does not compile)' : ''}`);
  }
  if (literals.boolean.size === 2) plain.add('boolean');
  const parts = [];
  for (const kind of ['string', 'number', 'boolean']) {
    if (plain.has(kind)) parts.push({ type: kind });
    else if (literals[kind].size) parts.push({ type: kind, enum: [...literals[kind]].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) });
  }
  const arrays = structured.filter((t) => checker.isArrayType(t));
  const objects = structured.filter((t) => !checker.isArrayType(t));
  if (arrays.length > 1 || objects.length > 1) {
    throw new ContractError(at, `unsupported union ${members.map((t) => checker.typeToString(t)).join(' | ')}: at most one object type and one array type (publish separate event types, or one object with optional fields)`);
  }
  if (arrays.length) {
    const [element] = checker.getTypeArguments(arrays[0]);
    parts.push({ type: 'array', items: schemaOf(checker, [element], `${at}[*]`, stack) });
  }
  if (objects.length) parts.push(objectSchema(checker, objects[0], at, stack));
  if (plain.has('null')) parts.push({ type: 'null' });
  parts.sort((a, b) => KIND_ORDER.indexOf(a.type) - KIND_ORDER.indexOf(b.type));
  if (parts.length === 1) return parts[0];
  // `T | null` of a plain primitive as a type list (what Ajv's strict mode accepts), else anyOf.
  const [first, second] = parts;
  if (parts.length === 2 && second.type === 'null' && Object.keys(first).length === 1 && first.type !== 'array' && first.type !== 'object') {
    return { type: [first.type, 'null'] };
  }
  return { anyOf: parts };
}

function objectSchema(checker, type, at, stack) {
  const name = checker.typeToString(type);
  if (checker.isTupleType(type)) throw new ContractError(at, `unsupported tuple ${name}: use an array or an object`);
  if (stack.includes(type)) throw new ContractError(at, `recursive type ${name}: a contract is a finite tree`);
  if (type.getCallSignatures().length || type.getConstructSignatures().length) throw new ContractError(at, `${name} is a function, not data`);
  if (checker.getIndexInfosOfType(type).length) throw new ContractError(at, `unsupported index signature in ${name}: declare every field`);
  const props = checker.getPropertiesOfType(type);
  if (props.some((p) => p.flags & ts.SymbolFlags.Method)) {
    const hint = name === 'Date' ? ' (send dates as ISO-8601 strings)' : '';
    throw new ContractError(at, `unsupported type ${name}: a contract is plain data, not an object with methods${hint}`);
  }
  const properties = {};
  const required = [];
  for (const prop of props) {
    const key = prop.getName();
    const optional = (prop.flags & ts.SymbolFlags.Optional) !== 0;
    let propType = checker.getTypeOfSymbol(prop);
    let members = propType.flags & ts.TypeFlags.Union ? propType.types : [propType];
    if (optional) members = members.filter((t) => !(t.flags & ts.TypeFlags.Undefined));
    const fieldAt = child(at, key);
    if (!members.length) throw new ContractError(fieldAt, 'a field of type undefined is not JSON');
    const schema = schemaOf(checker, members, fieldAt, [...stack, type]);
    const description = docs(prop, checker);
    properties[key] = description ? { description, ...schema } : schema;
    if (!optional) required.push(key);
  }
  return { type: 'object', properties, ...(required.length ? { required } : {}) };
}

// ---------------------------------------------------------------------------------------
// Comparison: the committed schema (what was published) against the generated one.

const jsonKind = (value) => (value === null ? 'null' : typeof value);

/** A schema as its alternatives, by JSON type: string/number/boolean (with enum), null, array, object. */
function alternatives(schema, at) {
  const byKind = new Map();
  if (Array.isArray(schema.anyOf)) {
    for (const part of schema.anyOf) for (const [kind, node] of alternatives(part, at)) byKind.set(kind, node);
    return byKind;
  }
  const kinds = Array.isArray(schema.type) ? schema.type : [schema.type];
  for (const kind of kinds) {
    if (kind === 'string' || kind === 'number' || kind === 'boolean') {
      byKind.set(kind, { enum: Array.isArray(schema.enum) ? schema.enum.filter((v) => jsonKind(v) === kind) : undefined });
    } else if (kind === 'null') {
      byKind.set(kind, {});
    } else if (kind === 'array') {
      byKind.set(kind, { items: schema.items ?? {} });
    } else if (kind === 'object') {
      byKind.set(kind, { properties: schema.properties ?? {}, required: schema.required ?? [] });
    } else {
      throw new Error(`unsupported schema at ${at} (type ${JSON.stringify(kind)}): this file is generated, do not edit it`);
    }
  }
  return byKind;
}

const literalList = (values) => values.map((v) => JSON.stringify(v)).join(' | ');

function describe(schema, at) {
  return [...alternatives(schema, at)].map(([kind, node]) => (node.enum ? literalList(node.enum) : kind)).join(' | ');
}

/** The schema without descriptions: what a rename must preserve. */
function shape(schema) {
  if (Array.isArray(schema)) return schema.map(shape);
  if (!schema || typeof schema !== 'object') return schema;
  return Object.fromEntries(Object.entries(schema).filter(([k]) => k !== 'description').map(([k, v]) => [k, k === 'properties' ? Object.fromEntries(Object.entries(v).map(([p, s]) => [p, shape(s)])) : shape(v)]));
}

const same = (a, b) => JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
function canonical(value) {
  if (Array.isArray(value)) return value.map(canonical);
  if (!value || typeof value !== 'object') return value;
  return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical(value[k])]));
}

/**
 * Every difference between two payload schemas as { at, change, breaking }. Compatible:
 * an optional field added, a description changed. Everything else breaks a reader in one
 * direction or the other (see the top of this file).
 */
function compareSchemas(before, after, at = '$', changes = []) {
  if ((before.description ?? '') !== (after.description ?? '')) changes.push({ at, change: 'description changed', breaking: false });
  const old = alternatives(before, at);
  const now = alternatives(after, at);
  const oldKinds = [...old.keys()].sort().join();
  const newKinds = [...now.keys()].sort().join();
  if (oldKinds !== newKinds) {
    changes.push({ at, change: `type changed from ${describe(before, at)} to ${describe(after, at)}`, breaking: true });
  }
  for (const [kind, was] of old) {
    const is = now.get(kind);
    if (!is) continue;
    if (kind === 'string' || kind === 'number' || kind === 'boolean') {
      if (!was.enum && is.enum) changes.push({ at, change: `type narrowed from ${kind} to ${literalList(is.enum)}`, breaking: true });
      else if (was.enum && !is.enum) changes.push({ at, change: `type widened from ${literalList(was.enum)} to ${kind}`, breaking: true });
      else if (was.enum && is.enum) {
        const removed = was.enum.filter((v) => !is.enum.includes(v));
        const added = is.enum.filter((v) => !was.enum.includes(v));
        if (removed.length) changes.push({ at, change: `enum narrowed: ${removed.map((v) => JSON.stringify(v)).join(', ')} removed`, breaking: true });
        if (added.length) changes.push({ at, change: `enum widened: ${added.map((v) => JSON.stringify(v)).join(', ')} added`, breaking: true });
      }
    } else if (kind === 'array') {
      compareSchemas(was.items, is.items, `${at}[*]`, changes);
    } else if (kind === 'object') {
      compareObjects(was, is, at, changes);
    }
  }
  return changes;
}

function compareObjects(was, is, at, changes) {
  const removed = Object.keys(was.properties).filter((k) => !(k in is.properties));
  const added = Object.keys(is.properties).filter((k) => !(k in was.properties));
  const isRequired = (node, key) => node.required.includes(key);
  for (const key of removed) {
    // A rename: a field of the same shape and requiredness appeared in its place.
    const renamed = added.findIndex((k) => same(shape(was.properties[key]), shape(is.properties[k])) && isRequired(was, key) === isRequired(is, k));
    if (renamed >= 0) {
      changes.push({ at: child(at, key), change: `field renamed to ${child(at, added[renamed])}`, breaking: true });
      added.splice(renamed, 1);
    } else {
      changes.push({ at: child(at, key), change: 'field removed', breaking: true });
    }
  }
  for (const key of Object.keys(was.properties)) {
    if (!(key in is.properties)) continue;
    if (isRequired(was, key) && !isRequired(is, key)) changes.push({ at: child(at, key), change: 'field made optional', breaking: true });
    if (!isRequired(was, key) && isRequired(is, key)) changes.push({ at: child(at, key), change: 'field made required', breaking: true });
    compareSchemas(was.properties[key], is.properties[key], child(at, key), changes);
  }
  for (const key of added) {
    const required = isRequired(is, key);
    changes.push({ at: child(at, key), change: required ? 'required field added' : 'optional field added', breaking: required });
  }
}

/** `users.user-registered.v1` → `users.user-registered.v2` (after the highest published). */
function nextVersion(type, published) {
  const [, name, version] = /^(.*)\.v(\d+)$/.exec(type) ?? [undefined, type, '0'];
  const highest = Math.max(Number(version), ...published.map((t) => /^(.*)\.v(\d+)$/.exec(t)).filter((m) => m?.[1] === name).map((m) => Number(m[2])));
  return `${name}.v${highest + 1}`;
}

// ---------------------------------------------------------------------------------------
// The check and the update.

/**
 * Compares every module's contracts with its committed schemas under `root`. With
 * `write`, writes missing schemas and compatible changes (never breaking ones, never a
 * deletion). Returns the problems left (sentences naming the event, the field and the
 * change), the files written and how many event versions were compared.
 */
function runContracts({ root = REPO_ROOT, write = false } = {}) {
  const rel = (file) => posix(path.relative(root, file));
  const manifests = loadManifests(root);
  const problems = [...manifestProblems(manifests)];
  const written = [];
  const withContracts = manifests.filter((m) => existsSync(contractsFile(root, m.name)));
  const program = createProgram(root, withContracts.map((m) => contractsFile(root, m.name)));
  const checker = program.getTypeChecker();
  const allPublished = manifests.flatMap((m) => m.events.publishes.map((e) => e.type));
  let compared = 0;

  for (const manifest of manifests) {
    const module = manifest.name;
    const contracts = contractsFile(root, module);
    const published = manifest.events.publishes.map((e) => e.type);
    const found = existsSync(contracts) ? payloadMap(program, contracts) : undefined;
    const map = found?.map ?? new Map();
    if (found?.notAType) problems.push(`${PAYLOAD_MAP} in ${rel(contracts)} must be an interface (event type → payload type)`);
    else if (!found && published.length) {
      problems.push(`module "${module}" publishes events but ${rel(contracts)} exports no ${PAYLOAD_MAP} interface (event type → payload type)`);
    }
    for (const type of map.keys()) {
      if (!published.includes(type)) {
        problems.push(`${type}: ${PAYLOAD_MAP} in ${rel(contracts)} maps it but module "${module}" does not publish it; publish it in its manifest or remove the entry`);
      }
    }

    for (const type of published) {
      const payload = map.get(type);
      if (!payload) {
        if (found && !found.notAType) problems.push(`${type}: published by module "${module}" but has no payload type; add it to ${PAYLOAD_MAP} in ${rel(contracts)}`);
        continue;
      }
      let generated;
      try {
        generated = payloadSchema(checker, payload.type, type, rel(contracts), payload.description);
      } catch (error) {
        if (!(error instanceof ContractError)) throw error;
        problems.push(`${type} ${error.at}: ${error.message}`);
        continue;
      }
      compared += 1;
      const file = schemaFile(root, module, type);
      const save = () => {
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, serialize(generated));
        written.push(rel(file));
      };
      if (!existsSync(file)) {
        if (write) save();
        else problems.push(`${type}: no committed schema (${rel(file)}); run ${UPDATE}`);
        continue;
      }
      let committed;
      try {
        committed = JSON.parse(readFileSync(file, 'utf8'));
      } catch (error) {
        problems.push(`${type}: ${rel(file)} is not valid JSON (${error.message}); restore it from git`);
        continue;
      }
      if (same(committed, generated)) continue;
      let changes;
      try {
        changes = compareSchemas(committed, generated);
      } catch (error) {
        problems.push(`${type}: ${rel(file)}: ${error.message}`);
        continue;
      }
      const breaking = changes.filter((c) => c.breaking);
      const next = nextVersion(type, allPublished);
      for (const c of breaking) problems.push(`${type} ${c.at}: ${c.change} (breaking; publish the new shape as ${next})`);
      if (breaking.length) continue;
      if (write) save();
      else if (!changes.length) problems.push(`${type}: ${rel(file)} differs from the schema generated from ${rel(contracts)}; run ${UPDATE}`);
      else for (const c of changes) problems.push(`${type} ${c.at}: ${c.change} (compatible; run ${UPDATE} to record it)`);
    }

    const dir = schemaDir(root, module);
    const committedFiles = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(SCHEMA_SUFFIX)).sort() : [];
    for (const name of committedFiles) {
      const type = name.slice(0, -SCHEMA_SUFFIX.length);
      if (published.includes(type)) continue;
      problems.push(
        `${type}: ${rel(path.join(dir, name))} is committed but module "${module}" does not publish this version; ` +
          'a version is retired deliberately: remove it from the manifest, then delete its schema once no consumer declares it',
      );
    }
  }
  return { problems, written, compared };
}

const checkContracts = (options = {}) => runContracts({ ...options, write: false });
const updateContracts = (options = {}) => runContracts({ ...options, write: true });

module.exports = { checkContracts, updateContracts, compareSchemas, nextVersion, REPO_ROOT };

if (require.main === module) {
  const [mode, ...rest] = process.argv.slice(2);
  const rootAt = rest.indexOf('--root');
  const root = rootAt >= 0 ? path.resolve(rest[rootAt + 1]) : REPO_ROOT;
  if (mode !== 'check' && mode !== 'update') {
    process.stderr.write('usage: node scripts/event-contracts.cjs check|update [--root <dir>]\n');
    process.exit(2);
  }
  const started = Date.now();
  const { problems, written, compared } = runContracts({ root, write: mode === 'update' });
  for (const file of written) process.stdout.write(`wrote ${file}\n`);
  for (const problem of problems) process.stderr.write(`✗ ${problem}\n`);
  const summary = `${compared} event version(s) compared in ${Date.now() - started} ms`;
  if (problems.length) {
    process.stderr.write(`event contracts: ${problems.length} problem(s); ${summary}\n`);
    process.exit(1);
  }
  process.stdout.write(`event contracts: ok; ${summary}\n`);
}

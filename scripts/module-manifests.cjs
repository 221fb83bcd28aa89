// Reads every domain module's manifest (libs/<module>/src/module.manifest.ts) for the tools
// that run as plain JavaScript: the ESLint rulebook (.eslintrc.js) and dependency-cruiser
// (.dependency-cruiser.js). They get the module list and the allowed directions (`mayUse`)
// from the manifests instead of keeping their own copies (docs/architecture.md, "Module
// manifests"). A manifest imports only its own contracts and other modules' contracts
// (constants), packages (TypeBox for its config schema) and types from @app/platform
// (erased), so transpiling that small graph with TypeScript is enough: no build, no ts-node.
const { existsSync, readdirSync, readFileSync } = require('node:fs');
const path = require('node:path');
const Module = require('node:module');
const ts = require('typescript');

const MANIFEST_FILE = path.join('src', 'module.manifest.ts');

/** `@app/<module>/contracts` → libs/<module>/src/contracts/index.ts, from tsconfig's paths. */
function aliasResolver(root) {
  const { config } = ts.readConfigFile(path.join(root, 'tsconfig.base.json'), ts.sys.readFile);
  const paths = config?.compilerOptions?.paths ?? {};
  return (specifier) => {
    const target = paths[specifier]?.[0];
    return target ? path.resolve(root, target) : undefined;
  };
}

function resolveTs(base) {
  for (const candidate of [base, `${base}.ts`, path.join(base, 'index.ts')]) {
    if (existsSync(candidate) && candidate.endsWith('.ts')) return candidate;
  }
  return undefined;
}

/** Loads a TypeScript file and its relative/aliased TypeScript imports as CommonJS. */
function loadTs(file, resolveAlias, cache) {
  if (cache.has(file)) return cache.get(file).exports;
  const source = readFileSync(file, 'utf8');
  const { outputText } = ts.transpileModule(source, {
    fileName: file,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  const mod = new Module(file);
  mod.filename = file;
  cache.set(file, mod);
  const localRequire = (specifier) => {
    // Packages (the config schema's TypeBox) load as usual.
    if (!specifier.startsWith('.') && !specifier.startsWith('@app/')) return require(specifier);
    const aliased = specifier.startsWith('@app/') ? resolveAlias(specifier) : undefined;
    const relative = specifier.startsWith('.') ? path.resolve(path.dirname(file), specifier) : undefined;
    const target = aliased ?? relative;
    if (!target) throw new Error(`${path.relative(process.cwd(), file)}: a manifest may import only contracts (relative or @app/<module>/contracts) and packages, not "${specifier}"`);
    const resolved = resolveTs(target);
    if (!resolved) throw new Error(`${file}: cannot resolve "${specifier}"`);
    return loadTs(resolved, resolveAlias, cache);
  };
  new Function('exports', 'require', 'module', '__filename', '__dirname', outputText)(mod.exports, localRequire, mod, file, path.dirname(file));
  return mod.exports;
}

/** Every manifest under libs/, in directory order: [{ name, schema, mayUse, queues, events }]. */
function loadManifests(root = path.resolve(__dirname, '..')) {
  const resolveAlias = aliasResolver(root);
  const cache = new Map();
  const manifests = [];
  for (const dir of readdirSync(path.join(root, 'libs')).sort()) {
    const file = path.join(root, 'libs', dir, MANIFEST_FILE);
    if (!existsSync(file)) continue;
    const exported = Object.values(loadTs(file, resolveAlias, cache));
    if (exported.length !== 1) throw new Error(`${path.relative(root, file)} must export exactly one manifest`);
    const manifest = exported[0];
    if (manifest.name !== dir) throw new Error(`${path.relative(root, file)} declares name "${manifest.name}"; the folder is libs/${dir}`);
    manifests.push(manifest);
  }
  return manifests;
}

/** What the boundary tools need: the domain modules and whose contracts each may use. */
function boundaryDeclarations(root) {
  const manifests = loadManifests(root);
  return {
    DOMAIN: manifests.map((m) => m.name),
    MAY_USE: Object.fromEntries(manifests.map((m) => [m.name, [...m.mayUse]])),
  };
}

module.exports = { loadManifests, boundaryDeclarations };

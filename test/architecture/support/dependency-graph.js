'use strict';
/**
 * Runs dependency-cruiser with .dependency-cruiser.js and turns its result into what the
 * boundary checks need: the violations (rule, from, to) and the module-level graph that
 * `npm run graph` draws as Mermaid. Plain CommonJS with a .d.ts beside it, so the jest
 * specs, scripts/graph.mjs and scripts/boundaries.mjs share one implementation.
 *
 * dependency-cruiser is ESM-only and jest runs specs as CommonJS, so it runs as a child
 * process (its CLI with `--output-type json`), which also keeps a crash in it out of jest.
 */
const { spawn, spawnSync } = require('node:child_process');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '../../..');
const CLI = path.join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
const CONFIG = path.join(ROOT, '.dependency-cruiser.js');

function cliArgs(paths) {
  return [CLI, ...paths, '--config', CONFIG, '--output-type', 'json'];
}

function parse(stdout, stderr, cwd) {
  try {
    return JSON.parse(stdout);
  } catch {
    throw new Error(`dependency-cruiser produced no result in ${cwd}:\n${stderr || stdout}`);
  }
}

/** Cruises `paths` (relative to `cwd`, which holds the tsconfig.json the config names). */
function cruiseSync({ cwd = ROOT, paths = ['apps', 'libs'] } = {}) {
  // Exit status 1+ just counts violations; the JSON on stdout is the answer either way.
  const run = spawnSync(process.execPath, cliArgs(paths), { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (run.error) throw run.error;
  return parse(run.stdout, run.stderr, cwd);
}

/** The same, without blocking: lets scripts/boundaries.mjs run the levels side by side. */
function cruise({ cwd = ROOT, paths = ['apps', 'libs'] } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, cliArgs(paths), { cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', () => {
      try {
        resolve(parse(stdout, stderr, cwd));
      } catch (error) {
        reject(error);
      }
    });
  });
}

/** Every rule violation as { rule, from, to }, sorted, one per rule, file and target. */
function violations(result) {
  const seen = new Map();
  for (const v of result.summary.violations) {
    const entry = { rule: v.rule.name, from: v.from, to: v.to };
    seen.set(`${entry.from}\0${entry.rule}\0${entry.to}`, entry);
  }
  return [...seen.keys()].sort().map((key) => seen.get(key));
}

/** The names of the rules the configuration forbids, sorted and unique. */
function ruleNames() {
  delete require.cache[CONFIG];
  return [...new Set(require(CONFIG).forbidden.map((rule) => rule.name))].sort();
}

const MODULE = /^(apps\/[^/]+|libs\/[^/]+)\//;

/** What a cross-module import reaches: the contracts, the entry point, the tracing preload, or internals. */
function entranceOf(resolved) {
  if (/^libs\/[^/]+\/src\/contracts\/index\.ts$/.test(resolved)) return 'contracts';
  if (/^libs\/[^/]+\/src\/index\.ts$/.test(resolved)) return 'entry point';
  if (/^libs\/[^/]+\/src\/module\.manifest\.ts$/.test(resolved)) return 'manifest';
  if (resolved === 'libs/platform/src/tracing/tracing.setup.ts') return 'tracing preload';
  return 'internals';
}

/**
 * The file graph collapsed to modules (apps/<app>, libs/<lib>): nodes and edges, each edge
 * with the entrances it goes through. Sorted, so the picture is the same on every run.
 */
function moduleGraph(result) {
  const nodes = new Set();
  const edges = new Map();
  for (const source of result.modules) {
    const from = MODULE.exec(source.source)?.[1];
    if (!from) continue;
    nodes.add(from);
    for (const dependency of source.dependencies) {
      const to = MODULE.exec(dependency.resolved)?.[1];
      if (!to || to === from) continue;
      const key = `${from} ${to}`;
      if (!edges.has(key)) edges.set(key, { from, to, via: new Set() });
      edges.get(key).via.add(entranceOf(dependency.resolved));
    }
  }
  return {
    nodes: [...nodes].sort(),
    edges: [...edges.keys()].sort().map((key) => {
      const edge = edges.get(key);
      return { from: edge.from, to: edge.to, via: [...edge.via].sort() };
    }),
  };
}

/** Module-level cycles (a file graph without cycles can still have them). */
function moduleCycles(graph) {
  const next = new Map(graph.nodes.map((n) => [n, []]));
  for (const edge of graph.edges) next.get(edge.from)?.push(edge.to);
  const cycles = [];
  const state = new Map();
  const stack = [];
  const visit = (node) => {
    state.set(node, 'open');
    stack.push(node);
    for (const to of next.get(node) ?? []) {
      if (state.get(to) === 'open') cycles.push([...stack.slice(stack.indexOf(to)), to].join(' -> '));
      else if (!state.has(to)) visit(to);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of graph.nodes) if (!state.has(node)) visit(node);
  return cycles;
}

const nodeId = (name) => name.replace(/[^A-Za-z0-9]/g, '_');

/** The module graph as a Mermaid flowchart (docs/module-graph.mmd). */
function renderMermaid(graph) {
  const lines = [
    '%% The module graph of apps/ and libs/: who imports whom, and through which entrance.',
    '%% Generated from dependency-cruiser\'s import graph by `npm run graph`; do not edit.',
    'flowchart LR',
    ...graph.nodes.map((name) => `  ${nodeId(name)}["${name}"]`),
    ...graph.edges.map((edge) => `  ${nodeId(edge.from)} -->|${edge.via.join(', ')}| ${nodeId(edge.to)}`),
  ];
  return `${lines.join('\n')}\n`;
}

const GRAPH_FILE = path.join(ROOT, 'docs/module-graph.mmd');

module.exports = {
  ROOT,
  GRAPH_FILE,
  cruise,
  cruiseSync,
  violations,
  ruleNames,
  moduleGraph,
  moduleCycles,
  renderMermaid,
};

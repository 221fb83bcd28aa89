// `npm run graph`: redraws docs/module-graph.mmd (Mermaid) from dependency-cruiser's import
// graph, collapsed to modules. `--check` only compares and exits 1 when the file is stale;
// test/architecture/dependency-graph.spec.ts makes the same comparison in CI.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import graph from '../test/architecture/support/dependency-graph.js';

const picture = graph.renderMermaid(graph.moduleGraph(await graph.cruise()));
const relative = path.relative(graph.ROOT, graph.GRAPH_FILE);
let current;
try {
  current = readFileSync(graph.GRAPH_FILE, 'utf8');
} catch {
  current = undefined;
}

if (process.argv.includes('--check')) {
  if (current !== picture) {
    process.stderr.write(`${relative} is stale: run npm run graph\n`);
    process.exit(1);
  }
  process.stdout.write(`${relative} is up to date\n`);
} else if (current === picture) {
  process.stdout.write(`${relative} unchanged\n`);
} else {
  mkdirSync(path.dirname(graph.GRAPH_FILE), { recursive: true });
  writeFileSync(graph.GRAPH_FILE, picture);
  process.stdout.write(`wrote ${relative}\n`);
}

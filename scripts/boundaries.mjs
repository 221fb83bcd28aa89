// `npm run boundaries`: every boundary check, four levels, side by side, then one table
// (level, rules, violations, time). Exits 1 on any violation or a check that could not run.
//   1. imports (lint)     .eslintrc.js boundary tags, import/no-cycle, eslint-rules/queue-ownership
//   2. import graph       dependency-cruiser with .dependency-cruiser.js; docs/module-graph.mmd fresh
//   3. database (static)  no migration touches another module's schema or keys into it
//   4. queues at boot     test/architecture/queue-ownership-boot.spec.ts (needs Postgres and Redis,
//                         like `npx jest`: TEST_DATABASE_URL / TEST_REDIS_URL or the local servers)
// The lint here skips type information (no boundary rule needs it) and import/no-cycle, the
// costliest rule by far: level 2 checks cycles on the same graph (boundary-no-cycle), and
// `npm run lint` still runs it. `npm run lint` is the full lint.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { loadESLint } from 'eslint';
import graph from '../test/architecture/support/dependency-graph.js';
import migrations from '../test/architecture/support/migration-checker.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BOOT_SPEC = 'test/architecture/queue-ownership-boot.spec.ts';
const BOOT_TIMEOUT_MS = 180_000;

async function timed(level, run) {
  const started = performance.now();
  try {
    return { level, ...(await run()), ms: performance.now() - started };
  } catch (error) {
    return { level, rules: '-', violations: [], error: error instanceof Error ? error.message : String(error), ms: performance.now() - started };
  }
}

async function lintLevel() {
  const rulebook = readFileSync(path.join(ROOT, '.eslintrc.js'), 'utf8');
  const tags = [...new Set([...rulebook.matchAll(/rule\('([a-z-]+)'/g)].map((m) => m[1]))];
  const custom = readdirSync(path.join(ROOT, 'eslint-rules')).filter((f) => f.endsWith('.js')).map((f) => path.basename(f, '.js'));
  const LegacyESLint = await loadESLint({ useFlatConfig: false });
  const eslint = new LegacyESLint({
    cwd: ROOT,
    rulePaths: [path.join(ROOT, 'eslint-rules')],
    overrideConfig: {
      parserOptions: { project: null },
      rules: { '@typescript-eslint/no-floating-promises': 'off', 'import/no-cycle': 'off' },
    },
  });
  const results = await eslint.lintFiles(['apps/**/*.ts', 'libs/**/*.ts', 'test/**/*.ts']);
  const boundary = (m) => m.message.startsWith('[boundary/') || custom.includes(m.ruleId);
  const violations = results.flatMap((r) =>
    r.messages
      .filter((m) => boundary(m) || m.fatal)
      .map((m) => `${path.relative(ROOT, r.filePath)}:${m.line} ${m.fatal ? `parse error: ${m.message}` : m.message.startsWith('[') ? m.message : `[${m.ruleId}] ${m.message}`}`),
  );
  return { rules: tags.length + custom.length, violations, detail: `${results.length} files` };
}

async function graphLevel() {
  const result = await graph.cruise();
  const violations = graph.violations(result).map((v) => `[${v.rule}] ${v.from} -> ${v.to}`);
  const cycles = graph.moduleCycles(graph.moduleGraph(result)).map((c) => `[module-cycle] ${c}`);
  let picture = '';
  try {
    picture = readFileSync(graph.GRAPH_FILE, 'utf8');
  } catch {
    // missing counts as stale
  }
  const stale = picture === graph.renderMermaid(graph.moduleGraph(result))
    ? []
    : [`[module-graph] ${path.relative(ROOT, graph.GRAPH_FILE)} is stale: run npm run graph`];
  return {
    rules: graph.ruleNames().length + 2,
    violations: [...violations, ...cycles, ...stale],
    detail: `${result.modules.filter((m) => /^(apps|libs)\//.test(m.source)).length} files`,
  };
}

async function databaseLevel() {
  const { files, findings } = migrations.checkRepository(ROOT);
  return { rules: migrations.RULES.length, violations: findings.map((f) => f.message), detail: `${files.length} migrations` };
}

function bootLevel() {
  const dir = mkdtempSync(path.join(tmpdir(), 'boundaries-'));
  const report = path.join(dir, 'jest.json');
  return new Promise((resolve, reject) => {
    // --forceExit: a boot that fails half-way (in a module's provider, before the ownership
    // check) can leave connections open that jest would otherwise wait for forever.
    const args = [path.join(ROOT, 'node_modules/jest/bin/jest.js'), BOOT_SPEC, '--silent', '--forceExit', '--json', `--outputFile=${report}`];
    const jest = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    const timer = setTimeout(() => jest.kill('SIGKILL'), BOOT_TIMEOUT_MS);
    let stderr = '';
    jest.stderr.on('data', (chunk) => (stderr += chunk));
    jest.on('error', reject);
    jest.on('close', () => {
      clearTimeout(timer);
      let json;
      try {
        json = JSON.parse(readFileSync(report, 'utf8'));
      } catch {
        reject(new Error(`jest produced no report:\n${stderr.trim().split('\n').slice(-15).join('\n')}`));
        return;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      const tests = json.testResults.flatMap((file) => file.assertionResults);
      if (tests.length === 0) {
        reject(new Error(`no test ran:\n${json.testResults.map((f) => f.message).join('\n')}`));
        return;
      }
      const violations = tests
        .filter((t) => t.status === 'failed')
        .map((t) => `[queue-ownership-boot] ${t.title}: ${t.failureMessages.join(' ').split('\n')[0]}`);
      resolve({ rules: tests.length, violations, detail: `${tests.length} boot checks` });
    });
  });
}

// ESLint runs in a worker thread of this script, so that it, jest and dependency-cruiser
// (child processes) all run at once and each level's time is its own.
if (!isMainThread) {
  parentPort.postMessage(await lintLevel());
  process.exit(0);
}
function inWorker() {
  return new Promise((resolve, reject) => {
    const worker = new Worker(fileURLToPath(import.meta.url));
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the lint worker exited with ${code}`)));
  });
}

const started = performance.now();
const pending = [
  timed('1. imports (lint)', inWorker),
  timed('2. import graph', graphLevel),
  timed('3. database (static)', databaseLevel),
  timed('4. queues at boot', bootLevel),
];
const levels = await Promise.all(pending);
const total = performance.now() - started;

for (const level of levels) {
  if (level.error) process.stdout.write(`\n${level.level}: could not run\n  ${level.error.replace(/\n/g, '\n  ')}\n`);
  if (level.violations.length) {
    process.stdout.write(`\n${level.level}: ${level.violations.length} violation(s)\n${level.violations.map((v) => `  ${v}`).join('\n')}\n`);
  }
}

const rows = [
  ['level', 'rules', 'checked', 'violations', 'time'],
  ...levels.map((l) => [l.level, String(l.rules), l.detail ?? '-', l.error ? 'ERROR' : String(l.violations.length), `${(l.ms / 1000).toFixed(1)} s`]),
  ['total (levels run in parallel)', '', '', String(levels.reduce((n, l) => n + l.violations.length, 0)), `${(total / 1000).toFixed(1)} s`],
];
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
const line = (r) => r.map((cell, i) => (i === 0 || i === 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
process.stdout.write(`\n${line(rows[0])}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${rows.slice(1).map(line).join('\n')}\n`);

const failed = levels.some((l) => l.error || l.violations.length);
process.exit(failed ? 1 : 0);

// `npm run openapi:lint [document.json]`: lints the API document with Redocly's
// `recommended` rules (redocly.yaml). Warnings count as failures: a document that only
// warns today drifts into one that errors tomorrow.
//
// With a file, lints that file. Without one, boots the API the way the tests do (real
// Postgres and Redis, scripts/test.mjs), writes its /docs-json to openapi.json and lints it
// (test/architecture/openapi-document.spec.ts), so the document checked is the one served.
//
// Redocly's engine (@redocly/openapi-core, what `redocly lint` runs) rather than its CLI:
// the CLI adds a documentation renderer and usage telemetry this check needs neither of.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatProblems, getTotals, lint, loadConfig } from '@redocly/openapi-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const file = process.argv[2];

if (!file) {
  const out = path.join(ROOT, 'openapi.json');
  const result = spawnSync(process.execPath, [path.join(ROOT, 'scripts/test.mjs'), 'test/architecture/openapi-document.spec.ts'], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, TEST_SKIP_STATIC: '1', OPENAPI_DOCUMENT_OUT: out },
  });
  if (result.status === 0) process.stderr.write(`[openapi:lint] ${path.relative(process.cwd(), out)}: no errors, no warnings\n`);
  process.exit(result.status ?? 1);
}

const config = await loadConfig({ configPath: path.join(ROOT, 'redocly.yaml') });
const problems = await lint({ ref: path.resolve(file), config });
const totals = getTotals(problems);
const version = createRequire(import.meta.url)('@redocly/openapi-core/package.json').version;
formatProblems(problems, { totals, version, format: 'codeframe', color: false, maxProblems: 500, cwd: process.cwd() });
const failures = totals.errors + totals.warnings;
process.stderr.write(`${path.relative(process.cwd(), path.resolve(file))}: ${totals.errors} error(s), ${totals.warnings} warning(s)\n`);
process.exit(failures === 0 ? 0 : 1);

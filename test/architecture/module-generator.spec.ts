import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * `npm run module:new -- <name>` (scripts/module-new.mjs; docs/architecture.md, "Adding a
 * module"), end to end, in a scratch copy of the repository (tracked and untracked files that
 * git does not ignore; node_modules symlinked, no install): the generated module passes every
 * gate at once (lint, all four boundary levels, tsc, the event contracts, and its own tests
 * against the real Postgres and Redis through its own jest run with its own run id, roles and
 * databases); the generator refuses the name a second time and bad names; and the gates catch
 * a deep import and a cross-schema migration put into the new module, naming rule and file.
 * MODULE_GENERATOR_TIMINGS=1 prints each step's time.
 */
const ROOT = path.resolve(__dirname, '../..');
const NAME = ['billing', 'invoicing', 'ledger'].find((n) => !existsSync(path.join(ROOT, 'libs', n)))!;
const STEP_TIMEOUT_MS = 300_000;

interface StepResult {
  step: string;
  status: number | null;
  /** stdout and stderr, interleaved. */
  output: string;
  stdout: string;
  ms: number;
}

/** The files a fresh clone with the current changes would have: git's view, else a walk. */
function repositoryFiles(): string[] {
  try {
    const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
    return [...new Set(listed.toString('utf8').split('\0').filter(Boolean))];
  } catch {
    const skip = new Set(['.git', 'node_modules', 'dist', 'coverage', '.data']);
    const walk = (dir: string): string[] =>
      readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
        const file = dir ? `${dir}/${entry.name}` : entry.name;
        if (skip.has(entry.name)) return [];
        return entry.isDirectory() ? walk(file) : [file];
      });
    return walk('');
  }
}

function copyRepository(): string {
  const scratch = mkdtempSync(path.join(tmpdir(), 'module-generator-'));
  for (const file of repositoryFiles()) {
    if (/^(node_modules|dist)\//.test(file)) continue;
    const from = path.join(ROOT, file);
    let stat;
    try {
      stat = lstatSync(from);
    } catch {
      continue; // deleted in the working tree, not yet in the index
    }
    const to = path.join(scratch, file);
    mkdirSync(path.dirname(to), { recursive: true });
    if (stat.isSymbolicLink()) symlinkSync(readlinkSync(from), to);
    else if (stat.isFile()) copyFileSync(from, to);
  }
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(scratch, 'node_modules'), 'dir');
  return scratch;
}

/** The environment of every command in the copy: the outer run's servers, none of its run's names. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...extra };
  // The copy's jest makes its own run id, roles, template and databases in global setup
  // (test/support/global-setup.ts) and drops them in its teardown; the outer run's stay its own.
  for (const key of ['TEST_RUN_ID', 'TEST_TEMPLATE_DB', 'TEST_BUILD', 'JEST_WORKER_ID']) delete env[key];
  return env;
}

function run(cwd: string, step: string, command: string, args: string[], env: Record<string, string> = {}): Promise<StepResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), STEP_TIMEOUT_MS);
    const done = (status: number | null) => {
      clearTimeout(timer);
      resolve({ step, status, output, stdout, ms: performance.now() - started });
    };
    child.on('error', (error) => {
      output += String(error);
      done(null);
    });
    child.on('close', done);
  });
}

/** Runs the steps one after the other, stopping at the first failure. */
async function sequence(...steps: (() => Promise<StepResult>)[]): Promise<StepResult[]> {
  const results: StepResult[] = [];
  for (const step of steps) {
    const result = await step();
    results.push(result);
    if (result.status !== 0) break;
  }
  return results;
}

const tail = (output: string, lines = 60) => output.trim().split('\n').slice(-lines).join('\n');
const report = (results: StepResult[]) =>
  results.map((r) => `${r.step}: exit ${r.status} in ${(r.ms / 1000).toFixed(1)} s${r.status === 0 ? '' : `\n${tail(r.output)}`}`).join('\n');

describe('npm run module:new', () => {
  let scratch = '';
  let generated = false;
  const timings: StepResult[] = [];
  const inCopy = (step: string, command: string, args: string[]) => () => run(scratch, step, command, args);
  const node = (script: string, ...args: string[]) => [path.join(scratch, script), ...args];
  const read = (file: string) => readFileSync(path.join(scratch, file), 'utf8');

  beforeAll(() => {
    const started = performance.now();
    scratch = copyRepository();
    timings.push({ step: 'copy the repository', status: 0, output: '', stdout: '', ms: performance.now() - started });
  });

  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    if (process.env.MODULE_GENERATOR_TIMINGS === '1') {
      process.stderr.write(`\nmodule generator spec\n${timings.map((r) => `  ${r.step}: exit ${r.status}, ${(r.ms / 1000).toFixed(1)} s`).join('\n')}\n`);
    }
  });

  it(`creates libs/${NAME} with its manifest, migration, contracts, consumer, endpoint and tests, and registers it`, async () => {
    const result = await run(scratch, `node scripts/module-new.mjs ${NAME}`, process.execPath, node('scripts/module-new.mjs', NAME));
    timings.push(result);
    expect(result.status === 0 ? '' : result.output).toBe('');

    const lib = `libs/${NAME}/src`;
    const migrations = readdirSync(path.join(scratch, lib, 'persistence/migrations'));
    expect(migrations).toEqual([expect.stringMatching(new RegExp(`^\\d{13}-create-${NAME}\\.ts$`))]);
    for (const file of [
      `${lib}/module.manifest.ts`,
      `${lib}/${NAME}.settings.ts`,
      `${lib}/${NAME}.module.ts`,
      `${lib}/index.ts`,
      `${lib}/contracts/index.ts`,
      `${lib}/contracts/events/${NAME}.example-created.v1.schema.json`,
      `${lib}/consumers/welcome-example-on-user-registered.handler.ts`,
      `${lib}/http/examples.controller.ts`,
      `${lib}/persistence/${NAME}.database.ts`,
      `${lib}/persistence/migrations/${migrations[0]}`,
      `libs/${NAME}/tsconfig.lib.json`,
      `test/modules/${NAME}/${NAME}.e2e.spec.ts`,
    ]) {
      expect(existsSync(path.join(scratch, file)) ? file : `missing: ${file}`).toBe(file);
      expect(result.output).toContain(file.replace(`${lib}/contracts/events/`, `wrote ${lib}/contracts/events/`));
    }
    expect(read(`${lib}/module.manifest.ts`)).toContain(`name: '${NAME}'`);
    expect(JSON.parse(read('tsconfig.base.json')).compilerOptions.paths).toMatchObject({
      [`@app/${NAME}`]: [`./libs/${NAME}/src/index`],
      [`@app/${NAME}/contracts`]: [`./libs/${NAME}/src/contracts/index`],
      [`@app/${NAME}/manifest`]: [`./libs/${NAME}/src/module.manifest`],
    });
    expect(JSON.parse(read('nest-cli.json')).projects[NAME]).toMatchObject({ type: 'library', root: `libs/${NAME}` });
    expect(read('libs/manifests/src/index.ts')).toMatch(new RegExp(`MODULE_MANIFESTS[^\\n]*, ${NAME}Manifest\\]`));
    expect(read('apps/api/src/modules.ts')).toContain(`${NAME}: { module: `);
    expect(read('docs/module-graph.mmd')).toContain(`libs_${NAME} -->|contracts| libs_users`);
    generated = true;
  }, 120_000);

  it('passes lint, all four boundary levels, tsc, contracts:check and its own tests against Postgres and Redis, at once', async () => {
    expect(generated).toBe(true);
    const lanes = await Promise.all([
      // The copy's jest bootstraps its template from dist/ (test/support/global-setup.ts), and
      // level 4 of the boundaries boots the API: both need the build with the new module.
      sequence(
        inCopy('nest build api', process.execPath, node('node_modules/@nestjs/cli/bin/nest.js', 'build', 'api')),
        inCopy(`jest test/modules/${NAME}`, process.execPath, node('node_modules/jest/bin/jest.js', `test/modules/${NAME}`, '--ci', '--forceExit')),
        inCopy('npm run boundaries', 'npm', ['run', '--silent', 'boundaries']),
      ),
      sequence(
        inCopy('npm run lint', 'npm', ['run', '--silent', 'lint']),
        inCopy('npx tsc -p tsconfig.json', process.execPath, node('node_modules/typescript/bin/tsc', '-p', 'tsconfig.json')),
        inCopy('npm run contracts:check', 'npm', ['run', '--silent', 'contracts:check']),
      ),
    ]);
    const results = lanes.flat();
    timings.push(...results);
    expect(results.length === 6 && results.every((r) => r.status === 0) ? 'all passed' : report(results)).toBe('all passed');
    const jest = results.find((r) => r.step.startsWith('jest'))!;
    expect(jest.output).toMatch(/Tests:\s+\d+ passed, \d+ total/);
    expect(jest.output).not.toMatch(/skipped|todo/);
    expect(results.find((r) => r.step === 'npm run boundaries')!.output).toMatch(/total \(levels run in parallel\)\s+0\s/);
  }, 2 * STEP_TIMEOUT_MS);

  it(`refuses ${NAME} a second time and bad names, changing nothing`, async () => {
    expect(generated).toBe(true);
    const registered = ['tsconfig.base.json', 'nest-cli.json', 'libs/manifests/src/index.ts', 'apps/api/src/modules.ts', 'docs/module-graph.mmd'];
    const before = registered.map(read);
    const again = await run(scratch, `npm run module:new -- ${NAME}`, 'npm', ['run', '--silent', 'module:new', '--', NAME]);
    timings.push(again);
    expect(again.status).toBe(1);
    expect(again.output).toContain(`libs/${NAME} already exists`);

    const bad: [string, RegExp][] = [
      ['Billing', /not a valid module name/],
      ['bill-ing', /not a valid module name/],
      ['bill_ing', /not a valid module name/],
      ['b', /not a valid module name/],
      ['platform', /reserved/],
      ['manifests', /reserved/],
      ['orders', /libs\/orders already exists/],
      ['select', /SQL reserved word/],
    ];
    const refusals = await Promise.all(bad.map(([name]) => run(scratch, `module:new ${name}`, process.execPath, node('scripts/module-new.mjs', name))));
    refusals.forEach((result, i) => {
      expect([result.step, result.status]).toEqual([`module:new ${bad[i][0]}`, 1]);
      expect(result.output).toMatch(bad[i][1]);
    });
    const usage = await run(scratch, 'module:new (no name)', process.execPath, node('scripts/module-new.mjs'));
    expect(usage.status).toBe(2);
    expect(registered.map(read)).toEqual(before);
  }, 60_000);

  it('catches a deep import of orders internals and a migration touching schema orders in the new module, naming rule and file', async () => {
    expect(generated).toBe(true);
    const byAlias = `libs/${NAME}/src/application/orders-by-alias.ts`;
    const byPath = `libs/${NAME}/src/application/orders-by-path.ts`;
    const migration = `libs/${NAME}/src/persistence/migrations/1999999999999-copy-orders.ts`;
    writeFileSync(path.join(scratch, byAlias), "import { ordersDatabase } from '@app/orders/persistence/orders.database';\n\nexport const peek = ordersDatabase.module;\n");
    writeFileSync(path.join(scratch, byPath), "import { ordersDatabase } from '../../../orders/src/persistence/orders.database';\n\nexport const peek = ordersDatabase.module;\n");
    writeFileSync(
      path.join(scratch, migration),
      [
        "import type { MigrationInterface, QueryRunner } from 'typeorm';",
        '',
        'export class CopyOrders1999999999999 implements MigrationInterface {',
        "  name = 'CopyOrders1999999999999';",
        '',
        '  async up(runner: QueryRunner): Promise<void> {',
        `    await runner.query(\`INSERT INTO ${NAME}.examples (id, user_id, title) SELECT id, user_id, 'order' FROM orders.orders\`);`,
        '  }',
        '',
        '  async down(): Promise<void> {}',
        '}',
        '',
      ].join('\n'),
    );

    // The levels of `npm run boundaries` that concern these files, each as that script runs it:
    // 1. ESLint with the repository's rulebook (here on the new module only), 2. dependency-
    // cruiser over apps/ and libs/, 3. the static migration check.
    const [lint, graph, database] = await Promise.all([
      // The repository's .eslintrc.js as level 1 uses it (scripts/boundaries.mjs): without type
      // information and import/no-cycle, which no boundary tag needs.
      run(
        scratch,
        'level 1: eslint',
        process.execPath,
        node(
          'node_modules/eslint/bin/eslint.js',
          ...['--rulesdir', 'eslint-rules', '--parser-options', 'project:null', '--format', 'json'],
          ...['--rule', '@typescript-eslint/no-floating-promises: off', '--rule', 'import/no-cycle: off'],
          `libs/${NAME}/**/*.ts`,
        ),
        { ESLINT_USE_FLAT_CONFIG: 'false', NODE_OPTIONS: '--disable-warning=ESLintRCWarning' },
      ),
      run(scratch, 'level 2: dependency-cruiser', process.execPath, [
        '-e',
        "const g = require('./test/architecture/support/dependency-graph.js'); g.cruise().then((r) => { for (const v of g.violations(r)) console.log(`[${v.rule}] ${v.from} -> ${v.to}`); })",
      ]),
      run(scratch, 'level 3: migrations', process.execPath, [
        '-e',
        "for (const f of require('./test/architecture/support/migration-checker.js').checkRepository(process.cwd()).findings) console.log(f.message);",
      ]),
    ]);
    timings.push(lint, graph, database);

    expect(lint.status).toBe(1);
    const eslintFindings = (JSON.parse(lint.stdout) as { filePath: string; messages: { message: string }[] }[])
      .flatMap((file) => file.messages.map((m) => `${path.relative(scratch, file.filePath)} ${/\[boundary\/[a-z-]+\]/.exec(m.message)?.[0] ?? m.message}`));
    expect(eslintFindings).toEqual(expect.arrayContaining([`${byAlias} [boundary/no-deep-import]`, `${byPath} [boundary/no-relative-climb]`]));

    expect(graph.status).toBe(0);
    expect(graph.output).toContain(`[boundary-no-deep-import] ${byPath} -> libs/orders/src/persistence/orders.database.ts`);
    expect(graph.output).toContain(`[boundary-module-direction] ${byPath} -> libs/orders/src/persistence/orders.database.ts`);
    expect(graph.output).toContain(`[not-to-unresolvable] ${byAlias} -> @app/orders/persistence/orders.database`);

    expect(database.status).toBe(0);
    expect(database.output.trim()).toMatch(
      new RegExp(`^\\[migration-own-schema\\] ${migration}:7 \\(module ${NAME}\\) touches schema "orders" of module orders \\(orders\\.orders\\)`),
    );
  }, STEP_TIMEOUT_MS);
});

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';

const ROOT = path.resolve(__dirname, '../..');
const BOOTSTRAP = path.join(ROOT, 'dist/apps/api/src/db-bootstrap.js');

/**
 * Once per `jest` run: a run id, module roles named after it, and a template database
 * with every module's schema migrated. Each test file then clones the template into its
 * own database (fast), so files never share rows, and the machine's other databases are
 * never touched. The template is built by the real bootstrap command (`npm run
 * db:bootstrap`'s script), so the tests also prove that it works.
 */
export default async function globalSetup(): Promise<void> {
  const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const runId = `t${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const template = `${runId}_tpl`;

  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${template}"`);
  await admin.end();

  const templateUrl = new URL(adminUrl);
  templateUrl.pathname = `/${template}`;
  if (!existsSync(BOOTSTRAP) || process.env.TEST_BUILD === '1') {
    const build = spawnSync('npx', ['nest', 'build', 'api'], { cwd: ROOT, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('nest build api failed');
  }
  const bootstrap = spawnSync(process.execPath, [BOOTSTRAP], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: templateUrl.toString(), DB_ROLE_PREFIX: runId, REDIS_URL: redisUrl, LOG_LEVEL: 'warn' },
  });
  if (bootstrap.status !== 0) throw new Error(`database bootstrap failed:\n${bootstrap.stdout}\n${bootstrap.stderr}`);

  process.env.TEST_DATABASE_URL = adminUrl;
  process.env.TEST_REDIS_URL = redisUrl;
  process.env.TEST_RUN_ID = runId;
  process.env.TEST_TEMPLATE_DB = template;
}

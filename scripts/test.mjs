// `npm test`: lint, type-check, build, then every jest suite against real Postgres and
// Redis. Uses TEST_DATABASE_URL / TEST_REDIS_URL, else the machine's local servers, else
// starts the same embedded Postgres and local redis-server that `npm start` uses.
// Extra arguments go to jest (e.g. `npm test -- test/e2e`).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { postgresAnswers, redisAnswers, startEmbeddedPostgres, startLocalRedis } from './dev-services.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const jestArgs = process.argv.slice(2);
const quick = process.env.TEST_SKIP_STATIC === '1';

function step(name, command, args, env = process.env) {
  process.stderr.write(`\n[test] ${name}: ${command} ${args.join(' ')}\n`);
  const result = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit', env });
  if (result.status !== 0) {
    process.stderr.write(`[test] ${name} failed\n`);
    process.exit(result.status ?? 1);
  }
}

if (!quick) {
  step('lint', 'npm', ['run', '--silent', 'lint']);
  step('type-check', 'npx', ['tsc', '-p', 'tsconfig.json']);
}
step('build', 'npm', ['run', '--silent', 'build']);

const stops = [];
let databaseUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
if (!(await postgresAnswers(databaseUrl))) {
  process.stderr.write(`[test] no Postgres at ${databaseUrl}; starting the embedded one\n`);
  const pg = await startEmbeddedPostgres({ port: 54330, database: 'postgres', dir: 'embedded-postgres-test' });
  databaseUrl = pg.adminUrl;
  stops.push(pg.stop);
}
let redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
if (!(await redisAnswers(redisUrl))) {
  process.stderr.write(`[test] no Redis at ${redisUrl}; starting a local redis-server\n`);
  const redis = await startLocalRedis({ port: 63791 });
  redisUrl = redis.url;
  stops.push(redis.stop);
}

const env = { ...process.env, TEST_DATABASE_URL: databaseUrl, TEST_REDIS_URL: redisUrl };
process.stderr.write(`\n[test] jest against ${new URL(databaseUrl).host} and ${new URL(redisUrl).host}\n`);
const result = spawnSync('npx', ['jest', ...jestArgs], { cwd: ROOT, stdio: 'inherit', env });
for (const stop of stops.reverse()) await stop().catch(() => {});
process.exit(result.status ?? 1);

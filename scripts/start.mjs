// `npm start`: builds the API, brings up Postgres and Redis (the given URLs, or an
// embedded Postgres and a local redis-server when none are given), then runs the API.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres, startLocalRedis } from './dev-services.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const app = process.argv[2] ?? 'api';
const log = (message) => process.stderr.write(`[start] ${message}\n`);

const build = spawnSync('npx', ['nest', 'build', app], { cwd: ROOT, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const env = { ...process.env };
const stops = [];
if (!env.DATABASE_URL) {
  const pg = await startEmbeddedPostgres();
  env.DATABASE_URL = pg.url;
  stops.push(pg.stop);
  log('DATABASE_URL not set: using the embedded Postgres');
} else log('using DATABASE_URL');
if (!env.REDIS_URL) {
  const redis = await startLocalRedis();
  env.REDIS_URL = redis.url;
  stops.push(redis.stop);
  log('REDIS_URL not set: using a local redis-server');
} else log('using REDIS_URL');

const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'apps', app, 'src', 'main.js')], { cwd: ROOT, env, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', async (code, signal) => {
  for (const stop of stops.reverse()) await stop().catch(() => {});
  process.exit(code ?? (signal ? 1 : 0));
});

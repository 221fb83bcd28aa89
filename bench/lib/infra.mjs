// The run's own Postgres database, roles and Redis keys, and their removal afterwards.
import Redis from 'ioredis';
import pg from 'pg';
import { withUrl } from './config.mjs';

const SAFE_ID = /^bench_[a-z0-9]+$/;

function assertBenchId(benchId) {
  if (!SAFE_ID.test(benchId)) throw new Error(`refusing unsafe bench id ${JSON.stringify(benchId)}`);
}

async function withAdmin(adminUrl, fn) {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Creates the database `<benchId>`; returns the admin URL pointing at it. */
export async function createBenchDatabase(config) {
  assertBenchId(config.benchId);
  await withAdmin(config.adminUrl, (admin) => admin.query(`CREATE DATABASE "${config.benchId}"`));
  return withUrl(config.adminUrl, { database: config.benchId });
}

/** Drops the run's database and every role named `<benchId>_*`; nothing else. */
export async function dropBenchDatabase(config) {
  assertBenchId(config.benchId);
  return withAdmin(config.adminUrl, async (admin) => {
    await admin.query(`DROP DATABASE IF EXISTS "${config.benchId}" WITH (FORCE)`);
    const { rows } = await admin.query('SELECT rolname FROM pg_roles WHERE rolname LIKE $1', [`${config.benchId}\\_%`]);
    for (const { rolname } of rows) await admin.query(`DROP ROLE IF EXISTS "${rolname.replace(/"/g, '""')}"`);
    return rows.map((r) => r.rolname);
  });
}

export function connectRedis(url) {
  return new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2000, lazyConnect: true, retryStrategy: () => null });
}

/** SCAN MATCH `<prefix>:*` + DEL: removes the run's own keys only (never FLUSHDB). */
export async function deleteRedisPrefix(url, prefix) {
  assertBenchId(prefix);
  const redis = connectRedis(url);
  let deleted = 0;
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) deleted += await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}

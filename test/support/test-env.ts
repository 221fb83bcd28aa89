import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import Redis from 'ioredis';
import { Client } from 'pg';
import pino, { type Logger } from 'pino';
import { listenInternal, loadConfig, type AppConfig } from '@app/platform';
import { createApiApp } from '../../apps/api/src/api.app';
import { MODULE_MANIFESTS } from '@app/manifests';
import { keyPairEnv, TEST_SIGNING_KEY } from './token-keys';

const suffix = () => randomBytes(4).toString('hex');

export function runId(): string {
  const id = process.env.TEST_RUN_ID;
  if (!id) throw new Error('TEST_RUN_ID is not set: run the tests through `npm test` or `npx jest` (global setup)');
  return id;
}

export function adminUrl(database = 'postgres'): string {
  const url = new URL(process.env.TEST_DATABASE_URL!);
  url.pathname = `/${database}`;
  return url.toString();
}

/** A database of its own for one test file, cloned from the migrated template. */
export async function createTestDatabase(): Promise<string> {
  const name = `${runId()}_${suffix()}`;
  const admin = new Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    // Clones of one template cannot start at the very same moment; retry briefly.
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${process.env.TEST_TEMPLATE_DB}"`);
        break;
      } catch (error) {
        if (attempt > 20 || (error as { code?: string }).code !== '55006') throw error;
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
      }
    }
  } finally {
    await admin.end();
  }
  return adminUrl(name);
}

export interface TestEnvOptions {
  databaseUrl?: string;
  redisUrl?: string;
  redisPrefix?: string;
  env?: Record<string, string>;
}

/** Config for one test app: the file's database, a unique Redis prefix, fast timers. */
export function testConfig(databaseUrl: string, options: TestEnvOptions = {}): AppConfig {
  return loadConfig(
    {
      NODE_ENV: 'test',
      DATABASE_URL: databaseUrl,
      DB_ROLE_PREFIX: runId(),
      DB_BOOTSTRAP_ON_START: 'false',
      REDIS_URL: options.redisUrl ?? process.env.TEST_REDIS_URL,
      REDIS_KEY_PREFIX: options.redisPrefix ?? `${runId()}:${suffix()}`,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      OUTBOX_POLL_INTERVAL_MS: '250',
      INBOX_BACKOFF_BASE_MS: '50',
      PORT: '0',
      // Tests share a loaded machine: its scheduling delays are not the app's load, and would
      // shed requests at random. Load-shedding tests set their own limits.
      SHED_MAX_EVENT_LOOP_DELAY_MS: '60000',
      // Tokens the tests mint themselves (testTokens) verify everywhere; '' unsets either.
      ...keyPairEnv(TEST_SIGNING_KEY).signer,
      ...options.env,
    },
    MODULE_MANIFESTS,
  );
}

export interface RunningApi {
  app: NestFastifyApplication;
  url: string;
  /** The internal listener (INTERNAL_PORT): /metrics, /docs, /docs-json. */
  internalUrl: string;
  config: AppConfig;
  logger: Logger;
  close(): Promise<void>;
}

export async function startApi(databaseUrl: string, options: TestEnvOptions = {}): Promise<RunningApi> {
  const config = testConfig(databaseUrl, options);
  const logger = pino({ level: config.env.LOG_LEVEL });
  const app = await createApiApp(config, logger);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.getHttpServer().address() as { port: number };
  const internalPort = await listenInternal(app, config, 0, '127.0.0.1');
  return {
    app,
    url: `http://127.0.0.1:${address.port}`,
    internalUrl: `http://127.0.0.1:${internalPort}`,
    config,
    logger,
    close: async () => {
      await app.close();
      await deleteRedisPrefix(config.env.REDIS_URL, config.env.REDIS_KEY_PREFIX);
    },
  };
}

/** Removes this test's own Redis keys (never anything else: no FLUSHDB on shared Redis). */
export async function deleteRedisPrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } catch {
    // Redis may be the one a fault test stopped; nothing to clean then.
  } finally {
    redis.disconnect();
  }
}

/** Runs SQL as the Postgres admin in the test's database (assertions only). */
export async function query<T = Record<string, unknown>>(databaseUrl: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Polls `probe` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually<T>(probe: () => Promise<T | undefined | null | false>, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export function uniqueEmail(tag = 'user'): string {
  return `${tag}-${suffix()}@example.com`;
}

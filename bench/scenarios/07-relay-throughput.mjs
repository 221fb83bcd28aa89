// Issue 5: the outbox relay's throughput against a bare Bull `addBulk` loop on the same
// Redis. Goal: relay >= 0.5x the bare loop (events/s).
//
// product: the API with MODULES_ENABLED=users,orders, so the orders relay runs and nothing
//   consumes `notifications.inbox`, the queue the module manifests route
//   `orders.order-placed.v1` to (routing is compiled in: the relay publishes there whether
//   or not the notifications module runs in the process). BENCH_RELAY_EVENTS (20000) rows of
//   that type are inserted into `orders.outbox` as the orders module role in one statement
//   (so they all become visible at one commit), then the relay is woken with
//   `pg_notify('orders_outbox', '')`, as any writer outside the API wakes it. Their payload and metadata are those of the outbox row of a real order placed
//   through the API in setup (each row gets its own orderId and requestId). Measured from
//   the commit until no row is unpublished: the inbox queue's wait list is watched in Redis,
//   then one Postgres count (`published_at IS NULL`) confirms the last batch committed.
//   Published rows stay in the outbox (the relay marks them, retention deletes them later);
//   the outbox is emptied before each round and vacuumed after its warm-up.
// bare: bench/baselines/bull-addbulk.mjs, in its own process with the API stopped:
//   the same number of the same jobs (envelope, name, job options) in batches of
//   OUTBOX_BATCH_SIZE (100, the API's default) into `bench.bare-sink`.
// Each side starts with a tenth of the events as warm-up; the queues are emptied (SCAN +
// UNLINK of their keys under the run's own prefix, never a flush) before each measured part
// and at the end.
import pg from 'pg';
import { runScript } from '../lib/processes.mjs';
import { BENCH_DIR } from '../lib/config.mjs';
import { processCpuSeconds } from '../lib/cpu.mjs';
import { expectStatus, orderFixture, ProductNotReady } from '../lib/fixtures.mjs';
import { ORDER_PENDING_TTL } from '../lib/orders.mjs';
import { wallMs } from '../lib/rate.mjs';
import path from 'node:path';

const EVENT_TYPE = 'orders.order-placed.v1';
/** Where the manifests route EVENT_TYPE: the notifications module's inbox (not running here). */
const RELAY_SINK = 'notifications.inbox';
const BARE_SINK = 'bench.bare-sink';
const BATCH_SIZE = 100; // OUTBOX_BATCH_SIZE's default; the API runs with it
const INBOX_MAX_ATTEMPTS = 8; // the API's default
const TIMEOUT_MS = 120_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const noLatency = { mean: null, p50: null, p90: null, p99: null, max: null };

/** Removes a queue's keys (`<prefix>:bull:<queue>:*`, the run's own prefix); returns how many. */
async function emptySink(ctx, queue) {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await ctx.redis.scan(cursor, 'MATCH', `${ctx.config.benchId}:bull:${queue}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await ctx.redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

const waitingJobs = (ctx, queue) => ctx.redis.llen(`${ctx.config.benchId}:bull:${queue}:wait`);
const unpublished = async (ctx) => Number((await ctx.db.query('SELECT count(*) AS n FROM orders.outbox WHERE published_at IS NULL')).rows[0].n);

/**
 * CPU seconds so far of the Postgres backends of the orders module role (the API's orders
 * pool, where the relay's transactions run, and its LISTEN connection), by pid; null when
 * Postgres is not on this machine (its processes are not in /proc here).
 */
async function ordersBackendCpu(ctx) {
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(ctx.databaseUrl).hostname)) return null;
  const { rows } = await ctx.db.query('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND usename = $1', [`${ctx.config.benchId}_orders`]);
  const cpu = new Map();
  for (const { pid } of rows) {
    const seconds = processCpuSeconds(pid);
    if (seconds !== null) cpu.set(pid, seconds);
  }
  return cpu.size ? cpu : null;
}

/** CPU seconds the orders backends used between two ordersBackendCpu() readings (new backends count in full). */
function backendCpuSpent(before, after) {
  if (!before || !after) return null;
  let spent = 0;
  for (const [pid, seconds] of after) spent += seconds - (before.get(pid) ?? 0);
  return spent;
}

/** Inserts `count` order-placed events in one statement as the orders module role; resolves after its commit. */
async function insertEvents(state, count) {
  const client = new pg.Client({ connectionString: state.ordersDatabaseUrl });
  await client.connect();
  try {
    await client.query(
      `INSERT INTO orders.outbox (id, event_type, payload, metadata)
       SELECT gen_random_uuid(), $1,
              jsonb_set($2::jsonb, '{orderId}', to_jsonb(gen_random_uuid()::text)),
              $3::jsonb || jsonb_build_object('requestId', gen_random_uuid()::text)
         FROM generate_series(1, $4)`,
      [EVENT_TYPE, state.payload, state.metadata, count],
    );
    await client.query(`SELECT pg_notify('orders_outbox', '')`);
  } finally {
    await client.end();
  }
}

/** Until the relay has published `count` jobs and marked every row published; returns the wall time it did. */
async function waitUntilRelayed(ctx, count, checkAborted) {
  const deadline = Date.now() + TIMEOUT_MS;
  while ((await waitingJobs(ctx, RELAY_SINK)) < count) {
    if (Date.now() > deadline) return null;
    checkAborted();
    await sleep(5);
  }
  while ((await unpublished(ctx)) > 0) {
    if (Date.now() > deadline) return null;
    await sleep(2);
  }
  return wallMs();
}

async function measureRelay(ctx, state, { api, log, checkAborted }) {
  const events = ctx.config.relayEvents;
  const warmup = Math.max(100, Math.round(events / 10));
  const problems = [];
  // Every round starts from the same table: no rows, published or not.
  await ctx.db.query('DELETE FROM orders.outbox');
  await ctx.db.query('VACUUM orders.outbox');
  await emptySink(ctx, RELAY_SINK);
  log(`warm-up: ${warmup} events`);
  await insertEvents(state, warmup);
  if ((await waitUntilRelayed(ctx, warmup, checkAborted)) === null) problems.push(`the warm-up's ${warmup} events were not relayed within ${TIMEOUT_MS / 1000} s`);
  await emptySink(ctx, RELAY_SINK);
  await ctx.db.query('VACUUM (ANALYZE) orders.outbox');

  log(`measuring: ${events} events`);
  await insertEvents(state, events);
  const startedAt = wallMs();
  const cpuBefore = processCpuSeconds(api.pid);
  const pgCpuBefore = await ordersBackendCpu(ctx);
  const doneAt = await waitUntilRelayed(ctx, events, checkAborted);
  const cpuAfter = processCpuSeconds(api.pid);
  const pgCpu = backendCpuSpent(pgCpuBefore, await ordersBackendCpu(ctx));
  const published = await waitingJobs(ctx, RELAY_SINK);
  await emptySink(ctx, RELAY_SINK);
  if (doneAt === null) {
    problems.push(`${events} events were not all relayed within ${TIMEOUT_MS / 1000} s (${published} in ${RELAY_SINK}, ${await unpublished(ctx)} unpublished in the outbox)`);
    return { stats: null, problems };
  }
  if (published !== events) problems.push(`${RELAY_SINK} holds ${published} jobs for ${events} events`);
  const seconds = (doneAt - startedAt) / 1000;
  const stats = {
    unit: 'events/s',
    reqPerSec: events / seconds,
    latencyMs: noLatency,
    cpuUsPerRequest: cpuBefore !== null && cpuAfter !== null ? ((cpuAfter - cpuBefore) * 1e6) / events : null,
    // The relay's Postgres work (its backends' CPU), which the API process's figure leaves out.
    pgCpuUsPerEvent: pgCpu === null ? null : (pgCpu * 1e6) / events,
    events,
    seconds,
  };
  log(`${Math.round(stats.reqPerSec)} events/s (${events} in ${seconds.toFixed(2)} s), ${Math.round(stats.cpuUsPerRequest ?? NaN)} API CPU µs/event, ${Math.round(stats.pgCpuUsPerEvent ?? NaN)} Postgres CPU µs/event (orders backends)`);
  return { stats, problems };
}

async function measureBare(ctx, state, { log }) {
  const events = ctx.config.relayEvents;
  await emptySink(ctx, BARE_SINK);
  log(`${Math.max(100, Math.round(events / 10))} events warm-up, then ${events} events`);
  try {
    const { result } = await runScript({
      label: 'bare addBulk loop',
      script: path.join(BENCH_DIR, 'baselines', 'bull-addbulk.mjs'),
      env: {
        REDIS_URL: ctx.config.redisUrl,
        REDIS_KEY_PREFIX: ctx.config.benchId,
        QUEUE: BARE_SINK,
        EVENTS: String(events),
        WARMUP_EVENTS: String(Math.max(100, Math.round(events / 10))),
        BATCH_SIZE: String(BATCH_SIZE),
        INBOX_MAX_ATTEMPTS: String(INBOX_MAX_ATTEMPTS),
        EVENT_TYPE,
        PAYLOAD: state.payload,
      },
      timeoutMs: TIMEOUT_MS,
    });
    const stats = { unit: 'events/s', reqPerSec: result.eventsPerSec, latencyMs: noLatency, cpuUsPerRequest: result.cpuUs / result.events, events: result.events, seconds: result.seconds };
    log(`${Math.round(stats.reqPerSec)} events/s (${result.events} in ${result.seconds.toFixed(2)} s), ${Math.round(stats.cpuUsPerRequest)} CPU µs/event`);
    return { stats, problems: [] };
  } finally {
    await emptySink(ctx, BARE_SINK);
  }
}

export default {
  name: 'relay.throughput',
  title: 'outbox relay (orders.outbox -> Bull) vs a bare Bull addBulk loop',
  // Issue 11: events/s >= 0.70x of the bare loop.
  goal: { baseline: 'bare', minThroughputRatio: 0.7, unit: 'events/s' },
  // Without the notifications module nothing consumes its inbox: the relay's jobs stay there.
  productEnv: { MODULES_ENABLED: 'users,orders', ORDER_PENDING_TTL, OUTBOX_BATCH_SIZE: String(BATCH_SIZE), INBOX_MAX_ATTEMPTS: String(INBOX_MAX_ATTEMPTS) },
  sides: [
    { id: 'product', label: 'product: outbox relay (events/s)', api: true },
    { id: 'bare', label: 'bare Bull addBulk loop (events/s)', api: false },
  ],
  settingsNote: (config) =>
    `${config.relayEvents} ${EVENT_TYPE} events per side and round (after ${Math.max(100, Math.round(config.relayEvents / 10))} of warm-up), batches of ${BATCH_SIZE}; API with MODULES_ENABLED=users,orders (${RELAY_SINK} unconsumed)`,

  async setup(ctx) {
    // A real order: its outbox row gives the payload and metadata the relay carries.
    const fixture = await orderFixture(ctx, { count: 1 });
    const order = (await expectStatus(ctx.product.url, fixture.request, 201)).json;
    const query = `SELECT payload, metadata, published_at FROM orders.outbox WHERE event_type = $1 AND payload->>'orderId' = $2`;
    let rows = [];
    // The relay keeps the row it published (published_at): the API routes the type and marks rows.
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(50)) {
      ({ rows } = await ctx.db.query(query, [EVENT_TYPE, order.id]));
      if (rows[0]?.published_at) break;
    }
    if (rows.length !== 1 || !rows[0].published_at) throw new ProductNotReady(`the order ${order.id}'s ${EVENT_TYPE} row was not kept and marked published in orders.outbox (${rows.length} rows)`);
    return { payload: JSON.stringify(rows[0].payload), metadata: JSON.stringify(rows[0].metadata ?? {}), ordersDatabaseUrl: ctx.moduleDatabaseUrl('orders') };
  },

  measure(ctx, state, side, info) {
    return side === 'product' ? measureRelay(ctx, state, info) : measureBare(ctx, state, info);
  },

  async cleanup(ctx) {
    await ctx.db.query('DELETE FROM orders.outbox');
    await emptySink(ctx, RELAY_SINK);
    await emptySink(ctx, BARE_SINK);
  },
};

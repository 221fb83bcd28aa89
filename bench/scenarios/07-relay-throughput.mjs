// Issue 5: the outbox relay's throughput against a bare Bull `addBulk` loop on the same
// Redis. Goal: relay >= 0.5x the bare loop (events/s).
//
// product: BENCH_RELAY_EVENTS (20000) rows are inserted into `orders.outbox` as the orders
//   module role, in one transaction (so they all become visible, and the relay is woken
//   by the trigger's NOTIFY, at one commit), while the API runs with its relays. The
//   event type `bench.relay-probe.v1` is routed only to the bench-only queue
//   `bench.relay-sink` (SADD into `<prefix>:event-subscriptions:<type>`, the registry's
//   Redis set): no processor consumes it, so no consumer shares the machine. Measured
//   from the commit until the outbox is empty (the sink's wait list is watched in Redis,
//   then one Postgres count confirms the last DELETE committed). The payload is an
//   `orders.order-placed.v1` payload of a real order (same size as production events).
// bare: bench/baselines/bull-addbulk.mjs, in its own process with the API stopped:
//   the same number of the same jobs (envelope, name, job options) in batches of
//   OUTBOX_BATCH_SIZE (100, the API's default) into `bench.bare-sink`.
// Each side starts with a tenth of the events as warm-up; the sinks are emptied (SCAN +
// DEL of their keys) and the outbox vacuumed before each measured part.
import pg from 'pg';
import { runScript } from '../lib/processes.mjs';
import { BENCH_DIR } from '../lib/config.mjs';
import { processCpuSeconds } from '../lib/cpu.mjs';
import { expectStatus, orderFixture, ProductNotReady } from '../lib/fixtures.mjs';
import { ORDER_PENDING_TTL } from '../lib/orders.mjs';
import { wallMs } from '../lib/rate.mjs';
import path from 'node:path';

const EVENT_TYPE = 'bench.relay-probe.v1';
const RELAY_SINK = 'bench.relay-sink';
const BARE_SINK = 'bench.bare-sink';
const BATCH_SIZE = 100; // OUTBOX_BATCH_SIZE's default; the API runs with it
const INBOX_MAX_ATTEMPTS = 8; // the API's default
const TIMEOUT_MS = 120_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const noLatency = { mean: null, p50: null, p90: null, p99: null, max: null };

/** Removes a sink queue's keys (`<prefix>:bull:<queue>:*`); returns how many. */
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
const outboxCount = async (ctx) => Number((await ctx.db.query('SELECT count(*) AS n FROM orders.outbox')).rows[0].n);

/** Inserts `count` probe events in one transaction as the orders module role; resolves after the commit. */
async function insertEvents(state, count) {
  const client = new pg.Client({ connectionString: state.ordersDatabaseUrl });
  await client.connect();
  try {
    await client.query('BEGIN');
    for (let done = 0; done < count; done += 5000) {
      await client.query(
        `INSERT INTO orders.outbox (id, event_type, payload, metadata)
         SELECT gen_random_uuid(), $1, $2::jsonb, jsonb_build_object('requestId', gen_random_uuid()::text)
           FROM generate_series(1, $3)`,
        [EVENT_TYPE, state.payload, Math.min(5000, count - done)],
      );
    }
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}

/** Until the relay has published `count` jobs to the sink and deleted every row; returns the wall time it did. */
async function waitUntilRelayed(ctx, count, checkAborted) {
  const deadline = Date.now() + TIMEOUT_MS;
  while ((await waitingJobs(ctx, RELAY_SINK)) < count) {
    if (Date.now() > deadline) return null;
    checkAborted();
    await sleep(5);
  }
  while ((await outboxCount(ctx)) > 0) {
    if (Date.now() > deadline) return null;
    await sleep(2);
  }
  return wallMs();
}

async function measureRelay(ctx, state, { api, log, checkAborted }) {
  const events = ctx.config.relayEvents;
  const warmup = Math.max(100, Math.round(events / 10));
  const problems = [];
  if ((await outboxCount(ctx)) > 0) await ctx.db.query('DELETE FROM orders.outbox');
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
  const doneAt = await waitUntilRelayed(ctx, events, checkAborted);
  const cpuAfter = processCpuSeconds(api.pid);
  const published = await waitingJobs(ctx, RELAY_SINK);
  await emptySink(ctx, RELAY_SINK);
  if (doneAt === null) {
    problems.push(`${events} events were not all relayed within ${TIMEOUT_MS / 1000} s (${published} in the sink, ${await outboxCount(ctx)} left in the outbox)`);
    return { stats: null, problems };
  }
  if (published !== events) problems.push(`the sink holds ${published} jobs for ${events} events`);
  const seconds = (doneAt - startedAt) / 1000;
  const stats = {
    unit: 'events/s',
    reqPerSec: events / seconds,
    latencyMs: noLatency,
    cpuUsPerRequest: cpuBefore !== null && cpuAfter !== null ? ((cpuAfter - cpuBefore) * 1e6) / events : null,
    events,
    seconds,
  };
  log(`${Math.round(stats.reqPerSec)} events/s (${events} in ${seconds.toFixed(2)} s), ${Math.round(stats.cpuUsPerRequest ?? NaN)} API CPU µs/event`);
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
  goal: { baseline: 'bare', minThroughputRatio: 0.5, unit: 'events/s' },
  productEnv: { ORDER_PENDING_TTL, OUTBOX_BATCH_SIZE: String(BATCH_SIZE), INBOX_MAX_ATTEMPTS: String(INBOX_MAX_ATTEMPTS) },
  sides: [
    { id: 'product', label: 'product: outbox relay (events/s)', api: true },
    { id: 'bare', label: 'bare Bull addBulk loop (events/s)', api: false },
  ],
  settingsNote: (config) => `${config.relayEvents} events per side and round (after ${Math.max(100, Math.round(config.relayEvents / 10))} of warm-up), batches of ${BATCH_SIZE}`,

  async setup(ctx) {
    // A real order's event payload, as the relay would carry it.
    const fixture = await orderFixture(ctx, { count: 1 });
    const order = (await expectStatus(ctx.product.url, fixture.request, 201)).json;
    const payload = { orderId: order.id, userId: order.userId, status: order.status, totalCents: order.totalCents, currency: order.currency, lines: order.items, occurredAt: new Date().toISOString() };
    const key = `${ctx.config.benchId}:event-subscriptions:${EVENT_TYPE}`;
    await ctx.redis.sadd(key, RELAY_SINK);
    if ((await ctx.redis.smembers(key)).join() !== RELAY_SINK) throw new ProductNotReady(`${key} holds other queues than ${RELAY_SINK}`);
    return { payload: JSON.stringify(payload), ordersDatabaseUrl: ctx.moduleDatabaseUrl('orders') };
  },

  measure(ctx, state, side, info) {
    return side === 'product' ? measureRelay(ctx, state, info) : measureBare(ctx, state, info);
  },

  async cleanup(ctx) {
    await ctx.db.query('DELETE FROM orders.outbox WHERE event_type = $1', [EVENT_TYPE]);
    await ctx.redis.del(`${ctx.config.benchId}:event-subscriptions:${EVENT_TYPE}`);
    await emptySink(ctx, RELAY_SINK);
    await emptySink(ctx, BARE_SINK);
  },
};

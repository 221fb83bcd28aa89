// Issue 11, "cost as data grows": the outbox, inbox, dead-letter and idempotency-key tables
// and the run's Redis memory after BENCH_EVENT_GROWTH_EVENTS events through the real event
// path must be flat, bounded by their retention rules (docs/architecture.md "Retention").
//
// Default 500 000 events at 800/s (about 11 min with the checkpoints on a quiet 2-core
// machine): the path costs about 0.8 ms of API CPU per event (relay + consumer, one Node
// process) plus Postgres and Redis, so 1 000 000 would take 17 min or more here. The
// issue's 1 M: BENCH_EVENT_GROWTH_EVENTS=1000000.
//
// The path: rows inserted by SQL into `orders.outbox` as the orders module role, in
// batches of BATCH, paced at BENCH_EVENT_GROWTH_RATE events/s (each batch's transaction also
// writes one idempotency key per KEY_EVERY events, expiring after the retention window, as
// a placed order with an Idempotency-Key does; `pg_notify('orders_outbox')` wakes the
// relay as any writer outside the API does); the running API's orders relay publishes
// them to `notifications.inbox`, and the notifications module consumes them (inbox row in
// its transaction). The type is `orders.order-cancelled.v1` with reason `account-deleted`,
// the order event whose handler does nothing but let the inbox record it: the pair
// measures the messaging tables, not the notifications table (kept 90 days by its own
// partition retention, pair 08). One event in BENCH_EVENT_GROWTH_POISON_EVERY has a user id
// that is no uuid: its handler fails, Bull retries it (INBOX_BACKOFF_BASE_MS=10 here, so the
// retries take about a second), then it becomes a dead letter and a job in Bull's failed set.
//
// The API runs with its retention shortened by environment so its RetentionSweeper works
// all along: OUTBOX_RETENTION = INBOX_RETENTION = DEAD_LETTER_RETENTION =
// BENCH_EVENT_GROWTH_RETENTION_S, RETENTION_INTERVAL_MS = INTERVAL_MS.
//
// Deleted rows leave dead tuples that only VACUUM makes reusable: the product relies on
// autovacuum (README "Retention"). Where the server has it (`autovacuum = on`, the default)
// the pair leaves it alone. A server with it off (this repository's CI Postgres,
// conf.d/90-ci.conf, for faster tests) would show the tables' files growing however well
// retention keeps their rows bounded, so with BENCH_EVENT_GROWTH_VACUUM=auto (the default)
// the pair stands in for autovacuum with its default rules, and says so: every
// autovacuum_naptime (60 s), each measured table whose dead tuples exceed
// autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor x reltuples (50 + 0.2 x) is
// VACUUMed, and ANALYZEd when its changes since the last analyze exceed the analyze
// threshold (50 + 0.1 x), with the server's own settings. `never`: no stand-in (what a
// server without autovacuum does to these tables).
//
// Every tenth of the events (BENCH_EVENT_GROWTH_CHECKPOINTS), feeding stops until the
// relay and the consumer have caught up (no unpublished row, nothing waiting, active or
// delayed in the inbox queue), then it records per table its rows,
// pg_total_relation_size and dead tuples, and the memory of the run's Redis keys
// (SCAN MATCH `<run id>:*` + MEMORY USAGE per key, sampled above SAMPLE_ABOVE keys; never
// INFO memory, which other users of the server share), by key family.
//
// Verdict, from the first steady checkpoint (>= 20 % of the events, two retention windows
// and two autovacuum naptimes into the run) to the last, per table:
// - rows: at each checkpoint no more than the events of its retention window put into the
//   table (1 per event in orders.outbox and notifications.inbox, 1 in 4 idempotency keys,
//   1 in POISON_EVERY dead letters, none elsewhere), the window widened by a sweep interval,
//   the drain and 10 s of lag, plus 50 rows. Rate-independent: on a shared machine the
//   rate reached moves by 20-40 %, and the rows retained with it. A table without
//   retention ends with every event; one kept twice as long, over the bound.
// - size (pg_total_relation_size): the file holds what the busiest window so far needed
//   (VACUUM makes space reusable, it does not give it back), so it is taken per event of
//   that window; and autovacuum's cycle (a naptime of dead tuples, then a vacuum) moves it
//   by 20-30 % from one checkpoint to the next, so the steady checkpoints are split in two
//   halves of several vacuum rounds each, and the late half's peak must be <= 1.2x the
//   early half's (or within 64 KiB, 8 pages). A file growing with the events is >= 1.6x
//   (its late peak is at 100 %, its early one at 60 % or earlier).
// Redis (the run's keys, Bull's failed set apart): the same halves, <= 1.2x or within
// 64 KiB; between checkpoints nothing is waiting, so what remains is what the path keeps
// per event (a key without TTL, jobs not removed) plus fixed keys.
// Bull's failed set is bounded by count (FAILED_JOB_RETENTION: 10 000 jobs, 7 days), not by
// the retention window: its jobs are reported apart, and checked against that cap.
import pg from 'pg';
import { ProductNotReady } from '../lib/fixtures.mjs';
import { processCpuSeconds, processRssMb } from '../lib/cpu.mjs';
import { wallMs } from '../lib/rate.mjs';

const num = (name, fallback) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer (got ${JSON.stringify(raw)})`);
  return value;
};
const EVENTS = num('BENCH_EVENT_GROWTH_EVENTS', 500_000);
const RATE = num('BENCH_EVENT_GROWTH_RATE', 800);
const RETENTION_S = num('BENCH_EVENT_GROWTH_RETENTION_S', 20);
const CHECKPOINTS = num('BENCH_EVENT_GROWTH_CHECKPOINTS', 10);
const POISON_EVERY = num('BENCH_EVENT_GROWTH_POISON_EVERY', 10_000);
const INTERVAL_MS = 2000;
const BATCH = 500;
const KEY_EVERY = 4;
const FLAT_X = 1.2;
const WINDOW_MARGIN_MS = 10_000;
const STEADY_FROM = 0.2;
const SLACK_BYTES = 64 * 1024;
const SLACK_ROWS = 50;
const SAMPLE_ABOVE = 20_000;
const FAILED_CAP = 10_000; // FAILED_JOB_RETENTION.count (libs/platform/src/messaging/queue.factory.ts)
const DRAIN_TIMEOUT_MS = 180_000;
const VACUUM_MODE = process.env.BENCH_EVENT_GROWTH_VACUUM || 'auto';
if (!['auto', 'never'].includes(VACUUM_MODE)) throw new Error(`BENCH_EVENT_GROWTH_VACUUM must be auto or never (got ${JSON.stringify(VACUUM_MODE)})`);
const EVENT_TYPE = 'orders.order-cancelled.v1';
/** Rows each event puts into a table (the others get none from this path). */
const TABLE_SHARE = { 'orders.outbox': 1, 'notifications.inbox': 1, 'orders.idempotency_keys': 1 / KEY_EVERY, 'notifications.dead_letters': 1 / POISON_EVERY };
const INBOX = 'notifications.inbox';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const kib = (bytes) => `${(bytes / 1024).toFixed(0)} KiB`;
const mib = (bytes) => (bytes >= 10 * 1024 * 1024 ? `${(bytes / 1048576).toFixed(1)} MiB` : kib(bytes));
const fmtInt = (n) => Math.round(n).toLocaleString('en-US');

/** The growing messaging tables present in the run's database (from the modules' migrations). */
async function growingTables(db) {
  const { rows } = await db.query(
    `SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
      WHERE table_schema IN ('users', 'orders', 'notifications') AND table_name IN ('outbox', 'inbox', 'dead_letters', 'idempotency_keys')
        AND table_type = 'BASE TABLE'
      ORDER BY table_schema, CASE table_name WHEN 'outbox' THEN 1 WHEN 'inbox' THEN 2 WHEN 'dead_letters' THEN 3 ELSE 4 END`,
  );
  return rows.map((r) => r.name);
}

async function tableFigures(db, tables) {
  const out = {};
  for (const table of tables) {
    const { rows } = await db.query(
      `SELECT (SELECT count(*) FROM ${table}) AS rows, pg_total_relation_size($1::regclass) AS bytes,
              s.n_dead_tup AS dead, s.autovacuum_count AS autovacuums
         FROM pg_stat_user_tables s WHERE s.relid = $1::regclass`,
      [table],
    );
    out[table] = { rows: Number(rows[0].rows), bytes: Number(rows[0].bytes), deadTuples: Number(rows[0].dead), autovacuums: Number(rows[0].autovacuums) };
  }
  return out;
}

/** A key's family: its name with ids (uuids, numbers) replaced by `*`. */
const family = (key, prefix) => key.slice(prefix.length + 1).replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '*').replace(/(^|:)\d+(?=:|$)/g, '$1*');

/** Memory of every key under the run's prefix (MEMORY USAGE), by family; sampled when there are many. */
async function redisFigures(ctx) {
  const prefix = ctx.config.benchId;
  const keys = [];
  let cursor = '0';
  do {
    const [next, found] = await ctx.redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  const step = keys.length > SAMPLE_ABOVE ? Math.ceil(keys.length / SAMPLE_ABOVE) : 1;
  const measured = keys.filter((_, i) => i % step === 0);
  const failedPrefix = `${prefix}:bull:${INBOX}:`;
  const failedIds = new Set(await ctx.redis.zrange(`${failedPrefix}failed`, 0, -1));
  const families = {};
  let bytes = 0;
  let failedBytes = 0;
  for (let i = 0; i < measured.length; i += 500) {
    const chunk = measured.slice(i, i + 500);
    const pipeline = ctx.redis.pipeline();
    for (const key of chunk) pipeline.memory('USAGE', key);
    const results = await pipeline.exec();
    chunk.forEach((key, n) => {
      // A key gone between SCAN and MEMORY USAGE answers null: it counts as 0.
      const used = (Number(results[n][1]) || 0) * step;
      const name = family(key, prefix);
      families[name] ??= { keys: 0, bytes: 0 };
      families[name].keys += step;
      families[name].bytes += used;
      bytes += used;
      if (key === `${failedPrefix}failed` || (key.startsWith(failedPrefix) && failedIds.has(key.slice(failedPrefix.length)))) failedBytes += used;
    });
  }
  return { keys: keys.length, sampledEvery: step, bytes, failedJobs: failedIds.size, failedBytes, withoutFailed: bytes - failedBytes, families };
}

/**
 * What autovacuum would do with its default rules, for a server that has it off: null when
 * the server runs autovacuum (or BENCH_EVENT_GROWTH_VACUUM=never). run() VACUUMs (ANALYZEs)
 * the tables past autovacuum's thresholds, at most once per autovacuum_naptime.
 */
async function autovacuumStandIn(db, tables) {
  const settings = Object.fromEntries(
    (await db.query(
      `SELECT name, setting FROM pg_settings WHERE name IN ('autovacuum', 'autovacuum_naptime', 'autovacuum_vacuum_threshold',
         'autovacuum_vacuum_scale_factor', 'autovacuum_analyze_threshold', 'autovacuum_analyze_scale_factor')`,
    )).rows.map((r) => [r.name, r.setting]),
  );
  if (settings.autovacuum === 'on' || VACUUM_MODE === 'never') return { settings, active: false, runs: 0, vacuums: 0, run: async () => undefined };
  const naptimeMs = Number(settings.autovacuum_naptime) * 1000;
  const standIn = { settings, active: true, runs: 0, vacuums: 0, last: wallMs() };
  standIn.run = async () => {
    if (wallMs() - standIn.last < naptimeMs) return;
    standIn.last = wallMs();
    standIn.runs++;
    for (const table of tables) {
      const { rows } = await db.query(
        `SELECT s.n_dead_tup AS dead, s.n_mod_since_analyze AS modified, greatest(c.reltuples, 0) AS tuples
           FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid WHERE s.relid = $1::regclass`,
        [table],
      );
      const { dead, modified, tuples } = rows[0];
      const vacuum = Number(dead) > Number(settings.autovacuum_vacuum_threshold) + Number(settings.autovacuum_vacuum_scale_factor) * Number(tuples);
      const analyze = Number(modified) > Number(settings.autovacuum_analyze_threshold) + Number(settings.autovacuum_analyze_scale_factor) * Number(tuples);
      // SKIP_LOCKED, as autovacuum skips a table it cannot lock at once.
      if (vacuum) await db.query(`VACUUM (SKIP_LOCKED${analyze ? ', ANALYZE' : ''}) ${table}`);
      else if (analyze) await db.query(`ANALYZE (SKIP_LOCKED) ${table}`);
      if (vacuum) standIn.vacuums++;
    }
  };
  return standIn;
}

/** Events not consumed yet: unpublished outbox rows, and inbox-queue jobs waiting, active or delayed (retries). */
async function backlog(ctx, ordersClient) {
  const key = (part) => `${ctx.config.benchId}:bull:${INBOX}:${part}`;
  const [unpublished, waiting, active, delayed] = await Promise.all([
    ordersClient.query('SELECT count(*) AS n FROM orders.outbox WHERE published_at IS NULL').then(({ rows }) => Number(rows[0].n)),
    ctx.redis.llen(key('wait')),
    ctx.redis.llen(key('active')),
    ctx.redis.zcard(key('delayed')),
  ]);
  return unpublished + waiting + active + delayed;
}

/** `count` events (and their idempotency keys) in one transaction; event i's number is `from + i`. */
async function insertBatch(client, state, from, count) {
  await client.query('BEGIN');
  await client.query(
    `INSERT INTO orders.outbox (id, event_type, payload, metadata)
     SELECT gen_random_uuid(), $1,
            jsonb_set(jsonb_set($2::jsonb, '{orderId}', to_jsonb(gen_random_uuid()::text)), '{userId}',
                      to_jsonb(CASE WHEN ($4 + i) % $5 = 0 THEN 'not-a-uuid' ELSE md5('u' || (($4 + i) % 100000))::uuid::text END))
            - CASE WHEN ($4 + i) % $5 = 0 THEN 'reason' ELSE '' END,
            jsonb_build_object('requestId', gen_random_uuid()::text)
       FROM generate_series(1, $3) AS i`,
    [EVENT_TYPE, state.payload, count, from, POISON_EVERY],
  );
  await client.query(
    `INSERT INTO orders.idempotency_keys (user_id, key, request_hash, state, claim_id, response_status, response_body, expires_at)
     SELECT md5('u' || (($3 + i) % 100000))::uuid, 'growth-' || ($3 + i), md5('h' || i), 'completed', gen_random_uuid(), 201, $2::jsonb,
            now() + make_interval(secs => $4)
       FROM generate_series(1, $1) AS i`,
    [Math.floor(count / KEY_EVERY), state.payload, from, RETENTION_S],
  );
  await client.query(`SELECT pg_notify('orders_outbox', '')`);
  await client.query('COMMIT');
}

/** Whether `last` is within FLAT_X of `first` (or within the slack of it). */
const flat = (first, last, slack) => last <= Math.max(first * FLAT_X, first + slack);
const ratio = (first, last) => (first > 0 ? `${(last / first).toFixed(2)}x` : last > 0 ? 'from 0' : '1.00x');

function checkpointTable(checkpoints, tables) {
  const header = ['events', 's', ...tables.flatMap((t) => [`${t} rows`, 'size']), 'redis keys', 'redis', 'failed jobs'];
  const rows = checkpoints.map((c) => [
    fmtInt(c.events),
    c.elapsedS.toFixed(0),
    ...tables.flatMap((t) => [fmtInt(c.tables[t].rows), mib(c.tables[t].bytes)]),
    fmtInt(c.redis.keys),
    mib(c.redis.bytes),
    String(c.redis.failedJobs),
  ]);
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => String(r[i]).length)));
  return all.map((r) => r.map((cell, i) => String(cell).padStart(widths[i])).join('  ')).join('\n');
}

/** Seconds into the run a checkpoint must be to count as steady. */
const steadyAfterS = (naptimeS) => Math.max(2 * (RETENTION_S + INTERVAL_MS / 1000), 2 * naptimeS);
/** The first steady checkpoint's index (-1: none). */
const steadyIndex = (checkpoints, naptimeS) => checkpoints.findIndex((c) => c.events >= EVENTS * STEADY_FROM && c.elapsedS >= steadyAfterS(naptimeS));

/** The goals (see the header), from the checkpoints; exported for checking a result file again. */
export function judge(checkpoints, tables, naptimeS, log = () => undefined) {
  // The verdicts: last checkpoint vs the first steady one.
  // Two retention windows, and two autovacuum rounds (the files stop growing once vacuumed space is reused).
  const windowS = steadyAfterS(naptimeS);
  const steady = checkpoints[steadyIndex(checkpoints, naptimeS)];
  const last = checkpoints[checkpoints.length - 1];
  const goals = [];
  const at = (c) => `${Math.round((100 * c.events) / EVENTS)} %`;
  if (!steady || checkpoints.length - checkpoints.indexOf(steady) < 2) {
    goals.push({ id: 'steady', goal: `a steady checkpoint (>= ${STEADY_FROM * 100} % of the events and >= ${windowS} s in) before the last`, value: 'none: the run is too short for its retention window', met: null });
  } else {
    const fromSteady = checkpoints.slice(checkpoints.indexOf(steady));
    const earlyHalf = fromSteady.slice(0, Math.ceil(fromSteady.length / 2));
    const lateHalf = fromSteady.slice(Math.ceil(fromSteady.length / 2));
    const peak = (list, f) => Math.max(...list.map(f));
    for (const table of tables) {
      const [a, b] = [steady.tables[table], last.tables[table]];
      // Rows: at every checkpoint from the steady one, no more than the events of its
      // retention window put into this table (share per event) allow.
      const share = TABLE_SHARE[table] ?? 0;
      const worst = fromSteady.reduce((w, c) => {
        const over = c.tables[table].rows - c.windowEvents * share;
        return over > w.over ? { over, c } : w;
      }, { over: -Infinity, c: last });
      const rowsMet = worst.over <= SLACK_ROWS;
      // Size: the file holds the busiest window seen so far (space freed by VACUUM is
      // reused, not returned), so it is compared per event of that window; and as the
      // peak over each half of the steady checkpoints, which spans several vacuum rounds.
      const perEvent = (c) => (share ? c.tables[table].bytes / Math.max(1, c.busiestWindow * share) : c.tables[table].bytes);
      const [early, late] = [peak(earlyHalf, perEvent), peak(lateHalf, perEvent)];
      const sizeMet = peak(lateHalf, (c) => c.tables[table].bytes) - peak(earlyHalf, (c) => c.tables[table].bytes) <= SLACK_BYTES || late <= FLAT_X * early;
      goals.push({
        id: table,
        goal: `${table}: rows within the retention window; size (per event of the busiest window), peak of the late half <= ${FLAT_X}x the early half's from ${at(steady)}`,
        value:
          `rows ${fmtInt(a.rows)} -> ${fmtInt(b.rows)} (window allows ${fmtInt(last.windowEvents * share)}${worst.c !== last ? `; worst ${fmtInt(worst.c.tables[table].rows)} of ${fmtInt(worst.c.windowEvents * share)} at ${at(worst.c)}` : ''}), ` +
          `size ${mib(a.bytes)} -> ${mib(b.bytes)} (${ratio(a.bytes, b.bytes)}; peak${share ? ' per event' : ''}, late/early half: ${ratio(early, late)})`,
        met: rowsMet && sizeMet,
      });
    }
    const [ra, rb] = [peak(earlyHalf, (c) => c.redis.withoutFailed), peak(lateHalf, (c) => c.redis.withoutFailed)];
    goals.push({
      id: 'redis',
      goal: `Redis, the run's keys but Bull's failed set: peak of the late half <= ${FLAT_X}x the early half's from ${at(steady)}`,
      value: `${mib(ra)} -> ${mib(rb)} (${ratio(ra, rb)}); at ${at(steady)} and 100 %: ${mib(steady.redis.withoutFailed)}, ${mib(last.redis.withoutFailed)}, ${fmtInt(steady.redis.keys)} -> ${fmtInt(last.redis.keys)} keys`,
      met: flat(ra, rb, SLACK_BYTES),
    });
    // Which key families grew: the first place to look when Redis is not flat.
    const grown = Object.entries(last.redis.families)
      .map(([name, f]) => [name, f.bytes - (steady.redis.families[name]?.bytes ?? 0), f])
      .filter(([, delta]) => delta > 16 * 1024)
      .sort((x, y) => y[1] - x[1]);
    if (grown.length) log(`Redis key families that grew since ${at(steady)}: ${grown.slice(0, 8).map(([name, delta, f]) => `${name} +${kib(delta)} (${fmtInt(f.keys)} keys)`).join(', ')}`);
  }
  goals.push({
    id: 'failed-jobs',
    goal: `Bull's failed set of ${INBOX}: <= ${fmtInt(FAILED_CAP)} jobs (its count bound)`,
    value: `${last.redis.failedJobs} jobs, ${mib(last.redis.failedBytes)}`,
    met: last.redis.failedJobs <= FAILED_CAP,
  });
  return goals;
}

async function measureGrowth(ctx, state, { api, log, checkAborted }) {
  const tables = await growingTables(ctx.db);
  const standIn = await autovacuumStandIn(ctx.db, tables);
  // Beside the feeding, never in its way (as autovacuum's own workers).
  let vacuuming = null;
  const vacuumTimer = setInterval(() => {
    vacuuming ??= standIn.run().catch((error) => log(`autovacuum stand-in: ${error.message}`)).finally(() => (vacuuming = null));
  }, 1000);
  const client = new pg.Client({ connectionString: ctx.moduleDatabaseUrl('orders'), application_name: 'bench:event-growth' });
  await client.connect();
  const problems = [];
  const warnings = [];
  const checkpoints = [];
  try {
    let inserted = 0;
    let pausedMs = 0;
    let heldMs = 0;
    let measuringMs = 0;
    /** [time, events inserted by then] after each batch: what each retention window received. */
    const timeline = [[wallMs(), 0]];
    const insertedBy = (t) => {
      let n = 0;
      for (const [at, count] of timeline) if (at <= t) n = count;
      return n;
    };
    let busiestWindow = 0;
    const startedAt = wallMs();
    const cpuBefore = processCpuSeconds(api.pid);
    let rssPeak = 0;
    for (let k = 1; k <= CHECKPOINTS; k++) {
      const target = Math.round((EVENTS * k) / CHECKPOINTS);
      while (inserted < target) {
        checkAborted();
        // Paced: event n is due at n / RATE seconds of feeding (pauses at checkpoints excluded).
        const due = startedAt + pausedMs + (inserted / RATE) * 1000;
        if (due > wallMs()) await sleep(due - wallMs());
        // The relay or the consumer falling behind: hold until they catch up (the pair reports it).
        if ((await backlog(ctx, client)) > RATE * 2) {
          const heldAt = wallMs();
          while ((await backlog(ctx, client)) > RATE / 2) await sleep(50);
          heldMs += wallMs() - heldAt;
          pausedMs += wallMs() - heldAt;
        }
        const count = Math.min(BATCH, target - inserted);
        await insertBatch(client, state, inserted, count);
        inserted += count;
        timeline.push([wallMs(), inserted]);
      }
      const pauseAt = wallMs();
      for (const deadline = wallMs() + DRAIN_TIMEOUT_MS; (await backlog(ctx, client)) > 0; await sleep(50)) {
        if (wallMs() > deadline) throw new Error(`the events were not all consumed within ${DRAIN_TIMEOUT_MS / 1000} s of the checkpoint at ${inserted}`);
        checkAborted();
      }
      const drainMs = wallMs() - pauseAt;
      const measureAt = wallMs();
      const [tablesNow, redis] = [await tableFigures(ctx.db, tables), await redisFigures(ctx)];
      const rss = processRssMb(api.pid) ?? 0;
      rssPeak = Math.max(rssPeak, rss);
      const elapsedS = (wallMs() - startedAt) / 1000;
      // Events inserted in the retention window before this checkpoint, widened by a sweep
      // interval, the drain and WINDOW_MARGIN_MS (the relay's and consumer's lag, the sweep's
      // own time): all that retention may still keep now.
      const windowEvents = inserted - insertedBy(measureAt - RETENTION_S * 1000 - INTERVAL_MS - drainMs - WINDOW_MARGIN_MS);
      busiestWindow = Math.max(busiestWindow, windowEvents);
      checkpoints.push({ events: inserted, elapsedS, drainMs, windowEvents, busiestWindow, tables: tablesNow, redis, apiRssMb: rss });
      pausedMs += wallMs() - pauseAt;
      measuringMs += wallMs() - measureAt;
      log(
        `${fmtInt(inserted)} events, ${elapsedS.toFixed(0)} s (drained in ${drainMs.toFixed(0)} ms): ` +
          `${tables.filter((t) => tablesNow[t].rows || tablesNow[t].bytes > 65536).map((t) => `${t} ${fmtInt(tablesNow[t].rows)} rows ${mib(tablesNow[t].bytes)}`).join(', ')}; ` +
          `Redis ${fmtInt(redis.keys)} keys ${mib(redis.bytes)} (${redis.failedJobs} failed jobs), API RSS ${Math.round(rss)} MB`,
      );
    }
    // Throughput end to end: until the last event was consumed, the checkpoints' own measuring left out.
    const seconds = (wallMs() - startedAt - measuringMs) / 1000;
    const cpuAfter = processCpuSeconds(api.pid);
    if (heldMs > 1000) warnings.push(`the relay or the consumer fell behind ${fmtInt(RATE)} events/s: feeding was held ${(heldMs / 1000).toFixed(0)} s in all until they caught up; retained rows follow the rate actually reached`);

    const goals = judge(checkpoints, tables, Number(standIn.settings.autovacuum_naptime), log);
    const poisoned = Math.floor(EVENTS / POISON_EVERY);
    if (standIn.active) {
      warnings.push(
        `the server runs with autovacuum = off: the pair stood in for it with autovacuum's default rules (every ${standIn.settings.autovacuum_naptime} s, ` +
          `dead tuples > ${standIn.settings.autovacuum_vacuum_threshold} + ${standIn.settings.autovacuum_vacuum_scale_factor} x reltuples): ${standIn.vacuums} VACUUMs in ${standIn.runs} rounds (BENCH_EVENT_GROWTH_VACUUM=never: without)`,
      );
    } else if (standIn.settings.autovacuum !== 'on') {
      warnings.push('the server runs with autovacuum = off and BENCH_EVENT_GROWTH_VACUUM=never: nothing made the deleted rows\' space reusable, so the tables\' files grow with the events');
    }
    log(`checkpoints:\n${checkpointTable(checkpoints, tables).replace(/^/gm, '      ')}`);
    const stats = {
      unit: 'events/s',
      reqPerSec: EVENTS / seconds,
      latencyMs: { mean: null, p50: null, p90: null, p99: null, max: null },
      cpuUsPerRequest: cpuBefore !== null && cpuAfter !== null ? ((cpuAfter - cpuBefore) * 1e6) / EVENTS : null,
      events: EVENTS,
      seconds,
      poisonEvents: poisoned,
      apiRssPeakMb: rssPeak,
      autovacuum: { server: standIn.settings.autovacuum, standIn: standIn.active, rounds: standIn.runs, vacuums: standIn.vacuums },
      steadyCheckpoint: steadyIndex(checkpoints, Number(standIn.settings.autovacuum_naptime)),
      checkpoints,
    };
    log(`${fmtInt(stats.reqPerSec)} events/s end to end (${seconds.toFixed(0)} s from the first insert to the last event consumed, checkpoints' measuring left out), ${fmtInt(stats.cpuUsPerRequest ?? NaN)} API CPU µs/event`);
    return { stats, goals, problems, warnings };
  } finally {
    clearInterval(vacuumTimer);
    await vacuuming;
    await client.end().catch(() => undefined);
  }
}

export default {
  name: 'event-growth',
  title: `messaging tables and Redis after ${EVENTS.toLocaleString('en-US')} events through outbox -> relay -> notifications inbox`,
  goal: { custom: true, text: `every outbox, inbox, dead-letter and idempotency-key table within its retention window, its size and Redis flat (<= ${FLAT_X}x from ${STEADY_FROM * 100} % on)` },
  productEnv: {
    OUTBOX_RETENTION: `${RETENTION_S}s`,
    INBOX_RETENTION: `${RETENTION_S}s`,
    DEAD_LETTER_RETENTION: `${RETENTION_S}s`,
    RETENTION_INTERVAL_MS: String(INTERVAL_MS),
    INBOX_BACKOFF_BASE_MS: '10',
  },
  sides: [{ id: 'product', label: 'product: events through the path (events/s)', short: 'product', api: true }],
  settingsNote: () =>
    `${EVENTS.toLocaleString('en-US')} ${EVENT_TYPE} events (reason account-deleted; 1 in ${POISON_EVERY.toLocaleString('en-US')} fails into a dead letter) at ${RATE} events/s in batches of ${BATCH}, ` +
    `one idempotency key per ${KEY_EVERY} events; retention ${RETENTION_S} s (outbox, inbox, dead letters, keys), swept every ${INTERVAL_MS} ms; ${CHECKPOINTS} checkpoints`,

  async setup(ctx) {
    const payload = JSON.stringify({
      orderId: '00000000-0000-4000-8000-000000000000',
      userId: '00000000-0000-4000-8000-000000000000',
      status: 'cancelled',
      previousStatus: 'pending',
      totalCents: 4200,
      currency: 'EUR',
      lines: [{ productId: '00000000-0000-4000-8000-000000000001', sku: 'GROWTH-1', name: 'Product 1', quantity: 2, unitPriceCents: 2100 }],
      occurredAt: new Date().toISOString(),
      reason: 'account-deleted',
    });
    // One event through the whole path: the consumer's inbox records it.
    const client = new pg.Client({ connectionString: ctx.moduleDatabaseUrl('orders') });
    await client.connect();
    try {
      await insertBatch(client, { payload }, 1, 1);
    } finally {
      await client.end();
    }
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(100)) {
      const { rows } = await ctx.db.query('SELECT count(*) AS n FROM notifications.inbox WHERE event_type = $1', [EVENT_TYPE]);
      if (Number(rows[0].n) === 1) return { payload };
    }
    throw new ProductNotReady(`an ${EVENT_TYPE} row in orders.outbox did not reach notifications.inbox within 15 s`);
  },

  measure(ctx, state, _side, info) {
    return measureGrowth(ctx, state, info);
  },
};

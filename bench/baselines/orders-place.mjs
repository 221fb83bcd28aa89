// Baseline for `POST /v1/orders` doing the same work as the API's PlaceOrderService:
//  - Bearer JWT (EdDSA, public key) verification and the session revocation EXISTS (common.mjs);
//  - the body checked by a compiled Ajv schema, the JSON equivalent of the TypeBox
//    `PlaceOrderRequest` (additionalProperties false, uuid format, 1..100 lines,
//    quantity 1..1000; same Ajv options as the API's body pipe), then duplicate lines;
//  - in one transaction on a `pg` pool connected as the orders module role (pool =
//    DB_POOL_MAX, search_path orders), the identical SQL: SELECT the products by
//    id = ANY, one conditional stock UPDATE per line (sorted by id), INSERT the order,
//    INSERT its lines, the json_agg re-read, INSERT the `orders.order-placed.v1` outbox
//    row (payload and metadata shaped as the API writes them);
//  - the same response JSON (201).
// Variants (env):
//  OUTBOX=off         leaves out the outbox INSERT (the outbox-cost pair);
//  RATE_LIMIT=on      adds the API's global rate-limit EVAL before the handler;
//  EXPIRY_JOB=on      after the commit, adds the expiry saga's delayed Bull job like the
//                     API's OrderExpiryScheduler (same options, 1 s timeout), into the
//                     queue EXPIRY_QUEUE (a bench-only name: no processor ever runs it).
import { randomUUID } from 'node:crypto';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import Bull from 'bull';
import { createAuthenticator, createPool, createRateLimiter, createRedis, createServer, env, listen, PREFIX, problem } from './common.mjs';

const outboxOn = (env.OUTBOX ?? 'on') !== 'off';
const pendingTtlMs = Number(env.ORDER_PENDING_TTL_MS ?? 30 * 60_000);

const PlaceOrderRequest = {
  $id: 'PlaceOrderRequest',
  type: 'object',
  additionalProperties: false,
  required: ['items'],
  properties: {
    items: {
      type: 'array',
      minItems: 1,
      maxItems: 100,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['productId', 'quantity'],
        properties: {
          productId: { type: 'string', format: 'uuid' },
          quantity: { type: 'integer', minimum: 1, maximum: 1000 },
        },
      },
    },
  },
};
const ajv = addFormats(new Ajv({ allErrors: true, strict: false, coerceTypes: false, useDefaults: true }));
const validate = ajv.compile(PlaceOrderRequest);

const redis = createRedis();
const pool = createPool();
const authenticate = createAuthenticator(redis);
const withinLimit = env.RATE_LIMIT === 'on' ? createRateLimiter(redis) : null;

let expiryQueue = null;
if (env.EXPIRY_JOB === 'on') {
  // The API's QueueFactory options for a producer: the run's prefix, bounded retention.
  expiryQueue = new Bull(env.EXPIRY_QUEUE ?? 'bench.orders-expiry', env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
    prefix: `${PREFIX}:bull`,
    defaultJobOptions: { removeOnComplete: true, removeOnFail: { age: 7 * 24 * 3600, count: 10_000 } },
  });
  expiryQueue.on('error', () => undefined);
  await expiryQueue.isReady();
}

class Problem extends Error {
  constructor(status, title, detail, extra = {}) {
    super(detail);
    Object.assign(this, { status, title, extra });
  }
}

const SELECT_ORDER = `
  SELECT o.id, o.user_id, o.status, o.total_cents, o.currency, o.created_at, o.updated_at, o.expires_at,
         (SELECT json_agg(json_build_object('productId', l.product_id, 'sku', l.sku, 'name', l.name,
                                            'quantity', l.quantity, 'unitPriceCents', l.unit_price_cents)
                          ORDER BY l.line_no)
            FROM orders.order_lines l WHERE l.order_id = o.id) AS lines
    FROM orders.orders o WHERE o.id = $1`;

const toView = (row) => ({
  id: row.id,
  userId: row.user_id,
  status: row.status,
  items: row.lines ?? [],
  totalCents: Number(row.total_cents),
  currency: row.currency.trim(),
  createdAt: new Date(row.created_at).toISOString(),
  updatedAt: new Date(row.updated_at).toISOString(),
  expiresAt: new Date(row.expires_at).toISOString(),
});

async function placeIn(client, userId, lines, requestId) {
  const ids = lines.map((l) => l.productId);
  const { rows: products } = await client.query('SELECT id, sku, name, price_cents, currency FROM orders.products WHERE id = ANY($1::uuid[])', [ids]);
  const byId = new Map(products.map((p) => [p.id, p]));
  for (const line of lines) if (!byId.has(line.productId)) throw new Problem(404, 'Not Found', `Product ${line.productId} does not exist.`);
  if (new Set(products.map((p) => p.currency)).size > 1) throw new Problem(422, 'Unprocessable Content', 'All products of one order must be priced in the same currency.');
  for (const line of [...lines].sort((a, b) => a.productId.localeCompare(b.productId))) {
    const { rows: taken } = await client.query(
      'WITH u AS (UPDATE orders.products SET stock = stock - $2, version = version + 1, updated_at = now() WHERE id = $1 AND stock >= $2 RETURNING id) SELECT id FROM u',
      [line.productId, line.quantity],
    );
    if (taken.length === 0) throw new Problem(409, 'Conflict', `Not enough stock for product ${byId.get(line.productId).sku} (${line.productId}): ${line.quantity} requested.`);
  }
  const orderId = randomUUID();
  const total = lines.reduce((sum, l) => sum + byId.get(l.productId).price_cents * l.quantity, 0);
  await client.query(
    `INSERT INTO orders.orders (id, user_id, status, total_cents, currency, expires_at)
       VALUES ($1, $2, 'pending', $3, $4, now() + make_interval(secs => $5))`,
    [orderId, userId, total, products[0].currency, pendingTtlMs / 1000],
  );
  const values = [orderId];
  const rows = lines.map((line, index) => {
    const p = byId.get(line.productId);
    values.push(index + 1, p.id, p.sku, p.name, line.quantity, p.price_cents);
    const n = values.length;
    return `($1, $${n - 5}, $${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}, $${n})`;
  });
  await client.query(`INSERT INTO orders.order_lines (order_id, line_no, product_id, sku, name, quantity, unit_price_cents) VALUES ${rows.join(', ')}`, values);
  const { rows: read } = await client.query(SELECT_ORDER, [orderId]);
  const order = toView(read[0]);
  if (outboxOn) {
    const payload = { orderId: order.id, userId: order.userId, status: order.status, totalCents: order.totalCents, currency: order.currency, lines: order.items, occurredAt: new Date().toISOString() };
    await client.query('INSERT INTO "orders".outbox (id, event_type, payload, metadata) VALUES ($1, $2, $3, $4)', [
      randomUUID(),
      'orders.order-placed.v1',
      JSON.stringify(payload),
      JSON.stringify({ requestId }),
    ]);
  }
  return order;
}

async function place(userId, lines, requestId) {
  const client = await pool.connect();
  let order;
  try {
    await client.query('BEGIN');
    try {
      order = await placeIn(client, userId, lines, requestId);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  } finally {
    client.release();
  }
  if (expiryQueue) {
    let timer;
    try {
      await Promise.race([
        expiryQueue.add('expire', { orderId: order.id }, { jobId: order.id, delay: pendingTtlMs, attempts: 5, backoff: { type: 'exponential', delay: 1000 } }),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('scheduling order expiry timed out')), 1000))),
      ]);
    } catch {
      // like the API: the order is committed, the sweeper would expire it
    } finally {
      clearTimeout(timer);
    }
  }
  return order;
}

const app = createServer();
app.post('/v1/orders', async (request, reply) => {
  const requestId = randomUUID(); // the API's request id (a UUID unless the client sent a safe one)
  reply.header('x-request-id', requestId);
  const claims = await authenticate(request, reply);
  if (!claims) return reply;
  if (withinLimit && !(await withinLimit(`user:${claims.sub}`))) return problem(reply, 429, 'Too Many Requests');
  const body = request.body ?? {};
  if (!validate(body)) return problem(reply, 400, 'Bad Request');
  const seen = new Set();
  for (const line of body.items) {
    if (seen.has(line.productId)) return problem(reply, 400, 'Bad Request');
    seen.add(line.productId);
  }
  try {
    const order = await place(claims.sub, body.items, requestId);
    return reply.code(201).send({
      id: order.id,
      userId: order.userId,
      status: order.status,
      items: order.items,
      totalCents: order.totalCents,
      currency: order.currency,
      createdAt: order.createdAt,
      updatedAt: order.updatedAt,
      expiresAt: order.expiresAt,
    });
  } catch (error) {
    if (error instanceof Problem) return problem(reply, error.status, error.title);
    throw error;
  }
});
app.addHook('onClose', async () => {
  await Promise.all([redis.quit(), pool.end(), expiryQueue?.close()]);
});
await listen(app);

// Issue 4, pair 1: `POST /v1/orders`, one line of quantity 1 of a product with plentiful
// stock, as a signed-in customer (Idempotency-Key absent). The load cycles through
// BENCH_ORDERS_PRODUCTS products (default 10): with a single product every transaction
// queues on that one row's lock and the pair measures the lock's hold time more than
// each side's work (BENCH_ORDERS_PRODUCTS=1 gives that hot-row variant).
//  A "same work": Fastify, the same body schema compiled by Ajv, the same JWT check and
//    revocation EXISTS, the identical SQL in one transaction on a pg pool as the orders
//    module role (pool = DB_POOL_MAX), the same JSON (info).
//  A+rl: A plus the API's global rate-limit EVAL (info).
//  A+rl+exp: A+rl plus, after the commit, the expiry saga's delayed Bull job that the
//    API adds per order before it answers: every Redis and Postgres round trip of the
//    API's request path. The goal (issue 11): req/s >= 0.80x of A+rl+exp.
// Not in any baseline: the API relays each order's outbox row (a transaction and a Bull
// addBulk per wake-up) and its notifications module consumes it (a Bull job and a
// transaction writing the notification) in the same process, during the measured run.
// api-no-notif (info) is the API with MODULES_ENABLED=users,orders: the relay still
// publishes each event (to the notifications inbox queue, which nobody consumes then),
// but no notification is written. So api-no-notif vs A+rl+exp is what Nest, TypeORM and
// the relay cost, and product vs api-no-notif what the co-located consumer costs.
import { orderFixture } from '../lib/fixtures.mjs';
import { backlogNote, isPlacedOrder, ORDER_PENDING_TTL, ORDER_PENDING_TTL_MS, purgeOrderMessaging, sameOrderAnswer, vacuumOrderTables } from '../lib/orders.mjs';

const baselineEnv = (state, extra = {}) => ({
  DATABASE_URL: state.ordersDatabaseUrl,
  DB_SCHEMA: 'orders',
  ORDER_PENDING_TTL_MS: String(ORDER_PENDING_TTL_MS),
  ...extra,
});

export default {
  name: 'orders.place',
  title: 'POST /v1/orders, one line',
  goal: { baseline: 'A+rl+exp', minThroughputRatio: 0.8 },
  productEnv: { ORDER_PENDING_TTL },

  async setup(ctx) {
    return { ...(await orderFixture(ctx, { count: ctx.config.orderProducts })), ordersDatabaseUrl: ctx.moduleDatabaseUrl('orders') };
  },

  product: (state) => state.request,
  check: isPlacedOrder,
  sameAnswer: sameOrderAnswer,

  async prepare(ctx) {
    await vacuumOrderTables(ctx);
  },

  /** The API's relay and consumer work behind the load: say how far behind they were. */
  async afterSide(ctx, state, side) {
    return { notes: side === 'product' ? await backlogNote(ctx) : [] };
  },

  /** Nobody relays a baseline's outbox rows, and an API's unfinished event work would burden the next side: both go. */
  async afterStop(ctx) {
    await purgeOrderMessaging(ctx);
  },

  baselines: [
    { id: 'A', label: 'same work', server: 'orders-place.mjs', env: (state) => baselineEnv(state) },
    { id: 'A+rl', label: 'same work + rate-limit EVAL', server: 'orders-place.mjs', env: (state) => baselineEnv(state, { RATE_LIMIT: 'on' }) },
    { id: 'A+rl+exp', label: 'A+rl + expiry job (Bull add)', server: 'orders-place.mjs', env: (state) => baselineEnv(state, { RATE_LIMIT: 'on', EXPIRY_JOB: 'on' }) },
    { id: 'api-no-notif', label: 'the API without the notifications module', api: true, env: { MODULES_ENABLED: 'users,orders' } },
  ],
};

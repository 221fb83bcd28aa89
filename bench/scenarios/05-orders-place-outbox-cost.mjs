// Issue 4, pair 2: what the outbox INSERT costs `POST /v1/orders`. The product cannot run
// without it, so both sides are the pair-1 baseline A (same work as the API: JWT,
// revocation EXISTS, Ajv, the identical SQL in one transaction): with the
// `orders.order-placed.v1` outbox row and without. The product is only asked for the
// reference answer, not measured. Goal: with/without >= 0.90 (the outbox costs at most
// 10 % of throughput). The outbox has had no NOTIFY trigger since migration
// 1764910000000 (the API wakes its relay in-process after the commit), so the row is
// the whole cost; an earlier side `outbox-silent` measured the trigger's share.
import { orderFixture } from '../lib/fixtures.mjs';
import { isPlacedOrder, ORDER_PENDING_TTL, ORDER_PENDING_TTL_MS, purgeOrderMessaging, sameOrderAnswer, vacuumOrderTables } from '../lib/orders.mjs';

const env = (state, outbox) => ({ DATABASE_URL: state.ordersDatabaseUrl, DB_SCHEMA: 'orders', ORDER_PENDING_TTL_MS: String(ORDER_PENDING_TTL_MS), OUTBOX: outbox });

export default {
  name: 'orders.place.outbox-cost',
  title: 'POST /v1/orders baseline, with vs without the outbox INSERT',
  goal: { subject: 'outbox', baseline: 'no-outbox', minThroughputRatio: 0.9 },
  productEnv: { ORDER_PENDING_TTL },
  measureProduct: false,

  async setup(ctx) {
    return { ...(await orderFixture(ctx, { count: ctx.config.orderProducts })), ordersDatabaseUrl: ctx.moduleDatabaseUrl('orders') };
  },

  product: (state) => state.request,
  check: isPlacedOrder,
  sameAnswer: sameOrderAnswer,

  async prepare(ctx) {
    await vacuumOrderTables(ctx);
  },

  /** Nobody relays a baseline's outbox rows. */
  async afterStop(ctx) {
    await purgeOrderMessaging(ctx);
  },

  baselines: [
    { id: 'outbox', label: 'baseline A, with the outbox INSERT', server: 'orders-place.mjs', env: (state) => env(state, 'on') },
    { id: 'no-outbox', label: 'baseline A, without it', server: 'orders-place.mjs', env: (state) => env(state, 'off') },
  ],
};

import { Type } from '@sinclair/typebox';
import type { ModuleManifest } from '@app/platform';
import { UserEvents } from '@app/users/contracts';
import { OrderEvents } from './contracts';
import { ORDERS_FLAGS } from './orders.flags';

/** An integer variable with its default and bounds. */
const Int = (def: number, min: number, max: number) => Type.Integer({ default: def, minimum: min, maximum: max });

/**
 * The orders module's declarations: read by the event routing of every deployable and by
 * the boundary checks (docs/architecture.md, "Module manifests").
 */
export const ordersManifest = {
  name: 'orders',
  schema: 'orders',
  mayUse: ['users'],
  // Delayed expiry jobs of the pending-order saga (workers/order-expiry.*.ts).
  queues: ['orders.expiry'],
  events: {
    publishes: Object.values(OrderEvents).map((type) => ({ type })),
    // An erased account's pending orders are cancelled (the financial record stays).
    consumes: [UserEvents.deleted],
  },
  config: Type.Object({
    /** How long an order may stay pending before the expiry saga cancels it: 1500ms, 45s, 30m, 2h. */
    ORDER_PENDING_TTL: Type.String({ pattern: '^[1-9][0-9]*(ms|s|m|h)$', default: '30m' }),
    /** Safety net for expiries whose delayed job was lost (e.g. Redis was down). */
    ORDER_EXPIRY_SWEEP_INTERVAL_MS: Int(60_000, 100, 86_400_000),
  }),
  flags: {
    [ORDERS_FLAGS.expiryScheduling]: {
      default: true,
      description: 'delayed expiry job per placed order (off: none is enqueued; the sweeper expires orders, up to ORDER_EXPIRY_SWEEP_INTERVAL_MS late)',
    },
  },
} as const satisfies ModuleManifest;

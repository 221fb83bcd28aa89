import type { ModuleManifest } from '@app/platform';
import { UserEvents } from '@app/users/contracts';
import { OrderEvents } from './contracts';

/**
 * The orders module's declarations: read by the event routing of every deployable and by
 * the boundary checks (docs/architecture.md, "Module manifests").
 */
export const ordersManifest = {
  name: 'orders',
  schema: 'orders',
  mayUse: ['users'],
  // Delayed expiry jobs of the pending-order saga (application/order-expiry.scheduler.ts).
  queues: ['orders.expiry'],
  events: {
    publishes: Object.values(OrderEvents).map((type) => ({ type })),
    // An erased account's pending orders are cancelled (the financial record stays).
    consumes: [UserEvents.deleted],
  },
} as const satisfies ModuleManifest;

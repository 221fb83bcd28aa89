import type { ModuleDatabaseDefinition } from '@app/platform';
import { CreateOrdersMessaging1732406500000 } from './migrations/1732406500000-create-orders-messaging';
import { CreateCatalogueAndOrders1732406800000 } from './migrations/1732406800000-create-catalogue-and-orders';
import { KeepOrdersPublishedOutboxEvents1764633600000 } from './migrations/1764633600000-keep-published-outbox-events';
import { ProductVersionsAndIdempotencyFencing1764807000000 } from './migrations/1764807000000-product-versions-and-idempotency-fencing';
import { OrdersErasureSupport1764720000000 } from './migrations/1764720000000-erasure-support';
import { OrdersWakeRelayInProcess1764910000000 } from './migrations/1764910000000-wake-relay-in-process';

/**
 * The orders module's tables (schema `orders`) and its migration history. Queries are
 * hand-written SQL through the module's TypeORM connection: stock and idempotency need
 * exact statements (conditional updates, ON CONFLICT), not an entity manager's guesses.
 */
export const ordersDatabase: ModuleDatabaseDefinition = {
  module: 'orders',
  entities: [],
  migrations: [
    CreateOrdersMessaging1732406500000,
    CreateCatalogueAndOrders1732406800000,
    KeepOrdersPublishedOutboxEvents1764633600000,
    OrdersErasureSupport1764720000000,
    ProductVersionsAndIdempotencyFencing1764807000000,
    OrdersWakeRelayInProcess1764910000000,
  ],
  // docs/scaling.md, "orders".
  distribution: {
    reference: {
      products: 'the catalogue: small, read by every order, shared by all users; the stock UPDATE then runs on every node (2PC), the price of a global stock count',
    },
    colocateBeforeSharding: {
      order_lines: 'reached through orders (order_id); gets user_id from its order, and its key becomes (user_id, order_id, line_no)',
    },
  },
};

/**
 * @app/orders: product catalogue, stock and orders.
 *
 * Owns: schema `orders` (products, orders, order_lines, idempotency_keys, outbox, inbox,
 *       dead_letters) and its role; queues `orders.inbox` and `orders.expiry`.
 * Emits: orders.order-placed|confirmed|shipped|delivered|cancelled|expired.v1 (./contracts).
 * Consumes: users.user-deleted.v1 (cancels pending orders, keeps the financial record).
 * Depends on: @app/platform, @app/users/contracts.
 */
export { OrdersModule } from './orders.module';
export { ordersDatabase } from './persistence/orders.database';
export { DemoCatalogueSeeder } from './application/demo-catalogue';
export * from './contracts';

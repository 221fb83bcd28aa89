/**
 * @app/orders: product catalogue, stock and orders.
 *
 * Owns: schema `orders` (outbox, inbox, dead_letters so far) and its role; queue
 *       `orders.inbox`.
 * Emits: orders.* events (see ./contracts), once the orders issue lands.
 * Depends on: @app/platform, @app/users/contracts.
 */
export { OrdersModule } from './orders.module';
export { ordersDatabase } from './persistence/orders.database';
export * from './contracts';

/**
 * @app/notifications: turns other modules' events into notifications for users, and
 * delivers them in-app (the row, a live SSE stream), by email and by webhook.
 *
 * Owns: schema `notifications` (notifications, deliveries, preferences, recipients,
 *       erased_users, outbox, inbox, dead_letters) and its role; queues
 *       `notifications.inbox`, `notifications.email`, `notifications.webhook`,
 *       `notifications.retention`; Redis channels `<prefix>:notifications:live:<userId>` and
 *       circuit keys `<prefix>:circuit:notifications:*`.
 * Consumes: users.user-registered.v1, users.user-deleted.v1, orders.order-{placed,
 *       confirmed,shipped,delivered,cancelled,expired}.v1.
 * Serves: /v1/notifications (list, read, read-all, preferences, stream).
 * Depends on: @app/platform, @app/users/contracts, @app/orders/contracts.
 */
export { NotificationsModule } from './notifications.module';
export { notificationsDatabase } from './persistence/notifications.database';
// The SQL of a GET /v1/notifications page, for the EXPLAIN checks of the partitioned table
// (test/integration/notifications-partitions.spec.ts).
export { notificationPageQuery, NotificationCursor } from './application/notifications.service';
export * from './contracts';

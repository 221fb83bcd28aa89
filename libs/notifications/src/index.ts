/**
 * @app/notifications: turns other modules' events into notifications for users.
 *
 * Owns: schema `notifications` (notifications, outbox, inbox, dead_letters) and its
 *       role; queue `notifications.inbox`.
 * Consumes: users.user-registered.v1 (more with the notifications issue).
 * Depends on: @app/platform, @app/users/contracts, @app/orders/contracts.
 */
export { NotificationsModule } from './notifications.module';
export { notificationsDatabase } from './persistence/notifications.database';
export * from './contracts';

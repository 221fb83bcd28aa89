/**
 * @app/users: accounts, credentials and profiles.
 *
 * Owns: schema `users` (tables users, outbox, inbox, dead_letters) and its role;
 *       queue `users.inbox`.
 * Emits: users.user-registered.v1, users.user-deleted.v1 (see ./contracts).
 * Depends on: @app/platform only.
 */
export { UsersModule } from './users.module';
export { usersDatabase } from './persistence/users.database';
export * from './contracts';

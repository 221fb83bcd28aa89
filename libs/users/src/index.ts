/**
 * @app/users: accounts, credentials and profiles.
 *
 * Owns: schema `users` (users, sessions, refresh_tokens, outbox, inbox, dead_letters)
 *       and its role; queue `users.inbox`; Redis keys `<prefix>:users:*`.
 * Emits: users.user-registered.v1, users.user-deleted.v1, users.session-revoked.v1.
 * Consumes: users.session-revoked.v1 (its own: pushes revocations to Redis).
 * Provides: USERS_FACADE (see ./contracts) and the session status for the auth guard.
 * Depends on: @app/platform only.
 */
export { UsersModule } from './users.module';
export { usersDatabase } from './persistence/users.database';
export { ProfilesService } from './application/profiles.service';
export * from './contracts';

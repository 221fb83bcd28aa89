/**
 * @app/users/contracts: what other modules may know about `users`. Versioned event
 * payloads and (later) the UsersFacade. Imports nothing from the module's internals so it
 * can become a published package the day `users` is extracted.
 */

export const UserEvents = {
  registered: 'users.user-registered.v1',
  deleted: 'users.user-deleted.v1',
  sessionRevoked: 'users.session-revoked.v1',
} as const;

/** `users.user-registered.v1`: an account was created. */
export interface UserRegisteredV1 {
  userId: string;
  email: string;
  name: string;
  registeredAt: string;
}

/** `users.user-deleted.v1`: an account was erased; subscribers erase their personal data. */
export interface UserDeletedV1 {
  userId: string;
  deletedAt: string;
}

/** `users.session-revoked.v1`: a session ended (logout, token reuse, erasure). */
export interface SessionRevokedV1 {
  sessionId: string;
  userId: string;
  reason: 'logout' | 'refresh-token-reuse' | 'account-deleted';
}

/**
 * Event type → payload type of every event `users` publishes: one entry per type in its
 * manifest's `publishes`, checked with the committed JSON Schemas under `./events/`
 * (`npm run contracts:check`; docs/architecture.md, "Event contracts").
 */
export interface EventPayloads {
  [UserEvents.registered]: UserRegisteredV1;
  [UserEvents.deleted]: UserDeletedV1;
  [UserEvents.sessionRevoked]: SessionRevokedV1;
}

/** What other modules may read about a user. Never an entity, never a hash. */
export interface UserSummary {
  id: string;
  name: string;
  role: 'customer' | 'admin';
}

/** The only way other modules read user data (synchronously). */
export interface UsersFacade {
  findUser(userId: string): Promise<UserSummary | null>;
}

/** Injection token of UsersFacade; provided globally by the users module. */
export const USERS_FACADE = Symbol.for('users.UsersFacade');

/**
 * @app/users/contracts: what other modules may know about `users`. Versioned event
 * payloads and (later) the UsersFacade. Imports nothing from the module's internals so it
 * can become a published package the day `users` is extracted.
 */

export const UserEvents = {
  registered: 'users.user-registered.v1',
  deleted: 'users.user-deleted.v1',
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

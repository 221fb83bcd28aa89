/** Runtime flags of the users module (`npm run cli -- flags:list`). */
export const USERS_FLAGS = {
  /** Kill switch: off, public profiles are read from Postgres and the cache is neither read nor filled. */
  profileCache: 'users.profile-cache',
} as const;

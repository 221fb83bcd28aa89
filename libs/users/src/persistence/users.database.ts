import type { ModuleDatabaseDefinition } from '@app/platform';
import { CreateUsers1732406400000 } from './migrations/1732406400000-create-users';
import { CreateSessions1732406700000 } from './migrations/1732406700000-create-sessions';
import { KeepUsersPublishedOutboxEvents1764633600000 } from './migrations/1764633600000-keep-published-outbox-events';
import { UsersErasureSupport1764720000000 } from './migrations/1764720000000-erasure-support';
import { SessionRetentionIndexes1764900000000 } from './migrations/1764900000000-session-retention-indexes';
import { UsersWakeRelayInProcess1764910000000 } from './migrations/1764910000000-wake-relay-in-process';
import { UserEntity } from './user.entity';

/** The users module's tables (schema `users`) and its migration history. */
export const usersDatabase: ModuleDatabaseDefinition = {
  module: 'users',
  entities: [UserEntity],
  migrations: [
    CreateUsers1732406400000,
    CreateSessions1732406700000,
    KeepUsersPublishedOutboxEvents1764633600000,
    UsersErasureSupport1764720000000,
    SessionRetentionIndexes1764900000000,
    UsersWakeRelayInProcess1764910000000,
  ],
  // docs/scaling.md, "users".
  distribution: {
    distributedBy: { users: { column: 'id', reason: 'a user row is its own shard key: id is the user_id of every other table' } },
    colocateBeforeSharding: {
      refresh_tokens: 'reached through sessions (session_id); gets user_id from its session so that the rotation stays on one shard',
    },
  },
};

import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { APP_CONFIG, CacheAside, ErasureWork, Flags, InjectReplicaReader, OutboxPublisher, type AppConfig, type ReplicaReader } from '@app/platform';
import type { DataSource, EntityManager } from 'typeorm';
import { UserEvents, type UserDeletedV1, type UserSummary, type UsersFacade } from '../contracts';
import { UserNotFoundError } from '../domain/user.errors';
import { UserEntity, type UserRole } from '../persistence/user.entity';
import { SessionsService } from './sessions.service';
import { usersSettings } from '../users.settings';
import { USERS_FLAGS } from '../users.flags';

export const PUBLIC_PROFILE_CACHE = 'users:profile:v1';

export interface PublicProfile {
  id: string;
  name: string;
}

/** Profiles: the caller's own, public ones (cache-aside), updates and erasure. */
@Injectable()
export class ProfilesService implements UsersFacade {
  constructor(
    @InjectDataSource('users') private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly cache: CacheAside,
    private readonly outbox: OutboxPublisher,
    private readonly sessions: SessionsService,
    private readonly flags: Flags,
    private readonly erasure: ErasureWork,
    @InjectReplicaReader('users') private readonly reader: ReplicaReader,
  ) {}

  async me(userId: string): Promise<UserEntity> {
    const user = await this.dataSource.getRepository(UserEntity).findOneBy({ id: userId });
    if (!user) throw new UserNotFoundError();
    return user;
  }

  /**
   * Public profile as JSON text, straight from the cache when hot. A miss may load from the
   * read replica, but never behind the profile owner's own writes (rename, erasure): what
   * is cached is then at most DB_REPLICA_MAX_LAG_MS older than a primary read would be,
   * and never a profile its owner has already changed or erased.
   */
  async publicProfileJson(userId: string): Promise<string> {
    const load = async () => {
      const [row] = await this.reader.read(userId, (manager) => manager.query<PublicProfile[]>('SELECT id, name FROM users.users WHERE id = $1', [userId]));
      return row ? JSON.stringify({ id: row.id, name: row.name }) : null;
    };
    // The kill switch bypasses the cache entirely (no read, no fill); invalidations still run.
    const cached = usersSettings(this.config).USERS_PROFILE_CACHE_ENABLED && (await this.flags.isEnabled(USERS_FLAGS.profileCache, { userId }));
    const json = cached
      ? await this.cache.getOrLoad(PUBLIC_PROFILE_CACHE, userId, usersSettings(this.config).USERS_PROFILE_CACHE_TTL_S, load)
      : await load();
    if (json === null) throw new UserNotFoundError();
    return json;
  }

  async rename(userId: string, name: string): Promise<UserEntity> {
    // UPDATE … RETURNING gives the renamed row: no read-back.
    const result = await this.dataSource
      .createQueryBuilder()
      .update(UserEntity)
      .set({ name: name.trim() })
      .where('id = :userId', { userId })
      .returning('*')
      .execute();
    const [row] = (result.raw ?? []) as { id: string; email: string; name: string; password_hash: string; role: UserRole; created_at: Date; updated_at: Date }[];
    if (!row) throw new UserNotFoundError();
    // Before the cache entry goes: a miss after it must not re-fill it from a replica that
    // still has the old name.
    await this.reader.recordWrite(userId);
    // After the commit, so a concurrent miss cannot re-fill the cache with the old name
    // after we dropped it.
    await this.cache.invalidate(PUBLIC_PROFILE_CACHE, userId);
    return this.dataSource.manager.create(UserEntity, {
      id: row.id, email: row.email, name: row.name, passwordHash: row.password_hash, role: row.role, createdAt: row.created_at, updatedAt: row.updated_at,
    });
  }

  /**
   * Erasure: the row (email, name, hash), its sessions and refresh tokens go; the event
   * tells other modules to erase their personal data; every session is revoked; the
   * cached public profile is dropped.
   */
  async erase(userId: string): Promise<void> {
    const sessionIds = await this.dataSource.transaction(async (manager) => {
      const ended = await this.sessions.endAllSessions(manager, userId);
      // A CTE makes the driver return plain rows for a data-modifying statement.
      const deleted = await manager.query<unknown[]>('WITH d AS (DELETE FROM users.users WHERE id = $1 RETURNING id) SELECT id FROM d', [userId]);
      if (deleted.length === 0) throw new UserNotFoundError();
      // Published events stay in the outbox for OUTBOX_RETENTION so `events:replay` can send
      // them again; users.user-registered.v1 carries the email and the name. A replay must
      // not resurrect an erased user's personal data (GDPR art. 17), nor keep it for a week
      // after the erasure, so the user's published events go now, and so does a registration
      // the relay has not sent yet: its email and name never leave this module. (A relay
      // that is publishing it right now holds its row: this waits, then deletes it published;
      // the consumers' tombstones then ignore it, in whatever order it reaches them.) The
      // unpublished session-revoked events just written still flow (ids only). The deletion
      // event itself is kept: replaying it is what makes a consumer that lost it erase.
      // outbox_subject_idx (erasureSupportUp) finds the rows by payload->>'userId'.
      await manager.query(
        `DELETE FROM users.outbox
          WHERE payload->>'userId' = $1 AND event_type <> $2 AND (published_at IS NOT NULL OR event_type = $3)`,
        [userId, UserEvents.deleted, UserEvents.registered],
      );
      const payload: UserDeletedV1 = { userId, deletedAt: new Date().toISOString() };
      await this.outbox.publish(manager, [{ type: UserEvents.deleted, payload }]);
      await this.recordCacheErasure(manager, userId);
      return ended;
    });
    // Misses from now on load from the primary until a replica has replayed the erasure.
    await this.reader.recordWrite(userId);
    // At once, so the next read answers 404; the recorded work covers a Redis that failed here.
    await this.cache.invalidate(PUBLIC_PROFILE_CACHE, userId);
    await Promise.all(sessionIds.map((id) => this.sessions.revokeEverywhere(id)));
  }

  /**
   * The cached public profile is dropped after the commit, and once more a little later: a
   * read that missed the cache just before the commit may still write the old profile back
   * after the first deletion (cache-aside's stale fill). Its load ran under the statement
   * timeout and its write under the Redis timeout, so the second deletion comes after any
   * such write. Both are erasure work recorded in this transaction (ErasureWork): retried
   * until Redis confirms, by any instance, across a crash. The cache is the shared Redis, so
   * one deletion reaches every instance; no instance keeps a copy of its own.
   */
  private async recordCacheErasure(manager: EntityManager, userId: string): Promise<void> {
    const entry = { cache: PUBLIC_PROFILE_CACHE, key: userId };
    const lateFillMs = this.config.databases.users.statementTimeoutMs + this.config.env.REDIS_REQUEST_TIMEOUT_MS;
    await this.erasure.record(manager, { payloadField: 'userId', value: userId, cacheEntries: [entry] });
    await this.erasure.record(manager, { payloadField: 'userId', value: userId, cacheEntries: [entry], delayMs: lateFillMs });
  }

  async promote(email: string): Promise<UserSummary> {
    const [user] = await this.dataSource.query<UserSummary[]>(
      `WITH u AS (UPDATE users.users SET role = 'admin', updated_at = now() WHERE lower(email) = lower($1) RETURNING id, name, role)
       SELECT id, name, role FROM u`,
      [email.trim()],
    );
    if (!user) throw new UserNotFoundError();
    await this.cache.invalidate(PUBLIC_PROFILE_CACHE, user.id);
    return user;
  }

  /** UsersFacade: the contract other modules use. */
  async findUser(userId: string): Promise<UserSummary | null> {
    const [row] = await this.dataSource.query<UserSummary[]>('SELECT id, name, role FROM users.users WHERE id = $1', [userId]);
    return row ?? null;
  }
}

import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { APP_CONFIG, CacheAside, OutboxPublisher, type AppConfig } from '@app/platform';
import type { DataSource } from 'typeorm';
import { UserEvents, type UserDeletedV1, type UserSummary, type UsersFacade } from '../contracts';
import { UserNotFoundError } from '../domain/user.errors';
import { UserEntity } from '../persistence/user.entity';
import { SessionsService } from './sessions.service';
import { usersSettings } from '../users.settings';

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
  ) {}

  async me(userId: string): Promise<UserEntity> {
    const user = await this.dataSource.getRepository(UserEntity).findOneBy({ id: userId });
    if (!user) throw new UserNotFoundError();
    return user;
  }

  /** Public profile as JSON text, straight from the cache when hot. */
  async publicProfileJson(userId: string): Promise<string> {
    const load = async () => {
      const [row] = await this.dataSource.query<PublicProfile[]>('SELECT id, name FROM users.users WHERE id = $1', [userId]);
      return row ? JSON.stringify({ id: row.id, name: row.name }) : null;
    };
    const json = usersSettings(this.config).USERS_PROFILE_CACHE_ENABLED
      ? await this.cache.getOrLoad(PUBLIC_PROFILE_CACHE, userId, usersSettings(this.config).USERS_PROFILE_CACHE_TTL_S, load)
      : await load();
    if (json === null) throw new UserNotFoundError();
    return json;
  }

  async rename(userId: string, name: string): Promise<UserEntity> {
    const repository = this.dataSource.getRepository(UserEntity);
    const result = await repository.update({ id: userId }, { name: name.trim() });
    if (!result.affected) throw new UserNotFoundError();
    // After the commit, so a concurrent miss cannot re-fill the cache with the old name
    // after we dropped it.
    await this.cache.invalidate(PUBLIC_PROFILE_CACHE, userId);
    return this.me(userId);
  }

  /**
   * Erasure: the row (email, name, hash), its sessions and refresh tokens go; the event
   * tells other modules to erase their personal data; every session is revoked.
   */
  async erase(userId: string): Promise<void> {
    const sessionIds = await this.dataSource.transaction(async (manager) => {
      const ended = await this.sessions.endAllSessions(manager, userId);
      // A CTE makes the driver return plain rows for a data-modifying statement.
      const deleted = await manager.query<unknown[]>('WITH d AS (DELETE FROM users.users WHERE id = $1 RETURNING id) SELECT id FROM d', [userId]);
      if (deleted.length === 0) throw new UserNotFoundError();
      const payload: UserDeletedV1 = { userId, deletedAt: new Date().toISOString() };
      await this.outbox.publish(manager, [{ type: UserEvents.deleted, payload }]);
      return ended;
    });
    await this.cache.invalidate(PUBLIC_PROFILE_CACHE, userId);
    await Promise.all(sessionIds.map((id) => this.sessions.revokeEverywhere(id)));
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

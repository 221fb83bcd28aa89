import { Inject, Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type Redis from 'ioredis';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { REDIS_CLIENT } from '../redis/redis.module';
import { withTimeout } from '../redis/redis-connection';

/**
 * Where the module that owns sessions answers "is this session still active?"
 * from its own tables. Used only when Redis cannot answer.
 */
export interface SessionStatusSource {
  isSessionActive(sessionId: string): Promise<boolean>;
}
export const SESSION_STATUS_SOURCE = Symbol('SESSION_STATUS_SOURCE');

/**
 * Revoked sessions, shared by every instance: a Redis key per revoked session that lives
 * as long as an access token can, so logout takes effect everywhere at once. When Redis
 * cannot answer within REDIS_REQUEST_TIMEOUT_MS, the sessions table decides (fail
 * closed without multi-second stalls); with no such source in this process, the
 * request is refused.
 */
@Injectable()
export class SessionRevocationStore {
  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly moduleRef: ModuleRef,
  ) {}

  /** Looked up lazily: the source's module itself depends on this store. */
  private fallback(): SessionStatusSource | undefined {
    try {
      return this.moduleRef.get<SessionStatusSource>(SESSION_STATUS_SOURCE, { strict: false });
    } catch {
      return undefined;
    }
  }

  private key(sessionId: string): string {
    return `${this.config.env.REDIS_KEY_PREFIX}:auth:revoked-session:${sessionId}`;
  }

  async revoke(sessionId: string): Promise<void> {
    // Outlives every access token issued for the session.
    await withTimeout(this.redis.set(this.key(sessionId), '1', 'EX', this.config.env.ACCESS_TOKEN_TTL_S + 60), this.config.env.REDIS_REQUEST_TIMEOUT_MS * 4, 'session revocation');
  }

  async isRevoked(sessionId: string): Promise<boolean> {
    try {
      return (await withTimeout(this.redis.exists(this.key(sessionId)), this.config.env.REDIS_REQUEST_TIMEOUT_MS, 'revocation check')) === 1;
    } catch {
      const fallback = this.fallback();
      if (!fallback) return true;
      return !(await fallback.isSessionActive(sessionId));
    }
  }
}

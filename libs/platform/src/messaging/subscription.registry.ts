import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { REDIS_CLIENT } from '../redis/redis.module';
import { withTimeout } from '../redis/redis-connection';

const CACHE_TTL_MS = 5_000;

/**
 * Which inbox queues want which event types. Subscribers declare their event types at
 * boot; the declaration is kept in-process and in Redis, so a relay routes correctly to
 * subscribers that run in another process (an extracted module) as well as local ones.
 */
@Injectable()
export class SubscriptionRegistry {
  private readonly local = new Map<string, Set<string>>();
  private readonly pendingRemote = new Map<string, Set<string>>();
  private readonly remoteCache = new Map<string, { queues: string[]; expires: number }>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
  ) {}

  private key(eventType: string): string {
    return `${this.config.env.REDIS_KEY_PREFIX}:event-subscriptions:${eventType}`;
  }

  subscribe(queue: string, eventTypes: string[]): void {
    for (const type of eventTypes) {
      if (!this.local.has(type)) this.local.set(type, new Set());
      this.local.get(type)!.add(queue);
      if (!this.pendingRemote.has(type)) this.pendingRemote.set(type, new Set());
      this.pendingRemote.get(type)!.add(queue);
    }
  }

  /** Writes local declarations to Redis; retried by the relay until it succeeds. */
  async flush(): Promise<void> {
    for (const [type, queues] of [...this.pendingRemote]) {
      await withTimeout(this.redis.sadd(this.key(type), ...queues), 1000, 'subscription registration');
      this.pendingRemote.delete(type);
    }
  }

  async queuesFor(eventType: string): Promise<string[]> {
    const now = Date.now();
    let cached = this.remoteCache.get(eventType);
    if (!cached || cached.expires < now) {
      const remote = await withTimeout(this.redis.smembers(this.key(eventType)), 1000, 'subscription lookup');
      cached = { queues: remote, expires: now + CACHE_TTL_MS };
      this.remoteCache.set(eventType, cached);
    }
    return [...new Set([...cached.queues, ...(this.local.get(eventType) ?? [])])].sort();
  }
}

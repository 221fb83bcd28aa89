import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { REDIS_CLIENT } from '../redis/redis.module';
import { withTimeout } from '../redis/redis-connection';

/** Hit/miss/error counts per cache name; exported as metrics. */
export class CacheStats {
  readonly counts = new Map<string, { hits: number; misses: number; errors: number }>();
  record(cache: string, outcome: 'hits' | 'misses' | 'errors'): void {
    let entry = this.counts.get(cache);
    if (!entry) this.counts.set(cache, (entry = { hits: 0, misses: 0, errors: 0 }));
    entry[outcome] += 1;
  }
}

/**
 * Cache-aside over the shared Redis. A Redis that is down or slower than
 * REDIS_REQUEST_TIMEOUT_MS counts as a miss: the caller's loader (Postgres) answers, so
 * the cache never turns into an error or a hang. Keys are `<prefix>:<cache>:<key>`.
 */
@Injectable()
export class CacheAside {
  readonly stats = new CacheStats();

  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  key(cache: string, key: string): string {
    return `${this.config.env.REDIS_KEY_PREFIX}:${cache}:${key}`;
  }

  /** Returns the cached JSON text, or loads, stores (best effort) and returns it. */
  async getOrLoad(cache: string, key: string, ttlSeconds: number, load: () => Promise<string | null>): Promise<string | null> {
    const fullKey = this.key(cache, key);
    const timeout = this.config.env.REDIS_REQUEST_TIMEOUT_MS;
    try {
      const cached = await withTimeout(this.redis.get(fullKey), timeout, 'cache read');
      if (cached !== null) {
        this.stats.record(cache, 'hits');
        return cached;
      }
      this.stats.record(cache, 'misses');
    } catch {
      this.stats.record(cache, 'errors');
      return load();
    }
    const value = await load();
    if (value !== null) {
      void withTimeout(this.redis.set(fullKey, value, 'EX', ttlSeconds), timeout, 'cache write').catch(() => undefined);
    }
    return value;
  }

  /** Drops a key; resolves false when Redis could not be reached (the TTL bounds staleness). */
  async invalidate(cache: string, key: string): Promise<boolean> {
    try {
      await withTimeout(this.redis.del(this.key(cache, key)), this.config.env.REDIS_REQUEST_TIMEOUT_MS * 4, 'cache invalidation');
      return true;
    } catch {
      return false;
    }
  }
}

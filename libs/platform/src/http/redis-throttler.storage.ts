import { Inject, Injectable } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type Redis from 'ioredis';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { REDIS_CLIENT } from '../redis/redis.module';
import { withTimeout } from '../redis/redis-connection';

// One round trip: count the hit and read the window's remaining time.
const INCREMENT = `
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return { hits, redis.call('PTTL', KEYS[1]) }`;

/**
 * Fixed-window counters in Redis, shared by every instance. Fails open: when Redis is
 * down or slower than REDIS_REQUEST_TIMEOUT_MS the request is not limited, because a
 * cache outage must not become an API outage (the login throttle, which protects
 * credentials, is separate and documented in the README).
 */
@Injectable()
export class RedisThrottlerStorage implements ThrottlerStorage {
  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async increment(key: string, ttl: number, limit: number): Promise<{ totalHits: number; timeToExpire: number; isBlocked: boolean; timeToBlockExpire: number }> {
    try {
      const [hits, pttl] = (await withTimeout(
        this.redis.eval(INCREMENT, 1, `${this.config.env.REDIS_KEY_PREFIX}:rate:${key}`, ttl) as Promise<[number, number]>,
        this.config.env.REDIS_REQUEST_TIMEOUT_MS,
        'rate limit',
      )) ?? [0, ttl];
      const seconds = Math.max(1, Math.ceil(pttl / 1000));
      return { totalHits: hits, timeToExpire: seconds, isBlocked: hits > limit, timeToBlockExpire: hits > limit ? seconds : 0 };
    } catch {
      return { totalHits: 0, timeToExpire: Math.ceil(ttl / 1000), isBlocked: false, timeToBlockExpire: 0 };
    }
  }
}

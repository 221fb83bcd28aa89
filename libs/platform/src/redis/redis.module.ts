import { Global, Inject, Injectable, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type Redis from 'ioredis';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { createRedisClient, failFastRedisOptions, withTimeout } from './redis-connection';

export const REDIS_CLIENT = Symbol('REDIS_CLIENT');

/** How long the boot waits for the first Redis connection before serving without it. */
const FIRST_CONNECTION_WAIT_MS = 2_000;

@Injectable()
class RedisLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(@Inject(REDIS_CLIENT) private readonly redis: Redis) {}

  /**
   * The client has no offline queue: a request served before the first connection is up
   * finds Redis "down", and the revocation check fails closed (a valid token gets 401).
   * So the boot waits briefly for the connection; if Redis really is down, the instance
   * still starts and serves what does not need it.
   */
  async onApplicationBootstrap(): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, FIRST_CONNECTION_WAIT_MS);
      timer.unref();
      this.redis.once('ready', done);
      const redis = this.redis;
      function done(): void {
        clearTimeout(timer);
        redis.off('ready', done);
        resolve();
      }
    });
  }
  async onApplicationShutdown(): Promise<void> {
    // QUIT waits for every node's answer; a stalled node (a cluster member) must not hold
    // the shutdown, so it is bounded like every other Redis call.
    await withTimeout(this.redis.quit(), 2000, 'closing Redis').catch(() => this.redis.disconnect());
  }
}

/** The shared, fail-fast Redis client for caches, counters and registries. */
@Global()
@Module({
  providers: [
    {
      provide: REDIS_CLIENT,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => {
        // One server (REDIS_URL) or a cluster (REDIS_CLUSTER_NODES).
        const redis = createRedisClient(config.env, failFastRedisOptions());
        // Connection errors are expected while Redis is down; health reports them.
        redis.on('error', () => undefined);
        return redis;
      },
    },
    RedisLifecycle,
  ],
  exports: [REDIS_CLIENT],
})
export class RedisModule {}

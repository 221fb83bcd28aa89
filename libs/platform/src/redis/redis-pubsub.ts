import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type Redis from 'ioredis';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { REDIS_CLIENT } from './redis.module';
import { blockingRedisOptions, createRedisClient, withTimeout } from './redis-connection';

export type PubSubListener = (message: string) => void;

/**
 * Redis pub/sub shared by the whole process: one subscriber connection, reference-counted
 * channels (SUBSCRIBE on the first listener, UNSUBSCRIBE after the last), publishing
 * through the shared fail-fast client. Channel names are `<REDIS_KEY_PREFIX>:<name>`, so
 * runs and tenants never hear each other. Delivery is at most once, like Redis pub/sub
 * itself: use it for live fan-out, never for work that must not be lost.
 */
@Injectable()
export class RedisPubSub implements OnApplicationShutdown {
  private subscriber?: Redis;
  private readonly listeners = new Map<string, Set<PubSubListener>>();
  private readonly subscribing = new Map<string, Promise<unknown>>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
  ) {}

  channel(name: string): string {
    return `${this.config.env.REDIS_KEY_PREFIX}:${name}`;
  }

  /** Resolves with the number of subscribers (in every process) that received it. */
  async publish(channel: string, message: string): Promise<number> {
    return withTimeout(this.redis.publish(channel, message), this.config.env.REDIS_REQUEST_TIMEOUT_MS * 4, 'pub/sub publish');
  }

  /**
   * Adds a listener and resolves once Redis confirmed the subscription, so nothing
   * published afterwards is missed. Returns the function that removes the listener.
   */
  async subscribe(channel: string, listener: PubSubListener, timeoutMs = 2000): Promise<() => void> {
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      const subscribed = this.connection()
        .subscribe(channel)
        .finally(() => this.subscribing.delete(channel));
      this.subscribing.set(channel, subscribed);
    }
    set.add(listener);
    const remove = () => this.remove(channel, listener);
    try {
      const pending = this.subscribing.get(channel);
      if (pending) await withTimeout(pending, timeoutMs, `subscribing to ${channel}`);
    } catch (error) {
      remove();
      throw error;
    }
    return remove;
  }

  /** Channels with at least one listener in this process (health, tests). */
  get channelCount(): number {
    return this.listeners.size;
  }

  onApplicationShutdown(): void {
    this.listeners.clear();
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }

  private remove(channel: string, listener: PubSubListener): void {
    const set = this.listeners.get(channel);
    if (!set?.delete(listener) || set.size > 0) return;
    this.listeners.delete(channel);
    void this.subscriber?.unsubscribe(channel).catch(() => undefined);
  }

  private connection(): Redis {
    if (!this.subscriber) {
      // Waits across reconnects and re-subscribes by itself (ioredis autoResubscribe).
      // On a cluster, one node carries the subscriptions; PUBLISH reaches every node.
      const subscriber = createRedisClient(this.config.env, blockingRedisOptions());
      subscriber.on('error', () => undefined);
      subscriber.on('message', (channel: string, message: string) => {
        for (const listener of this.listeners.get(channel) ?? []) {
          try {
            listener(message);
          } catch {
            // One faulty listener must not starve the others.
          }
        }
      });
      this.subscriber = subscriber;
    }
    return this.subscriber;
  }
}

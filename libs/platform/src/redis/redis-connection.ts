import Redis, { type RedisOptions } from 'ioredis';

/**
 * Options for connections that serve requests and the relay: fail fast while Redis is
 * down (no offline queue, one retry) instead of buffering commands in memory forever.
 * Reconnection continues in the background with a capped delay.
 */
export function failFastRedisOptions(): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    // Commands issued by concurrent requests in the same tick share one write.
    enableAutoPipelining: true,
    connectTimeout: 2000,
    retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 5), 2000),
    lazyConnect: false,
  };
}

/** Blocking/subscriber connections: Bull requires them to wait across reconnects. */
export function blockingRedisOptions(): RedisOptions {
  return {
    maxRetriesPerRequest: null,
    enableReadyCheck: false,
    connectTimeout: 2000,
    retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 5), 2000),
  };
}

export function createRedis(url: string, options: RedisOptions): Redis {
  return new Redis(url, options);
}

/**
 * Rejects after `ms` so a stalled Redis never hangs a caller. When the timer fires,
 * pending I/O gets one turn first (setImmediate): after the event loop was busy, timers
 * run before the socket reads that already hold the answer, and giving up then would
 * throw a real answer away (under load that opened the login limit).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => setImmediate(() => reject(new Error(`${what} timed out after ${ms} ms`))), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

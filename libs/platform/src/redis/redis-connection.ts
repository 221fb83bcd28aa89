import Redis, { Cluster, type ClusterNode, type RedisOptions } from 'ioredis';

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

/** Where the process's Redis is: one server (REDIS_URL) or a cluster (REDIS_CLUSTER_NODES). */
export interface RedisTarget {
  REDIS_URL: string;
  REDIS_CLUSTER_NODES?: string;
}

export function isRedisCluster(target: RedisTarget): boolean {
  return Boolean(target.REDIS_CLUSTER_NODES);
}

/** `host:port,host:port` → seed nodes; the client discovers the others from them. */
export function parseClusterNodes(value: string): ClusterNode[] {
  return value.split(',').map((entry) => {
    const at = entry.lastIndexOf(':');
    return { host: entry.slice(0, at), port: Number(entry.slice(at + 1)) };
  });
}

/**
 * A connection with `options` to the configured target. On a cluster it is an ioredis
 * Cluster: the same command API (typed as Redis here, so callers stay unchanged), with
 * every command sent to the master of its key's slot and retried on MOVED/failover.
 * Callers keep multi-key commands and scripts inside one slot (docs/architecture.md
 * "Redis keys and slots"). The per-node options are `options`; the offline queue,
 * ready check and auto-pipelining are the cluster's own settings, taken from them.
 */
export function createRedisClient(target: RedisTarget, options: RedisOptions): Redis {
  if (!target.REDIS_CLUSTER_NODES) return createRedis(target.REDIS_URL, options);
  const { enableOfflineQueue, enableReadyCheck, enableAutoPipelining, lazyConnect, retryStrategy, ...redisOptions } = options;
  const cluster = new Cluster(parseClusterNodes(target.REDIS_CLUSTER_NODES), {
    redisOptions,
    enableOfflineQueue: enableOfflineQueue ?? true,
    enableReadyCheck: enableReadyCheck ?? true,
    enableAutoPipelining: enableAutoPipelining ?? false,
    lazyConnect: lazyConnect ?? false,
    // Reconnect to the seeds like a single connection would, capped.
    clusterRetryStrategy: retryStrategy ? (attempt) => retryStrategy(attempt) ?? null : undefined,
    // Writes go to masters only; during a failover, retry while the replica takes over.
    scaleReads: 'master',
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    slotsRefreshTimeout: 2000,
  });
  return cluster as unknown as Redis;
}

/**
 * The connection that serves `key`'s slot: itself for one server, the slot's current
 * master on a cluster (WAIT, for instance, counts the writes of one connection).
 */
export function connectionForKey(redis: Redis, key: string): Redis | undefined {
  const cluster: unknown = redis;
  if (!(cluster instanceof Cluster)) return redis;
  const master = (cluster as unknown as { slots: string[][] }).slots[clusterKeySlot(key)]?.[0];
  return cluster.nodes('master').find((node) => `${node.options.host}:${node.options.port}` === master);
}

/** Redis Cluster's slot of a key: CRC16 (XMODEM) of its hash tag, or of the whole key. */
export function clusterKeySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(key)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
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

import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import Bull from 'bull';
import type Redis from 'ioredis';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { blockingRedisOptions, connectionForKey, createRedisClient, failFastRedisOptions, isRedisCluster, withTimeout } from '../redis/redis-connection';

export const JITTERED_BACKOFF = 'exponential-jitter';

/*
 * Bull 4 bug workaround: Queue#process calls setWorkerName() without handling its promise,
 * so closing a queue right after it started processing (a fast restart, a test) rejects
 * CLIENT SETNAME with "Connection is closed" as an unhandled rejection. Naming the
 * connection is cosmetic; that one error is dropped, any other still surfaces.
 */
type NamedQueue = { setWorkerName(): Promise<unknown> };
const bullPrototype = Bull.prototype as unknown as NamedQueue & { __safeWorkerName?: boolean };
if (!bullPrototype.__safeWorkerName) {
  const setWorkerName = bullPrototype.setWorkerName;
  bullPrototype.setWorkerName = function (this: NamedQueue) {
    return setWorkerName.call(this).catch((error: Error) => {
      if (!/Connection is closed/.test(error.message)) throw error;
    });
  };
  bullPrototype.__safeWorkerName = true;
}

/**
 * Exponential backoff with "equal jitter": half the exponential delay is fixed, half is
 * random, so retries from many consumers spread out instead of arriving in waves.
 */
export function jitteredBackoff(baseMs: number, attemptsMade: number, capMs = 5 * 60_000): number {
  const exponential = Math.min(capMs, baseMs * 2 ** Math.max(0, attemptsMade - 1));
  return Math.round(exponential / 2 + Math.random() * (exponential / 2));
}

/** Per-job options of the JITTERED_BACKOFF strategy (Bull passes `backoff.options`). */
export interface JitteredBackoffOptions {
  baseMs?: number;
  capMs?: number;
}

/** Failed jobs stay visible (dead letters) for a week, bounded in number. */
export const FAILED_JOB_RETENTION = { age: 7 * 24 * 3600, count: 10_000 };

/**
 * Stack traces a job keeps: the last attempt's. Bull keeps one per failed attempt by
 * default, so an inbox job dead-lettered after INBOX_MAX_ATTEMPTS (8) held eight, about
 * 24 KB in Redis, and a failed set at its FAILED_JOB_RETENTION bound about 240 MB per
 * queue (bench pair event-growth). The earlier attempts' errors are in the logs, and the
 * last one is in `failedReason`, the dead letter and this trace.
 */
export const JOB_STACK_TRACES = 1;

/**
 * Builds every Bull queue in the process with one set of options: a shared fail-fast
 * client and subscriber connection, bounded retention of finished jobs, the jittered
 * backoff strategy, and the run's key prefix. Used by @nestjs/bull (forRoot) and by the
 * outbox relay, which produces into other modules' inbox queues without consuming them.
 */
@Injectable()
export class QueueFactory implements OnApplicationShutdown {
  private readonly queues = new Map<string, Bull.Queue>();
  private client?: Redis;
  private subscriber?: Redis;
  private readonly blocking: Redis[] = [];

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  /**
   * Bull's key prefix. On a cluster every key of a queue must share one slot (Bull's
   * scripts touch several), so the prefix carries a hash tag: the one REDIS_KEY_PREFIX
   * already has, else `{<prefix>:bull}`. All queues of a deployment then live on one
   * master (docs/architecture.md "Redis keys and slots").
   */
  bullPrefix(): string {
    const prefix = this.config.env.REDIS_KEY_PREFIX;
    if (!isRedisCluster(this.config.env) || prefix.includes('{')) return `${prefix}:bull`;
    return `{${prefix}:bull}`;
  }

  queueOptions(): Bull.QueueOptions {
    const target = this.config.env;
    return {
      prefix: this.bullPrefix(),
      createClient: (type) => {
        if (type === 'client') {
          // Commands wait through one reconnect attempt at most, then reject: a producer
          // (the outbox relay) learns quickly that Redis is down and backs off.
          this.client ??= this.quiet(createRedisClient(target, { ...failFastRedisOptions(), enableOfflineQueue: true, enableAutoPipelining: false }));
          return this.client;
        }
        if (type === 'subscriber') {
          this.subscriber ??= this.quiet(createRedisClient(target, blockingRedisOptions()));
          return this.subscriber;
        }
        const connection = this.quiet(createRedisClient(target, blockingRedisOptions()));
        this.blocking.push(connection);
        return connection;
      },
      settings: {
        backoffStrategies: {
          // A queue's jobs may pass their own base: `backoff: { type: JITTERED_BACKOFF, options: { baseMs } }`.
          [JITTERED_BACKOFF]: (attemptsMade: number, _error?: unknown, options?: JitteredBackoffOptions | null) =>
            jitteredBackoff(options?.baseMs ?? this.config.env.INBOX_BACKOFF_BASE_MS, attemptsMade, options?.capMs),
        },
      },
      defaultJobOptions: {
        removeOnComplete: true,
        removeOnFail: FAILED_JOB_RETENTION,
        stackTraceLimit: JOB_STACK_TRACES,
      },
    };
  }

  /** One Queue object per name per process. */
  get(name: string): Bull.Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Bull(name, this.queueOptions());
      queue.on('error', () => undefined);
      this.queues.set(name, queue);
    }
    return queue;
  }

  /**
   * Resolves once the queues' master has passed every job this process added so far to
   * REDIS_WAIT_REPLICAS replicas, or to all it has if fewer are attached (Redis WAIT on the
   * connection that wrote them); else rejects, so the caller does not mark its rows
   * published and hands them over again. A master that dies before replicating would
   * otherwise take the jobs with it, and its replica, promoted, would never have seen them.
   * A master with no replica left (just promoted) is not waited for: nothing could take
   * over from it, and waiting would stop every event until a replica is re-attached.
   */
  async replicated(timeoutMs: number): Promise<void> {
    if (this.config.env.REDIS_WAIT_REPLICAS === 0 || !this.client) return;
    const master = connectionForKey(this.client, `${this.bullPrefix()}:wait`);
    if (!master) throw new Error('no master known for the queues\' slot (failover in progress)');
    const role = (await withTimeout(master.role(), timeoutMs, 'reading the Redis role')) as [string, number, unknown[]?];
    if (role[0] !== 'master') throw new Error(`the queues' node is a ${role[0]} now (failover in progress)`);
    const replicas = Math.min(this.config.env.REDIS_WAIT_REPLICAS, role[2]?.length ?? 0);
    if (replicas === 0) return;
    const acked = await withTimeout(master.wait(replicas, timeoutMs), timeoutMs + 500, 'waiting for Redis replicas');
    if (acked < replicas) throw new Error(`enqueued jobs reached ${acked} of ${replicas} Redis replicas within ${timeoutMs} ms`);
  }

  async onApplicationShutdown(): Promise<void> {
    // Closing a queue waits for its active jobs to finish; a Redis that is down or still
    // reconnecting must not hold the shutdown past its deadline.
    await Promise.allSettled([...this.queues.values()].map((q) => withTimeout(q.close(), 10_000, `closing queue ${q.name}`)));
    for (const connection of [this.client, this.subscriber, ...this.blocking]) connection?.disconnect();
  }

  private quiet(redis: Redis): Redis {
    // Shared by every queue of the process; each Bull queue adds its own listeners.
    redis.setMaxListeners(100);
    redis.on('error', () => undefined);
    return redis;
  }
}

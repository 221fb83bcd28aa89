import { Inject, Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { getDataSourceToken } from '@nestjs/typeorm';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import type Redis from 'ioredis';
import { CacheAside } from '../cache/cache-aside';
import { ReadReplicas } from '../database/read-replica';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { MessagingRegistry } from '../messaging/messaging.registry';
import { QueueFactory } from '../messaging/queue.factory';
import { withTimeout } from '../redis/redis-connection';
import { RetentionStats } from '../maintenance/retention';
import { CircuitBreakers } from '../resilience/circuit-breaker';
import { EventStreams } from '../http/event-stream';
import { REDIS_CLIENT } from '../redis/redis.module';

const SCRAPE_TIMEOUT_MS = 1000;

interface PgPool {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
}

/**
 * Prometheus metrics of this instance: HTTP rate, errors and duration by route; queue
 * depth and job outcomes by queue; outbox lag by module; cache hits and misses; pool
 * usage by module. Gauges that need Redis or Postgres are read at scrape time, each
 * bounded, so a slow dependency makes a scrape incomplete, never slow.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'], registers: [this.registry] });
  private readonly duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route',
    labelNames: ['method', 'route', 'status_class'],
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  private readonly jobs = new Counter({ name: 'queue_jobs_processed_total', help: 'Jobs processed by this instance, by queue and outcome', labelNames: ['queue', 'outcome'], registers: [this.registry] });
  private readonly jobDuration = new Histogram({
    name: 'queue_job_duration_seconds',
    help: 'Time a job of this instance spent processing (processedOn → finishedOn), by queue and outcome',
    labelNames: ['queue', 'outcome'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  /** Last value seen of each running total that the counters below follow (see followTotal). */
  private readonly lastTotals = new Map<string, number>();
  private readonly watched = new Set<string>();
  private readonly collectors: (() => Promise<void>)[] = [];

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly queues: QueueFactory,
    private readonly messaging: MessagingRegistry,
    private readonly cache: CacheAside,
    private readonly replicas: ReadReplicas,
    private readonly breakers: CircuitBreakers,
    private readonly streams: EventStreams,
    private readonly moduleRef: ModuleRef,
    private readonly retention: RetentionStats,
  ) {
    collectDefaultMetrics({ register: this.registry });
    const queueDepth = new Gauge({ name: 'queue_jobs', help: 'Jobs in each queue by state', labelNames: ['queue', 'state'], registers: [this.registry] });
    const outboxLag = new Gauge({ name: 'outbox_lag_seconds', help: 'Age of the oldest unpublished event in the outbox, by module (0 when none)', labelNames: ['module'], registers: [this.registry] });
    const outboxPending = new Gauge({ name: 'outbox_pending_events', help: 'Unpublished events in the outbox, by module', labelNames: ['module'], registers: [this.registry] });
    const unrouted = new Gauge({ name: 'outbox_unrouted_events', help: 'Unpublished outbox events no module manifest routes (they wait for a declared consumer), by module and type', labelNames: ['module', 'event_type'], registers: [this.registry] });
    const deadLetters = new Gauge({ name: 'dead_letter_events', help: 'Events in a module\'s dead_letters table (see npm run cli -- events:dead-letters), by module', labelNames: ['module'], registers: [this.registry] });
    // Running totals are counters (`_total`), so rate() and increase() work across restarts.
    const published = new Counter({ name: 'outbox_published_events_total', help: 'Events this instance relayed, by module', labelNames: ['module'], registers: [this.registry] });
    const dependencyUp = new Gauge({ name: 'dependency_up', help: 'Whether a shared dependency answers (1) or not (0); Redis down degrades, it does not make the instance unready', labelNames: ['dependency'], registers: [this.registry] });
    const cacheRequests = new Counter({ name: 'cache_requests_total', help: 'Cache lookups, by cache and outcome', labelNames: ['cache', 'outcome'], registers: [this.registry] });
    const breakerRejections = new Counter({ name: 'circuit_breaker_rejected_calls_total', help: 'Calls this instance did not make because their circuit was open, by breaker', labelNames: ['breaker'], registers: [this.registry] });
    const breakerOpenings = new Counter({ name: 'circuit_breaker_opened_total', help: 'Circuits this instance opened (a failure reached the threshold), by breaker', labelNames: ['breaker'], registers: [this.registry] });
    const retentionDeleted = new Counter({ name: 'retention_deleted_rows_total', help: 'Rows this instance\'s retention rules deleted (published outbox rows, inbox, dead letters, idempotency keys, sessions…), by module and table', labelNames: ['module', 'table'], registers: [this.registry] });
    this.collectors.push(async () => {
      for (const { module, table, rows } of this.retention.deleted.values()) this.followTotal(retentionDeleted, { module, table }, rows);
    });
    const streamsOpen = new Gauge({ name: 'live_streams_open', help: 'Server-Sent Events streams open on this instance', registers: [this.registry] });
    this.collectors.push(async () => streamsOpen.set(this.streams.openCount));
    const breakersOpen = new Gauge({ name: 'circuit_breaker_open_circuits', help: 'Circuits seen open by this instance whose cool-down has not ended, by breaker', labelNames: ['breaker'], registers: [this.registry] });
    // Read replicas (README, "Running with a read replica"): lag as last polled, and where lag-tolerant reads went.
    const replicaLag = new Gauge({ name: 'db_replica_lag_seconds', help: 'How far each module\'s read replica is behind its primary, as last polled (NaN while unreachable)', labelNames: ['module'], registers: [this.registry] });
    const replicaUsable = new Gauge({ name: 'db_replica_usable', help: 'Whether lag-tolerant reads may use the module\'s replica (1: reachable and within DB_REPLICA_MAX_LAG_MS)', labelNames: ['module'], registers: [this.registry] });
    const replicaReads = new Counter({ name: 'db_lag_tolerant_reads_total', help: 'Lag-tolerant reads by module, target (replica or primary) and reason', labelNames: ['module', 'target', 'reason'], registers: [this.registry] });
    this.collectors.push(async () => {
      for (const reader of this.replicas.readers.values()) {
        if (!reader.hasReplica) continue;
        const { usable, lagMs } = reader.replicaState;
        replicaLag.set({ module: reader.module }, lagMs === null ? Number.NaN : lagMs / 1000);
        replicaUsable.set({ module: reader.module }, usable && lagMs !== null && lagMs <= this.config.env.DB_REPLICA_MAX_LAG_MS ? 1 : 0);
      }
      for (const [key, total] of this.replicas.reads) {
        const [module, target, reason] = key.split('|');
        this.followTotal(replicaReads, { module, target, reason }, total);
      }
    });
    const pool = new Gauge({ name: 'db_pool_connections', help: 'Connections of each module pool by state', labelNames: ['module', 'state'], registers: [this.registry] });

    // Read at scrape time (refresh()), each source bounded by its own timeout.
    this.collectors.push(async () => {
      const names = [...this.messaging.queueOwners.keys()];
      await Promise.all(
        names.map(async (name) => {
          const queue = this.queues.get(name);
          this.watch(name);
          try {
            const counts = await withTimeout(queue.getJobCounts(), SCRAPE_TIMEOUT_MS, 'queue depth');
            for (const [state, value] of Object.entries(counts)) queueDepth.set({ queue: name, state }, Number(value));
          } catch {
            // Redis unavailable: this scrape has no depth for the queue.
          }
        }),
      );
    });
    this.collectors.push(async () => {
      await Promise.all(
        [...this.config.enabledModules].map(async (module) => {
          const dataSource = this.dataSource(module);
          if (!dataSource) return;
          try {
            const schema = this.config.databases[module].schema;
            const [row] = await withTimeout(
              dataSource.query<{ lag: number | null; pending: string; dead: string }[]>(
                `SELECT extract(epoch FROM now() - min(occurred_at))::float8 AS lag, count(*) AS pending,
                        (SELECT count(*) FROM "${schema}".dead_letters) AS dead
                   FROM "${schema}".outbox WHERE published_at IS NULL`,
              ),
              SCRAPE_TIMEOUT_MS,
              'outbox lag',
            );
            outboxLag.set({ module }, row.lag ?? 0);
            outboxPending.set({ module }, Number(row.pending));
            deadLetters.set({ module }, Number(row.dead));
          } catch {
            // Database unavailable: no sample this scrape.
          }
        }),
      );
    });
    this.collectors.push(async () => {
      const redis = this.moduleRef.get<Redis>(REDIS_CLIENT, { strict: false });
      const up = await withTimeout(redis.ping(), SCRAPE_TIMEOUT_MS, 'redis ping').then(() => 1, () => 0);
      dependencyUp.set({ dependency: 'redis' }, up);
    });
    this.collectors.push(async () => {
      for (const [module, relay] of this.messaging.relays) this.followTotal(published, { module }, relay.publishedTotal);
    });
    this.collectors.push(async () => {
      unrouted.reset();
      await Promise.all(
        [...this.messaging.relays].map(async ([module, relay]) => {
          try {
            const counts = await withTimeout(relay.unroutedEvents(), SCRAPE_TIMEOUT_MS, 'unrouted outbox events');
            for (const [eventType, count] of counts) unrouted.set({ module, event_type: eventType }, count);
          } catch {
            // Database unavailable: no sample this scrape.
          }
        }),
      );
    });
    this.collectors.push(async () => {
      for (const [name, counts] of this.cache.stats.counts) {
        for (const outcome of ['hits', 'misses', 'errors'] as const) this.followTotal(cacheRequests, { cache: name, outcome }, counts[outcome]);
      }
    });
    this.collectors.push(async () => {
      breakersOpen.reset();
      for (const [breaker, stats] of this.breakers.stats.byBreaker) {
        this.followTotal(breakerRejections, { breaker }, stats.rejected);
        this.followTotal(breakerOpenings, { breaker }, stats.opened);
        breakersOpen.set({ breaker }, this.breakers.stats.openCircuits(breaker));
      }
    });
    this.collectors.push(async () => {
      for (const module of this.config.enabledModules) {
        const master = (this.dataSource(module)?.driver as unknown as { master?: PgPool } | undefined)?.master;
        if (!master) continue;
        pool.set({ module, state: 'total' }, master.totalCount);
        pool.set({ module, state: 'idle' }, master.idleCount);
        pool.set({ module, state: 'waiting' }, master.waitingCount);
      }
    });
  }

  /** The exposition text, with every scrape-time gauge refreshed first. */
  async scrape(): Promise<string> {
    await Promise.all(this.collectors.map((collect) => collect().catch(() => undefined)));
    return this.registry.metrics();
  }

  recordRequest(method: string, route: string, status: number, seconds: number): void {
    this.requests.inc({ method, route, status: String(status) });
    this.duration.observe({ method, route, status_class: `${Math.floor(status / 100)}xx` }, seconds);
  }

  /**
   * Moves a counter forward to a running total kept elsewhere (the relay's, the cache's):
   * only the increase since the last scrape is added, so the counter never goes back.
   */
  private followTotal(counter: Counter<string>, labels: Record<string, string>, total: number): void {
    const key = `${(counter as unknown as { name: string }).name}${JSON.stringify(labels)}`;
    const increase = total - (this.lastTotals.get(key) ?? 0);
    this.lastTotals.set(key, total);
    if (increase > 0) counter.inc(labels, increase);
    else if (increase === 0) counter.inc(labels, 0); // present from the first scrape, at 0
  }

  /** Counts outcomes, and times the jobs, this instance processes on `queue`. */
  private watch(name: string): void {
    if (this.watched.has(name)) return;
    this.watched.add(name);
    const queue = this.queues.get(name);
    const finished = (outcome: 'completed' | 'failed', job: { processedOn?: number; finishedOn?: number }) => {
      this.jobs.inc({ queue: name, outcome });
      if (job?.processedOn) this.jobDuration.observe({ queue: name, outcome }, Math.max(0, (job.finishedOn ?? Date.now()) - job.processedOn) / 1000);
    };
    queue.on('completed', (job) => finished('completed', job));
    queue.on('failed', (job) => finished('failed', job));
  }

  /** Starts counting job outcomes for every owned queue (called once the app is up). */
  watchOwnedQueues(): void {
    for (const name of this.messaging.queueOwners.keys()) this.watch(name);
  }

  private dataSource(module: string): DataSource | undefined {
    try {
      return this.moduleRef.get<DataSource>(getDataSourceToken(module), { strict: false });
    } catch {
      return undefined;
    }
  }
}

import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { AppConfig, DomainModuleName } from '../config/app-config';
import type { EventMetadata, IntegrationEvent } from './integration-event';
import { claimEnqueueMark, type EnqueuedJob } from './claim-enqueue-mark';
import { DrainLoop } from './drain-loop';
import { JITTERED_BACKOFF, type QueueFactory } from './queue.factory';
import type { EventRouting } from './module-manifest';
import { ProducerSpans } from '../tracing/trace-context';

interface OutboxRow {
  id: string;
  event_type: string;
  payload: unknown;
  metadata: EventMetadata;
  occurred_at: Date;
}

const PUBLISH_TIMEOUT_MS = 5_000;

/** How often a relay looks for outbox rows no declaration routes (logged once per type). */
const UNROUTED_CHECK_INTERVAL_MS = 60_000;

/**
 * Moves one module's outbox rows to the inbox queues of the modules that consume them,
 * as declared in the module manifests (EventRouting): the same routes in every process,
 * whether the consumers run here, elsewhere, or not yet. Redis holds queues, never routes.
 *
 * - Claims unpublished rows of routable types with `FOR UPDATE SKIP LOCKED`, so every
 *   instance can run a relay at once without double work; a row is marked published
 *   (`published_at`) only in the transaction that enqueued it, and kept for
 *   OUTBOX_RETENTION so `events:replay` can publish it again (the module's
 *   RetentionSweeper deletes it after that: maintenance/retention.ts).
 * - A row that no declaration routes is never claimed, never deleted: it stays, is logged
 *   once per type and is counted (`outbox_unrouted_events`) until a consumer is declared.
 * - No high-water mark: every committed row is visible to the next claim, so a
 *   transaction that commits late (out of sequence order) is never skipped.
 * - Woken in-process right after a commit by the OutboxPublisher that wrote the events
 *   (no NOTIFY per transaction: Postgres serialises the commits of notifying
 *   transactions, and every instance would wake for every commit anywhere). It LISTENs
 *   for writers outside the application (`events:replay` NOTIFYs explicitly); a polling
 *   timer (OUTBOX_POLL_INTERVAL_MS) covers a process that crashed after its commit, and
 *   rows written by other tools.
 * - The job id is the event id, so a re-publish after a crash between "add" and
 *   "mark" is a no-op in Bull, and inbox deduplication covers the rest (and a replay).
 * - While Redis is down, publishing fails, the transaction rolls back, rows stay, and
 *   the relay backs off with jitter; writes to the outbox never depend on Redis.
 */
export class OutboxRelay {
  private listener?: Client;
  private reconnectTimer?: NodeJS.Timeout;
  private unroutedTimer?: NodeJS.Timeout;
  private readonly reportedUnrouted = new Set<string>();
  /** Claimed by this relay: the types some manifest routes (fixed for the process's life). */
  private readonly routable: string[];
  private readonly loop: DrainLoop;
  /** Age in ms of the oldest event published in the last batch: the relay's lag. */
  lastLagMs = 0;
  publishedTotal = 0;

  constructor(
    private readonly module: DomainModuleName,
    private readonly dataSource: DataSource,
    private readonly queues: QueueFactory,
    private readonly routing: EventRouting,
    private readonly config: AppConfig,
    private readonly logger: Logger,
  ) {
    this.routable = routing.routableTypes(module);
    this.loop = new DrainLoop({
      batch: () => this.relayBatch(),
      batchSize: config.env.OUTBOX_BATCH_SIZE,
      pollIntervalMs: config.env.OUTBOX_POLL_INTERVAL_MS,
      onFailure: (error, retryInMs, failures) =>
        logger.warn({ module, err: error, retryInMs, failures }, 'outbox relay could not publish; events stay in the outbox'),
      onRecovered: () => logger.info({ module }, 'outbox relay recovered'),
    });
  }

  private get schema(): string {
    return this.config.databases[this.module].schema;
  }

  start(): void {
    this.loop.start();
    void this.listen();
    const checkUnrouted = () => void this.unroutedEvents().catch((error: unknown) =>
      this.logger.warn({ module: this.module, err: error }, 'could not count unrouted outbox events'));
    checkUnrouted();
    this.unroutedTimer = setInterval(checkUnrouted, UNROUTED_CHECK_INTERVAL_MS);
    this.unroutedTimer.unref();
  }

  async stop(): Promise<void> {
    clearTimeout(this.reconnectTimer);
    clearInterval(this.unroutedTimer);
    await this.loop.stop();
    await this.listener?.end().catch(() => undefined);
    this.listener = undefined;
  }

  /** Drains now, or right after the drain in progress. */
  wake(): void {
    this.loop.wake();
  }

  /** Resolves once no routable event is unpublished, or the relay gave up for now (tests, shutdown). */
  drainNow(): Promise<void> {
    return this.loop.drainNow();
  }

  /**
   * Unpublished rows that no manifest routes, by type. Each new type is logged once (as an
   * error: an event nobody will receive until a consumer is declared); metrics read this.
   */
  async unroutedEvents(): Promise<Map<string, number>> {
    const rows: { event_type: string; count: string }[] = await this.dataSource.query(
      `SELECT event_type, count(*) AS count FROM "${this.schema}".outbox
        WHERE published_at IS NULL AND NOT (event_type = ANY($1::text[]))
        GROUP BY event_type`,
      [this.routable],
    );
    const counts = new Map(rows.map((r) => [r.event_type, Number(r.count)]));
    for (const [type, count] of counts) {
      if (this.reportedUnrouted.has(type)) continue;
      this.reportedUnrouted.add(type);
      this.logger.error(
        { module: this.module, eventType: type, count },
        'outbox events with no declared consumer stay in the outbox unpublished; declare a consumer in a module manifest',
      );
    }
    return counts;
  }

  private async relayBatch(): Promise<number> {
    if (this.routable.length === 0) return 0;
    // One span per event, in the trace of the request that wrote it, ended by the commit.
    const spans = new ProducerSpans();
    const rows = await claimEnqueueMark<OutboxRow>(this.dataSource, this.queues, {
      claim: (runner) =>
        runner.query(
          `SELECT id, event_type, payload, metadata, occurred_at FROM "${this.schema}".outbox
            WHERE published_at IS NULL AND event_type = ANY($2::text[])
            ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
          [this.config.env.OUTBOX_BATCH_SIZE, this.routable],
        ),
      jobs: (claimed) => this.jobsFor(claimed, spans),
      mark: async (runner, claimed) => {
        await runner.query(`UPDATE "${this.schema}".outbox SET published_at = now() WHERE id = ANY($1::uuid[])`, [claimed.map((r) => r.id)]);
      },
      what: 'publishing outbox events to Redis',
      timeoutMs: PUBLISH_TIMEOUT_MS,
    }).catch((error: unknown) => {
      spans.end(error);
      throw error;
    });
    spans.end();
    if (rows.length === 0) return 0;
    const oldest = Math.min(...rows.map((r) => new Date(r.occurred_at).getTime()));
    this.lastLagMs = Math.max(0, Date.now() - oldest);
    this.publishedTotal += rows.length;
    this.logger.debug({ module: this.module, count: rows.length }, 'outbox events published');
    return rows.length;
  }

  /** One job per consuming module's inbox queue (EventRouting), the event id as job id. */
  private jobsFor(rows: OutboxRow[], spans: ProducerSpans): Map<string, EnqueuedJob[]> {
    const jobsByQueue = new Map<string, EnqueuedJob[]>();
    for (const row of rows) {
      const queues = this.routing.queuesFor(row.event_type);
      const metadata = row.metadata ?? {};
      const envelope: IntegrationEvent = {
        id: row.id,
        type: row.event_type,
        producer: this.module,
        occurredAt: new Date(row.occurred_at).toISOString(),
        payload: row.payload,
        // The consumer's span becomes a child of this publish span.
        metadata: {
          ...metadata,
          ...spans.start(`publish ${row.event_type}`, metadata, () => ({
            'messaging.system': 'bull',
            'messaging.operation.type': 'send',
            'messaging.destination.name': queues.join(','),
            'messaging.message.id': row.id,
            'messaging.message.type': row.event_type,
          })),
        },
      };
      for (const queue of queues) {
        if (!jobsByQueue.has(queue)) jobsByQueue.set(queue, []);
        jobsByQueue.get(queue)!.push({
          name: row.event_type,
          data: envelope,
          opts: { jobId: row.id, attempts: this.config.env.INBOX_MAX_ATTEMPTS, backoff: { type: JITTERED_BACKOFF } },
        });
      }
    }
    return jobsByQueue;
  }

  private async listen(): Promise<void> {
    if (this.loop.isStopped) return;
    const client = new Client({
      connectionString: this.config.databases[this.module].url,
      connectionTimeoutMillis: this.config.databases[this.module].connectTimeoutMs,
      application_name: `mm:${this.module}:outbox-listener`,
    });
    const retry = () => {
      client.removeAllListeners();
      void client.end().catch(() => undefined);
      if (this.listener === client) this.listener = undefined;
      if (!this.loop.isStopped) {
        this.reconnectTimer = setTimeout(() => void this.listen(), 1000);
        this.reconnectTimer.unref();
      }
    };
    client.on('error', retry);
    client.on('notification', () => this.wake());
    try {
      await client.connect();
      await client.query(`LISTEN "${this.schema}_outbox"`);
      if (this.loop.isStopped) return void (await client.end());
      this.listener = client;
      // Events committed while we were not listening are picked up right away.
      this.wake();
    } catch {
      retry();
    }
  }
}

import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { AppConfig, DomainModuleName } from '../config/app-config';
import { withTimeout } from '../redis/redis-connection';
import type { IntegrationEvent } from './integration-event';
import { DrainLoop } from './drain-loop';
import { JITTERED_BACKOFF, type QueueFactory } from './queue.factory';
import type { SubscriptionRegistry } from './subscription.registry';

interface OutboxRow {
  id: string;
  event_type: string;
  payload: unknown;
  metadata: { requestId?: string };
  occurred_at: Date;
}

const PUBLISH_TIMEOUT_MS = 5_000;

/**
 * Moves one module's outbox rows to the inbox queues of the modules that subscribe.
 *
 * - Claims rows with `FOR UPDATE SKIP LOCKED`, so every instance can run a relay at once
 *   without double work; rows are deleted only in the transaction that published them.
 * - No high-water mark: every committed row is visible to the next claim, so a
 *   transaction that commits late (out of sequence order) is never skipped.
 * - Woken by `LISTEN/NOTIFY` right after a commit; a polling timer covers lost
 *   notifications and a dropped listener connection.
 * - The job id is the event id, so a re-publish after a crash between "add" and
 *   "delete" is a no-op in Bull, and inbox deduplication covers the rest.
 * - While Redis is down, publishing fails, the transaction rolls back, rows stay, and
 *   the relay backs off with jitter; writes to the outbox never depend on Redis.
 */
export class OutboxRelay {
  private listener?: Client;
  private reconnectTimer?: NodeJS.Timeout;
  private readonly loop: DrainLoop;
  /** Age in ms of the oldest event published in the last batch: the relay's lag. */
  lastLagMs = 0;
  publishedTotal = 0;

  constructor(
    private readonly module: DomainModuleName,
    private readonly dataSource: DataSource,
    private readonly queues: QueueFactory,
    private readonly subscriptions: SubscriptionRegistry,
    private readonly config: AppConfig,
    private readonly logger: Logger,
  ) {
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
  }

  async stop(): Promise<void> {
    clearTimeout(this.reconnectTimer);
    await this.loop.stop();
    await this.listener?.end().catch(() => undefined);
    this.listener = undefined;
  }

  /** Drains now, or right after the drain in progress. */
  wake(): void {
    this.loop.wake();
  }

  /** Resolves once the outbox is empty or the relay gave up for now (tests, shutdown). */
  drainNow(): Promise<void> {
    return this.loop.drainNow();
  }

  private async relayBatch(): Promise<number> {
    await this.subscriptions.flush();
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    try {
      const rows: OutboxRow[] = await runner.query(
        `SELECT id, event_type, payload, metadata, occurred_at FROM "${this.schema}".outbox
          ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [this.config.env.OUTBOX_BATCH_SIZE],
      );
      if (rows.length === 0) {
        await runner.commitTransaction();
        return 0;
      }
      const jobsByQueue = new Map<string, { name: string; data: IntegrationEvent; opts: object }[]>();
      for (const row of rows) {
        const envelope: IntegrationEvent = {
          id: row.id,
          type: row.event_type,
          producer: this.module,
          occurredAt: new Date(row.occurred_at).toISOString(),
          payload: row.payload,
          metadata: row.metadata ?? {},
        };
        for (const queue of await this.subscriptions.queuesFor(row.event_type)) {
          if (!jobsByQueue.has(queue)) jobsByQueue.set(queue, []);
          jobsByQueue.get(queue)!.push({
            name: row.event_type,
            data: envelope,
            opts: {
              jobId: row.id,
              attempts: this.config.env.INBOX_MAX_ATTEMPTS,
              backoff: { type: JITTERED_BACKOFF },
            },
          });
        }
      }
      await withTimeout(
        Promise.all([...jobsByQueue].map(([queue, jobs]) => this.queues.get(queue).addBulk(jobs))),
        PUBLISH_TIMEOUT_MS,
        'publishing outbox events to Redis',
      );
      await runner.query(`DELETE FROM "${this.schema}".outbox WHERE id = ANY($1::uuid[])`, [rows.map((r) => r.id)]);
      await runner.commitTransaction();
      const oldest = Math.min(...rows.map((r) => new Date(r.occurred_at).getTime()));
      this.lastLagMs = Math.max(0, Date.now() - oldest);
      this.publishedTotal += rows.length;
      this.logger.debug({ module: this.module, count: rows.length }, 'outbox events published');
      return rows.length;
    } catch (error) {
      await runner.rollbackTransaction().catch(() => undefined);
      throw error;
    } finally {
      await runner.release();
    }
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

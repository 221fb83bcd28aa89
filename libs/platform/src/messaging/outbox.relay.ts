import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { AppConfig, DomainModuleName } from '../config/app-config';
import { withTimeout } from '../redis/redis-connection';
import type { IntegrationEvent } from './integration-event';
import { JITTERED_BACKOFF, jitteredBackoff, type QueueFactory } from './queue.factory';
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
  private pollTimer?: NodeJS.Timeout;
  private reconnectTimer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private wakeAgain = false;
  private stopped = true;
  private consecutiveFailures = 0;
  private pausedUntil = 0;
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
  ) {}

  private get schema(): string {
    return this.config.databases[this.module].schema;
  }

  start(): void {
    this.stopped = false;
    void this.listen();
    this.pollTimer = setInterval(() => this.wake(), this.config.env.OUTBOX_POLL_INTERVAL_MS);
    this.pollTimer.unref();
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.reconnectTimer);
    await this.running;
    await this.listener?.end().catch(() => undefined);
    this.listener = undefined;
  }

  /** Drains now, or right after the drain in progress. */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.wakeAgain = true;
      return;
    }
    if (Date.now() < this.pausedUntil) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves once the outbox is empty or the relay gave up for now (tests, shutdown). */
  async drainNow(): Promise<void> {
    await this.running;
    this.pausedUntil = 0;
    this.wake();
    await this.running;
  }

  private async drain(): Promise<void> {
    try {
      let published: number;
      do {
        this.wakeAgain = false;
        published = await this.relayBatch();
      } while (!this.stopped && (published === this.config.env.OUTBOX_BATCH_SIZE || this.wakeAgain));
      if (this.consecutiveFailures > 0) this.logger.info({ module: this.module }, 'outbox relay recovered');
      this.consecutiveFailures = 0;
    } catch (error) {
      this.consecutiveFailures += 1;
      const delay = jitteredBackoff(250, this.consecutiveFailures, 10_000);
      this.pausedUntil = Date.now() + delay;
      this.logger.warn(
        { module: this.module, err: error, retryInMs: delay, failures: this.consecutiveFailures },
        'outbox relay could not publish; events stay in the outbox',
      );
    }
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
    if (this.stopped) return;
    const client = new Client({
      connectionString: this.config.databases[this.module].url,
      connectionTimeoutMillis: this.config.databases[this.module].connectTimeoutMs,
      application_name: `mm:${this.module}:outbox-listener`,
    });
    const retry = () => {
      client.removeAllListeners();
      void client.end().catch(() => undefined);
      if (this.listener === client) this.listener = undefined;
      if (!this.stopped) {
        this.reconnectTimer = setTimeout(() => void this.listen(), 1000);
        this.reconnectTimer.unref();
      }
    };
    client.on('error', retry);
    client.on('notification', () => this.wake());
    try {
      await client.connect();
      await client.query(`LISTEN "${this.schema}_outbox"`);
      if (this.stopped) return void (await client.end());
      this.listener = client;
      // Events committed while we were not listening are picked up right away.
      this.wake();
    } catch {
      retry();
    }
  }
}

import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { APP_CONFIG, JITTERED_BACKOFF, jitteredBackoff, QueueFactory, ROOT_LOGGER, withTimeout, type AppConfig } from '@app/platform';
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { DeliveryChannel } from '../domain/notification';
import { DELIVERY_QUEUE, type DeliveryJob } from '../notifications.queues';

const BATCH_SIZE = 100;
const PUBLISH_TIMEOUT_MS = 5_000;

/**
 * Moves delivery rows to their channel's Bull queue: the notifications module's own small
 * outbox relay. Consumers write delivery rows in the inbox transaction (the only place
 * where "notification exists" and "its deliveries exist" can be made atomic) and this
 * dispatcher enqueues them after the commit:
 *
 * - woken at once by the committing transaction (after-commit hook), and by a poll every
 *   NOTIFICATIONS_DISPATCH_INTERVAL_MS, which covers a crash between commit and wake-up;
 * - claims rows with `FOR UPDATE SKIP LOCKED`, so every instance can dispatch at once;
 * - the job id is the delivery id, and `enqueued_at` is set in the transaction that added
 *   the jobs: a crash in between re-adds the same job id, which Bull ignores;
 * - while Redis is down the rows wait and the dispatcher backs off with jitter.
 */
@Injectable()
export class DeliveryDispatcher {
  private pollTimer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private wakeAgain = false;
  private stopped = true;
  private failures = 0;
  private pausedUntil = 0;

  constructor(
    @InjectDataSource('notifications') private readonly dataSource: DataSource,
    private readonly queues: QueueFactory,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ROOT_LOGGER) private readonly logger: Logger,
  ) {}

  start(): void {
    this.stopped = false;
    this.pollTimer = setInterval(() => this.wake(), this.config.env.NOTIFICATIONS_DISPATCH_INTERVAL_MS);
    this.pollTimer.unref();
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pollTimer);
    await this.running;
  }

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

  /** Job options shared by every delivery: bounded attempts, jittered exponential backoff. */
  jobOptions(deliveryId: string): object {
    return {
      jobId: deliveryId,
      attempts: this.config.env.NOTIFICATIONS_DELIVERY_MAX_ATTEMPTS,
      backoff: { type: JITTERED_BACKOFF, options: { baseMs: this.config.env.NOTIFICATIONS_DELIVERY_BACKOFF_BASE_MS } },
    };
  }

  private async drain(): Promise<void> {
    try {
      let dispatched: number;
      do {
        this.wakeAgain = false;
        dispatched = await this.dispatchBatch();
      } while (!this.stopped && (dispatched === BATCH_SIZE || this.wakeAgain));
      this.failures = 0;
    } catch (error) {
      this.failures += 1;
      const delay = jitteredBackoff(250, this.failures, 10_000);
      this.pausedUntil = Date.now() + delay;
      this.logger.warn({ err: error, retryInMs: delay, failures: this.failures }, 'delivery dispatcher could not enqueue; deliveries stay pending');
    }
  }

  private async dispatchBatch(): Promise<number> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    try {
      const rows: { id: string; channel: DeliveryChannel }[] = await runner.query(
        `SELECT id, channel FROM notifications.deliveries
          WHERE enqueued_at IS NULL
          ORDER BY created_at
          LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [BATCH_SIZE],
      );
      if (rows.length === 0) {
        await runner.commitTransaction();
        return 0;
      }
      const byQueue = new Map<string, { data: DeliveryJob; opts: object }[]>();
      for (const row of rows) {
        const queue = DELIVERY_QUEUE[row.channel];
        if (!byQueue.has(queue)) byQueue.set(queue, []);
        byQueue.get(queue)!.push({ data: { deliveryId: row.id }, opts: this.jobOptions(row.id) });
      }
      await withTimeout(
        Promise.all([...byQueue].map(([queue, jobs]) => this.queues.get(queue).addBulk(jobs))),
        PUBLISH_TIMEOUT_MS,
        'enqueueing deliveries',
      );
      await runner.query('UPDATE notifications.deliveries SET enqueued_at = now() WHERE id = ANY($1::uuid[])', [rows.map((r) => r.id)]);
      await runner.commitTransaction();
      return rows.length;
    } catch (error) {
      await runner.rollbackTransaction().catch(() => undefined);
      throw error;
    } finally {
      await runner.release();
    }
  }
}

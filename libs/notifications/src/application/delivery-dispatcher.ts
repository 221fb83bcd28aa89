import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { APP_CONFIG, DrainLoop, JITTERED_BACKOFF, QueueFactory, ROOT_LOGGER, withTimeout, type AppConfig } from '@app/platform';
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { DeliveryChannel } from '../domain/notification';
import { DELIVERY_QUEUE, type DeliveryJob, type DeliveryQueue } from '../notifications.queues';
import { notificationsSettings } from '../notifications.settings';

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
  private readonly loop: DrainLoop;

  constructor(
    @InjectDataSource('notifications') private readonly dataSource: DataSource,
    private readonly queues: QueueFactory,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ROOT_LOGGER) private readonly logger: Logger,
  ) {
    this.loop = new DrainLoop({
      batch: () => this.dispatchBatch(),
      batchSize: BATCH_SIZE,
      pollIntervalMs: notificationsSettings(config).NOTIFICATIONS_DISPATCH_INTERVAL_MS,
      onFailure: (error, retryInMs, failures) =>
        logger.warn({ err: error, retryInMs, failures }, 'delivery dispatcher could not enqueue; deliveries stay pending'),
    });
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Dispatches now, or right after the pass in progress. */
  wake(): void {
    this.loop.wake();
  }

  /** Job options shared by every delivery: bounded attempts, jittered exponential backoff. */
  jobOptions(deliveryId: string): object {
    return {
      jobId: deliveryId,
      attempts: notificationsSettings(this.config).NOTIFICATIONS_DELIVERY_MAX_ATTEMPTS,
      backoff: { type: JITTERED_BACKOFF, options: { baseMs: notificationsSettings(this.config).NOTIFICATIONS_DELIVERY_BACKOFF_BASE_MS } },
    };
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
      const byQueue = new Map<DeliveryQueue, { data: DeliveryJob; opts: object }[]>();
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

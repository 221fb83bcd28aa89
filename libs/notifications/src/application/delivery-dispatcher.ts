import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { APP_CONFIG, claimEnqueueMark, DrainLoop, JITTERED_BACKOFF, ProducerSpans, QueueFactory, ROOT_LOGGER, type AppConfig, type EnqueuedJob, type TraceCarrier } from '@app/platform';
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
    // One span per delivery, in the trace of the event that created it, ended by the commit.
    const spans = new ProducerSpans();
    const rows = await claimEnqueueMark<{ id: string; user_id: string; channel: DeliveryChannel; trace_context: TraceCarrier | null }>(this.dataSource, this.queues, {
      claim: (runner) =>
        runner.query(
          `SELECT id, user_id, channel, trace_context FROM notifications.deliveries
            WHERE enqueued_at IS NULL
            ORDER BY created_at
            LIMIT $1 FOR UPDATE SKIP LOCKED`,
          [BATCH_SIZE],
        ),
      jobs: (claimed) => {
        const byQueue = new Map<DeliveryQueue, EnqueuedJob[]>();
        for (const row of claimed) {
          const queue = DELIVERY_QUEUE[row.channel];
          if (!byQueue.has(queue)) byQueue.set(queue, []);
          const trace = spans.start(`publish ${queue}`, row.trace_context ?? undefined, () => ({
            'messaging.system': 'bull',
            'messaging.operation.type': 'send',
            'messaging.destination.name': queue,
            'messaging.message.id': row.id,
          }));
          const data: DeliveryJob = { deliveryId: row.id, userId: row.user_id, ...(trace.traceparent ? { trace } : {}) };
          byQueue.get(queue)!.push({ data, opts: this.jobOptions(row.id) });
        }
        return byQueue;
      },
      mark: async (runner, claimed) => {
        await runner.query('UPDATE notifications.deliveries SET enqueued_at = now() WHERE id = ANY($1::uuid[])', [claimed.map((r) => r.id)]);
      },
      what: 'enqueueing deliveries',
      timeoutMs: PUBLISH_TIMEOUT_MS,
    }).catch((error: unknown) => {
      spans.end(error);
      throw error;
    });
    spans.end();
    return rows.length;
  }
}

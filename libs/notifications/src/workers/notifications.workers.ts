import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap, type OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, MessagingRegistry, QueueFactory, ROOT_LOGGER, withTimeout, type AppConfig } from '@app/platform';
import type { Job, Queue } from 'bull';
import type { Logger } from 'pino';
import { DeliveryDispatcher } from '../application/delivery-dispatcher';
import { DeliveryProcessor } from './delivery.processor';
import { RetentionJob } from './retention.job';
import { PartitionMaintenance } from './partition-maintenance';
import { NOTIFICATIONS_QUEUES, type DeliveryJob } from '../notifications.queues';
import { notificationsSettings } from '../notifications.settings';

const RETENTION_JOB = 'purge-read-notifications';

/**
 * Starts and stops the notifications module's own queues with the application: delivery
 * processors per channel, the delivery dispatcher, and the repeatable retention job. The
 * queues are claimed for `notifications` at module init, so a second consumer of them in
 * another module stops the boot.
 */
@Injectable()
export class NotificationsWorkers implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly started: Queue[] = [];
  private scheduling?: Promise<void>;
  private partitionsAhead?: Promise<void>;

  constructor(
    private readonly queues: QueueFactory,
    private readonly registry: MessagingRegistry,
    private readonly dispatcher: DeliveryDispatcher,
    private readonly deliveries: DeliveryProcessor,
    private readonly retention: RetentionJob,
    private readonly partitions: PartitionMaintenance,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ROOT_LOGGER) private readonly logger: Logger,
  ) {}

  onModuleInit(): void {
    for (const queue of Object.values(NOTIFICATIONS_QUEUES)) this.registry.claimQueue(queue, 'notifications');
  }

  onApplicationBootstrap(): void {
    const concurrency = notificationsSettings(this.config).NOTIFICATIONS_DELIVERY_CONCURRENCY;
    for (const name of [NOTIFICATIONS_QUEUES.email, NOTIFICATIONS_QUEUES.webhook]) {
      this.consume(this.queues.get(name), concurrency, (job: Job<DeliveryJob>) => this.deliveries.process(job));
    }
    const retention = this.queues.get(NOTIFICATIONS_QUEUES.retention);
    this.consume(retention, 1, () => this.retention.run(), RETENTION_JOB);
    this.scheduling = this.scheduleRetention(retention);
    // Partitions ahead at boot too, so months exist even while Redis (and so the job) is down.
    this.partitionsAhead = this.partitions
      .createAhead()
      .then(() => undefined)
      .catch((error: unknown) => this.logger.warn({ err: error }, 'notification partitions not created at boot; the retention job retries'));
    this.dispatcher.start();
  }

  /** Stops handing out deliveries, then waits for the jobs in progress. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.dispatcher.stop();
    // A close while the schedule's commands are in flight fails them with "Connection is closed".
    await this.scheduling;
    await this.partitionsAhead;
    await Promise.allSettled(this.started.map((queue) => withTimeout(queue.close(), 10_000, `closing ${queue.name}`)));
  }

  private consume<T>(queue: Queue, concurrency: number, handler: (job: Job<T>) => Promise<unknown>, jobName?: string): void {
    this.started.push(queue);
    void (jobName ? queue.process(jobName, concurrency, handler) : queue.process(concurrency, handler))
      .catch((error: unknown) => this.logger.error({ err: error, queue: queue.name }, 'notifications worker stopped'));
  }

  /** Every instance asks for the same repeatable job (idempotent); stale intervals are removed. */
  private async scheduleRetention(queue: Queue): Promise<void> {
    const every = notificationsSettings(this.config).NOTIFICATIONS_RETENTION_INTERVAL_MS;
    try {
      for (const job of await queue.getRepeatableJobs()) {
        if (job.name === RETENTION_JOB && Number(job.every) !== every) await queue.removeRepeatableByKey(job.key);
      }
      await queue.add(RETENTION_JOB, {}, { repeat: { every }, jobId: RETENTION_JOB });
    } catch (error) {
      this.logger.warn({ err: error }, 'retention job not scheduled (Redis unavailable?); the next start schedules it');
    }
  }
}

import { InjectQueue } from '@nestjs/bull';
import { Inject, Injectable } from '@nestjs/common';
import { ROOT_LOGGER, withTimeout } from '@app/platform';
import type { Queue } from 'bull';
import type { Logger } from 'pino';
import { ORDER_EXPIRY_QUEUE, type ExpireOrderJob } from '../orders.queues';

/** Adds the expiry saga's delayed job (one per order: the order id is the job id). */
@Injectable()
export class OrderExpiryScheduler {
  constructor(
    @InjectQueue(ORDER_EXPIRY_QUEUE) private readonly queue: Queue<ExpireOrderJob>,
    @Inject(ROOT_LOGGER) private readonly logger: Logger,
  ) {}

  async schedule(orderId: string, delayMs: number): Promise<void> {
    try {
      await withTimeout(this.queue.add('expire', { orderId }, { jobId: orderId, delay: delayMs, attempts: 5, backoff: { type: 'exponential', delay: 1000 } }), 1000, 'scheduling order expiry');
    } catch (error) {
      // The order is committed; the sweeper expires it on time anyway.
      this.logger.warn({ err: error, orderId }, 'could not schedule order expiry; the sweeper will catch it');
    }
  }
}

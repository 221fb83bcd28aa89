import { InjectQueue } from '@nestjs/bull';
import { Inject, Injectable } from '@nestjs/common';
import { Flags, ROOT_LOGGER, withTimeout } from '@app/platform';
import type { Queue } from 'bull';
import type { Logger } from 'pino';
import { ORDER_EXPIRY_QUEUE, type ExpireOrderJob } from '../orders.queues';
import { ORDERS_FLAGS } from '../orders.flags';

/** Adds the expiry saga's delayed job (one per order: the order id is the job id). */
@Injectable()
export class OrderExpiryScheduler {
  constructor(
    @InjectQueue(ORDER_EXPIRY_QUEUE) private readonly queue: Queue<ExpireOrderJob>,
    @Inject(ROOT_LOGGER) private readonly logger: Logger,
    private readonly flags: Flags,
  ) {}

  async schedule(orderId: string, delayMs: number): Promise<void> {
    // Kill switch (orders.expiry-scheduling off): no job; the sweeper expires the order instead.
    if (!(await this.flags.isEnabled(ORDERS_FLAGS.expiryScheduling))) return;
    try {
      await withTimeout(this.queue.add('expire', { orderId }, { jobId: orderId, delay: delayMs, attempts: 5, backoff: { type: 'exponential', delay: 1000 } }), 1000, 'scheduling order expiry');
    } catch (error) {
      // The order is committed; the sweeper expires it on time anyway.
      this.logger.warn({ err: error, orderId }, 'could not schedule order expiry; the sweeper will catch it');
    }
  }
}

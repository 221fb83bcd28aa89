import { Process, Processor } from '@nestjs/bull';
import type { Job } from 'bull';
import { OrderLifecycleService } from '../application/order-lifecycle.service';
import { ORDER_EXPIRY_QUEUE, type ExpireOrderJob } from '../orders.queues';

/** Runs the expiry saga's delayed job: the order expires if it is still pending. */
@Processor(ORDER_EXPIRY_QUEUE)
export class OrderExpiryProcessor {
  constructor(private readonly lifecycle: OrderLifecycleService) {}

  @Process('expire')
  async expire(job: Job<ExpireOrderJob>): Promise<{ expired: boolean }> {
    return { expired: await this.lifecycle.expire(job.data.orderId) };
  }
}
